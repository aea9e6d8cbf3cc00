"""The REST API fuzzed from its own OpenAPI by schemathesis, for every role and without a token (issue 11, item 5).

schemathesis (an independent tool: it knows the API only from ``/openapi.json``) generates requests
for every operation, schema-valid ones and schema-violating ones, and every answer must hold:

* no 5xx (``not_a_server_error``);
* its status code is documented for the operation (``status_code_conformance``);
* its content type and body match what the OpenAPI documents for that status
  (``content_type_conformance``, ``response_schema_conformance``).

The run is bounded (a fixed number of examples per operation and mode, derandomised, no shrinking)
so the suite stays fast and deterministic; ``EVPKI_FUZZ_EXAMPLES=200`` makes a deeper local run.
schemathesis's own pytest plugin is not used (it does not load under pytest 9): the operations are
walked here and each is a plain hypothesis ``@given`` over ``operation.as_strategy``.
"""

from __future__ import annotations

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
from pki.operations.tokens import Role

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("EVPKI_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# An OCSP request is opaque bytes to the OpenAPI, like any octet stream (RFC 6960 Appendix A.1).
schemathesis.serializer.alias("application/ocsp-request", "application/octet-stream")

_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # Generation only: a failure is reported with the first request that showed it, and the run stays
    # bounded (shrinking could take minutes; explaining re-runs the test under a tracer).
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """Run one operation in one generation mode; the failure report, or None when every answer held."""

    @_SETTINGS
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to negate (no parameters, no body): the positive run covered it
    except (FailureGroup, Exception) as error:  # failed checks (a BaseExceptionGroup), or what the app let out
        return f"{operation.label} [{mode.value}]: {type(error).__name__}: {error}"
    return None


@pytest.mark.parametrize("role", [None, *Role], ids=lambda role: role.value if role else "no-token")
def test_every_answer_is_documented_and_none_is_a_server_error(fresh_pki: PKI, role: Role | None) -> None:
    headers = {}
    if role is not None:
        headers["Authorization"] = f"Bearer {fresh_pki.tokens.create(name=f'fuzz-{role.value}', role=role)[1]}"
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fresh_pki))
    started = time.perf_counter()
    operations, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz(operation, mode, headers)
            if failure is not None:
                failures.append(failure)
    assert operations >= 40, "the OpenAPI lost operations, or schemathesis did not read it"
    assert not failures, "\n\n".join(failures)
    print(f"{operations} operations x 2 modes x {EXAMPLES} examples in {time.perf_counter() - started:.1f}s")
