"""``evpki trust sync`` end to end: the CLI, its OAuth2 client and a fake OPCP Root Certificate Pool
served over real HTTP on 127.0.0.1 (:mod:`tests.fake_rcp`), whose every answer is checked against the
published ``rcp.v1.json`` / ``accessToken.v1.json``. The roots are made with plain ``cryptography``.

Every failing sync must exit with its documented code, print one line, and change nothing: not a
trust store row, not an audit record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner, Result

from cli.main import app
from pki import PKI
from tests.conftest import TEST_PASSPHRASE, _copy_database, drop_database, make_settings
from tests.fake_rcp import FakeRcp, expired_at, fake_rcp, opcp_reference
from tests.foreign_roots import foreign_root, pem_of, sha256_of

if opcp_reference() is None:
    pytest.skip(
        "the OPCP reference (rcp.v1.json, accessToken.v1.json) is absent: ../shared/reference/opcp "
        "or EVPKI_OPCP_REFERENCE; the fake pool is checked against it",
        allow_module_level=True,
    )

runner = CliRunner()
V2G, MO, OEM = "V2GRootCertificate", "MORootCertificate", "OEMRootCertificate"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRcp]:
    with fake_rcp() as pool:
        yield pool


@pytest.fixture
def rcp(server: FakeRcp) -> Iterator[FakeRcp]:
    """The module's pool, emptied and well-behaved for each test; its answers must match the schemas."""
    server.roots.clear()
    server.listing_body = server.listing_status = server.token_status = None
    server.omit_length = False
    server.schema_errors.clear()
    server.requests.clear()
    yield server
    assert server.schema_errors == []


@pytest.fixture
def secret(rcp: FakeRcp, tmp_path: Path) -> Path:
    path = tmp_path / "rcp-secret"
    path.write_text(rcp.client_secret + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def store(env: tuple[Path, str]) -> Iterator[PKI]:
    """The same database the CLI writes, opened by the test to look at it."""
    home, url = env
    pki = PKI.open(make_settings(home, url))
    yield pki
    pki.close()


def _sync(rcp: FakeRcp, secret: Path, *extra: str) -> Result:
    args = ["trust", "sync", "--rcp", rcp.url, "--client-id", rcp.client_id, "--client-secret-file", str(secret)]
    return runner.invoke(app, [*args, *extra])


def _state(pki: PKI) -> tuple[list[dict[str, Any]], int]:
    return [view.as_dict() for view in pki.trust.list(include_retired=True)], pki.audit.count()


def _one_line_error(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.stderr


def _pool_of_three(rcp: FakeRcp) -> dict[str, dict[str, Any]]:
    return {
        kind: rcp.add(foreign_root(f"Pool {kind} Root").certificate, kind)
        for kind in ("V2G", "MO", "OEM")
    }  # fmt: skip


def test_the_first_sync_adds_the_pools_roots_audited_and_a_second_changes_nothing(
    rcp: FakeRcp, secret: Path, store: PKI
) -> None:
    entries = _pool_of_three(rcp)
    rcp.add(foreign_root("Provisioning environment root").certificate, "PE")
    before = store.audit.count()

    first = _sync(rcp, secret, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert {(c["use"], c["sha256"]) for c in report["added"]} == {
        (V2G, entries["V2G"]["fingerprint"]),
        (MO, entries["MO"]["fingerprint"]),
        (OEM, entries["OEM"]["fingerprint"]),
    }
    assert report["changed"] and report["retired"] == [] and report["refused"] == []
    assert [item["reason"] for item in report["ignored"]] == [
        "rootType 'PE' has no OCPP root use (V2G, MO and OEM have)"
    ]
    assert rcp.requests[:2] == ["POST /oauth/token", "GET /v1/root/rootCerts"]

    views = {view.use.value: view for view in store.trust.list()}
    assert all(view.source == "rcp" and view.origin == rcp.url for view in views.values())
    assert views[V2G].label == f"rcp:{entries['V2G']['rootCertificateId']}"
    assert store.audit.count() == before + 3
    added = store.audit.records(after=before, action="trust-add")
    assert {json.loads(record.details)["origin"] for record in added} == {rcp.url}
    assert any(root.subject.rfc4514_string() == views[V2G].subject for root in store.cas.roots(V2G))

    state = _state(store)
    second = _sync(rcp, secret)
    assert second.exit_code == 0, second.output
    assert "0 added, 0 retired, 3 unchanged, 0 refused, 0 held back" in second.stdout
    assert _state(store) == state  # no row and no audit record written


def test_a_root_the_pool_removes_is_retired_with_the_reason(rcp: FakeRcp, secret: Path, store: PKI) -> None:
    """The RCP deletes revoked and expired roots (OPCP 01_root-certificate-pool.md), through its admin API."""
    entries = _pool_of_three(rcp)
    assert _sync(rcp, secret).exit_code == 0
    admin = httpx.post(
        rcp.token_url,
        json={"client_id": rcp.client_id, "client_secret": rcp.admin_secret, "audience": rcp.url,
              "grant_type": "client_credentials"},
    ).json()["access_token"]  # fmt: skip
    revoked = entries["MO"]["rootCertificateId"]
    deleted = httpx.delete(f"{rcp.url}/v1/root/rootCerts/{revoked}", headers={"Authorization": f"Bearer {admin}"})
    assert deleted.status_code == 200
    assert (
        httpx.get(f"{rcp.url}/v1/root/rootCerts/{revoked}", headers={"Authorization": f"Bearer {admin}"}).status_code
        == 404
    )

    result = _sync(rcp, secret, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(c["sha256"], c["reason"]) for c in report["retired"]] == [
        (entries["MO"]["fingerprint"], "no longer listed by the pool")
    ]
    retired = store.trust.get(entries["MO"]["fingerprint"])
    assert retired.retired and retired.removed_reason == "no longer listed by the pool"
    assert [json.loads(record.details)["reason"] for record in store.audit.records(action="trust-remove")] == [
        "no longer listed by the pool"
    ]
    assert len(store.trust.list()) == 2


def test_an_entry_the_pool_lists_as_expired_is_refused_and_retired(rcp: FakeRcp, secret: Path, store: PKI) -> None:
    listed = rcp.add(foreign_root("Soon expired by the pool").certificate, "V2G")
    assert _sync(rcp, secret).exit_code == 0
    listed["validTo"] = expired_at()  # the pool's own status: its validTo has passed
    dead = foreign_root("Expired root", not_before=dt.datetime(2015, 1, 1, tzinfo=dt.UTC),
                        not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    rcp.add(dead.certificate, "OEM")

    result = _sync(rcp, secret, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [c["reason"] for c in report["retired"]] == [
        f"refused: the pool lists it as expired at {dt.datetime.fromisoformat(listed['validTo']).isoformat()} "
        "[rule trust.expired]"
    ]
    assert len(report["refused"]) == 2 and report["added"] == []
    assert "[rule trust.expired]" in report["refused"][1]["reason"]
    assert sum(line.startswith("warning: refused") for line in result.stderr.splitlines()) == 2
    assert store.trust.list() == []


def test_a_non_ca_certificate_is_skipped_with_a_warning_or_fails_a_strict_sync(
    rcp: FakeRcp, secret: Path, store: PKI
) -> None:
    good = rcp.add(foreign_root("Good pool root").certificate, "V2G")
    rcp.add(foreign_root("Not a CA", ca=False).certificate, "V2G")
    rcp.add(foreign_root("Weak key", key=ec.generate_private_key(ec.SECP192R1())).certificate, "MO")
    state = _state(store)

    strict = _sync(rcp, secret, "--strict")
    _one_line_error(strict, 4, "2 root(s) of the pool refused")
    assert "[rule trust.sync-refused]" in strict.stderr
    assert _state(store) == state

    result = _sync(rcp, secret)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: refused")]
    assert len(warnings) == 2 and "[rule trust.ca]" in warnings[0] and "[rule key." in warnings[1]
    assert "1 added, 0 retired, 0 unchanged, 2 refused" in result.stdout
    assert [view.sha256 for view in store.trust.list()] == [good["fingerprint"]]


def test_dry_run_prints_what_would_change_and_changes_nothing(rcp: FakeRcp, secret: Path, store: PKI) -> None:
    entries = _pool_of_three(rcp)
    state = _state(store)
    dry = _sync(rcp, secret, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "3 added, 0 retired, 0 unchanged, 0 refused, 0 held back (dry run: nothing was changed)" in dry.stdout
    assert "Pool V2G Root" in dry.stdout
    assert _state(store) == state

    assert _sync(rcp, secret).exit_code == 0
    rcp.delete(entries["OEM"]["rootCertificateId"])
    state = _state(store)
    dry = _sync(rcp, secret, "--dry-run", "--json")
    report = json.loads(dry.stdout)
    assert report["dryRun"] and [c["sha256"] for c in report["retired"]] == [entries["OEM"]["fingerprint"]]
    assert _state(store) == state


def test_roots_added_by_hand_are_never_retired_and_a_root_removed_by_hand_is_held_back(
    rcp: FakeRcp, secret: Path, store: PKI
) -> None:
    by_hand = foreign_root("Trusted by hand").certificate
    listed_too = foreign_root("By hand and in the pool").certificate
    store.trust.add(pem_of(by_hand), use=V2G, label="by-hand")
    store.trust.add(pem_of(listed_too), use=V2G, label="by-hand-listed")
    rcp.add(listed_too, "V2G")
    pulled = rcp.add(foreign_root("Pulled then removed by hand").certificate, "MO")

    first = json.loads(_sync(rcp, secret, "--json").stdout)
    assert [c["sha256"] for c in first["unchanged"]] == [sha256_of(listed_too)]
    assert [c["sha256"] for c in first["added"]] == [pulled["fingerprint"]]
    store.trust.remove(pulled["fingerprint"])  # the operator distrusts it; the pool still lists it
    rcp.roots.clear()

    result = _sync(rcp, secret, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["retired"] == []  # neither root added by hand goes
    assert {view.label for view in store.trust.list()} == {"by-hand", "by-hand-listed"}

    rcp.add(x509_of(store, pulled["fingerprint"]), "MO", rootCertificateId=pulled["rootCertificateId"])
    again = json.loads(_sync(rcp, secret, "--json").stdout)
    assert again["added"] == [] and len(again["heldBack"]) == 1
    assert "removed by hand" in again["heldBack"][0]["reason"]


def x509_of(pki: PKI, sha256: str):  # type: ignore[no-untyped-def]
    return pki.trust.get(sha256).certificate


# -- failures: a documented exit code, one line, nothing changed ---------------------------------


@dataclass
class Synced:
    """One store shared by the failure tests: synced once, then the pool dropped a root and gained one,
    so a sync that went through would retire and add. Each failure must leave it exactly as it is."""

    pki: PKI
    home: Path
    url: str
    secret: Path
    roots: list[dict[str, Any]]


@pytest.fixture(scope="module")
def synced(
    server: FakeRcp, tmp_path_factory: pytest.TempPathFactory, _fresh_template: tuple[Path, str | None]
) -> Iterator[Synced]:
    home = tmp_path_factory.mktemp("trust-sync-failures")
    url, name = _copy_database(_fresh_template, home)
    secret = home / "rcp-secret"
    secret.write_text(server.client_secret)
    secret.chmod(0o600)
    pki = PKI.open(make_settings(home, url))
    server.roots.clear()
    entries = _pool_of_three(server)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _environment(home, url).items():
            mp.setenv(key, value)
        assert _sync(server, secret).exit_code == 0
    server.delete(entries["V2G"]["rootCertificateId"])
    server.add(foreign_root("New in the pool").certificate, "MO")
    yield Synced(pki, home, url, secret, [dict(entry) for entry in server.roots])
    pki.close()
    drop_database(name)


@pytest.fixture
def failing(synced: Synced, rcp: FakeRcp, monkeypatch: pytest.MonkeyPatch) -> Iterator[Synced]:
    """The shared store in EVPKI_* variables and the pool as it was after the change; nothing may change."""
    for key, value in _environment(synced.home, synced.url).items():
        monkeypatch.setenv(key, value)
    rcp.roots[:] = [dict(entry) for entry in synced.roots]
    state = _state(synced.pki)
    yield synced
    assert _state(synced.pki) == state


def _environment(home: Path, url: str) -> dict[str, str]:
    return {"EVPKI_HOME": str(home), "EVPKI_DATABASE_URL": url, "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE}


def test_refused_client_credentials_exit_10(rcp: FakeRcp, failing: Synced, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret")
    wrong.chmod(0o600)
    _one_line_error(_sync(rcp, wrong), 10, "the token endpoint refused the client credentials: HTTP 401")
    rcp.token_status = 400
    _one_line_error(_sync(rcp, failing.secret), 10, "HTTP 400 (access_denied: refused by the test)")


@pytest.mark.parametrize(
    ("setup", "code", "text"),
    [
        pytest.param({"listing_status": 401}, 10, "the Root Certificate Pool refused the access token: HTTP 401",
                     id="token refused by the pool"),
        pytest.param({"listing_status": 503}, 7, "the Root Certificate Pool answered HTTP 503", id="pool down"),
        pytest.param({"listing_status": 302}, 7, "redirect", id="redirect not followed"),
        pytest.param({"listing_body": b'{"RootCertificateCollection": '}, 3, "is not JSON", id="malformed JSON"),
        pytest.param({"listing_body": b"[1, 2]"}, 3, "not a JSON object", id="wrong shape"),
        pytest.param({"listing_body": b" " * (4 << 20) + b"{}"}, 3, "at most 4194304 are read", id="oversized"),
        pytest.param({"listing_body": b" " * (4 << 20) + b"{}", "omit_length": True}, 3,
                     "answered more than 4194304 bytes", id="oversized without Content-Length"),
    ],
)  # fmt: skip
def test_a_pool_that_misbehaves_changes_nothing(
    rcp: FakeRcp, failing: Synced, setup: dict[str, Any], code: int, text: str
) -> None:
    for name, value in setup.items():
        setattr(rcp, name, value)
    _one_line_error(_sync(rcp, failing.secret), code, text)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        pytest.param({"caCertificate": "MIIB" + "A" * 40}, "is not a Base64 DER X.509 certificate", id="not DER"),
        pytest.param({"fingerprint": "00" * 32}, "claims fingerprint", id="fingerprint of another certificate"),
        pytest.param({"rootType": None}, "has no rootType", id="no rootType"),
    ],
)
def test_an_unreadable_entry_fails_the_whole_sync(
    rcp: FakeRcp, failing: Synced, change: dict[str, Any], text: str
) -> None:
    """A corrupt answer does not say what the pool holds: nothing is added and, above all, nothing retired."""
    broken = rcp.add(foreign_root("Broken entry").certificate, "MO")
    broken.update(change)
    result = _sync(rcp, failing.secret)
    rcp.schema_errors.clear()  # a rootType of null breaks the schema on purpose
    _one_line_error(result, 3, text)
    assert "nothing was changed" in result.stderr


def test_an_unreachable_pool_exits_7(failing: Synced) -> None:
    with fake_rcp() as gone:
        url = gone.url
    result = runner.invoke(
        app, ["trust", "sync", "--rcp", url, "--client-id", "x", "--client-secret-file", str(failing.secret)]
    )
    _one_line_error(result, 7, "cannot reach the Root Certificate Pool")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--rcp", "http://rcp.example.com"], "plain http is refused except to a loopback address"),
        (["--rcp", "ftp://rcp.example.com"], "an https:// URL"),
        (["--rcp", "https://user:pw@rcp.example.com"], "credentials belong in --client-secret-file"),
    ],
)
def test_urls_that_would_leak_the_secret_are_refused_before_any_request(
    secret: Path, args: list[str], text: str
) -> None:
    """Refused before the store is opened or anything is sent."""
    result = runner.invoke(app, ["trust", "sync", *args, "--client-id", "x", "--client-secret-file", str(secret)])
    _one_line_error(result, 3, text)


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "loose-secret"
    loose.write_text("secret")
    loose.chmod(0o644)
    result = runner.invoke(
        app,
        ["trust", "sync", "--rcp", "https://rcp.example.com", "--client-id", "x", "--client-secret-file", str(loose)],
    )
    _one_line_error(result, 3, "readable by others; chmod 600 it")


def test_trust_sync_help_names_the_exit_codes() -> None:
    result = runner.invoke(app, ["trust", "sync", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--client-secret-file" in result.stdout and "--dry-run" in result.stdout
    assert "10 the credentials or the token were refused" in result.stdout
