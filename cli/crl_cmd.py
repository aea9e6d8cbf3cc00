"""``evpki crl generate|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cli.common import actor, check_output, guarded, open_pki, write_output
from pki.core import InvalidInput, parse_duration
from pki.runtime import CrlView

__all__ = ["app"]

app = typer.Typer(help="Certificate revocation lists.", no_args_is_help=True)

CaOpt = Annotated[str, typer.Option("--ca", help="CA id whose CRL to build, e.g. cso-sub.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")]
FormatOpt = Annotated[str, typer.Option("--format", help="der or pem.")]
DeltaOpt = Annotated[
    bool,
    typer.Option("--delta", help="A delta CRL (RFC 5280 §5.2.4): the changes since the newest full CRL."),
]


def _write(view: CrlView, fmt: str, out: Path | None) -> None:
    if fmt == "der":
        write_output(view.der, out)
    else:
        crl = x509.load_der_x509_crl(view.der)
        write_output(crl.public_bytes(serialization.Encoding.PEM), out)


def _check_format(fmt: str) -> None:
    if fmt not in ("der", "pem"):
        raise InvalidInput("--format must be der or pem")


@app.command("generate")
@guarded
def generate(
    ca: CaOpt,
    out: OutOpt = None,
    fmt: FormatOpt = "pem",
    next_update: Annotated[
        str | None,
        typer.Option(
            "--next-update",
            help="Validity of this CRL, e.g. 7d (default EVPKI_CRL_VALIDITY, EVPKI_DELTA_CRL_VALIDITY with --delta).",
        ),
    ] = None,
    delta: DeltaOpt = False,
) -> None:
    """Build, sign and store the next full (or delta) CRL of a CA (its CRL number always increases)."""
    _check_format(fmt)
    check_output(out)
    view = open_pki().crls.generate(
        ca, next_update=parse_duration(next_update) if next_update else None, actor=actor(), delta=delta
    )
    _write(view, fmt, out)


@app.command("show")
@guarded
def show(
    ca: Annotated[str, typer.Option("--ca", help="CA id whose CRL to show, e.g. cso-sub.")],
    delta: DeltaOpt = False,
    fmt: FormatOpt = "pem",
    out: OutOpt = None,
) -> None:
    """Print the CA's current CRL, as it is published; a stale one is regenerated first."""
    _check_format(fmt)
    check_output(out)  # a stale CRL is regenerated (and audited) on the way
    _write(open_pki().crls.current(ca, delta=delta), fmt, out)
