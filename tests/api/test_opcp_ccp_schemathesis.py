"""The CCP and the CPS signer list fuzzed by schemathesis from OPCP's published ``ccp.v1.json`` and
``cps.v1.json`` (read at test time, as in :mod:`tests.api.test_opcp_schemathesis`, whose loader and
checks this reuses): no 5xx, every status documented, every body as the published schema says.

Fuzzed: the operations evpki serves (:data:`SERVED`). Not served, and so not fuzzed:
``provideSignedContractData`` and ``generateSignedContractData`` -- see the README.

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

import json
import time
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode

from api.app import create_app
from pki import PKI
from tests.api.test_opcp_schemathesis import _NO_CONTENT_ERROR, REFERENCE, _amend, _fuzz, _token

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
    for name in ("ccp.v1.json", "cps.v1.json"):
        schema = schemathesis.openapi.from_dict(_amend_pool(name, json.loads((REFERENCE / name).read_text())))
        schema.app = app
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) not in SERVED:
                continue
            operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failure = _fuzz(operation, mode, callers)
                if failure is not None:
                    failures.append(failure)
    assert operations == len(SERVED), "the published specs lost operations, or schemathesis did not read them"
    assert not failures, "\n\n".join(failures[:12])
    print(f"{operations} CCP/CPS operations x {len(callers)} callers x 2 modes in {time.perf_counter() - started:.1f}s")
