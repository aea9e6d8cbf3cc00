"""Full and delta CRLs checked by OpenSSL: signatures, extensions, reasons, and delta-aware verification.

OpenSSL is the second validator (STYLE.md): ``openssl crl`` parses and verifies what
``cryptography`` built, and ``openssl verify -crl_check -use_deltas`` combines a full CRL with
its delta exactly as a relying party does (RFC 5280 §5.2.4, §6.3.3).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from pki import PKI, RequestIdentity
from pki.core.clock import FixedClock
from pki.runtime.views import CertificateView, pem
from tests.conftest import TEST_PASSPHRASE, make_csr, requires_openssl, run_openssl

pytestmark = [pytest.mark.interop, requires_openssl]

CA = "cso-sub"
PUBLIC_URL = "http://127.0.0.1:8080"


def _issue(pki: PKI) -> CertificateView:
    station_id = f"CPD{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id)
    ).certificate


def _advance(pki: PKI, delta: dt.timedelta) -> None:
    clock = pki.clock
    assert isinstance(clock, FixedClock)
    clock.advance(delta)


def _chain(pki: PKI, directory: Path) -> Path:
    path = directory / "chain.pem"
    path.write_text("".join(pem(c) for c in pki.cas.chain(CA)))
    return path


def _ok(result: object) -> str:
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined]


def _text(path: Path) -> str:
    return _ok(run_openssl("crl", "-in", str(path), "-inform", "DER", "-noout", "-text"))


def _verify_crl(path: Path, chain: Path) -> None:
    result = run_openssl("crl", "-in", str(path), "-inform", "DER", "-CAfile", str(chain), "-verify", "-noout")
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stdout + result.stderr


@pytest.fixture
def published(fresh_pki: PKI, tmp_path: Path) -> tuple[PKI, dict[str, CertificateView], Path, Path, Path]:
    """A base full CRL, then a revocation, a hold and a release after it; the delta states those three."""
    before, revoked, held, released = (_issue(fresh_pki) for _ in range(4))
    fresh_pki.revocation.revoke(before.serial, "keyCompromise", ca_id=CA)
    fresh_pki.revocation.revoke(released.serial, "certificateHold", ca_id=CA)
    _advance(fresh_pki, dt.timedelta(hours=1))
    full = fresh_pki.crls.generate(CA)
    _advance(fresh_pki, dt.timedelta(hours=1))
    fresh_pki.revocation.revoke(revoked.serial, "keyCompromise", ca_id=CA, publish_crls=False)
    fresh_pki.revocation.revoke(held.serial, "certificateHold", ca_id=CA, publish_crls=False)
    fresh_pki.revocation.release_hold(released.serial, ca_id=CA, publish_crls=False)
    delta = fresh_pki.crls.generate(CA, delta=True)
    assert delta.base_number == full.number
    full_path, delta_path = tmp_path / "full.der", tmp_path / "delta.der"
    full_path.write_bytes(full.der)
    delta_path.write_bytes(delta.der)
    certificates = {"before": before, "revoked": revoked, "held": held, "released": released}
    return fresh_pki, certificates, _chain(fresh_pki, tmp_path), full_path, delta_path


def test_openssl_verifies_the_delta_crl_signature(published: tuple[PKI, dict, Path, Path, Path]) -> None:
    _, _, chain, full_path, delta_path = published
    _verify_crl(delta_path, chain)
    _verify_crl(full_path, chain)


def test_openssl_shows_the_delta_crl_indicator_with_the_base_number(
    published: tuple[PKI, dict, Path, Path, Path],
) -> None:
    pki, _, _, _, delta_path = published
    text = _text(delta_path)
    assert "X509v3 Delta CRL Indicator: critical" in text
    base = pki.crls.latest(CA).number
    assert f"Delta CRL Indicator: critical\n                {base}" in text
    assert "Freshest CRL" not in text  # RFC 5280 §5.2.6: only complete CRLs carry it


def test_openssl_shows_the_freshest_crl_of_the_full_crl(published: tuple[PKI, dict, Path, Path, Path]) -> None:
    _, _, _, full_path, _ = published
    text = _text(full_path)
    assert "X509v3 Freshest CRL:" in text
    assert f"URI:{PUBLIC_URL}/crl/{CA}-delta.crl" in text
    assert "X509v3 Freshest CRL: critical" not in text


def test_openssl_lists_the_delta_entries_with_their_reasons(published: tuple[PKI, dict, Path, Path, Path]) -> None:
    _, certificates, _, _, delta_path = published
    text = _text(delta_path)
    blocks = {block.split("\n", 1)[0].strip(): block for block in text.split("Serial Number: ")[1:]}
    assert set(blocks) == {certificates[name].serial for name in ("revoked", "held", "released")}
    assert "Key Compromise" in blocks[certificates["revoked"].serial]
    assert "Certificate Hold" in blocks[certificates["held"].serial]
    assert "Remove From CRL" in blocks[certificates["released"].serial]


def _verify_with_deltas(pki: PKI, certificate: CertificateView, directory: Path, crls: list[Path]) -> str:
    leaf = directory / f"{certificate.serial}.pem"
    leaf.write_text(certificate.certificate_pem)
    chain = pki.cas.chain(CA)
    root, sub = directory / "root.pem", directory / "sub.pem"
    root.write_text(pem(chain[-1]))
    sub.write_text(pem(chain[0]))
    pems = []
    for path in crls:
        pems.append(_ok(run_openssl("crl", "-in", str(path), "-inform", "DER", "-outform", "PEM")))
    crl_file = directory / "crls.pem"
    crl_file.write_text("".join(pems))
    # Without -extended_crl, OpenSSL 3 takes the delta (the newer CRL) for the complete CRL and
    # never reads the full one: its crl_score skips deltas only with extended CRL support (README).
    result = run_openssl(
        "verify",
        "-crl_check",
        "-extended_crl",
        "-use_deltas",
        "-attime",
        str(int(pki.clock.now().timestamp())),
        "-CAfile",
        str(root),
        "-untrusted",
        str(sub),
        "-CRLfile",
        str(crl_file),
        str(leaf),
    )
    return result.stdout + result.stderr


def test_openssl_combines_full_and_delta_crl(published: tuple[PKI, dict, Path, Path, Path], tmp_path: Path) -> None:
    pki, certificates, _, full_path, delta_path = published
    both = [full_path, delta_path]
    # Revoked after the base: only the delta knows, and openssl applies it.
    assert "certificate revoked" in _verify_with_deltas(pki, certificates["revoked"], tmp_path, both)
    assert ": OK" in _verify_with_deltas(pki, certificates["revoked"], tmp_path, [full_path])
    # Released after the base: the full CRL still says hold, the delta removes it.
    assert ": OK" in _verify_with_deltas(pki, certificates["released"], tmp_path, both)
    assert "certificate revoked" in _verify_with_deltas(pki, certificates["before"], tmp_path, both)


README = Path(__file__).resolve().parents[2] / "README.md"
README_FLAGS = ("-crl_check", "-extended_crl", "-use_deltas")


def _verify_as_documented(
    pki: PKI, certificate: CertificateView, directory: Path, crls: list[Path], flags: tuple[str, ...] = README_FLAGS
) -> str:
    """The README's line: the DER files as served, each with its own -CRLfile."""
    leaf, root, sub = directory / "station.pem", directory / "cso-root.pem", directory / "cso-sub.pem"
    leaf.write_text(certificate.certificate_pem)
    chain = pki.cas.chain(CA)
    root.write_text(pem(chain[-1]))
    sub.write_text(pem(chain[0]))
    crl_args = [arg for path in crls for arg in ("-CRLfile", str(path))]
    attime = ("-attime", str(int(pki.clock.now().timestamp())))
    result = run_openssl("verify", *flags, *attime, "-CAfile", str(root), "-untrusted", str(sub), *crl_args, str(leaf))
    return result.stdout + result.stderr


def test_the_documented_command_rejects_what_only_the_full_crl_lists(fresh_pki: PKI, tmp_path: Path) -> None:
    """A certificate revoked before the base, then a newer delta that (rightly) does not repeat it."""
    assert "openssl verify " + " ".join(README_FLAGS) in README.read_text()
    pki = fresh_pki
    revoked, after_base = _issue(pki), _issue(pki)
    pki.revocation.revoke(revoked.serial, "keyCompromise", ca_id=CA)
    _advance(pki, dt.timedelta(hours=1))
    full = pki.crls.generate(CA)
    _advance(pki, dt.timedelta(hours=1))
    empty_delta = pki.crls.generate(CA, delta=True)
    assert empty_delta.base_number == full.number
    full_path, delta_path = tmp_path / "cso-sub.crl", tmp_path / "cso-sub-delta.crl"
    full_path.write_bytes(full.der)
    delta_path.write_bytes(empty_delta.der)
    both = [full_path, delta_path]

    assert "certificate revoked" in _verify_as_documented(pki, revoked, tmp_path, both)
    # What the README warns about: without -extended_crl the delta passes for the complete CRL.
    for flags in (("-crl_check",), ("-crl_check", "-use_deltas")):
        assert ": OK" in _verify_as_documented(pki, revoked, tmp_path, both, flags), flags

    # And -extended_crl without -use_deltas never reads the delta: a later revocation goes unseen.
    _advance(pki, dt.timedelta(hours=1))
    pki.revocation.revoke(after_base.serial, "keyCompromise", ca_id=CA, publish_crls=False)
    delta_path.write_bytes(pki.crls.generate(CA, delta=True).der)
    assert "certificate revoked" in _verify_as_documented(pki, after_base, tmp_path, both)
    assert ": OK" in _verify_as_documented(pki, after_base, tmp_path, both, ("-crl_check", "-extended_crl"))


def test_cli_shows_and_generates_delta_crls_openssl_verifies(fresh_pki: PKI, tmp_path: Path) -> None:
    env = {
        "EVPKI_HOME": str(fresh_pki.settings.home),
        "EVPKI_DATABASE_URL": fresh_pki.settings.resolved_database_url,
        "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE,
    }
    runner = CliRunner()
    chain = _chain(fresh_pki, tmp_path)
    shown, generated = tmp_path / "shown.der", tmp_path / "generated.der"

    result = runner.invoke(app, ["crl", "show", "--ca", CA, "--delta", "--format", "der", "--out", str(shown)], env=env)
    assert result.exit_code == 0, result.output
    _verify_crl(shown, chain)
    assert "Delta CRL Indicator" in _text(shown)
    again = runner.invoke(app, ["crl", "show", "--ca", CA, "--delta", "--format", "der"], env=env)
    assert again.exit_code == 0, again.output
    assert again.stdout_bytes == shown.read_bytes()  # current and unchanged: not made again

    args = ["crl", "generate", "--ca", CA, "--delta", "--format", "der", "--out", str(generated)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    _verify_crl(generated, chain)
    assert generated.read_bytes() != shown.read_bytes()

    pem_out = runner.invoke(app, ["crl", "show", "--ca", CA], env=env)
    assert pem_out.exit_code == 0, pem_out.output
    assert pem_out.stdout.startswith("-----BEGIN X509 CRL-----")

    missing = runner.invoke(app, ["crl", "show", "--ca", "no-such-ca"], env=env)
    assert missing.exit_code == 5
    assert "no-such-ca" in missing.stderr
