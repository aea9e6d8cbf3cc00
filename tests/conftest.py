"""Shared fixtures: a data dir and an initialised hierarchy once per session, fresh ones on demand.

With ``EVPKI_TEST_DATABASE_URL`` set (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``)
every PKI the tests build lives in its own throw-away PostgreSQL database on that server;
otherwise in a SQLite file under the test's temporary directory.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pki import PKI, Settings
from pki.core.clock import FixedClock

TEST_PASSPHRASE = "evpki-test-passphrase"
ORG = "Test CSO GmbH"
TEST_CERTS = Path(__file__).resolve().parents[1] / "test_certs"  # the committed reference PKI and vectors
# The reference copy of OPCP's published specs, beside the checkout (../shared/reference/opcp) unless
# EVPKI_OPCP_REFERENCE names it; the tests that read it skip, saying so, where it is absent.
OPCP_REFERENCE = Path(
    os.environ.get("EVPKI_OPCP_REFERENCE") or Path(__file__).resolve().parents[2] / "shared" / "reference" / "opcp"
)
PG_URL = os.environ.get("EVPKI_TEST_DATABASE_URL")
# The CA ids DESIGN.md fixes for the default hierarchy, stated here independently of the TOML.
DEFAULT_CA_IDS = frozenset(
    {
        "cso-root",
        "cso-sub",
        "mf-root",
        "v2g-root",
        "cpo-sub1",
        "cpo-sub2",
        "cps-sub1",
        "cps-sub2",
        "mo-root",
        "mo-sub1",
        "mo-sub2",
        "oem-root",
        "oem-sub1",
        "oem-sub2",
    }
)


def _admin_engine():  # type: ignore[no-untyped-def]
    url = make_url(PG_URL).set(database="postgres")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def database_url(home: Path) -> tuple[str, str | None]:
    """A fresh database URL and, for PostgreSQL, the database name to drop afterwards."""
    if not PG_URL:
        return f"sqlite:///{home / 'evpki.db'}", None
    name = f"evpki_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), name


def drop_database(name: str | None) -> None:
    if name is None:
        return
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def make_settings(home: Path, url: str) -> Settings:
    return Settings(
        home=home,
        database_url=url,
        key_passphrase=TEST_PASSPHRASE,  # type: ignore[arg-type]
        public_url="http://127.0.0.1:8080",
    )


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = tmp_path_factory.mktemp("evpki-home")
    url, name = database_url(home)
    yield home, url
    drop_database(name)


@pytest.fixture(scope="session")
def pki(session_home: tuple[Path, str]) -> Iterator[PKI]:
    """One initialised default hierarchy for the whole session (read-mostly tests)."""
    home, url = session_home
    instance = PKI.open(make_settings(home, url))
    instance.cas.init(organization=ORG, actor="test")
    yield instance
    instance.close()


# The fresh hierarchies' clock: noon 90 days ago, so that what they hold (the CPS leaf lives a year) is
# still current for the real-clock processes some tests start (evpki serve, evpki bridge) on any date,
# and a test may move its clock weeks back from today and still be after the CAs were made.
FRESH_EPOCH = dt.datetime.combine(dt.date.today() - dt.timedelta(days=90), dt.time(12), tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def _fresh_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str | None]]:
    """An initialised hierarchy made once; every ``fresh_pki`` is a copy of it (keys and database)."""
    home = tmp_path_factory.mktemp("evpki-template")
    url, name = database_url(home)
    instance = PKI.open(make_settings(home, url), clock=FixedClock(FRESH_EPOCH))
    instance.cas.init(organization=ORG, actor="test")
    instance.close()
    yield home, name
    drop_database(name)


def _copy_database(template: tuple[Path, str | None], home: Path) -> tuple[str, str | None]:
    template_home, template_db = template
    shutil.copytree(template_home / "keys", home / "keys")
    if template_db is None:
        for path in template_home.glob("evpki.db*"):
            shutil.copy2(path, home / path.name)
        return f"sqlite:///{home / 'evpki.db'}", None
    name = f"evpki_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    engine.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), name  # type: ignore[arg-type]


@pytest.fixture
def fresh_pki(tmp_path: Path, _fresh_template: tuple[Path, str | None]) -> Iterator[PKI]:
    """A new initialised hierarchy of its own, with a clock the test controls (``fresh_pki.clock``).

    It is a copy of a template made once per session, so it costs milliseconds, not key generation.
    """
    url, name = _copy_database(_fresh_template, tmp_path)
    instance = PKI.open(make_settings(tmp_path, url), clock=FixedClock(FRESH_EPOCH))
    yield instance
    instance.close()
    drop_database(name)


def make_csr(
    common_name: str,
    *,
    organization: str | None = ORG,
    country: str | None = None,
    dc: str | None = None,
    key: object | None = None,
    dns: tuple[str, ...] = (),
) -> tuple[str, object]:
    """A PEM CSR and its private key (P-256 unless ``key`` is given)."""
    private = key or ec.generate_private_key(ec.SECP256R1())
    attrs = []
    if country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if dc:
        attrs.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    algorithm = None if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else hashes.SHA256()
    csr = builder.sign(private, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode(), private


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def run_openssl(*args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args],
        input=input_bytes.decode() if input_bytes else None,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


requires_openssl = pytest.mark.skipif(not openssl_available(), reason="openssl is not installed")


@pytest.fixture(scope="session")
def pki20(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    """The shipped hierarchy with ISO 15118-20 PKIs (``evpki init --iso15118-20``), once per session."""
    from pki.ca import ISO15118_20_HIERARCHY

    home = tmp_path_factory.mktemp("evpki-iso20")
    url, name = database_url(home)
    instance = PKI.open(make_settings(home, url))
    instance.cas.init(config=ISO15118_20_HIERARCHY, organization=ORG, actor="test")
    yield instance
    instance.close()
    drop_database(name)
