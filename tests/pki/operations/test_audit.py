"""The hash-chained audit log: every state change appends one record, and tampering is detected.

Tampering is done with plain SQL on the PKI's own engine, as an attacker with database access
would; each tampering test restores the row afterwards so the module's PKI stays intact.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from pki import PKI, RequestIdentity
from tests.conftest import make_csr
from tests.pki.builders import open_pki


@pytest.fixture(scope="module")
def apki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    with open_pki(tmp_path_factory.mktemp("audit")) as instance:
        yield instance


def _last_record(pki: PKI) -> dict[str, Any]:
    with pki._ctx.database.engine.connect() as connection:
        row = connection.execute(
            text("SELECT seq, actor, action, ca_id, serial, details FROM audit_record ORDER BY seq DESC LIMIT 1")
        ).one()
    return dict(row._mapping)


def _record(pki: PKI, seq: int) -> dict[str, Any]:
    with pki._ctx.database.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM audit_record WHERE seq = :seq"), {"seq": seq}).one()
    return dict(row._mapping)


def _issue(pki: PKI, station_id: str | None = None) -> str:
    station_id = station_id or f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id), actor="alice"
    ).certificate.serial


def test_issue_appends_one_record(apki: PKI) -> None:
    before = apki.audit.count()
    serial = _issue(apki)
    record = _last_record(apki)
    assert apki.audit.count() == before + 1
    assert (record["action"], record["actor"], record["ca_id"], record["serial"]) == (
        "issue",
        "alice",
        "cso-sub",
        serial,
    )
    assert json.loads(record["details"])["profile"] == "station"


def test_renew_appends_one_record_naming_the_replaced_certificate(apki: PKI) -> None:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    old = _issue(apki, station_id)
    before = apki.audit.count()
    csr, _ = make_csr(station_id)
    new = apki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id)).certificate.serial
    record = _last_record(apki)
    assert apki.audit.count() == before + 1
    assert (record["action"], record["serial"]) == ("renew", new)
    assert json.loads(record["details"])["supersedes"] == [f"cso-sub/{old}"]


def test_revoke_appends_one_record_with_the_reason(apki: PKI) -> None:
    serial = _issue(apki)
    before = apki.audit.count()
    # The CRLs published after the revocation add records of their own (tested with the CRLs).
    apki.revocation.revoke(serial, "key-compromise", ca_id="cso-sub", actor="bob", publish_crls=False)
    record = _last_record(apki)
    assert apki.audit.count() == before + 1
    assert (record["action"], record["actor"], record["serial"]) == ("revoke", "bob", serial)
    assert json.loads(record["details"])["reason"] == "keyCompromise"


def test_release_hold_appends_one_record(apki: PKI) -> None:
    serial = _issue(apki)
    apki.revocation.revoke(serial, "certificateHold", ca_id="cso-sub")
    before = apki.audit.count()
    apki.revocation.release_hold(serial, ca_id="cso-sub", publish_crls=False)
    assert apki.audit.count() == before + 1
    assert (_last_record(apki)["action"], _last_record(apki)["serial"]) == ("release-hold", serial)


def test_crl_generation_appends_one_record(apki: PKI) -> None:
    before = apki.audit.count()
    crl = apki.crls.generate("cso-sub")
    record = _last_record(apki)
    assert apki.audit.count() == before + 1
    assert (record["action"], record["ca_id"]) == ("crl", "cso-sub")
    assert json.loads(record["details"])["number"] == crl.number


def test_init_recorded_every_ca_and_leaf(apki: PKI) -> None:
    with apki._ctx.database.engine.connect() as connection:
        actions = [
            row[0] for row in connection.execute(text("SELECT action FROM audit_record WHERE seq <= 17 ORDER BY seq"))
        ]
    assert actions == ["ca-create"] * 14 + ["issue"] * 3


def test_untouched_log_verifies(apki: PKI) -> None:
    _issue(apki)
    result = apki.audit.verify()
    assert result.ok
    assert result.records == apki.audit.count()
    assert result.first_broken_seq is None


@pytest.mark.parametrize(
    ("column", "value"),
    [("details", '{"profile":"station","note":"forged"}'), ("actor", "mallory")],
)
def test_altering_a_row_is_detected_at_that_row(apki: PKI, column: str, value: str) -> None:
    _issue(apki)
    _issue(apki)
    seq = apki.audit.count() - 1  # not the last row: the damage must not hide behind the head check
    original = _record(apki, seq)[column]
    engine = apki._ctx.database.engine
    statement = text(f"UPDATE audit_record SET {column} = :value WHERE seq = :seq")  # column is one of two literals
    with engine.begin() as connection:
        connection.execute(statement, {"value": value, "seq": seq})
    try:
        result = apki.audit.verify()
        assert not result.ok
        assert result.first_broken_seq == seq
    finally:
        with engine.begin() as connection:
            connection.execute(statement, {"value": original, "seq": seq})
    assert apki.audit.verify().ok


def _delete_and_restore(pki: PKI, seq: int) -> tuple[bool, int | None]:
    row = _record(pki, seq)
    engine = pki._ctx.database.engine
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_record WHERE seq = :seq"), {"seq": seq})
    try:
        result = pki.audit.verify()
        return result.ok, result.first_broken_seq
    finally:
        columns = ", ".join(row)
        placeholders = ", ".join(f":{name}" for name in row)
        with engine.begin() as connection:
            connection.execute(text(f"INSERT INTO audit_record ({columns}) VALUES ({placeholders})"), row)


def test_deleting_a_row_in_the_middle_is_detected(apki: PKI) -> None:
    _issue(apki)
    _issue(apki)
    seq = apki.audit.count() - 1
    assert _delete_and_restore(apki, seq) == (False, seq)
    assert apki.audit.verify().ok


def test_deleting_the_last_row_is_detected(apki: PKI) -> None:
    _issue(apki)
    seq = apki.audit.count()
    assert _delete_and_restore(apki, seq) == (False, seq)
    assert apki.audit.verify().ok
