"""The ISO 15118-20 EXI codec without a JVM: EXIficient's vectors, round trips, layout facts, edge sizes.

The vectors (``vectors20.json``) were written by EXIficient for the samples of :mod:`samples20`;
``tests/interop/test_exi20_differential.py`` checks the codec against EXIficient live. Negative
tests (facets, malformed streams, fuzzing) are in ``test_exi20_negative.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from pki.iso15118 import exi, exi20
from pki.iso15118.exi.bits import BitReader
from pki.iso15118.exi20 import grammar as g20
from pki.iso15118.messages20 import (
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    ContractCertificateChain,
    EncryptedKeyType,
    MessageHeader,
    RootCertificateId,
    SignedCertificateChain,
    SignedInfo,
    SignedInstallationData,
)
from tests.pki.iso15118 import samples20

VECTORS: dict[str, bytes] = {
    name: bytes.fromhex(value)
    for name, value in json.loads((Path(__file__).parent / "vectors20.json").read_text())["vectors"].items()
}
ROUND_TRIP = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize(
    ("name", "sample"),
    [
        ("install_req_document", samples20.install_req()),
        ("install_req_unsigned_document", samples20.install_req(header=samples20.header(), prioritized_emaids=())),
        ("install_res_document", samples20.install_res()),
    ],
)
def test_documents_match_exificient_vectors(name: str, sample: CertificateInstallationReq) -> None:
    assert exi20.encode_message(sample) == VECTORS[name]
    assert exi20.decode_message(VECTORS[name]) == sample


def test_fragments_and_signed_info_match_exificient_vectors() -> None:
    chain = samples20.install_req().oem_provisioning_certificate_chain
    assert exi20.encode_fragment(chain) == VECTORS["oem_chain_fragment"]
    assert exi20.decode_fragment(VECTORS["oem_chain_fragment"]) == chain
    data = samples20.installation_data(EncryptedKeyType.X448)
    assert exi20.encode_fragment(data) == VECTORS["installation_data_x448_fragment"]
    assert exi20.decode_fragment(VECTORS["installation_data_x448_fragment"]) == data
    signed_info = samples20.signed_info(ed448=True)
    assert exi20.encode_signed_info(signed_info) == VECTORS["signed_info_ed448"]
    assert exi20.decode_signed_info(VECTORS["signed_info_ed448"]) == signed_info


def _codes(data: bytes, *widths: int) -> list[int]:
    r = BitReader(data)
    return [r.bits(width, "code") for width in widths]


def test_framing_codes() -> None:
    """Header 0x80, then the 6-bit DocContent code (Req 7, Res 8) or the 9-bit fragment code (128, 231)."""
    assert _codes(VECTORS["install_req_document"], 8, 6) == [0x80, 7]
    assert _codes(VECTORS["install_res_document"], 8, 6) == [0x80, 8]
    assert g20.DOC_ELEMENTS.index("CertificateInstallationReq") == 7
    assert len(g20.DOC_ELEMENTS) == 54 and tuple(sorted(g20.DOC_ELEMENTS, key=str)) == g20.DOC_ELEMENTS
    assert _codes(VECTORS["oem_chain_fragment"], 8, 9) == [0x80, 128]
    assert _codes(VECTORS["installation_data_x448_fragment"], 8, 9) == [0x80, 231]


@ROUND_TRIP
@given(samples20.signed_infos)
def test_signed_info_is_the_xmldsig_fragment_of_iso2(signed_info: SignedInfo) -> None:
    """-20 signs SignedInfo with the xmldsig grammar alone, exactly as -2 does."""
    assert exi20.encode_signed_info(signed_info) == exi.encode_signed_info(signed_info)
    assert exi20.decode_signed_info(exi20.encode_signed_info(signed_info)) == signed_info


@ROUND_TRIP
@given(samples20.messages)
def test_messages_round_trip(message: CertificateInstallationReq | CertificateInstallationRes) -> None:
    data = exi20.encode_message(message)
    assert exi20.decode_message(data) == message


@ROUND_TRIP
@given(samples20.oem_chains | samples20.installation_datas)
def test_fragments_round_trip(element: SignedCertificateChain | SignedInstallationData) -> None:
    assert exi20.decode_fragment(exi20.encode_fragment(element)) == element


def _largest_request() -> CertificateInstallationReq:
    cert = bytes(range(256)) * 6 + bytes(64)  # 1600 bytes, the certificateType maximum
    return CertificateInstallationReq(
        header=samples20.header(signed=True, timestamp=2**64 - 1),
        oem_provisioning_certificate_chain=SignedCertificateChain("id1", cert, (cert,) * 3),
        root_certificate_ids=tuple(RootCertificateId("C" * 200, -(2**159) + i) for i in range(20)),
        maximum_contract_certificate_chains=255,
        prioritized_emaids=tuple(f"{i}" * 255 for i in range(8)),
    )


def _largest_response() -> CertificateInstallationRes:
    cert = bytes(1600)
    return samples20.install_res(
        cps_certificate_chain=CertificateChain(cert, (cert,) * 3),
        signed_installation_data=samples20.installation_data(
            EncryptedKeyType.TPM, contract_certificate_chain=ContractCertificateChain(cert, (cert,) * 3)
        ),
        remaining_contract_certificate_chains=255,
    )


@pytest.mark.parametrize("message", [_largest_request(), _largest_response()], ids=["request", "response"])
def test_the_largest_messages_the_schema_allows(
    message: CertificateInstallationReq | CertificateInstallationRes,
) -> None:
    data = exi20.encode_message(message)
    assert len(data) < exi.MAX_INPUT_BYTES
    assert exi20.decode_message(data) == message


@pytest.mark.parametrize(
    "message",
    [
        samples20.install_req(header=samples20.header(), prioritized_emaids=()),
        samples20.install_req(
            oem_provisioning_certificate_chain=SignedCertificateChain("A", b""),
            root_certificate_ids=(RootCertificateId("", 0),),
            prioritized_emaids=("",),
            maximum_contract_certificate_chains=0,
        ),
        samples20.install_res(cps_certificate_chain=CertificateChain(b"\x30")),
        *(samples20.install_res(signed_installation_data=samples20.installation_data(t)) for t in EncryptedKeyType),
        samples20.install_res(header=MessageHeader(bytes(8), 0)),
    ],
    ids=["unsigned-no-emaids", "empty-values", "cps-without-subs", "secp521", "x448", "tpm", "no-signature"],
)
def test_optional_elements_empty_values_and_choices_round_trip(
    message: CertificateInstallationReq | CertificateInstallationRes,
) -> None:
    assert exi20.decode_message(exi20.encode_message(message)) == message


def test_the_choice_is_coded_in_schema_order() -> None:
    """SECP521 = 0, X448 = 1, TPM = 2 (schema order, not sorted): the X448 vector's code 1 is EXIficient's."""
    names = g20.TYPES["SignedInstallationDataType"].items[-1].names
    assert names == ("SECP521_EncryptedPrivateKey", "X448_EncryptedPrivateKey", "TPM_EncryptedPrivateKey")
    assert [t.value for t in EncryptedKeyType] == list(names)
