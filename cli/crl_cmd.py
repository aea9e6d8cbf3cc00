"""``evpki crl generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cli.common import actor, guarded, open_pki, write_output
from pki.clock import parse_duration
from pki.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(help="Certificate revocation lists.", no_args_is_help=True)


@app.command("generate")
@guarded
def generate(
    ca: Annotated[str, typer.Option("--ca", help="CA id whose CRL to build, e.g. cso-sub.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="der or pem.")] = "pem",
    next_update: Annotated[
        str | None, typer.Option("--next-update", help="Validity of this CRL, e.g. 7d (default EVPKI_CRL_VALIDITY).")
    ] = None,
) -> None:
    """Build, sign and store the next full CRL of a CA (its CRL number always increases)."""
    if fmt not in ("der", "pem"):
        raise InvalidInput("--format must be der or pem")
    view = open_pki().generate_crl(ca, next_update=parse_duration(next_update) if next_update else None, actor=actor())
    if fmt == "der":
        write_output(view.der, out)
    else:
        crl = x509.load_der_x509_crl(view.der)
        write_output(crl.public_bytes(serialization.Encoding.PEM), out)
