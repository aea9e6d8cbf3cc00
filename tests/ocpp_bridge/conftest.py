"""OCPP core fixtures: a certificate service over a fresh PKI, registered stations, CSR helpers."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from cryptography import x509

from ocpp_bridge.core import CertificateService, FollowUp
from pki import PKI
from tests.api.conftest import client, tokens  # noqa: F401 -- the API fixtures, for the REST tests
from tests.conftest import ORG, make_csr

SECC_ID = "DE*ABC*S*EVSE0001CONTROLLER00000000000000001"
_numbers = itertools.count(1)


@pytest.fixture
def service(fresh_pki: PKI) -> CertificateService:
    return CertificateService(fresh_pki)


@pytest.fixture
def station(fresh_pki: PKI) -> tuple[str, str]:
    """(identity, serial) of a newly registered profile-3 station."""
    n = next(_numbers)
    identity, serial = f"CS-{n:04d}", f"SN{n:06d}"
    fresh_pki.stations.add(identity=identity, serial=serial)
    return identity, serial


def station_csr(serial: str, **kwargs: Any) -> str:
    return make_csr(serial, organization=kwargs.pop("organization", ORG), **kwargs)[0]


def secc_csr(secc_id: str = SECC_ID) -> str:
    return make_csr(secc_id, organization=ORG, country="DE", dc="CPO")[0]


def chain_of(follow_up: FollowUp) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(follow_up.payload["certificateChain"].encode())
