"""Backup and restore: a round trip into a fresh home and database, refusals, and tamper detection."""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pki import PKI, RequestIdentity
from pki.core.errors import Conflict, IntegrityError
from pki.operations.backup import create_backup, restore_backup
from pki.store.repository import CertificateFilter
from tests.conftest import FRESH_EPOCH, database_url, drop_database, make_csr, make_settings


def _issue(pki: PKI) -> str:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id)
    ).certificate.serial


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An empty home and database for the restore."""
    home = tmp_path / "restored"
    home.mkdir()
    url, name = database_url(home)
    yield home, url
    drop_database(name)


def _state(pki: PKI) -> dict[str, object]:
    certificates = pki.certificates.list(CertificateFilter(limit=100_000))
    return {
        "certificates": sorted((c.issuer_id, c.serial, c.sha256, c.status) for c in certificates),
        "crl_numbers": {ca.id: ca.crl_number for ca in pki.cas.list()},
        "audit": [(e.seq, e.hash) for e in pki.audit.records(limit=100_000)],
    }


def test_round_trip_into_a_fresh_home_and_database(fresh_pki: PKI, target: tuple[Path, str], tmp_path: Path) -> None:
    kept, revoked = _issue(fresh_pki), _issue(fresh_pki)
    fresh_pki.revocation.revoke(revoked, "keyCompromise", ca_id="cso-sub")
    crl_before = fresh_pki.crls.generate("cso-sub")
    before = _state(fresh_pki)

    archive = tmp_path / "evpki-backup.tar.gz"
    report = create_backup(fresh_pki.settings, archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert report.tables["certificate"] == len(before["certificates"])  # type: ignore[arg-type]
    assert report.keys == len(list(fresh_pki.settings.keys_dir.iterdir())) > 0
    with tarfile.open(archive) as opened:
        manifest = json.loads(opened.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for name in manifest["files"]:
            if name.startswith("keys/"):
                assert b"ENCRYPTED PRIVATE KEY" in opened.extractfile(name).read()  # type: ignore[union-attr]
    assert manifest["alembic_revision"] == report.revision and manifest["database"] == report.database

    home, url = target
    restored_report = restore_backup(make_settings(home, url), archive)
    assert restored_report.audit_records == len(before["audit"])  # type: ignore[arg-type]
    restored = PKI.open(make_settings(home, url), clock=fresh_pki.clock)
    try:
        assert _state(restored) == before
        assert restored.audit.verify().ok
        assert restored.certificates.get(kept, "cso-sub").status == "valid"
        assert restored.certificates.get(revoked, "cso-sub").status == "revoked"
        assert restored.crls.latest("cso-sub").number == crl_before.number
        # the restored keys sign: a new certificate, a new CRL with the next number, audit still verifies
        new_serial = _issue(restored)
        assert restored.certificates.get(new_serial, "cso-sub").status == "valid"
        assert restored.crls.generate("cso-sub").number == crl_before.number + 1
        assert restored.audit.verify().ok
    finally:
        restored.close()


def test_restore_refuses_a_non_empty_target_unless_forced(fresh_pki: PKI, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    create_backup(fresh_pki.settings, archive)
    _issue(fresh_pki)  # the live PKI moves on after the backup
    with pytest.raises(Conflict):
        restore_backup(fresh_pki.settings, archive)
    report = restore_backup(fresh_pki.settings, archive, force=True)
    assert report.audit_records == fresh_pki.audit.count()
    assert fresh_pki.audit.verify().ok
    _issue(fresh_pki)  # ids and sequences continue after the restored rows
    assert fresh_pki.audit.verify().ok


def test_a_tampered_archive_is_refused_before_anything_changes(
    fresh_pki: PKI, target: tuple[Path, str], tmp_path: Path
) -> None:
    archive = tmp_path / "backup.tar.gz"
    create_backup(fresh_pki.settings, archive)
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w:gz") as sink:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "database/certificate.jsonl":
                data = data.replace(b'"valid"', b'"revoked"', 1)
            member.size = len(data)
            sink.addfile(member, io.BytesIO(data))
    home, url = target
    with pytest.raises(IntegrityError, match="SHA-256"):
        restore_backup(make_settings(home, url), tampered)
    assert not (home / "keys").exists() or not any((home / "keys").iterdir())


def test_a_restored_backup_keeps_time_zone_aware_timestamps(
    fresh_pki: PKI, target: tuple[Path, str], tmp_path: Path
) -> None:
    archive = tmp_path / "backup.tar.gz"
    create_backup(fresh_pki.settings, archive, now=FRESH_EPOCH)
    home, url = target
    restore_backup(make_settings(home, url), archive)
    restored = PKI.open(make_settings(home, url), clock=fresh_pki.clock)
    try:
        ca = restored.cas.get("cso-sub")
        assert ca.not_after.tzinfo is not None and ca.not_after > FRESH_EPOCH + dt.timedelta(days=1)
    finally:
        restored.close()
