"""One PKI, one bridge and one operator API per conformance module (each case uses stations of its own),
so a module pays for the bridge's server certificates and listeners once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from ocpp_bridge.gateway import Bridge
from pki import PKI
from pki.core.clock import FixedClock
from pki.operations.tokens import Role
from tests.conftest import _copy_database, drop_database, make_settings
from tests.ocpp_bridge.conformance.octt import Api
from tests.ocpp_bridge.operator_stations import operator_bridge_config


@pytest.fixture(scope="module")
def octt_pki(tmp_path_factory: pytest.TempPathFactory, _fresh_template: tuple[Path, str | None]) -> Iterator[PKI]:
    """A fresh hierarchy for the module whose clock is the wall clock's now (TLS peers check real time)."""
    home = tmp_path_factory.mktemp("octt")
    url, name = _copy_database(_fresh_template, home)
    instance = PKI.open(make_settings(home, url), clock=FixedClock(dt.datetime.now(dt.UTC)))
    yield instance
    instance.close()
    drop_database(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bridge(octt_pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bridge]:
    async with Bridge(octt_pki, operator_bridge_config(tmp_path_factory.mktemp("octt-bridge"))) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(octt_pki: PKI) -> AsyncIterator[Api]:
    """The operator's REST API as its own process would run it: its own PKI (engine) on the bridge's database."""
    other = PKI.open(octt_pki.settings, clock=octt_pki.clock, migrate=False)
    token = other.tokens.create(name="octt-operator", role=Role.OPERATOR)[1]
    transport = httpx.ASGITransport(app=create_app(other))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield Api(client, {"Authorization": f"Bearer {token}"})
    other.close()
