"""What every command shares: opening the PKI, exit codes, error reporting and output helpers.

Exit codes (documented in ``evpki --help`` and the README):
0 success · 1 internal error · 2 usage error · 3 invalid input · 4 policy violation ·
5 not found · 6 conflict · 7 unavailable (database, key store, passphrase) · 8 integrity failure ·
9 verification failed (a firmware signature or signing certificate did not check out).
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from pki import PKI, Settings
from pki.core import (
    Conflict,
    EvpkiError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PolicyViolation,
    Unavailable,
    VerificationFailed,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_CODES_HELP",
    "actor",
    "check_output",
    "check_output_dir",
    "console",
    "fail",
    "guarded",
    "open_pki",
    "print_json",
    "read_input_file",
    "write_output",
]

EXIT_CODES: dict[type[EvpkiError], int] = {
    InvalidInput: 3,
    PolicyViolation: 4,
    NotFound: 5,
    Conflict: 6,
    Unavailable: 7,
    IntegrityError: 8,
    VerificationFailed: 9,
}
EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid input, 4 policy violation, "
    "5 not found, 6 conflict, 7 unavailable, 8 integrity failure, 9 verification failed."
)
_MAX_INPUT_BYTES = 1 << 20

console = Console()
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def exit_code_for(error: EvpkiError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code
    return 1


def fail(message: str, code: int) -> typer.Exit:
    _stderr.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into one line on stderr and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EvpkiError as error:
            raise fail(error.message, exit_code_for(error)) from None

    return wrapper


def open_pki() -> PKI:
    return PKI.open(Settings())


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def read_input_file(path: str) -> bytes:
    """Read a small input file (``-`` for stdin); refuses anything over 1 MiB."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(_MAX_INPUT_BYTES + 1)
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(_MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror}") from None
    if len(data) > _MAX_INPUT_BYTES:
        raise InvalidInput(f"{path}: larger than {_MAX_INPUT_BYTES} bytes")
    return data


def check_output(out: Path | None) -> None:
    """Refuse an output file that cannot be written, before the command signs or stores anything.

    A command that issues, signs or publishes and only then fails to write has changed the PKI
    for an answer nobody got; so the path is checked first. A file system that changes in
    between can still fail the write -- this catches the missing directory and the typo.
    """
    if out is None:
        return
    if out.is_dir():
        raise InvalidInput(f"{out}: is a directory")
    parent = out.parent
    if not parent.is_dir():
        raise InvalidInput(f"{out}: no such directory {parent}")
    writable = os.access(out, os.W_OK) if out.exists() else os.access(parent, os.W_OK | os.X_OK)
    if not writable:
        raise InvalidInput(f"{out}: permission denied")


def check_output_dir(directory: Path | None) -> None:
    """Refuse an output directory that neither exists nor can be created, before any work is done."""
    if directory is None:
        return
    if directory.exists():
        if not directory.is_dir():
            raise InvalidInput(f"{directory}: not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InvalidInput(f"{directory}: permission denied")
        return
    ancestor = directory.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise InvalidInput(f"{directory}: cannot be created (under {ancestor})")


def write_output(data: bytes | str, out: Path | None) -> None:
    raw = data.encode() if isinstance(data, str) else data
    if out is None:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(raw)
    except OSError as exc:
        raise InvalidInput(f"{out}: {exc.strerror}") from None
    _stderr.print(f"wrote {out}", markup=False)
