"""The ``evpki`` Typer application: one sub-app per noun, and the process entry point."""

from __future__ import annotations

import os
import sys

import typer

from cli import (
    audit_cmd,
    backup_cmd,
    bridge_cmd,
    ca_cmd,
    cert_cmd,
    contract_cmd,
    crl_cmd,
    est_cmd,
    ev_cmd,
    exi_cmd,
    firmware_cmd,
    ocsp_cmd,
    opcp_cmd,
    serve_cmd,
    station_cmd,
    token_cmd,
    trust_cmd,
)
from cli.common import EXIT_CODES_HELP

__all__ = ["app", "main"]

app = typer.Typer(
    name="evpki",
    help=(
        "evpki: the certificate authority for EV charging (OCPP security profile 3, ISO 15118 Plug & Charge).\n\n"
        "Settings come from EVPKI_* variables: EVPKI_HOME (data dir, default ./evpki-data), EVPKI_DATABASE_URL "
        "(PostgreSQL), EVPKI_KEY_PASSPHRASE or EVPKI_KEY_PASSPHRASE_FILE (CA key encryption), EVPKI_PUBLIC_URL "
        "(OCSP/CRL base URL in certificates).\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init", epilog=EXIT_CODES_HELP)(ca_cmd.init)
app.add_typer(ca_cmd.app, name="ca")
app.add_typer(cert_cmd.app, name="cert")
app.add_typer(crl_cmd.app, name="crl")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(firmware_cmd.app, name="firmware")
app.add_typer(ocsp_cmd.app, name="ocsp")
app.add_typer(token_cmd.app, name="token")
app.add_typer(trust_cmd.app, name="trust")
app.add_typer(opcp_cmd.app, name="opcp")
app.add_typer(exi_cmd.app, name="exi")
app.add_typer(ev_cmd.app, name="ev")
app.add_typer(contract_cmd.app, name="contract")
app.add_typer(est_cmd.app, name="est")
app.command("serve", epilog=EXIT_CODES_HELP)(serve_cmd.serve)
app.add_typer(station_cmd.app, name="station")
app.command("bridge", epilog=EXIT_CODES_HELP)(bridge_cmd.bridge)
app.command("backup", epilog=EXIT_CODES_HELP)(backup_cmd.backup)
app.command("restore", epilog=EXIT_CODES_HELP)(backup_cmd.restore)


def main() -> None:
    """Run the CLI; an unexpected failure is one line on stderr and exit 1, never a traceback."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as error:
        if os.environ.get("EVPKI_DEBUG"):
            raise
        sys.stderr.write(f"error: internal error ({type(error).__name__}: {error}); set EVPKI_DEBUG=1 for details\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
