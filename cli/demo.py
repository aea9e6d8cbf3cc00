"""``make run``: initialise a demo PKI in ./evpki-data (when needed), print its inventory and serve it.

The server listens on 127.0.0.1:8080 (``EVPKI_DEMO_PORT`` to change) until Ctrl-C. A demo
``admin`` API token is created once and kept in ``evpki-data/demo-admin.token`` (mode 0600).

The demo keeps its key passphrase in ``evpki-data/passphrase`` (mode 0600) so it runs with no
set-up; that is a demo convenience only -- in production the passphrase comes from a secret
store through ``EVPKI_KEY_PASSPHRASE`` or a passphrase file kept apart from the keys.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pki import PKI, Settings
from pki.ca import CertificateFilter
from pki.core import EvpkiError, write_private

__all__ = ["main"]

_DEMO_ORG = "Demo CSO"


def _passphrase_file(home: Path, console: Console) -> Path:
    path = home / "passphrase"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        write_private(path, (secrets.token_urlsafe(32) + "\n").encode())
        console.print(
            f"[yellow]Generated a demo key passphrase in {path} (mode 0600).[/yellow] "
            "Keep it safe: without it the CA keys cannot be used."
        )
    return path


def _demo_token(pki: PKI, home: Path, console: Console) -> str:
    """The demo admin token: reused while it still authenticates, else a new one (kept 0600)."""
    path = home / "demo-admin.token"
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        try:
            pki.tokens.authenticate(token)
            return token
        except EvpkiError:
            path.unlink()
    names = {view.name for view in pki.tokens.list()}
    name = next(f"demo-admin-{n}" for n in range(1, 10_000) if f"demo-admin-{n}" not in names)
    _, token = pki.tokens.create(name=name, role="admin", actor="demo")
    write_private(path, (token + "\n").encode())
    console.print(f"[yellow]Created the demo admin API token {name!r} in {path} (mode 0600).[/yellow]")
    return token


def main(argv: list[str] | None = None) -> int:
    serve = "--no-serve" not in (argv if argv is not None else sys.argv[1:])
    console = Console()
    settings = Settings()
    env = {}
    if settings.key_passphrase is None and settings.key_passphrase_file is None:
        passphrase_file = _passphrase_file(settings.home, console)
        settings = Settings(key_passphrase_file=passphrase_file)
        env["EVPKI_KEY_PASSPHRASE_FILE"] = str(passphrase_file)
    try:
        pki = PKI.open(settings)
        report = pki.cas.init(organization=None if pki.cas.organization() else _DEMO_ORG, actor="demo")
        cas = pki.cas.list()
        leaves = [v for v in pki.certificates.list(CertificateFilter(limit=100_000)) if v.label]
        _demo_token(pki, settings.home, console)
        pki.close()
    except EvpkiError as error:
        console.print(f"[red]error:[/red] {error.message}")
        return 1
    console.print(f"evpki demo PKI in [bold]{settings.home.resolve()}[/bold] for [bold]{report.organization}[/bold]")
    if report.created:
        console.print(f"created: {', '.join(report.created)}")
    table = Table("CA", "parent", "standard", "subject", "not after", "issues", title="Certificate authorities")
    for ca in cas:
        table.add_row(
            ca.id, ca.parent_id or "-", ca.standard, ca.subject, ca.not_after.date().isoformat(), ", ".join(ca.issues)
        )
    console.print(table)
    table = Table("certificate", "issuer", "serial", "subject", "not after", title="Certificates evpki holds keys for")
    for leaf in leaves:
        table.add_row(leaf.label, leaf.issuer_id, leaf.serial, leaf.subject, leaf.not_after.date().isoformat())
    console.print(table)
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    prefix = f"export {exports}; " if exports else ""
    port = int(os.environ.get("EVPKI_DEMO_PORT", "8080"))
    base = f"http://127.0.0.1:{port}"
    console.print(
        "\nTry:\n"
        f"  {prefix}.venv/bin/evpki ca list\n"
        "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout station.key "
        f"-subj '/O={report.organization}/CN=SN-0001' -out station.csr\n"
        "  .venv/bin/evpki cert issue --profile station --csr station.csr --station-id CP-0001 "
        "--station-serial SN-0001 --out station-chain.pem\n"
        "  # ISO 15118 Plug & Charge: a test car gets its contract certificate end to end\n"
        "  .venv/bin/evpki ev create-vehicle --pcid WMIDEMO0000000001 --out-dir car\n"
        "  .venv/bin/evpki contract add --emaid DE-DMO-C00000000-1 --pcid WMIDEMO0000000001\n"
        "  .venv/bin/evpki ev simulate-install --oem-cert car/oem.pem --oem-key car/oem.key.pem --out-dir car\n"
        "  # OCPP: register a station and run the mTLS gateway stations connect to (wss://127.0.0.1:8443/CP-0001)\n"
        "  .venv/bin/evpki station add CP-0001 --serial SN-0001\n"
        "  .venv/bin/evpki bridge --port 8443 --basic-port 0\n"
        "  .venv/bin/evpki --help",
        highlight=False,
    )
    if not serve:
        return 0
    console.print(
        f"\n[bold]Serving on {base}[/bold] (Ctrl-C stops it)\n"
        f"  API docs:        {base}/docs   (OpenAPI: {base}/openapi.json)\n"
        f"  OCSP responder:  {base}/ocsp\n"
        f"  CRLs:            {base}/crl/<ca>.crl and {base}/crl/<ca>-delta.crl, e.g. {base}/crl/cso-sub.crl\n"
        f"  Roots:           {base}/api/v1/roots?use=V2GRootCertificate\n"
        f"  Admin token:     {settings.home / 'demo-admin.token'}\n"
        f'  e.g. curl -H "Authorization: Bearer $(cat {settings.home / "demo-admin.token"})" {base}/api/v1/cas',
        highlight=False,
    )
    os.environ.update(env)
    import uvicorn

    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="api.ocsp_protocol:OcspHttpToolsProtocol",
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
