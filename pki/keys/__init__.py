"""Key backends behind one interface: the authority never knows where a CA key lives."""

from pki.keys.base import KeyStore, Signer
from pki.keys.file import FileKeyStore

__all__ = ["FileKeyStore", "KeyStore", "Signer"]
