"""The EST listener's upkeep: its server certificates are renewed at half-life and new CAs become trusted."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from api.est import EstServer
from pki import PKI


def test_server_certificates_rotate_at_half_life(fresh_pki: PKI, tmp_path: Path) -> None:
    server = EstServer(fresh_pki, port=0, certificate_dir=tmp_path / "est")
    context = server.ssl_context()
    first = {kind: c.serial for kind, c in server.certificates.current.items()}
    assert set(first) == {"ecdsa", "rsa"}
    assert context.verify_mode.name == "CERT_OPTIONAL"  # a first enrollment may come without a certificate
    asyncio.run(server.refresh())
    assert {kind: c.serial for kind, c in server.certificates.current.items()} == first  # not due yet
    fresh_pki.clock.advance(dt.timedelta(hours=13))  # type: ignore[attr-defined]
    asyncio.run(server.refresh())
    renewed = {kind: c.serial for kind, c in server.certificates.current.items()}
    assert all(renewed[kind] != first[kind] for kind in first)
    issued = fresh_pki.certificates.get(renewed["ecdsa"], "cso-sub")
    assert issued.profile == "csms-server" and issued.identity == "localhost"
    assert issued.not_after == fresh_pki.clock.now() + dt.timedelta(hours=24)
