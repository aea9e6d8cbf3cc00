"""Key backends behind one interface: the authority never knows where a CA key lives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pki.core.errors import Unavailable
from pki.keys.base import KeyStore, Signer
from pki.keys.file import FileKeyStore

if TYPE_CHECKING:
    from pki.core.settings import Settings

__all__ = ["FileKeyStore", "KeyStore", "Signer", "open_key_store"]


def open_key_store(settings: Settings) -> KeyStore:
    """The key store ``settings.keystore`` names: encrypted files under the home, or a PKCS#11 token."""
    if settings.keystore == "pkcs11":
        if not settings.pkcs11_module:
            raise Unavailable(
                "EVPKI_KEYSTORE=pkcs11 needs EVPKI_PKCS11_MODULE (the path of the token's PKCS#11 library)"
            )
        # Imported here so the file backend works where python-pkcs11 is not installed.
        from pki.keys.pkcs11 import Pkcs11KeyStore

        return Pkcs11KeyStore(settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_user_pin)
    return FileKeyStore(settings.keys_dir, settings.passphrase)
