"""An external root operator built with plain ``cryptography``: it signs the requests of evpki's CAs.

It plays Hubject (a V2G root) or a corporate PKI (a root and an intermediate above a CSO sub-CA).
It shares no code with ``pki/``: what it signs is taken from the PKCS#10 request the way an
operator's CA software would (subject, public key, requested basicConstraints and keyUsage),
with its own subject key identifier scheme and an authority key identifier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki import PKI
from pki.core.clock import FixedClock
from tests.conftest import FRESH_EPOCH, ORG, database_url, make_settings

__all__ = [
    "CORPORATE",
    "V2G",
    "ForeignOperator",
    "default_hierarchy_with_external_parents",
    "install_all",
    "open_awaiting",
    "pem",
]

_CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)


@dataclass
class ForeignOperator:
    """A root (and optionally one intermediate) whose keys evpki never sees."""

    name: str = "Ecosystem V2G Root CA"
    dc: str = "V2G"
    intermediate: bool = False
    root_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    root: x509.Certificate = field(init=False)
    issuing_key: ec.EllipticCurvePrivateKey = field(init=False)
    issuing: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        start = FRESH_EPOCH - dt.timedelta(days=60)
        subject = self._name(self.name)
        self.root = self._certificate(
            subject, subject, self.root_key.public_key(), self.root_key, start, start + dt.timedelta(days=40 * 365)
        )
        self.issuing_key, self.issuing = self.root_key, self.root
        if self.intermediate:
            key = ec.generate_private_key(ec.SECP256R1())
            self.issuing = self._certificate(
                self._name(f"{self.name} Issuing CA"),
                subject,
                key.public_key(),
                self.root_key,
                start,
                start + dt.timedelta(days=20 * 365),
                path_length=None,
            )
            self.issuing_key = key

    def _name(self, common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ecosystem Root Operator"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.DOMAIN_COMPONENT, self.dc),
            ]
        )

    def _certificate(
        self,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        signer: ec.EllipticCurvePrivateKey,
        not_before: dt.datetime,
        not_after: dt.datetime,
        *,
        path_length: int | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if issuer != subject:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    def sign(
        self,
        request_pem: str,
        *,
        days: int = 4 * 365,
        path_length: int | bool | None = True,
        extended_usage: bool = False,
        signer: ec.EllipticCurvePrivateKey | None = None,
        start: dt.datetime = FRESH_EPOCH,
    ) -> x509.Certificate:
        """A CA certificate for ``request_pem`` valid from about ``start`` for ``days``;
        ``path_length=True`` grants what the request asks."""
        request = x509.load_pem_x509_csr(request_pem.encode())
        assert request.is_signature_valid
        asked = request.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        granted = asked if path_length is True else path_length
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.issuing.subject)
            .public_key(request.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(days=1))
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=granted), critical=True)  # type: ignore[arg-type]
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(request.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuing_key.public_key()), critical=False
            )
        )
        if extended_usage:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(signer or self.issuing_key, hashes.SHA256())

    def chain_pem(self, *, with_root: bool = True) -> str:
        """What the operator hands back beside the certificate: its intermediate, then its root."""
        chain = [self.issuing] if self.intermediate else []
        if with_root:
            chain.append(self.root)
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)

    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()


def default_hierarchy_with_external_parents() -> str:
    """The packaged default hierarchy with the V2G root and the CSO root run by someone else:
    ``cpo-sub1``, ``cps-sub1`` and ``cso-sub`` declare an external parent."""
    from importlib import resources

    text = (resources.files("pki") / "default_hierarchy.toml").read_text(encoding="utf-8")
    blocks = text.split("\n[")
    kept = []
    for block in blocks:
        if block.startswith("ca.v2g-root]") or block.startswith("ca.cso-root]"):
            continue
        if block.startswith(("ca.cpo-sub1]", "ca.cps-sub1]")):
            block = block.replace('parent = "v2g-root"', "external_parent = true")
        if block.startswith("ca.cso-sub]"):
            block = block.replace('parent = "cso-root"', "external_parent = true")
        kept.append(block)
    result = "\n[".join(kept)
    assert result.count("external_parent = true") == 3
    return result


V2G = ForeignOperator()  # plays an ecosystem V2G root (Hubject, DigiCert, ...)
CORPORATE = ForeignOperator(name="Corporate Root CA", dc="CORP", intermediate=True)  # above the CSO sub-CA


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def open_awaiting(home: Path) -> tuple[PKI, str | None]:
    """A PKI initialised from :func:`default_hierarchy_with_external_parents`: three CAs await."""
    config = home / "hierarchy.toml"
    config.write_text(default_hierarchy_with_external_parents(), encoding="utf-8")
    url, name = database_url(home)
    pki = PKI.open(make_settings(home, url), clock=FixedClock(FRESH_EPOCH))
    report = pki.cas.init(config=config, organization=ORG, actor="test")
    assert set(report.awaiting) == {"cpo-sub1", "cps-sub1", "cso-sub"}
    assert set(report.waiting) == {"cpo-sub2", "cps-sub2", "cps-leaf", "csms-server"}
    return pki, name


def install_all(pki: PKI) -> None:
    """The operators sign the three requests; evpki installs them (and creates what waited)."""
    first = pki.cas.install("cpo-sub1", pem(V2G.sign(pki.cas.request("cpo-sub1").csr_pem)), chain=V2G.chain_pem())
    assert first.anchor_added and first.created == ("cpo-sub2",)
    # The V2G root is trusted now: the CPS sub-CA needs no chain.
    second = pki.cas.install("cps-sub1", pem(V2G.sign(pki.cas.request("cps-sub1").csr_pem)))
    assert not second.anchor_added and set(second.created) == {"cps-sub2", "cps-leaf"}
    third = pki.cas.install(
        "cso-sub", pem(CORPORATE.sign(pki.cas.request("cso-sub").csr_pem)), chain=CORPORATE.chain_pem()
    )
    assert third.intermediates == (CORPORATE.issuing.subject.rfc4514_string(),)
    assert third.created == ("csms-server",)
