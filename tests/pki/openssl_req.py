"""CSRs made by ``openssl req`` rather than by the library evpki itself uses.

Policy tests feed evpki requests from an independent tool, so a rule that only holds for
``cryptography``-built CSRs (attribute encodings, extension requests) cannot hide.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.conftest import run_openssl

__all__ = ["KEY_ARGS", "openssl_csr"]

# openssl req arguments that make a fresh key of each algorithm evpki names.
KEY_ARGS: dict[str, tuple[str, ...]] = {
    "ec-p256": ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
    "ec-p384": ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"),
    "ec-p521": ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"),
    "rsa-1024": ("-newkey", "rsa:1024"),
    "rsa-2048": ("-newkey", "rsa:2048"),
    "ed25519": ("-newkey", "ed25519"),
    "ed448": ("-newkey", "ed448"),
}


def openssl_csr(
    subject: str,
    *,
    key: str = "ec-p256",
    san: str | None = None,
    reuse_key: str | None = None,
    multivalue_rdn: bool = False,
) -> tuple[str, str]:
    """A PEM CSR for ``subject`` (openssl ``-subj`` syntax) and the PEM of its unencrypted private key.

    ``reuse_key`` (a PEM private key) signs with an existing key instead of generating one (renewal tests).
    """
    # openssl reads and writes keys only through files: they live in a private directory (mode 0700)
    # that is gone when this returns, so no unencrypted key.pem is left in the system temp directory.
    with tempfile.TemporaryDirectory(prefix="evpki-csr-") as directory:
        key_path = Path(directory) / "key.pem"
        if reuse_key is not None:
            key_path.write_text(reuse_key)
            key_args: tuple[str, ...] = ("-key", str(key_path))
        else:
            key_args = (*KEY_ARGS[key], "-noenc", "-keyout", str(key_path))
        extra: tuple[str, ...] = ("-addext", f"subjectAltName={san}") if san else ()
        if multivalue_rdn:
            extra += ("-multivalue-rdn",)
        result = run_openssl("req", "-new", *key_args, "-subj", subject, *extra)
        assert result.returncode == 0, result.stderr
        return result.stdout, key_path.read_text()
