"""Fixtures of the interop tests: the session-wide EXIficient oracle (one JVM per test session).

Owned by the ISO 15118 differential tests. Skips, with the reason, where Java, py4j or the
``iso15118`` wheel is missing; CI installs all three, so nothing is skipped there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.exificient import Exificient, ExificientUnavailable


@pytest.fixture(scope="session")
def exificient() -> Iterator[Exificient]:
    """The EXIficient jar behind py4j; the gateway and its JVM are shut down at session end."""
    try:
        client = Exificient()
    except ExificientUnavailable as exc:
        pytest.skip(f"EXIficient oracle unavailable: {exc}")
    try:
        yield client
    finally:
        client.close()
