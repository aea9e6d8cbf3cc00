"""HTTP caching of revocation data (RFC 5019 §6.2, RFC 9111): one rule for OCSP and CRLs.

``max-age`` is the time left until nextUpdate, capped by ``ocsp_max_age`` so that no HTTP cache
hides a revocation for longer than that. ``Expires`` follows ``max-age`` rather than nextUpdate,
so HTTP/1.0 caches do not keep a "good" longer than HTTP/1.1 ones would.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from fastapi import Request, Response

__all__ = ["cached_response"]


def _http_date(when: dt.datetime) -> str:
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


def cached_response(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    now: dt.datetime,
    this_update: dt.datetime,
    next_update: dt.datetime,
    etag: str,
    max_age_cap: dt.timedelta,
) -> Response:
    """The body with cache headers, or 304 when the client already holds this entity."""
    max_age = max(int(min((next_update - now).total_seconds(), max_age_cap.total_seconds())), 0)
    headers = {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Expires": _http_date(now + dt.timedelta(seconds=max_age)),
        "Last-Modified": _http_date(this_update),
        "ETag": etag,
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
