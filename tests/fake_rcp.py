"""A fake OPCP Root Certificate Pool on a real HTTP server on 127.0.0.1 (a free port, a daemon thread).

It implements what ``rcp.v1.json`` and ``accessToken.v1.json`` publish: ``POST /oauth/token``
(client credentials, JSON body), ``GET /v1/root/rootCerts`` (optionally ``?rootType=``),
``GET /v1/root/rootCerts/{id}``, and the admin ``PUT /v1/root/rootCerts`` and ``DELETE
/v1/root/rootCerts/{id}`` a test uses to change the pool. Every JSON request it receives and
every JSON answer it sends is checked against the published schemas, read from
``../shared/reference/opcp`` beside the checkout (or ``EVPKI_OPCP_REFERENCE``) when the pool starts; what
breaks them is collected in :attr:`FakeRcp.schema_errors`. ``opcp_reference()`` is None when the
folder is absent, so the tests can skip with the reason.

Misbehaviour on demand (``FakeRcp.listing_body``, ``listing_status``, ``token_status``,
``omit_length``) makes the malformed, oversized and refused answers a client must survive.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.conftest import OPCP_REFERENCE

__all__ = ["FakeRcp", "expired_at", "fake_rcp", "opcp_reference", "pool_entry"]

ROOT_TYPES = ("MO", "V2G", "OEM", "PE")


def opcp_reference() -> Path | None:
    folder = OPCP_REFERENCE
    needed = ("rcp.v1.json", "accessToken.v1.json", "cps.v1.json")
    return folder if all((folder / name).is_file() for name in needed) else None


class _Schemas:
    """Validators for the published request and response bodies."""

    def __init__(self, folder: Path) -> None:
        rcp = json.loads((folder / "rcp.v1.json").read_text())
        # The published RootCertV2 requires rootType and caCertificate yet sets maxProperties 1, which
        # every example it gives breaks; the fake is held to the rest of the schema.
        schemas = rcp["components"]["schemas"]
        schemas["RootCertV2"].pop("maxProperties", None)
        token = json.loads((folder / "accessToken.v1.json").read_text())
        cps = json.loads((folder / "cps.v1.json").read_text())
        rcp_uri, cps_uri = (folder / "rcp.v1.json").as_uri(), (folder / "cps.v1.json").as_uri()
        registry = Registry().with_resources(
            [(rcp_uri, Resource(rcp, DRAFT7)), (cps_uri, Resource(cps, DRAFT7))]  # type: ignore[arg-type]
        )

        def at(pointer: str) -> Draft7Validator:
            return Draft7Validator({"$ref": f"{rcp_uri}#{pointer}"}, registry=registry)

        issue = token["paths"]["/oauth/token"]["post"]
        json_body = ("content", "application/json", "schema")
        self.token_request = Draft7Validator(_dig(issue["requestBody"], json_body))
        self.token_answer = Draft7Validator(_dig(issue["responses"]["200"], json_body))
        self.token_refusal = Draft7Validator(_dig(issue["responses"]["401"], json_body))
        self.listing = at("/components/schemas/GetAllRootCertsResponseV1")
        self.one = at("/components/schemas/GetRootCertResponseV1")
        lookup = rcp["paths"]["/v1/root/rootCerts/{rootCertificateId}"]["get"]
        not_found = _dig(lookup["responses"]["404"], json_body)["$ref"]  # ./cps.v1.json#/components/schemas/Error
        self.not_found = Draft7Validator({"$ref": urljoin(rcp_uri, not_found)}, registry=registry)
        put = rcp["paths"]["/v1/root/rootCerts"]["put"]
        self.put_request = Draft7Validator(_dig(put["requestBody"], json_body))


def _dig(node: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def pool_entry(certificate: x509.Certificate, root_type: str, identifier: str | None = None) -> dict[str, Any]:
    """A root certificate object (RootCertV2) with the informative fields an RCP fills in."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    organizations = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    entry: dict[str, Any] = {
        "rootCertificateId": identifier or str(uuid.uuid4()),
        "distinguishedName": certificate.subject.rfc4514_string(),
        "rootType": root_type,
        "caCertificate": base64.b64encode(der).decode(),
        "rootIssuerSerialNumber": f"{certificate.serial_number:x}",
        "validFrom": certificate.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "validTo": certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fingerprint": hashlib.sha256(der).hexdigest(),
    }
    if names:
        entry["commonName"] = str(names[0].value)
    if organizations:
        entry["organizationName"] = str(organizations[0].value)
    return entry


@dataclass
class FakeRcp:
    client_id: str = "evpki-test-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    roots: list[dict[str, Any]] = field(default_factory=list)
    listing_body: bytes | None = None  # sent instead of the listing (malformed, oversized)
    listing_status: int | None = None  # answered instead of 200 for the listing
    token_status: int | None = None  # answered instead of 200 for the token
    omit_length: bool = False  # send the listing without Content-Length (read until the connection closes)
    schema_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    url: str = ""
    _tokens: dict[str, str] = field(default_factory=dict)  # token -> role
    _schemas: _Schemas | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def add(self, certificate: x509.Certificate, root_type: str = "V2G", **fields: Any) -> dict[str, Any]:
        entry = pool_entry(certificate, root_type) | fields
        with self._lock:
            self.roots.append(entry)
        return entry

    def delete(self, identifier: str) -> None:
        with self._lock:
            self.roots = [entry for entry in self.roots if entry["rootCertificateId"] != identifier]

    def _check(self, validator: Draft7Validator, value: Any, what: str) -> None:
        for error in validator.iter_errors(value):
            self.schema_errors.append(f"{what}: {error.message} at {list(error.absolute_path)}")


def _handler(pool: FakeRcp) -> type[BaseHTTPRequestHandler]:
    schemas = pool._schemas
    assert schemas is not None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            if body:
                self.send_header("Content-Type", content_type)
            if pool.omit_length and body:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client stops reading an oversized body, as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def _json(self, status: int, value: Any, validator: Draft7Validator | None, what: str) -> None:
            if validator is not None:
                pool._check(validator, value, what)
            self._send(status, json.dumps(value).encode())

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1 << 20))
            try:
                return json.loads(raw)
            except ValueError:
                return None

        def _role(self) -> str | None:
            header = self.headers.get("Authorization", "")
            return pool._tokens.get(header[7:]) if header.startswith("Bearer ") else None

        def do_POST(self) -> None:
            pool.requests.append(f"POST {self.path}")
            if urlsplit(self.path).path != "/oauth/token":
                self._send(404)
                return
            body = self._body()
            pool._check(schemas.token_request, body, "token request")
            if pool.token_status is not None:
                refusal = {"error": "access_denied", "error_description": "refused by the test"}
                self._json(pool.token_status, refusal, schemas.token_refusal, "token refusal")
                return
            secret = body.get("client_secret") if isinstance(body, dict) else None
            known = isinstance(body, dict) and body.get("client_id") == pool.client_id
            role = "admin" if secret == pool.admin_secret else "reader" if secret == pool.client_secret else None
            if not known or role is None or body.get("grant_type") != "client_credentials":
                refusal = {"error": "access_denied", "error_description": "Unauthorized"}
                self._json(401, refusal, schemas.token_refusal, "token refusal")
                return
            token = secrets.token_urlsafe(32)
            pool._tokens[token] = role
            answer = {"access_token": token, "scope": "rcpservice", "expires_in": 86400, "token_type": "Bearer"}
            self._json(200, answer, schemas.token_answer, "token answer")

        def do_GET(self) -> None:
            pool.requests.append(f"GET {self.path}")
            parts = urlsplit(self.path)
            if self._role() is None:
                self._send(401)  # rcp.v1.json: 401 Unauthorized, no body
                return
            if parts.path == "/v1/root/rootCerts":
                if pool.listing_status is not None:
                    self._send(pool.listing_status)
                    return
                if pool.listing_body is not None:
                    self._send(200, pool.listing_body)
                    return
                wanted = parse_qs(parts.query).get("rootType", [None])[0]
                with pool._lock:
                    entries = [e for e in pool.roots if wanted is None or e["rootType"].lower() == wanted]
                listing = {"RootCertificateCollection": {"rootCertificates": copy.deepcopy(entries)}}
                self._json(200, listing, schemas.listing, "root listing")
                return
            prefix = "/v1/root/rootCerts/"
            if parts.path.startswith(prefix):
                identifier = parts.path[len(prefix) :]
                found = next((e for e in pool.roots if e["rootCertificateId"] == identifier), None)
                if found is None:
                    error = {"errorMessages": ["Root certificate with the given ID is not found"],
                             "traceId": str(uuid.uuid4())}  # fmt: skip
                    self._json(404, error, schemas.not_found, "root not found")
                else:
                    self._json(200, {"RootResponse": found}, schemas.one, "one root")
                return
            self._send(404)

        def do_PUT(self) -> None:
            pool.requests.append(f"PUT {self.path}")
            if self._role() != "admin":
                self._send(403 if self._role() else 401)
                return
            body = self._body()
            pool._check(schemas.put_request, body, "saveRootCa request")
            if not isinstance(body, dict) or body.get("rootType") not in ROOT_TYPES:
                self._send(400)
                return
            certificate = x509.load_der_x509_certificate(base64.b64decode(body["caCertificate"]))
            pool.add(certificate, body["rootType"])
            self._send(200)

        def do_DELETE(self) -> None:
            pool.requests.append(f"DELETE {self.path}")
            if self._role() != "admin":
                self._send(403 if self._role() else 401)
                return
            identifier = urlsplit(self.path).path.rsplit("/", 1)[-1]
            if not any(e["rootCertificateId"] == identifier for e in pool.roots):
                self._send(404)
                return
            pool.delete(identifier)
            self._send(200)

    return Handler


@contextmanager
def fake_rcp(reference: Path | None = None) -> Iterator[FakeRcp]:
    """A running fake pool; it stops when the block ends (and never outlives the process: a daemon thread)."""
    folder = reference or opcp_reference()
    if folder is None:
        raise RuntimeError("the OPCP reference folder is absent; call opcp_reference() first and skip")
    pool = FakeRcp(_schemas=_Schemas(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(pool))
    server.daemon_threads = True
    pool.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield pool
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def expired_at(days_ago: int = 1) -> str:
    """A ``validTo`` in the past, as an RCP writes it."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
