"""evpki's OPCP services fuzzed by schemathesis from **OPCP's published OpenAPI files** (not ours).

The files are read at test time from the reference copy (``../shared/reference/opcp`` beside the checkout, or
``EVPKI_OPCP_REFERENCE``); without it the test skips and says so. schemathesis generates schema-valid
and schema-violating requests for every operation evpki serves, with a token of each role and
without one, against the whole app (the specs' relative server ``/opcp``), and every answer must
hold: no 5xx; its status documented for the operation; its content type and body as the published
schema says.

Loading the files takes two mechanical steps: the relative ``$ref`` to ``./cps.v1.json``'s ``Error``
becomes the file's own (identical) ``Error``, and ``servers`` points at ``/opcp``. Where a published
schema contradicts itself, :data:`AMENDMENTS` changes exactly that, each with its reason (the README
lists them too):

1. ``RootCertV2`` has ``maxProperties: 1`` and ``minProperties: 1`` but *requires* two properties
   (``rootType``, ``caCertificate``) and shows eleven in its own examples: no object can satisfy it.
   Both limits are dropped.
2. ``saveRootCa`` (PUT ``/v1/root/rootCerts``) documents only 200, yet it is secured (``Admin``) and
   takes a certificate that may be malformed: 400, 401 and 403 are added as every other RCP operation
   documents them. ``GetCertificateTrustList`` is secured too and gets 401 and 403.
3. ``caCertificate`` has ``maxLength: 800`` on the *Base64* text, while ISO 15118-2 limits the DER
   certificate to 800 bytes (Base64: up to 1,068 characters); the limit is kept as ISO means it, 1,068.
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    FailureGroup,
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from pki import PKI
from tests.conftest import OPCP_REFERENCE

pytestmark = pytest.mark.fuzz

REFERENCE = OPCP_REFERENCE
SPECS = ("accessToken.v1.json", "rcp.v1.json", "pcp.v1.json", "webhooks.v1.json")
EXAMPLES = int(os.environ.get("EVPKI_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
_NO_CONTENT_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _amend(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    text = json.dumps(spec).replace('"./cps.v1.json#/components/schemas/Error"', '"#/components/schemas/Error"')
    spec = json.loads(text)
    spec["servers"] = [{"url": "/opcp"}]
    if name == "rcp.v1.json":
        root = spec["components"]["schemas"]["RootCertV2"]
        root.pop("maxProperties")  # amendment 1
        root.pop("minProperties")
        root["properties"]["caCertificate"]["maxLength"] = 1068  # amendment 3
        put = spec["paths"]["/v1/root/rootCerts"]["put"]["responses"]
        put.update(
            {"400": _NO_CONTENT_ERROR, "401": {"description": "Unauthorized"}, "403": {"description": "Forbidden"}}
        )
        ctl = spec["paths"]["/v1/root/ctl"]["get"]["responses"]  # amendment 2
        ctl.update({"401": {"description": "Unauthorized"}, "403": {"description": "Forbidden"}})
    return spec


def _fuzz(operation: Any, mode: GenerationMode, callers: dict[str, dict[str, str]]) -> str | None:
    """Every generated request is sent once per caller (generating costs more than answering)."""

    @_SETTINGS
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        for caller, headers in callers.items():
            try:
                case.call_and_validate(headers=headers, checks=CHECKS)
            except Exception as error:
                error.add_note(f"caller: {caller}")
                raise

    try:
        run()
    except Unsatisfiable:
        return None
    except (FailureGroup, Exception) as error:
        return f"{operation.label} [{mode.value}]: {type(error).__name__}: {error}"
    return None


def _token(pki: PKI, name: str, role: str, **scope: list[str]) -> str:
    view, secret = pki.opcp.add_client(name=name, role=role, **scope)
    return pki.opcp.issue_token(client_id=view.client_id, client_secret=secret, audience=pki.opcp.audience).access_token


@pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"the OPCP reference copy is not at {REFERENCE} (EVPKI_OPCP_REFERENCE)"
)
def test_every_answer_conforms_to_the_published_opcp_specs(fresh_pki: PKI) -> None:
    app = create_app(fresh_pki)
    callers: dict[str, dict[str, str]] = {"no-token": {}}
    for name, role, scope in (
        ("admin", "admin", {}),
        ("oem", "oem", {"wmis": ["WMI"]}),
        ("mo", "mo-own-pki", {"providers": ["DEABC"]}),
        ("cps", "cps", {}),
    ):
        callers[name] = {"Authorization": f"Bearer {_token(fresh_pki, f'fuzz-{name}', role, **scope)}"}
    started = time.perf_counter()
    operations, failures = 0, []
    for name in SPECS:
        schema = schemathesis.openapi.from_dict(_amend(name, json.loads((REFERENCE / name).read_text())))
        schema.app = app
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failure = _fuzz(operation, mode, callers)
                if failure is not None:
                    failures.append(failure)
    assert operations >= 15, "the published specs lost operations, or schemathesis did not read them"
    assert not failures, "\n\n".join(failures[:12])
    elapsed = time.perf_counter() - started
    print(f"{operations} OPCP operations x {len(callers)} callers x 2 modes x {EXAMPLES} examples in {elapsed:.1f}s")
