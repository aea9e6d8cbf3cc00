"""``evpki backup --out FILE`` and ``evpki restore FILE [--force]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, guarded, print_json
from pki import Settings
from pki.operations import create_backup, restore_backup

__all__ = ["backup", "restore"]


@guarded
def backup(
    out: Annotated[Path, typer.Option("--out", help="Archive to write (tar.gz, created with mode 0600).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Back up the database and the (still encrypted) key files into one archive with a SHA-256 manifest.

    PKCS#11 keys stay on their token; the manifest names them. Safe while the CA is serving.
    """
    report = create_backup(Settings(), out)
    if json_output:
        print_json({"out": str(report.path), "revision": report.revision, "database": report.database,
                    "tables": report.tables, "keys": report.keys, "pkcs11Keys": report.pkcs11_keys})  # fmt: skip
        return
    certificates = report.tables.get("certificate", 0)
    console.print(
        f"wrote {report.path}: {certificates} certificates, {report.tables.get('audit_record', 0)} audit records, "
        f"{report.keys} key files ({report.database}, schema {report.revision})",
        markup=False,
    )


@guarded
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by 'evpki backup'.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database and key directory that already hold a PKI.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Restore an archive: SHA-256s checked first, one database transaction, audit chain verified before commit.

    Exit 6 when the target is not empty (without --force), 8 when a checksum or the audit chain fails.
    """
    report = restore_backup(Settings(), archive, force=force)
    if json_output:
        print_json({"revision": report.revision, "tables": report.tables, "keys": report.keys,
                    "auditRecords": report.audit_records})  # fmt: skip
        return
    console.print(
        f"restored {report.tables.get('certificate', 0)} certificates and {report.keys} key files; "
        f"audit chain intact: {report.audit_records} records",
        markup=False,
    )
