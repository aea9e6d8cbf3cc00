"""OCPP 2.1 additions to the certificate cases [unverified against OCA's 2.1 Part 6: the IDs come from a
reimplemented registry, see the reference list]: TC_M_100 (ISO 15118-20 contract installation, several
chains) and TC_M_101 (install OEMRootCertificate), with an ``ocpp`` 2.1 station over mutual TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocpp_bridge.gateway import Bridge
from pki import PKI
from pki.ca import ISO15118_20_HIERARCHY
from tests.conftest import ORG
from tests.interop.conftest import exificient  # noqa: F401 -- the session's EXIficient oracle
from tests.interop.exificient import Exificient
from tests.interop.exificient20 import Exificient20
from tests.ocpp_bridge.conformance.octt import Api, enroll, octt_station, walk_install_root
from tests.ocpp_bridge.minus20 import install_every_contract, open_answer
from tests.pki.iso15118.vehicles20 import make_car20, new_emaid20

pytestmark = pytest.mark.asyncio(loop_scope="module")
V = "2.1"


@pytest.fixture(scope="module")
def octt_pki(octt_pki: PKI) -> PKI:
    """The module's hierarchy with the ISO 15118-20 PKIs added (``evpki init --iso15118-20``)."""
    octt_pki.cas.init(config=ISO15118_20_HIERARCHY, organization=ORG, actor="test")
    return octt_pki


async def test_tc_m_100_certificate_installation_ev_iso15118_20_multiple_chains(
    bridge: Bridge,
    tmp_path: Path,
    exificient: Exificient,  # noqa: F811
) -> None:
    """TC_M_100: Get15118EVCertificate(Install, -20) with maximumContractCertificateChains; the CSMS answers
    one contract per request with remainingContracts, the car asks again with one chain fewer until none
    remain (M01.FR.02-07), each answer opening to the next contract in priority order.

    Skipped: the ISO 15118-20 exchange between EV and station (the station's)."""
    pki = bridge.pki
    oracle = Exificient20(exificient)
    car = make_car20(pki, "ed448")
    emaids = [new_emaid20() for _ in range(3)]
    for priority, emaid in enumerate(emaids):
        pki.contracts.add(emaid=emaid, pcid=car.pcid, priority=priority, concurrent=True)
    identity, serial, credential = enroll(pki, tmp_path, "M100", V)
    async with octt_station(bridge, V, identity, serial, credential) as station:
        # 1-3. The station relays each request; each is Accepted with one contract fewer remaining.
        answers = await install_every_contract(station, pki, oracle, car)
    assert [a.status for a in answers] == ["Accepted"] * 3
    assert [a.remaining_contracts for a in answers] == [2, 1, 0]
    # 4. The car opens every answer: the contracts in priority order, the remaining count inside the EXI too.
    installed = [open_answer(pki, oracle, car, a.exi_response) for a in answers]
    assert [i.emaid for i in installed] == emaids
    assert [i.remaining for i in installed] == [2, 1, 0]


async def test_tc_m_101_install_ca_certificate_oem_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_101: InstallCertificate(OEMRootCertificate) → Accepted (a 2.1 type; 2.0.1 has none)."""
    await walk_install_root(bridge, api, tmp_path, "M101", V, "OEMRootCertificate")
