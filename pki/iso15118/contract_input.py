"""The contract registry's inputs, checked before anything is stored or looked up.

- An eMAID is kept in the ISO 15118-2 normalised form (``eMAIDType``: 14-15 characters, no
  separators, upper case): :func:`normalise_emaid` accepts any spelling with hyphens.
- A PCID -- the CN of the vehicle's OEM provisioning certificate -- is matched exactly, as the
  certificate carries it (:func:`parse_pcid`).
- Notes are short and free of control characters; instants are timezone-aware and kept in whole
  seconds in UTC.
"""

from __future__ import annotations

import datetime as dt
import re

from pki.ca.policy import EMAID_PATTERN, PCID_PATTERN
from pki.core.errors import InvalidInput

__all__ = [
    "MAX_NOTE_CHARS",
    "checked_instant",
    "checked_note",
    "normalise_emaid",
    "parse_pcid",
]

MAX_NOTE_CHARS = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_emaid(text: str) -> str:
    """``DE-ABC-C123ABC56`` → ``DEABCC123ABC56``; :class:`InvalidInput` unless it is an ISO 15118-2 eMAID."""
    if not isinstance(text, str):
        raise TypeError(f"an eMAID is a str, not {type(text).__name__}")
    normalised = text.strip().replace("-", "").upper()
    if not EMAID_PATTERN.match(normalised):
        raise InvalidInput(
            f"{text!r} is not an eMAID: ISO 15118-2 wants 2 letters (country), 3 letters or digits (provider), "
            "9 letters or digits (instance) and an optional check character, 14-15 in all; hyphens are ignored"
        )
    return normalised


def parse_pcid(text: str) -> str:
    """The PCID as the OEM provisioning certificate's CN carries it (17-18 letters and digits)."""
    if not isinstance(text, str):
        raise TypeError(f"a PCID is a str, not {type(text).__name__}")
    pcid = text.strip()
    if not PCID_PATTERN.match(pcid):
        raise InvalidInput(f"{text!r} is not a PCID: 17-18 letters and digits, no separators")
    return pcid


def checked_note(text: str | None, what: str) -> str | None:
    """The note stripped, None when empty; :class:`InvalidInput` when too long or not one line of text."""
    if text is None:
        return None
    note = text.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"the {what} is {len(note)} characters; at most {MAX_NOTE_CHARS}")
    if _CONTROL.search(note):
        raise InvalidInput(f"the {what} must not contain control characters")
    return note or None


def checked_instant(value: dt.datetime, what: str) -> dt.datetime:
    """A timezone-aware ``value`` as a UTC instant; :class:`InvalidInput` for a naive one."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} is a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{what} must be timezone-aware (e.g. 2027-12-31T23:59:59+00:00)")
    # Whole seconds, like the clock and X.509 times.
    return value.astimezone(dt.UTC).replace(microsecond=0)
