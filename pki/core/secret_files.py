"""Writing files that hold secrets (keys, tokens, passphrases) readable by their owner only.

The CA key store has its own never-replace publication (:mod:`pki.keys.file`); everything else
that writes a secret to disk -- the bridge's TLS keys, a simulated car's keys, the demo's
passphrase and token -- goes through :func:`write_private`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically.

    A reader sees the old file or the whole new one, never half of it, and an existing file's
    looser mode never carries over (the new file replaces it rather than being truncated).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
