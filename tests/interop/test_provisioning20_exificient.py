"""ISO 15118-20 provisioning against the independent car: EXIficient (-20 grammar) and plain ``cryptography``."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pki import PKI
from tests.interop.car20 import CarRejects, build_request, open_response
from tests.interop.exificient import Exificient
from tests.interop.exificient20 import Exificient20
from tests.pki.iso15118.vehicles20 import Car20, make_car20, new_emaid20

ISO20 = "urn:iso:std:iso:15118:-20:CommonMessages"
SESSION = bytes.fromhex("0a0b0c0d0e0f1011")


@pytest.fixture(scope="module")
def oracle(exificient: Exificient) -> Exificient20:
    return Exificient20(exificient)


def _ask(pki: PKI, oracle: Exificient20, car: Car20, *, maximum: int = 1, emaids: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    root = pki.cas.chain("v2g20-root")[-1]
    chain = [c.public_bytes(Encoding.DER) for c in (car.certificate, *car.sub_certificates)]
    exi = build_request(
        oracle,
        car.key,
        chain,
        [(root.issuer.rfc4514_string(), root.serial_number)],
        SESSION,
        maximum=maximum,
        emaids=emaids,
    )
    return pki.contracts.provision(
        iso15118_schema_version=ISO20, action="Install", exi_request=base64.b64encode(exi).decode(), ocpp_version="2.1"
    )


def _open(pki: PKI, oracle: Exificient20, car: Car20, exi_response: str):  # type: ignore[no-untyped-def]
    return open_response(
        oracle,
        exi_response,
        car.agreement_key,
        car.pcid,
        SESSION,
        [pki.cas.chain("v2g20-root")[-1]],
        [pki.cas.chain("mo20-root")[-1]],
        pki.clock.now(),
    )


@pytest.mark.parametrize("curve", ["p521", "ed448"])
def test_the_independent_car_installs_every_contract(pki20: PKI, oracle: Exificient20, curve: str) -> None:
    car = make_car20(pki20, curve)
    first, second = new_emaid20(), new_emaid20()
    pki20.contracts.add(emaid=first, pcid=car.pcid, priority=2)
    pki20.contracts.add(emaid=second, pcid=car.pcid, priority=1, concurrent=True)
    installed, maximum = [], 8
    while True:  # the -20 loop: ask again while RemainingContractCertificateChains > 0
        result = _ask(pki20, oracle, car, maximum=maximum)
        assert result.status == "Accepted", result.reason
        got = _open(pki20, oracle, car, result.exi_response)
        assert got.remaining == result.remaining_contracts
        installed.append(got)
        maximum -= 1
        if got.remaining == 0:
            break
    assert [i.emaid for i in installed] == [second, first]
    assert {i.ecdh_curve for i in installed} == {"SECP521" if curve == "p521" else "X448"}
    for contract in installed:
        current = pki20.contracts.get(contract.emaid).current_certificate
        assert current is not None and int(current.serial, 16) == contract.certificate.serial_number


def test_the_car_honours_prioritized_emaids(pki20: PKI, oracle: Exificient20) -> None:
    car = make_car20(pki20)
    registry_first, car_first = new_emaid20(), new_emaid20()
    pki20.contracts.add(emaid=registry_first, pcid=car.pcid)
    pki20.contracts.add(emaid=car_first, pcid=car.pcid, priority=7, concurrent=True)
    got = _open(pki20, oracle, car, _ask(pki20, oracle, car, maximum=1, emaids=(car_first,)).exi_response)
    assert (got.emaid, got.remaining) == (car_first, 0)  # Maximum 1: nothing more for this car now


def test_a_refusal_is_a_valid_response_the_car_reads(pki20: PKI, oracle: Exificient20) -> None:
    car = make_car20(pki20)  # no contract registered
    result = _ask(pki20, oracle, car)
    with pytest.raises(CarRejects) as refused:
        _open(pki20, oracle, car, result.exi_response)
    assert refused.value.response_code == "WARNING_NoContractMatchingPCIDFound"
