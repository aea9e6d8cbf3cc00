"""The ISO 15118-20 car's side of Get15118EVCertificate for the OCPP 2.1 tests: its EXI request (EXIficient
encodes it), its loop while ``remainingContracts`` > 0 (M01.FR.07), and opening each answer."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from ocpp.v21 import call

from pki import PKI
from tests.interop.car20 import build_request, open_response
from tests.interop.exificient20 import Exificient20
from tests.pki.iso15118.vehicles20 import Car20

ISO20 = "urn:iso:std:iso:15118:-20:CommonMessages"
SESSION = bytes.fromhex("2101020304050607")


def exi_request(pki: PKI, oracle: Exificient20, car: Car20, maximum: int, emaids: tuple[str, ...] = ()) -> str:
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
    return base64.b64encode(exi).decode()


def open_answer(pki: PKI, oracle: Exificient20, car: Car20, exi_response: str):  # type: ignore[no-untyped-def]
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


async def install_every_contract(station: Any, pki: PKI, oracle: Exificient20, car: Car20) -> list[Any]:
    """The -20 car's loop, relayed by the 2.1 ``station``: ask with one chain fewer each time, until none remain."""
    answers: list[Any] = []
    maximum = 8
    while True:
        answer = await station.call(
            call.Get15118EVCertificate(
                action="Install",
                exi_request=exi_request(pki, oracle, car, maximum),
                iso_15118_schema_version=ISO20,
                maximum_contract_certificate_chains=maximum,
            )
        )
        answers.append(answer)
        if answer.status != "Accepted" or not answer.remaining_contracts:
            return answers
        maximum -= 1
