"""Running evpki: the append-only, hash-chained audit log, API tokens and their roles, backup and
restore. Facade services: ``pki.audit`` and ``pki.tokens``.
"""

from __future__ import annotations

from pki.operations.audit import AuditEntry, AuditVerification
from pki.operations.backup import create_backup, restore_backup
from pki.operations.services import ApiTokens, AuditLog
from pki.operations.tokens import Role, TokenView

__all__ = [
    "ApiTokens",
    "AuditEntry",
    "AuditLog",
    "AuditVerification",
    "Role",
    "TokenView",
    "create_backup",
    "restore_backup",
]
