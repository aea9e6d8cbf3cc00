"""Fixtures of the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSPHRASE, _copy_database, drop_database


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _fresh_template: tuple[Path, str | None]
) -> Iterator[tuple[Path, str]]:
    """An initialised hierarchy of this test's own (a copy of the session template), in EVPKI_* variables."""
    url, name = _copy_database(_fresh_template, tmp_path)
    monkeypatch.setenv("EVPKI_HOME", str(tmp_path))
    monkeypatch.setenv("EVPKI_DATABASE_URL", url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    yield tmp_path, url
    drop_database(name)
