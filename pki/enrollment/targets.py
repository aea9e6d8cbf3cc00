"""Which CA an EST URL names: a CA label (RFC 7030 §3.2.2), the OPCP role paths, or the default.

- ``/.well-known/est/<label>/…``: the label is one of our CA ids that issues certificates
  (``cso-sub``, ``cpo-sub2``, …). Without a label the issuer follows from the credential's profile
  (the one CA that issues it), and ``/cacerts`` gives the chain of the CA that issues station
  certificates: EST's default clients are charging stations.
- OPCP (``shared/reference/opcp/est.v1.json``): ``{ca}`` is a role, ``cpo`` (SECC certificates),
  ``mo`` (contract), ``oem`` (OEM provisioning) or ``cps`` (CPS signing), optionally prefixed
  (``hubject-cpo``); ``{iso-version}`` is ``ISO15118-2`` or ``ISO15118-20`` (any case); the
  cacerts ``{algorithm}`` is ``secp256r1``, ``secp521r1`` or ``ed448``. The CA is ours that issues
  that role's profile in a hierarchy of that edition (and with that key algorithm); there is none
  for ``veh`` (ISO 15118-20 vehicle certificates) or an edition we do not run, which is
  :class:`NotFound`, as an unknown label is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from pki.ca.profiles import ProfileName
from pki.core.algorithms import describe_key
from pki.core.errors import InvalidInput, NotFound
from pki.runtime.context import CaDirectory, CaEntry, Context

__all__ = ["OPCP_ALGORITHMS", "OPCP_ROLES", "Target", "cacerts", "default_target", "label_target", "opcp_target"]

OPCP_ROLES: dict[str, str] = {
    "cpo": ProfileName.SECC.value,
    "mo": ProfileName.CONTRACT.value,
    "oem": ProfileName.OEM_PROVISIONING.value,
    "cps": ProfileName.CPS_LEAF.value,
}
OPCP_ALGORITHMS: dict[str, str] = {"secp256r1": "ec-p256", "secp521r1": "ec-p521", "ed448": "ed448"}
_ISO_VERSIONS = {"iso15118-2": "iso15118-2", "iso15118-20": "iso15118-20"}
_ROLE = re.compile(r"^(?:\w+-)?(mo|cpo|oem|cps|veh)$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Target:
    """Where an enrollment goes: the CA the URL names (None: by profile) and the profile it fixes."""

    ca_id: str | None
    profile: str | None
    name: str  # for messages: "the default CA", "CA cpo-sub2", "OPCP cpo ISO15118-2"


def default_target() -> Target:
    return Target(None, None, "the default CA")


def _directory(ctx: Context, *, fresh: bool = False) -> CaDirectory:
    cached = None if fresh else ctx.cached_ca_directory()
    if cached is not None:
        return cached
    with ctx.database.read() as session:
        return ctx.ca_directory(session.connection())


def label_target(ctx: Context, label: str) -> Target:
    """The CA of ``label``; :class:`NotFound` unless it is one of ours that issues certificates."""
    if not _LABEL.match(label):
        raise NotFound(f"no EST CA label {label[:64]!r}")
    entry = _directory(ctx).cas.get(label) or _directory(ctx, fresh=True).cas.get(label)
    if entry is None or not entry.issues:
        issuing = ", ".join(ca.id for ca in _directory(ctx).cas.values() if ca.issues)
        raise NotFound(f"no EST CA label {label!r}; the issuing CAs are: {issuing}")
    return Target(entry.id, None, f"CA {entry.id}")


def _algorithm_of(entry: CaEntry) -> str:
    return describe_key(entry.certificate.public_key()).name


def opcp_target(ctx: Context, role: str, iso_version: str, algorithm: str | None = None) -> Target:
    """Our CA for an OPCP role and ISO 15118 edition (and key algorithm, for cacerts)."""
    matched = _ROLE.match(role.lower())
    if matched is None:
        raise NotFound(f"unknown OPCP CA {role[:32]!r}; use cpo, mo, oem or cps")
    if matched.group(1) == "veh":
        raise NotFound("no vehicle certificates (ISO 15118-20 'veh') are issued here")
    profile = OPCP_ROLES[matched.group(1)]
    standard = _ISO_VERSIONS.get(iso_version.lower())
    if standard is None:
        raise NotFound(f"unknown ISO version {iso_version[:32]!r}; use ISO15118-2 or ISO15118-20")
    wanted_algorithm = None
    if algorithm is not None:
        wanted_algorithm = OPCP_ALGORITHMS.get(algorithm.lower())
        if wanted_algorithm is None:
            raise NotFound(f"unknown algorithm {algorithm[:32]!r}; use {', '.join(OPCP_ALGORITHMS)}")
    candidates = [
        entry
        for entry in _directory(ctx, fresh=True).cas.values()
        if profile in entry.issues
        and entry.standard == standard
        and (wanted_algorithm is None or _algorithm_of(entry) == wanted_algorithm)
    ]
    if not candidates:
        with_algorithm = f" with {algorithm} keys" if algorithm else ""
        raise NotFound(f"no CA here issues {profile} certificates under {standard}{with_algorithm}")
    # The newest: after a rollover only the new generation issues, but stay deterministic regardless.
    return Target(candidates[-1].id, profile, f"OPCP {matched.group(1)} {standard}")


def cacerts(ctx: Context, target: Target) -> list[x509.Certificate]:
    """RFC 7030 §4.1.3: the CA certificates a client needs, the issuing CA first and the root last."""
    directory = _directory(ctx, fresh=True)
    ca_id = target.ca_id
    if ca_id is None:
        station_issuers = [entry.id for entry in directory.cas.values() if ProfileName.STATION.value in entry.issues]
        if not station_issuers:
            raise NotFound("no CA issues station certificates here; name a CA label")
        ca_id = station_issuers[-1]
    if ca_id not in directory.cas:
        raise InvalidInput(f"unknown CA {ca_id!r}")
    return [entry.certificate for entry in directory.chain(ca_id)]
