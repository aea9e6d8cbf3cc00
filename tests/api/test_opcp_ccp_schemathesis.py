"""The CCP and the CPS signer list fuzzed by schemathesis from OPCP's published ``ccp.v1.json`` and
``cps.v1.json`` (read at test time, as in :mod:`tests.api.test_opcp_schemathesis`, whose loader and
checks this reuses): no 5xx, every status documented, every body as the published schema says.

Fuzzed: every CCP and CPS operation of the published specs (:data:`SERVED`), the MO without its own
PKI (``generateSignedContractData``) and the OEM (``provideSignedContractData``) among the callers.

Amendments, each where the published schema contradicts itself:

1. ``LookupContractResponse`` gives ``cpsV2GRootCertificateFingerprint`` a DN pattern and
   ``cpsRootCertificateDN`` a UUID pattern (the names swapped); evpki sends neither, so nothing
   is changed -- listed here because a server that sends them cannot satisfy both names.
2. ``getContracts`` documents only 200 although it is secured (``OEM``) and takes a PCID that may be
   malformed: 400, 401 and 403 are added as the other CCP operations document them.
3. ``setDefaultContract`` documents no 404, yet names a PCID/eMAID pair the pool may not hold: 404
   is added (as ``lookupContract`` documents it).
4. ``/cps/signer`` documents no 400 and is served from the CPS base path, not under ``/v1``;
   its ``servers`` are the same ``/opcp`` mount.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives.serialization import Encoding
from schemathesis import GenerationMode

from api.app import create_app
from pki import PKI
from pki.opcp import ProvisioningCertificateIn
from tests.api.test_opcp_schemathesis import _NO_CONTENT_ERROR, CHECKS, REFERENCE, _amend, _fuzz, _token
from tests.opcp_support import foreign_oem_chain

pytestmark = pytest.mark.fuzz

SERVED = {
    ("POST", "/v1/ccp/signedContractData"),
    ("DELETE", "/v1/ccp/signedContractData/{emaid}"),
    ("GET", "/v1/ccp/lookupContract/{emaid}"),
    ("POST", "/v1/ccp/signedContractData/{pcid}/{emaid}/default"),
    ("GET", "/v1/ccp/signedContractData/{pcid}"),
    ("GET", "/cps/signer"),
    ("PUT", "/v1/cps/signedContractData"),
    ("PUT", "/v1/cps/contractData/signed"),
    ("PUT", "/v1/ccp/signedContractData"),
    ("PUT", "/v1/cps/forward/signedContractData"),
    ("PUT", "/v1/cps/generate/signedContractData"),
    ("GET", "/v1/ccp/provideSignedContractData/{emaid}/{pcid}"),
}


def _amend_pool(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec = _amend(name, spec)
    auth = {"401": {"description": "Unauthorized"}, "403": {"description": "Forbidden"}}
    if name == "ccp.v1.json":
        spec["paths"]["/v1/ccp/signedContractData/{pcid}"]["get"]["responses"].update(
            {"400": _NO_CONTENT_ERROR, **auth}
        )  # amendment 2
        spec["paths"]["/v1/ccp/signedContractData/{pcid}/{emaid}/default"]["post"]["responses"].setdefault(
            "404", _NO_CONTENT_ERROR
        )  # amendment 3
    return spec


@pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"the OPCP reference copy is not at {REFERENCE} (EVPKI_OPCP_REFERENCE)"
)
def test_the_contract_pool_conforms_to_the_published_opcp_specs(fresh_pki: PKI) -> None:
    app = create_app(fresh_pki)
    callers: dict[str, dict[str, str]] = {"no-token": {}}
    for name, role, scope in (
        ("cpo", "cpo", {}),
        ("oem", "oem", {"wmis": ["WMI"]}),
        ("mo", "mo-v2g-pki", {"providers": ["DEABC"]}),
        ("mo-own", "mo-own-pki", {"providers": ["DEABC"]}),
        ("cps", "cps", {}),
    ):
        callers[name] = {"Authorization": f"Bearer {_token(fresh_pki, f'fuzz-{name}', role, **scope)}"}
    started = time.perf_counter()
    operations, failures = 0, []
    served: dict[tuple[str, str], Any] = {}
    for name in ("ccp.v1.json", "cps.v1.json"):
        schema = schemathesis.openapi.from_dict(_amend_pool(name, json.loads((REFERENCE / name).read_text())))
        schema.app = app
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) not in SERVED:
                continue
            operations += 1
            served[(operation.method.upper(), operation.path)] = operation
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failure = _fuzz(operation, mode, callers)
                if failure is not None:
                    failures.append(failure)
    assert operations == len(SERVED), "the published specs lost operations, or schemathesis did not read them"
    assert not failures, "\n\n".join(failures[:12])
    _generate_and_provide(fresh_pki, served, callers)
    print(f"{operations} CCP/CPS operations x {len(callers)} callers x 2 modes in {time.perf_counter() - started:.1f}s")


def _generate_and_provide(pki: PKI, served: dict[tuple[str, str], Any], callers: dict[str, dict[str, str]]) -> None:
    """The success answers the fuzzer cannot reach (it does not know a PCID of the PCP): a generated
    contract (201, no body) and the OEM's fetch of it (200, ``ProvideContractDataResponse``), checked alike."""
    pcid, emaid = "WMIFUZZ0000000001", "DEABCC000000099"
    chain = foreign_oem_chain(pcid)
    pki.trust.add(chain.root.public_bytes(Encoding.DER), use="OEMRootCertificate")
    publisher = pki.opcp.authenticate(_token(pki, "fuzz-publisher", "oem", wmis=["WMI"]))
    pki.opcp.pcp.publish(
        publisher,
        ProvisioningCertificateIn(
            sub_ca1_certificate=chain.body()["subCA1Certificate"],
            sub_ca2_certificate=chain.body()["subCA2Certificate"],
            vehicle_certificate=chain.body()["vehicleCertificate"],
        ),
    )
    now = pki.clock.now()
    generate = served[("PUT", "/v1/cps/generate/signedContractData")].Case(
        body={
            "contractBegins": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "contractEnds": (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pcid": pcid,
            "emaid": emaid,
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
        },
        media_type="application/json",
    )
    assert generate.call_and_validate(headers=callers["mo"], checks=CHECKS).status_code == 201
    provide = served[("GET", "/v1/ccp/provideSignedContractData/{emaid}/{pcid}")].Case(
        path_parameters={"emaid": emaid, "pcid": pcid}, query={"sessionID": "01020304"}
    )
    assert provide.call_and_validate(headers=callers["oem"], checks=CHECKS).status_code == 200
