"""Persistence: the tables, the database handle and a narrow set of intention-named queries."""

from pki.store.db import Database

__all__ = ["Database"]
