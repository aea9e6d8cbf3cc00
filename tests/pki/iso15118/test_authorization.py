"""Plug & Charge authorization (OCPP C07) of our own contracts: chain, revocation, registry, hash data."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki import PKI, RequestIdentity
from pki.core.clock import FixedClock
from pki.iso15118 import AuthorizationDecision, ForeignQuery, ForeignResult, HashEntry
from pki.iso15118.contract_registry import record_contract_certificate
from tests.conftest import make_csr

EMAID = "DEABCC123ABC56"
PCID = "WMIV2G0000000001A"


def _never(query: ForeignQuery) -> ForeignResult:
    raise AssertionError(f"our own chain must not be asked about abroad ({query.serial_number:X})")


def _issue(pki: PKI, emaid: str = EMAID, *, register: bool = True, validity: dt.timedelta | None = None) -> str:
    """The contract chain PEM (leaf, sub-CAs) of a new contract certificate for ``emaid``."""
    if register:
        pki.contracts.add(emaid=emaid, pcid=PCID, validity=validity, concurrent=True)
    csr, _ = make_csr(emaid, dc="MO")
    issued = pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid=emaid))
    if register:
        with pki._ctx.database.write() as session:
            record_contract_certificate(session, emaid, issued.certificate.issuer_id, issued.certificate.serial)
    return issued.chain_pem


def _authorize(pki: PKI, chain: str, token: str = EMAID) -> AuthorizationDecision:
    return pki.contracts.authorize(certificate=chain, id_token=token, foreign=_never)


def _statuses(decision: AuthorizationDecision) -> tuple[str, str]:
    return decision.certificate_status.value, decision.id_token_status.value


def _hash_data(chain: str) -> list[HashEntry]:
    """iso15118CertificateHashData as a station computes it, with cryptography's own CertID builder."""
    certificates = x509.load_pem_x509_certificates(chain.encode())
    entries = []
    for certificate, issuer in itertools.pairwise(certificates):
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
        entries.append(
            HashEntry.from_ocpp(
                {
                    "hashAlgorithm": "SHA256",
                    "issuerNameHash": request.issuer_name_hash.hex(),
                    "issuerKeyHash": request.issuer_key_hash.hex(),
                    "serialNumber": format(request.serial_number, "X"),
                    "responderURL": "http://127.0.0.1:9/unused",
                }
            )
        )
    return entries


def test_an_active_contract_is_accepted(fresh_pki: PKI) -> None:
    decision = _authorize(fresh_pki, _issue(fresh_pki))
    assert _statuses(decision) == ("Accepted", "Accepted")
    assert decision.ours and decision.emaid == EMAID and set(decision.checked) == {"ours"}


def test_an_expired_contract_certificate_is_certificate_expired(fresh_pki: PKI) -> None:
    chain = _issue(fresh_pki)
    leaf = x509.load_pem_x509_certificate(chain.encode())
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.set(leaf.not_valid_after_utc + dt.timedelta(seconds=1))
    assert _statuses(_authorize(fresh_pki, chain)) == ("CertificateExpired", "Expired")


def test_a_revoked_contract_is_certificate_revoked(fresh_pki: PKI) -> None:
    chain = _issue(fresh_pki)
    fresh_pki.contracts.revoke(EMAID, publish_crls=False)
    assert _statuses(_authorize(fresh_pki, chain)) == ("CertificateRevoked", "Invalid")


def test_a_contract_that_ended_is_contract_cancelled(fresh_pki: PKI) -> None:
    chain = _issue(fresh_pki, validity=dt.timedelta(days=1))
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(days=2))  # the certificate outlives the contract
    assert _statuses(_authorize(fresh_pki, chain)) == ("ContractCancelled", "Expired")


def test_an_unregistered_emaid_is_contract_cancelled(fresh_pki: PKI) -> None:
    chain = _issue(fresh_pki, "DEABCC000000099", register=False)
    assert _statuses(_authorize(fresh_pki, chain, "DEABCC000000099")) == ("ContractCancelled", "Unknown")


def test_an_id_token_other_than_the_certificates_emaid_is_contract_cancelled(fresh_pki: PKI) -> None:
    assert _statuses(_authorize(fresh_pki, _issue(fresh_pki), "DEABCC000000042")) == ("ContractCancelled", "Invalid")


def test_a_chain_to_no_trusted_root_is_a_chain_error(fresh_pki: PKI) -> None:
    # A self-signed "contract certificate": no MO or V2G root vouches for it.
    csr, key = make_csr(EMAID, dc="MO")
    request = x509.load_pem_x509_csr(csr.encode())
    now = fresh_pki.clock.now()
    rogue = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(request.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = rogue.public_bytes(serialization.Encoding.PEM).decode()
    assert _statuses(_authorize(fresh_pki, pem)) == ("CertChainError", "Invalid")
    assert _statuses(_authorize(fresh_pki, "-----BEGIN CERTIFICATE-----\nnot base64\n")) == (
        "CertChainError",
        "Invalid",
    )


def test_a_bad_signature_is_a_chain_error(fresh_pki: PKI) -> None:
    # SignatureError is "<not used>" since the 2023-12 errata: an unverifiable chain is CertChainError.
    chain = _issue(fresh_pki)
    certificates = x509.load_pem_x509_certificates(chain.encode())
    der = bytearray(certificates[0].public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value
    tampered = x509.load_der_x509_certificate(bytes(der))
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in [tampered, *certificates[1:]])
    assert _statuses(_authorize(fresh_pki, pem)) == ("CertChainError", "Invalid")


def test_hash_data_only_is_looked_up_by_hash(fresh_pki: PKI) -> None:
    chain = _issue(fresh_pki)
    entries = _hash_data(chain)
    decision = fresh_pki.contracts.authorize(hash_data=entries, id_token=EMAID, foreign=_never)
    assert _statuses(decision) == ("Accepted", "Accepted") and decision.emaid == EMAID
    fresh_pki.contracts.revoke(EMAID, publish_crls=False)
    revoked = fresh_pki.contracts.authorize(hash_data=entries, id_token=EMAID, foreign=_never)
    assert _statuses(revoked) == ("CertificateRevoked", "Invalid")


def test_hash_data_of_an_unknown_issuer_is_a_chain_error(fresh_pki: PKI) -> None:
    entries = _hash_data(_issue(fresh_pki))
    top = entries[-1]
    unknown = HashEntry(top.hash_algorithm, bytes(32), bytes(32), top.serial_number, top.responder_url)
    decision = fresh_pki.contracts.authorize(hash_data=[*entries[:-1], unknown], id_token=EMAID, foreign=_never)
    assert _statuses(decision) == ("CertChainError", "Invalid")


def test_hash_data_of_a_serial_we_never_issued_is_a_chain_error(fresh_pki: PKI) -> None:
    entries = _hash_data(_issue(fresh_pki))
    leaf = entries[0]
    made_up = HashEntry(leaf.hash_algorithm, leaf.issuer_name_hash, leaf.issuer_key_hash, 0x1234, leaf.responder_url)
    decision = fresh_pki.contracts.authorize(hash_data=[made_up, *entries[1:]], id_token=EMAID, foreign=_never)
    assert _statuses(decision) == ("CertChainError", "Invalid")


@pytest.mark.parametrize(
    "data",
    [
        {"hashAlgorithm": "MD5", "issuerNameHash": "00", "issuerKeyHash": "00", "serialNumber": "1"},
        {"hashAlgorithm": "SHA256", "issuerNameHash": "zz", "issuerKeyHash": "00", "serialNumber": "1"},
        {"hashAlgorithm": "SHA256", "issuerNameHash": "00", "issuerKeyHash": "00", "serialNumber": "1"},
    ],
)
def test_malformed_hash_data_is_invalid_input(data: dict[str, str]) -> None:
    from pki import InvalidInput

    with pytest.raises(InvalidInput):
        HashEntry.from_ocpp(data)
