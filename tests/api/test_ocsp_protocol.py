"""``/ocsp`` inside uvicorn's HTTP protocol (``api.ocsp_protocol``), over real sockets.

A uvicorn server with :class:`OcspHttpToolsProtocol` runs on 127.0.0.1 in a thread; raw HTTP/1.1
goes in, so what is checked is what a client gets on the wire: the same answers as the ASGI path
(which httpx's ASGITransport drives here, with no socket), keep-alive and ``Connection: close``,
pipelining in order (also behind a request that goes through ASGI), the body limit, chunked bodies,
``If-None-Match``, and a 500 for an unexpected error. ``openssl ocsp`` against ``evpki serve`` (which
runs this protocol) is in ``tests/interop/test_live_server.py``.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from prometheus_client import REGISTRY

from api import metrics
from api.app import create_app
from api.ocsp_protocol import OcspHttpToolsProtocol, ocsp_endpoint_of
from pki import PKI, RequestIdentity
from tests.conftest import make_csr

_VOLATILE = {b"date", b"x-request-id", b"expires", b"server"}  # differ between two answers


def _station(pki: PKI) -> x509.Certificate:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    view = pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station_id))
    return x509.load_pem_x509_certificate(view.certificate.certificate_pem.encode())


def _request(pki: PKI, cert: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, pki.cas.chain("cso-sub")[0], hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


class _Server:
    def __init__(self, pki: PKI) -> None:
        self.app = create_app(pki)
        self.app.state.pki = pki  # what the lifespan would do; lifespan off: no upkeep loop here
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app, http=OcspHttpToolsProtocol, loop="uvloop", lifespan="off", log_config=None,
            access_log=False, timeout_keep_alive=5,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.through_asgi = 0  # /ocsp requests the ASGI path answered
        endpoint = self.app.ocsp_endpoint
        answer = endpoint._answer

        async def counted(*args: Any) -> None:
            self.through_asgi += 1
            await answer(*args)

        endpoint._answer = counted  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture
def server(fresh_pki: PKI) -> Iterator[_Server]:
    with _Server(fresh_pki) as running:
        yield running


def _post(der: bytes, *headers: str, version: str = "1.1") -> bytes:
    head = [f"POST /ocsp HTTP/{version}", "Host: evpki.test", "Content-Type: application/ocsp-request",
            f"Content-Length: {len(der)}", *headers]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + der


class _Reader:
    """HTTP/1.1 responses read off one socket, one after another (Content-Length bodies)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self) -> tuple[int, dict[bytes, bytes], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "connection closed before a response"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, value = line.split(b":", 1)
            assert name.lower() not in headers, f"header {name!r} twice"
            headers[name.lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buffer) < length:
            assert self._fill(), "connection closed inside a body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        self.sock.settimeout(5)
        return not self.buffer and not self._fill()


def _stable(headers: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {name: value for name, value in headers.items() if name not in _VOLATILE}


def test_the_protocol_finds_the_endpoint_under_uvicorn_middleware(fresh_pki: PKI) -> None:
    app = create_app(fresh_pki)

    class Wrapper:
        def __init__(self, inner: Any) -> None:
            self.app = inner

    assert ocsp_endpoint_of(Wrapper(Wrapper(app))) is app.ocsp_endpoint
    assert ocsp_endpoint_of(Wrapper(object())) is None


@pytest.mark.asyncio
async def test_answers_on_the_wire_equal_the_asgi_path_post_get_304_nonce(server: _Server, fresh_pki: PKI) -> None:
    cert = _station(fresh_pki)
    der = _request(fresh_pki, cert)
    encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://evpki.test") as asgi:
        via_asgi = await asgi.post("/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"})
        via_asgi_get = await asgi.get(f"/ocsp/{encoded}")
    with server.connect() as sock:
        reader = _Reader(sock)
        sock.sendall(_post(der, "X-Request-Id: trace-0001"))
        status, headers, body = reader.response()
        assert status == 200 and body == via_asgi.content
        assert ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
        asgi_headers = {name.encode(): value.encode() for name, value in via_asgi.headers.items()}
        assert _stable(headers) == _stable(asgi_headers)
        assert headers[b"x-request-id"] == b"trace-0001" and headers[b"date"] and headers[b"server"] == b"uvicorn"
        assert b"max-age=300" in headers[b"cache-control"] and headers[b"expires"]
        # GET, URL-encoded base64, on the same kept-alive connection
        sock.sendall(f"GET /ocsp/{encoded} HTTP/1.1\r\nHost: evpki.test\r\n\r\n".encode())
        status, got_headers, got = reader.response()
        assert status == 200 and got == via_asgi_get.content == body
        assert len(got_headers[b"x-request-id"]) == 32  # made here: none was sent
        etag = headers[b"etag"].decode()
        sock.sendall(f"GET /ocsp/{encoded} HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode())
        status, not_modified, empty = reader.response()
        assert status == 304 and empty == b"" and not_modified[b"etag"] == headers[b"etag"]
        sock.sendall(_post(_request(fresh_pki, cert, b"n" * 16)))
        status, nonce_headers, signed = reader.response()
        assert status == 200 and nonce_headers[b"cache-control"] == b"no-store"
        echoed = ocsp.load_der_ocsp_response(signed).extensions.get_extension_for_class(x509.OCSPNonce)
        assert echoed.value.nonce == b"n" * 16
        sock.sendall(_post(b"\x30\x03\x02\x01\x01"))
        status, _, garbage = reader.response()
        assert ocsp.load_der_ocsp_response(garbage).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert server.through_asgi == 2  # the two httpx requests; none of the socket's


def test_pipelined_requests_are_answered_in_order_also_behind_an_asgi_request(server: _Server, fresh_pki: PKI) -> None:
    certs = [_station(fresh_pki) for _ in range(3)]
    requests = [_request(fresh_pki, cert) for cert in certs]
    with server.connect() as sock:
        reader = _Reader(sock)
        health = b"GET /healthz HTTP/1.1\r\nHost: evpki.test\r\n\r\n"
        sock.sendall(_post(requests[0]) + health + _post(requests[1]) + _post(requests[2]))
        answers = [reader.response() for _ in range(4)]
    assert [status for status, _, _ in answers] == [200] * 4
    assert answers[1][1][b"content-type"].startswith(b"application/json")  # /healthz, through FastAPI
    serials = [ocsp.load_der_ocsp_response(answers[i][2]).serial_number for i in (0, 2, 3)]
    assert serials == [cert.serial_number for cert in certs]
    assert server.through_asgi == 2  # the two behind /healthz waited their turn in uvicorn's pipeline


def test_http_1_0_and_connection_close_close_after_the_answer(server: _Server, fresh_pki: PKI) -> None:
    der = _request(fresh_pki, _station(fresh_pki))
    for request in (_post(der, version="1.0"), _post(der, "Connection: close")):
        with server.connect() as sock:
            reader = _Reader(sock)
            sock.sendall(request)
            status, headers, body = reader.response()
            assert status == 200 and headers[b"connection"] == b"close"
            assert ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
            assert reader.closed()


def test_oversized_and_chunked_bodies_go_through_asgi(server: _Server, fresh_pki: PKI) -> None:
    der = _request(fresh_pki, _station(fresh_pki))
    with server.connect() as sock:
        reader = _Reader(sock)
        sock.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        status, headers, body = reader.response()
        assert status == 413 and headers[b"content-type"] == b"application/problem+json" and b"exceeds" in body
    with server.connect() as sock:
        reader = _Reader(sock)
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(der), der)
        sock.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        status, _, body = reader.response()
        assert status == 200 and ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert server.through_asgi == 2


def _answered_500() -> float:
    metrics.flush()
    labels = {"method": "POST", "route": "/ocsp", "status": "500"}
    return REGISTRY.get_sample_value("evpki_http_request_duration_seconds_count", labels) or 0.0


def test_an_unexpected_error_is_a_500_problem_and_counted(
    server: _Server, fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    der = _request(fresh_pki, _station(fresh_pki))

    def broken(_der: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fresh_pki.ocsp, "respond", broken)
    before = _answered_500()
    with server.connect() as sock:
        reader = _Reader(sock)
        sock.sendall(_post(der, "X-Request-Id: broken-1"))
        status, headers, body = reader.response()
        assert status == 500 and headers[b"x-request-id"] == b"broken-1"
        assert b"internal-error" in body and b"boom" not in body
        monkeypatch.undo()
        sock.sendall(_post(der))  # the connection still serves
        assert reader.response()[0] == 200
    assert _answered_500() == before + 1
