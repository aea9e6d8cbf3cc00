"""``make run``: initialise a demo PKI in ./evpki-data (when needed) and print its inventory.

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
from pki.errors import EvpkiError
from pki.store.repository import CertificateFilter

__all__ = ["main"]

_DEMO_ORG = "Demo CSO"


def _passphrase_file(home: Path, console: Console) -> Path:
    path = home / "passphrase"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        console.print(
            f"[yellow]Generated a demo key passphrase in {path} (mode 0600).[/yellow] "
            "Keep it safe: without it the CA keys cannot be used."
        )
    return path


def main() -> int:
    console = Console()
    settings = Settings()
    env = {}
    if settings.key_passphrase is None and settings.key_passphrase_file is None:
        passphrase_file = _passphrase_file(settings.home, console)
        settings = Settings(key_passphrase_file=passphrase_file)
        env["EVPKI_KEY_PASSPHRASE_FILE"] = str(passphrase_file)
    try:
        pki = PKI.open(settings)
        report = pki.init(organization=None if pki.organization() else _DEMO_ORG, actor="demo")
        cas = pki.list_cas()
        leaves = [v for v in pki.certificates(CertificateFilter(limit=100_000)) if v.label]
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
    console.print(
        "\nTry:\n"
        f"  {prefix}.venv/bin/evpki ca list\n"
        "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout station.key "
        f"-subj '/O={report.organization}/CN=SN-0001' -out station.csr\n"
        "  .venv/bin/evpki cert issue --profile station --csr station.csr --station-id CP-0001 "
        "--station-serial SN-0001 --out station-chain.pem\n"
        "  .venv/bin/evpki --help",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
