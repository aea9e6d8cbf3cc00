"""Contract provisioning under a V2G root we do not own, checked by the independent car (EXIficient).

The CPS sub-CAs are installed under an external V2G root (tests/foreign_operator.py, plain
``cryptography``); the car trusts that root alone. It must accept the CPS chain evpki hands out
(the external root left out) and the contract chain, and decrypt its key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from pki import PKI
from tests.conftest import drop_database
from tests.foreign_operator import V2G, install_all, open_awaiting
from tests.interop import car
from tests.interop.exificient import Exificient
from tests.pki.iso15118.vehicles import make_car, new_emaid

pytestmark = pytest.mark.interop

ISO2 = "urn:iso:15118:2:2013:MsgDef"


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    pki, name = open_awaiting(tmp_path_factory.mktemp("foreign-v2g"))
    install_all(pki)
    yield pki
    pki.close()
    drop_database(name)


def test_a_car_that_trusts_only_the_external_v2g_root_installs_its_contract(
    foreign_pki: PKI, exificient: Exificient
) -> None:
    assert foreign_pki.cas.roots("V2GRootCertificate") == [V2G.root]  # no V2G root of our own
    vehicle = make_car(foreign_pki)
    emaid = new_emaid()
    foreign_pki.contracts.add(emaid=emaid, pcid=vehicle.pcid)
    session = bytes.fromhex("0011223344556677")
    root_ids = [(V2G.root.issuer.rfc4514_string(), V2G.root.serial_number)]
    request = car.build_installation_request(
        exificient, vehicle.certificate.public_bytes(serialization.Encoding.DER), vehicle.key, root_ids, session
    )
    result = foreign_pki.contracts.provision(
        iso15118_schema_version=ISO2,
        action="Install",
        exi_request=base64.b64encode(request).decode(),
        ocpp_version="2.0.1",
    )
    assert result.status == "Accepted", result.reason
    installed = car.open_response(
        exificient,
        base64.b64decode(result.exi_response),
        vehicle.key,
        session,
        sa_roots=[V2G.root],
        contract_roots=[foreign_pki.cas.chain("mo-sub2")[-1]],
        expected_body="CertificateInstallationRes",
    )
    assert installed.emaid == emaid
