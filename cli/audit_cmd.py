"""``evpki audit verify``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import console, guarded, open_pki, print_json
from pki.core import IntegrityError

__all__ = ["app"]

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command("verify")
@guarded
def verify(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Prove the audit chain intact; exit 8 naming the first broken record otherwise."""
    result = open_pki().audit.verify()
    if json_output:
        print_json(
            {
                "ok": result.ok,
                "records": result.records,
                "first_broken": result.first_broken_seq,
                "reason": result.reason,
            }
        )
    if not result.ok:
        raise IntegrityError(f"audit chain broken at record {result.first_broken_seq}: {result.reason}")
    if not json_output:
        console.print(f"audit chain intact: {result.records} records")
