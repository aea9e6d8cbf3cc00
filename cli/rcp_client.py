"""The HTTP side of ``evpki trust sync``: an OAuth2 client-credentials token, then the root listing
of an OPCP Root Certificate Pool, handed to ``pki.trust.sync`` as decoded JSON.

OPCP ``04_authentication.md`` / ``accessToken.v1.json``: ``POST`` the token endpoint with a JSON
body of ``client_id``, ``client_secret``, ``audience`` and ``grant_type=client_credentials``;
the answer's ``access_token`` is a Bearer token (RFC 6750 §2.1). ``rcp.v1.json``: ``GET
/v1/root/rootCerts`` (getAllRootCerts) answers ``RootCertificateCollection.rootCertificates``.

Everything the network sends is untrusted: bodies are read up to a limit (the token answer
64 KiB, the listing the trust store's 4 MiB) and the whole exchange has a deadline, so a server
that drips bytes cannot hold a cron job for ever. Redirects are not followed (the credentials
and the token would go wherever the answer points). Plain ``http`` is refused except to a
loopback address: the client secret travels in the body.

Errors are the domain's: :class:`Unauthenticated` (401/403: the credentials or the token were
refused), :class:`Unavailable` (cannot connect, timed out, a 5xx or another status),
:class:`InvalidInput` (a body too large, not JSON, or a token answer without a Bearer token).
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pki.ca import MAX_TRUST_FILE_BYTES
from pki.core import InvalidInput, Unauthenticated, Unavailable

__all__ = [
    "MAX_TOKEN_BYTES",
    "ROOT_LISTING_PATH",
    "TOKEN_PATH",
    "RcpClient",
    "check_url",
    "read_client_secret",
]

TOKEN_PATH = "/oauth/token"  # noqa: S105 - the OPCP token endpoint path, not a secret
ROOT_LISTING_PATH = "/v1/root/rootCerts"
MAX_TOKEN_BYTES = 64 << 10
_MAX_SECRET_BYTES = 4096
_LOOPBACK_NAMES = frozenset({"localhost"})


def _printable(text: str, limit: int = 200) -> str:
    """What a remote server said, safe for one line of a terminal or a log."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned[:limit] + ("..." if len(cleaned) > limit else "")


def check_url(url: str, what: str) -> str:
    """``url`` without a trailing slash; https, or http only to a loopback address."""
    if len(url) > 2000:
        raise InvalidInput(f"{what}: a URL of at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"{what} {_printable(url)!r}: an https:// URL")
    if parts.username or parts.password:
        raise InvalidInput(f"{what}: credentials belong in --client-secret-file, not in the URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidInput(f"{what} {_printable(url)!r}: plain http is refused except to a loopback address")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_client_secret(path: Path) -> str:
    """The OAuth2 client secret from a file that only its owner can read (like the key passphrase file)."""
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidInput(f"client secret file {path} is readable by others; chmod 600 it")
        with path.open("rb") as handle:
            data = handle.read(_MAX_SECRET_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(f"client secret file {path} does not exist") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read client secret file {path}: {exc.strerror}") from None
    if len(data) > _MAX_SECRET_BYTES:
        raise InvalidInput(f"client secret file {path} is larger than {_MAX_SECRET_BYTES} bytes")
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInput(f"client secret file {path} is not UTF-8 text") from None
    if not secret:
        raise InvalidInput(f"client secret file {path} is empty")
    return secret


@dataclass(frozen=True, slots=True)
class RcpClient:
    """One Root Certificate Pool and the credentials to read it."""

    rcp_url: str
    client_id: str
    client_secret: str
    token_url: str | None = None  # default: the RCP's own /oauth/token
    audience: str | None = None  # default: the RCP URL ("URL of the stage and world region")
    timeout: float = 30.0  # seconds for the whole exchange (token and listing)
    verify: str | bool = True  # a CA bundle file, or the system's trust

    def fetch_root_listing(self) -> Any:
        """The decoded ``GET /v1/root/rootCerts`` answer; raises the errors of the module docstring."""
        base = check_url(self.rcp_url, "--rcp")
        token_url = check_url(self.token_url, "--token-url") if self.token_url else base + TOKEN_PATH
        if not self.client_id or len(self.client_id) > 1000:
            raise InvalidInput("--client-id: 1 to 1000 characters")
        deadline = time.monotonic() + self.timeout
        timeout = httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))
        try:
            with httpx.Client(timeout=timeout, verify=self.verify, follow_redirects=False, trust_env=False) as client:
                token = self._token(client, token_url, base, deadline)
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
                listing_url = base + ROOT_LISTING_PATH
                status, body = _get_limited(client, "GET", listing_url, deadline, MAX_TRUST_FILE_BYTES, headers=headers)
        except httpx.TimeoutException:
            raise Unavailable(f"the Root Certificate Pool did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot reach the Root Certificate Pool: {_printable(str(exc)) or type(exc).__name__}"
            ) from None
        _check_status(status, body, "the Root Certificate Pool", "the access token", (401, 403))
        return _json(body, "the Root Certificate Pool's root listing")

    def _token(self, client: httpx.Client, token_url: str, audience: str, deadline: float) -> str:
        payload = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "audience": self.audience or audience,
            "grant_type": "client_credentials",
        }
        status, body = _get_limited(
            client, "POST", token_url, deadline, MAX_TOKEN_BYTES, headers={"Accept": "application/json"}, json=payload
        )
        # OPCP accessToken: 400 is missing or wrong information (the audience), 401 the credentials.
        _check_status(status, body, "the token endpoint", "the client credentials", (400, 401, 403))
        answer = _json(body, "the token endpoint's answer")
        token = answer.get("access_token") if isinstance(answer, dict) else None
        kind = answer.get("token_type", "Bearer") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or len(token) > 16384:
            raise InvalidInput("the token endpoint's answer holds no access_token")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise InvalidInput(f"the token endpoint issued a {_printable(str(kind))!r} token; a Bearer token is needed")
        if any(ch.isspace() or not ch.isprintable() for ch in token):
            raise InvalidInput(
                "the token endpoint's access_token is not a token (it holds spaces or control characters)"
            )
        return token


def _get_limited(
    client: httpx.Client, method: str, url: str, deadline: float, limit: int, **kwargs: Any
) -> tuple[int, bytes]:
    """Status and body of one request, the body read up to ``limit`` bytes and before ``deadline``."""
    with client.stream(method, url, **kwargs) as response:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise InvalidInput(f"{url} answered {declared} bytes; at most {limit} are read")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise InvalidInput(f"{url} answered more than {limit} bytes; at most {limit} are read")
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("deadline passed", request=response.request)
            chunks.append(chunk)
        return response.status_code, b"".join(chunks)


def _check_status(status: int, body: bytes, who: str, credentials: str, refusals: tuple[int, ...]) -> None:
    if status == 200:
        return
    said = _error_text(body)
    detail = f" ({said})" if said else ""
    if status in refusals:
        raise Unauthenticated(f"{who} refused {credentials}: HTTP {status}{detail}")
    if 300 <= status < 400:
        raise Unavailable(f"{who} answered a redirect (HTTP {status}); pass the final URL")
    raise Unavailable(f"{who} answered HTTP {status}{detail}")


def _error_text(body: bytes) -> str:
    """The reason of an OAuth2 (``error``, ``error_description``) or OPCP (``errorMessages``) error body."""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(answer, dict):
        return ""
    parts = [answer.get("error"), answer.get("error_description")]
    messages = answer.get("errorMessages")
    if isinstance(messages, list):
        parts.extend(messages[:3])
    return _printable(": ".join(part for part in parts if isinstance(part, str) and part))


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput(f"{what} is not JSON") from None
