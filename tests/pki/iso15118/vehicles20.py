"""ISO 15118-20 test vehicles: a P-521 or Ed448 (+ X448) key and an OEM provisioning certificate from oem20-sub2."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.x509.oid import NameOID

from pki import PKI, RequestIdentity

__all__ = ["ALT_KEY_OID", "Car20", "car20_csr", "make_car20", "new_emaid20", "new_pcid20"]

ALT_KEY_OID = x509.ObjectIdentifier("2.5.29.72")  # subjectAltPublicKeyInfo, written here from X.509 itself
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Car20:
    pcid: str
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
    agreement_key: ec.EllipticCurvePrivateKey | x448.X448PrivateKey  # the key the contract key is encrypted for
    sub_certificates: tuple[x509.Certificate, ...]

    @property
    def curve(self) -> str:
        return "ed448" if isinstance(self.key, ed448.Ed448PrivateKey) else "p521"


def new_pcid20() -> str:
    return f"WTW{next(_numbers):015d}"  # 18 characters, as the -20 AAD expects ([V2G20-2492])


def new_emaid20() -> str:
    return f"DEX20{next(_numbers):09d}"


def car20_csr(
    pcid: str,
    curve: str,
    *,
    alternate: x448.X448PublicKey | None = None,
) -> tuple[str, ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey, x448.X448PrivateKey | None]:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, pcid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    x448_key: x448.X448PrivateKey | None = None
    key: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
    if curve == "p521":
        key = ec.generate_private_key(ec.SECP521R1())
        csr = builder.sign(key, hashes.SHA512())
    else:
        key = ed448.Ed448PrivateKey.generate()
        if alternate is None:
            x448_key = x448.X448PrivateKey.generate()
            alternate = x448_key.public_key()
        spki = alternate.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        builder = builder.add_extension(x509.UnrecognizedExtension(ALT_KEY_OID, spki), critical=False)
        csr = builder.sign(key, None)
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key, x448_key


def make_car20(pki: PKI, curve: str = "p521", pcid: str | None = None) -> Car20:
    pcid = pcid or new_pcid20()
    csr, key, x448_key = car20_csr(pcid, curve)
    issued = pki.certificates.issue(
        profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid), ca_id="oem20-sub2"
    )
    certificate = x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode())
    subs = tuple(pki.cas.chain("oem20-sub2")[:-1])
    agreement = x448_key if x448_key is not None else key
    assert isinstance(agreement, ec.EllipticCurvePrivateKey | x448.X448PrivateKey)
    return Car20(pcid, certificate, key, agreement, subs)
