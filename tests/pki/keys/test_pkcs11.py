"""The PKCS#11 key backend against SoftHSM2: whole hierarchies on a token, checked by openssl.

Every token lives in a SoftHSM2 token directory of this session (``SOFTHSM2_CONF`` points at a
config written here), so the tests never touch the machine's token store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from pydantic import SecretStr
from typer.testing import CliRunner

from pki import PKI, Settings
from pki.ca.policy import RequestIdentity
from pki.core.errors import Conflict, InvalidInput, Unavailable
from tests.conftest import ORG, database_url, drop_database, make_csr, make_settings, requires_openssl, run_openssl

SOFTHSM_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
MODULE = next((path for path in SOFTHSM_CANDIDATES if Path(path).exists()), None)
PIN = "1234"
# SoftHSM lists its tokens once, when the module is loaded: every token a test uses is made up front.
TOKENS = (
    "evpki-p256",
    "evpki-p384",
    "evpki-rsa",
    "evpki-rsapss",
    "evpki-cli",
    "evpki-unit",
    "evpki-pin",
    "evpki-foreign",
)

pytestmark = [
    pytest.mark.hsm,
    pytest.mark.skipif(
        MODULE is None or shutil.which("softhsm2-util") is None,
        reason="SoftHSM2 is not installed (Debian package softhsm2; `make test` installs it)",
    ),
]


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A private SoftHSM2 token directory with one fresh token per use; returns the module path."""
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed")
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    # SoftHSM reads this when the module is initialised, i.e. on the first key store use in this process.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in TOKENS:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "5678"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    assert MODULE is not None
    return MODULE


def hsm_settings(home: Path, url: str, module: str, token: str, pin: str = PIN) -> Settings:
    return make_settings(home, url).model_copy(
        update={
            "keystore": "pkcs11",
            "pkcs11_module": module,
            "pkcs11_token_label": token,
            "pkcs11_pin": SecretStr(pin),
            "key_passphrase": None,  # nothing may need the file backend's passphrase
        }
    )


def _hierarchy(algorithm: str) -> str:
    """The default hierarchy with its CSO PKI (stations, CSMS) on ``algorithm`` (``rsa-3072-pss``: RSA-PSS)."""
    toml = (resources.files("pki") / "default_hierarchy.toml").read_text(encoding="utf-8")
    head, _, tail = toml.partition("[pki.cso]")
    rest = tail.split("\n[", 1)[1]
    pss = algorithm.endswith("-pss")
    key = algorithm.removesuffix("-pss")
    return f'{head}[pki.cso]\nstandard = "ocpp"\nalgorithm = "{key}"\nrsa_pss = {str(pss).lower()}\n\n[{rest}'


ALGORITHMS = {
    "evpki-p256": "ec-p256",
    "evpki-p384": "ec-p384",
    "evpki-rsa": "rsa-2048",
    "evpki-rsapss": "rsa-3072-pss",
}


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def hsm_pki(request: pytest.FixtureRequest, softhsm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    """The default hierarchy built on a token, its CSO PKI on P-256, P-384 or RSA (real clock: openssl checks it)."""
    token = request.param
    home = tmp_path_factory.mktemp(f"hsm-{token}")
    config = home / "hierarchy.toml"
    config.write_text(_hierarchy(ALGORITHMS[token]), encoding="utf-8")
    url, name = database_url(home)
    instance = PKI.open(hsm_settings(home, url, softhsm, token))
    instance.cas.init(config=config, organization=ORG, actor="test")
    yield instance
    instance.close()
    drop_database(name)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _issue_station(pki: PKI) -> x509.Certificate:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    view = pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id)
    ).certificate
    return x509.load_pem_x509_certificate(view.certificate_pem.encode())


def test_keys_live_on_the_token_and_no_key_file_is_written(hsm_pki: PKI) -> None:
    assert hsm_pki.settings.keystore == "pkcs11"
    assert not (hsm_pki.settings.home / "keys").exists()
    key = hsm_pki.cas.chain("cso-sub")[0].public_key()
    expected = ALGORITHMS[hsm_pki.settings.pkcs11_token_label]
    if expected.startswith("rsa"):
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == int(expected.split("-")[1])
        pss = hsm_pki.cas.chain("cso-sub")[0].signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.RSASSA_PSS
        assert pss == expected.endswith("-pss")
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == {"ec-p256": "secp256r1"}.get(
            expected, "secp384r1"
        )


@requires_openssl
@pytest.mark.interop
def test_openssl_verifies_issued_certificates_and_the_hierarchy(hsm_pki: PKI, tmp_path: Path) -> None:
    leaf = _issue_station(hsm_pki)
    chain = hsm_pki.cas.chain("cso-sub")
    (tmp_path / "root.pem").write_bytes(_pem(chain[-1]))
    (tmp_path / "sub.pem").write_bytes(b"".join(_pem(c) for c in chain[:-1]))
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    result = run_openssl(
        "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem"),
        "-untrusted", str(tmp_path / "sub.pem"), str(tmp_path / "leaf.pem"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Every CA of the default hierarchy was built on the token too: each sub-CA verifies under its root.
    for ca in hsm_pki.cas.list():
        certs = hsm_pki.cas.chain(ca.id)
        (tmp_path / "ca.pem").write_bytes(_pem(certs[0]))
        (tmp_path / "anchor.pem").write_bytes(_pem(certs[-1]))
        (tmp_path / "mid.pem").write_bytes(b"".join(_pem(c) for c in certs[1:-1]) or _pem(certs[-1]))
        checked = run_openssl(
            "verify", "-CAfile", str(tmp_path / "anchor.pem"), "-untrusted", str(tmp_path / "mid.pem"),
            str(tmp_path / "ca.pem"),
        )  # fmt: skip
        assert checked.returncode == 0, f"{ca.id}: {checked.stdout}{checked.stderr}"


@requires_openssl
@pytest.mark.interop
def test_openssl_verifies_the_crl(hsm_pki: PKI, tmp_path: Path) -> None:
    leaf = _issue_station(hsm_pki)
    hsm_pki.revocation.revoke(f"{leaf.serial_number:X}", "keyCompromise", ca_id="cso-sub", actor="test")
    crl = x509.load_der_x509_crl(hsm_pki.crls.generate("cso-sub").der)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    (tmp_path / "crl.der").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    (tmp_path / "issuer.pem").write_bytes(_pem(hsm_pki.cas.chain("cso-sub")[0]))
    result = run_openssl(
        "crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-CAfile", str(tmp_path / "issuer.pem"),
        "-verify", "-noout",
    )  # fmt: skip
    assert result.returncode == 0 and "verify OK" in result.stderr, result.stderr


@requires_openssl
@pytest.mark.interop
def test_openssl_verifies_ocsp_responses(hsm_pki: PKI, tmp_path: Path) -> None:
    leaf = _issue_station(hsm_pki)
    chain = hsm_pki.cas.chain("cso-sub")
    (tmp_path / "ca.pem").write_bytes(b"".join(_pem(c) for c in chain))
    (tmp_path / "issuer.pem").write_bytes(_pem(chain[0]))
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    for nonce in (None, b"n" * 16):
        builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, chain[0], hashes.SHA1())
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build().public_bytes(serialization.Encoding.DER)
        (tmp_path / "req.der").write_bytes(request)
        (tmp_path / "resp.der").write_bytes(hsm_pki.ocsp.respond(request).der)
        checked = run_openssl(
            "ocsp", "-reqin", str(tmp_path / "req.der"), "-respin", str(tmp_path / "resp.der"),
            "-CAfile", str(tmp_path / "ca.pem"),
        )  # fmt: skip
        assert checked.returncode == 0 and "Response verify OK" in checked.stderr, checked.stderr
        status = run_openssl(
            "ocsp", "-respin", str(tmp_path / "resp.der"), "-no_nonce",
            "-issuer", str(tmp_path / "issuer.pem"), "-cert", str(tmp_path / "leaf.pem"),
            "-CAfile", str(tmp_path / "ca.pem"),
        )  # fmt: skip
        assert f"{tmp_path / 'leaf.pem'}: good" in status.stdout, status.stdout + status.stderr


def test_firmware_signature_made_on_the_token_verifies(hsm_pki: PKI) -> None:
    firmware = b"\x7fELF evpki firmware on an HSM\n" * 500
    chunks = [firmware[i : i + 1000] for i in range(0, len(firmware), 1000)]
    signed = hsm_pki.firmware.sign(chunks, location="https://fw.example.com/x.bin", actor="test")
    result = hsm_pki.firmware.verify(chunks, signature=signed.signature, certificate=signed.certificate_pem)
    assert result.sha256 == signed.sha256


# -- the key store itself ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit_store(softhsm: str):  # type: ignore[no-untyped-def]
    from pki.keys.pkcs11 import Pkcs11KeyStore

    return Pkcs11KeyStore(softhsm, "evpki-unit", PIN)


@pytest.mark.parametrize("algorithm", ["ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072"])
def test_generated_keys_sign_and_verify(unit_store, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import padding

    signer = unit_store.generate(f"unit-{algorithm}", algorithm)
    assert unit_store.exists(f"unit-{algorithm}")
    public = signer.public_key()
    data = b"signed on the token"
    if isinstance(public, ec.EllipticCurvePublicKey):
        digest = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[public.curve.key_size]
        public.verify(signer.sign_bytes(data, rsa_pss=False), data, ec.ECDSA(digest))
    else:
        public.verify(signer.sign_bytes(data, rsa_pss=False), data, padding.PKCS1v15(), hashes.SHA256())
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public.verify(signer.sign_bytes(data, rsa_pss=True), data, pss, hashes.SHA256())
    # A store opened afresh finds the key by its id.
    from pki.keys.pkcs11 import Pkcs11KeyStore

    again = Pkcs11KeyStore(unit_store._token.module, "evpki-unit", PIN).load(f"unit-{algorithm}")
    assert again.public_key() == public


def test_private_keys_are_sensitive_and_never_extractable(unit_store) -> None:  # type: ignore[no-untyped-def]
    import pkcs11
    from pkcs11 import Attribute

    unit_store.generate("unit-secret", "ec-p256")
    private = unit_store._token.private_key("unit-secret")
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    assert private[Attribute.NEVER_EXTRACTABLE] is True
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        private[Attribute.VALUE]


def test_keys_are_never_replaced_and_eddsa_is_refused(unit_store) -> None:  # type: ignore[no-untyped-def]
    unit_store.generate("unit-once", "ec-p256")
    with pytest.raises(Conflict, match="never replaced"):
        unit_store.generate("unit-once", "ec-p256")
    with pytest.raises(InvalidInput, match="PKCS#11"):
        unit_store.generate("unit-ed", "ed25519")
    assert not unit_store.exists("unit-missing")


def test_a_forked_child_signs_with_the_parents_store(unit_store) -> None:  # type: ignore[no-untyped-def]
    signer = unit_store.generate("unit-fork", "ec-p256")
    signer.sign_bytes(b"parent", rsa_pss=False)
    pid = os.fork()
    if pid == 0:  # the child reinitialises the module (PKCS#11 requires it) and finds the key again
        try:
            signature = signer.sign_bytes(b"child", rsa_pss=False)
            signer.public_key().verify(signature, b"child", ec.ECDSA(hashes.SHA256()))
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    signer.public_key().verify(signer.sign_bytes(b"again", rsa_pss=False), b"again", ec.ECDSA(hashes.SHA256()))


def test_wrong_pin_is_unavailable_with_a_clear_message(softhsm: str) -> None:
    from pki.keys.pkcs11 import Pkcs11KeyStore

    with pytest.raises(Unavailable, match="wrong PIN"):
        Pkcs11KeyStore(softhsm, "evpki-pin", "9999").exists("anything")


def test_missing_module_or_token_is_unavailable(softhsm: str, tmp_path: Path) -> None:
    from pki.keys.pkcs11 import Pkcs11KeyStore

    with pytest.raises(Unavailable, match="PKCS#11 module"):
        Pkcs11KeyStore(str(tmp_path / "no-such-module.so"), "evpki", PIN).exists("anything")
    with pytest.raises(Unavailable, match="no PKCS#11 token labelled"):
        Pkcs11KeyStore(softhsm, "no-such-token", PIN).exists("anything")


def test_pin_settings(tmp_path: Path) -> None:
    from pki.keys import open_key_store

    pin_file = tmp_path / "pin"
    pin_file.write_text("4321\n")
    pin_file.chmod(0o644)
    settings = Settings(home=tmp_path, keystore="pkcs11", pkcs11_module="/x.so", pkcs11_pin_file=pin_file)
    with pytest.raises(Unavailable, match="readable by others"):
        settings.pkcs11_user_pin()
    pin_file.chmod(0o600)
    assert settings.pkcs11_user_pin() == "4321"
    assert "4321" not in repr(Settings(home=tmp_path, pkcs11_pin=SecretStr("4321")))
    with pytest.raises(Unavailable, match="EVPKI_PKCS11_MODULE"):
        open_key_store(Settings(home=tmp_path, keystore="pkcs11"))
    with pytest.raises(Unavailable, match="no PKCS#11 PIN"):
        Settings(home=tmp_path).pkcs11_user_pin()


def test_cli_init_builds_the_default_hierarchy_on_the_token(
    softhsm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app

    url, name = database_url(tmp_path)
    env = {
        "EVPKI_HOME": str(tmp_path),
        "EVPKI_DATABASE_URL": url,
        "EVPKI_PKCS11_MODULE": softhsm,
        "EVPKI_PKCS11_TOKEN_LABEL": "evpki-cli",
        "EVPKI_PKCS11_PIN": PIN,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("EVPKI_KEY_PASSPHRASE", raising=False)
    try:
        result = CliRunner().invoke(app, ["init", "--org", ORG, "--keystore", "pkcs11"])
        assert result.exit_code == 0, result.output
        assert "keys: pkcs11" in result.output
        assert not (tmp_path / "keys").exists()
        monkeypatch.setenv("EVPKI_KEYSTORE", "pkcs11")
        instance = PKI.open(Settings())
        try:
            assert len(instance.cas.list()) >= 14
            assert instance.settings.keystore == "pkcs11"
            _issue_station(instance)
        finally:
            instance.close()
    finally:
        drop_database(name)


@requires_openssl
def test_a_ca_under_an_external_parent_requests_and_installs_with_its_key_on_the_token(
    softhsm: str, tmp_path: Path
) -> None:
    """The request is signed on the token (RSA-PSS here, the hardest shape) and openssl verifies it."""
    from tests.foreign_operator import CORPORATE, default_hierarchy_with_external_parents, pem

    toml = _hierarchy("rsa-3072-pss").replace('parent = "cso-root"', "external_parent = true")
    blocks = [b for b in toml.split("\n[") if not b.startswith("ca.cso-root]")]
    config = tmp_path / "hierarchy.toml"
    config.write_text("\n[".join(blocks), encoding="utf-8")
    assert "external_parent" in default_hierarchy_with_external_parents()
    url, name = database_url(tmp_path)
    pki = PKI.open(hsm_settings(tmp_path, url, softhsm, "evpki-foreign"))
    try:
        report = pki.cas.init(config=config, organization=ORG, actor="test")
        assert report.awaiting == ("cso-sub",)
        request = pki.cas.request("cso-sub").csr_pem
        (tmp_path / "cso-sub.csr").write_text(request)
        result = run_openssl("req", "-in", str(tmp_path / "cso-sub.csr"), "-verify", "-noout", "-text")
        assert result.returncode == 0, result.stderr
        assert "rsassaPss" in result.stdout
        installed = pki.cas.install(
            "cso-sub", pem(CORPORATE.sign(request, days=365, start=pki.clock.now())), chain=CORPORATE.chain_pem()
        )
        assert installed.created == ("csms-server",)
        assert not list(tmp_path.glob("keys/*.key"))  # nothing but the token holds keys
        _issue_station(pki)
    finally:
        pki.close()
        drop_database(name)
