"""The declarative hierarchy: a TOML file turned into frozen, validated dataclasses.

The default file (``default_hierarchy.toml``) ships with the package; ``evpki init --config``
takes another in the same format. Validation happens here, before any key is generated, so
a bad file changes nothing.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from importlib import resources
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography import x509

from pki.ca.profiles import Profile, ProfileName, get_profile
from pki.core.algorithms import GENERATED_ALGORITHMS
from pki.core.clock import parse_duration
from pki.core.errors import InvalidInput, NotFound
from pki.core.names import build_name

__all__ = [
    "ISO15118_20_HIERARCHY",
    "STANDARDS",
    "CaSpec",
    "HierarchySpec",
    "LeafSpec",
    "PkiSpec",
    "allowed_leaf_algorithms",
    "load_hierarchy",
    "parse_hierarchy",
]

STANDARDS = ("ocpp", "iso15118-2", "iso15118-20")
# The default hierarchy plus ISO 15118-20 PKIs, shipped beside it (`evpki init --iso15118-20`).
ISO15118_20_HIERARCHY = Path(str(resources.files("pki") / "iso15118_20_hierarchy.toml"))
# ISO 15118-2 is P-256 only; ISO 15118-20 uses P-521 or Ed448 (iso15118.md §1.3).
_STANDARD_ALGORITHMS = {
    "ocpp": ("ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096"),
    "iso15118-2": ("ec-p256",),
    "iso15118-20": ("ec-p521", "ed448"),
}


def allowed_leaf_algorithms(standard: str) -> tuple[str, ...]:
    return _STANDARD_ALGORITHMS[standard]


@dataclass(frozen=True, slots=True)
class PkiSpec:
    name: str
    standard: str
    algorithm: str
    rsa_pss: bool


@dataclass(frozen=True, slots=True)
class CaSpec:
    id: str
    pki: PkiSpec
    parent: str | None
    subject: x509.Name
    validity: dt.timedelta
    path_length: int | None
    issues: tuple[ProfileName, ...]
    external: bool = False  # its parent is a CA we do not run (``external_parent = true``)

    @property
    def is_root(self) -> bool:
        return self.parent is None and not self.external


@dataclass(frozen=True, slots=True)
class LeafSpec:
    label: str
    profile: ProfileName
    issuer: str
    subject: x509.Name
    validity: dt.timedelta
    algorithm: str
    dns: tuple[str, ...]
    ips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HierarchySpec:
    organization: str
    pkis: dict[str, PkiSpec]
    cas: tuple[CaSpec, ...]  # parents before children
    leaves: tuple[LeafSpec, ...]
    source: str = ""  # the TOML text it was read from (kept so that installing a CA can finish init)

    def ca(self, ca_id: str) -> CaSpec:
        for spec in self.cas:
            if spec.id == ca_id:
                return spec
        raise InvalidInput(f"hierarchy has no CA {ca_id!r}")


def load_hierarchy(path: Path | None = None, organization: str | None = None) -> HierarchySpec:
    """Read and validate a hierarchy file (the packaged default when ``path`` is None)."""
    try:
        if path is None:
            text = (resources.files("pki") / "default_hierarchy.toml").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"hierarchy file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"hierarchy file is not valid TOML: {exc}") from None
    return parse_hierarchy(text, organization)


def parse_hierarchy(text: str, organization: str | None = None) -> HierarchySpec:
    """Validate hierarchy TOML text (as :func:`load_hierarchy` reads it from a file)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"hierarchy file is not valid TOML: {exc}") from None
    spec = _parse(data, organization)
    return HierarchySpec(spec.organization, spec.pkis, spec.cas, spec.leaves, text)


def _parse(data: dict[str, Any], organization: str | None) -> HierarchySpec:
    org = (organization or _str(data, "organization", "top level")).strip()
    if not org:
        raise InvalidInput("the CSO organisation name is empty")
    country = str(data.get("country", "DE"))
    placeholders = {"{org}": org, "{country}": country}

    pkis: dict[str, PkiSpec] = {}
    for name, table in _table(data, "pki").items():
        standard = _str(table, "standard", f"pki.{name}")
        if standard not in STANDARDS:
            raise InvalidInput(f"pki.{name}: standard must be one of {', '.join(STANDARDS)}")
        algorithm = _str(table, "algorithm", f"pki.{name}")
        if algorithm not in _STANDARD_ALGORITHMS[standard]:
            raise InvalidInput(
                f"pki.{name}: {standard} allows algorithms {', '.join(_STANDARD_ALGORITHMS[standard])}, "
                f"not {algorithm!r}"
            )
        pkis[name] = PkiSpec(name, standard, algorithm, bool(table.get("rsa_pss", False)))

    cas: list[CaSpec] = []
    seen: dict[str, CaSpec] = {}
    for ca_id, table in _table(data, "ca").items():
        where = f"ca.{ca_id}"
        pki_name = _str(table, "pki", where)
        if pki_name not in pkis:
            raise InvalidInput(f"{where}: unknown pki {pki_name!r}")
        parent = table.get("parent")
        external = table.get("external_parent", False)
        if not isinstance(external, bool):
            raise InvalidInput(f"{where}: 'external_parent' must be true or false")
        if external and parent is not None:
            raise InvalidInput(f"{where}: a CA has either a 'parent' here or an external one, not both")
        path_length = table.get("path_length")
        if path_length is not None and (not isinstance(path_length, int) or path_length < 0):
            raise InvalidInput(f"{where}: path_length must be a non-negative integer")
        if parent is not None:
            parent_spec = seen.get(parent)
            if parent_spec is None:
                raise InvalidInput(f"{where}: parent {parent!r} must be defined before it")
            if parent_spec.pki.name != pki_name:
                raise InvalidInput(f"{where}: a CA must be in the same pki as its parent {parent!r}")
            limit = parent_spec.path_length
            if limit is not None and (limit == 0 or path_length is None or path_length >= limit):
                raise InvalidInput(f"{where}: parent {parent!r} path length does not allow this CA")
        issues = tuple(_profile(p, where).name for p in table.get("issues", []))
        if any(get_profile(p).is_ca for p in issues):
            raise InvalidInput(f"{where}: 'issues' lists end-entity profiles; sub-CAs come from 'parent'")
        spec = CaSpec(
            id=_identifier(ca_id, where),
            pki=pkis[pki_name],
            parent=parent,
            subject=_subject(table, where, placeholders),
            validity=parse_duration(_str(table, "validity", where)),
            path_length=path_length,
            issues=issues,
            external=external,
        )
        seen[ca_id] = spec
        cas.append(spec)

    leaves: list[LeafSpec] = []
    for label, table in data.get("leaf", {}).items():
        where = f"leaf.{label}"
        profile = _profile(_str(table, "profile", where), where)
        issuer = seen.get(_str(table, "issuer", where))
        if issuer is None:
            raise InvalidInput(f"{where}: unknown issuer {table['issuer']!r}")
        if profile.name not in issuer.issues:
            raise InvalidInput(f"{where}: CA {issuer.id!r} does not issue {profile.name.value!r}")
        ips = tuple(str(ip) for ip in table.get("ip", []))
        for ip in ips:
            try:
                ip_address(ip)
            except ValueError:
                raise InvalidInput(f"{where}: {ip!r} is not an IP address") from None
        leaves.append(
            LeafSpec(
                label=_identifier(label, where),
                profile=profile.name,
                issuer=issuer.id,
                subject=_subject(table, where, placeholders),
                validity=parse_duration(_str(table, "validity", where)),
                algorithm=str(table.get("algorithm", issuer.pki.algorithm)),
                dns=tuple(str(d) for d in table.get("dns", [])),
                ips=ips,
            )
        )
        if leaves[-1].algorithm not in GENERATED_ALGORITHMS:
            raise InvalidInput(f"{where}: unknown algorithm {leaves[-1].algorithm!r}")
        # A managed leaf obeys its PKI's standard like the CAs do (ISO 15118-2: P-256 only, iso15118.md
        # §1.2); otherwise init would build the CAs and only then sign a leaf the standard forbids.
        if leaves[-1].algorithm not in _STANDARD_ALGORITHMS[issuer.pki.standard]:
            raise InvalidInput(
                f"{where}: {issuer.pki.standard} allows algorithms "
                f"{', '.join(_STANDARD_ALGORITHMS[issuer.pki.standard])}, not {leaves[-1].algorithm!r}"
            )
    if not cas:
        raise InvalidInput("the hierarchy defines no CA")
    return HierarchySpec(organization=org, pkis=pkis, cas=tuple(cas), leaves=tuple(leaves))


def _profile(name: object, where: str) -> Profile:
    # get_profile raises NotFound (right for a request naming a profile); in a hierarchy file an
    # unknown profile is a bad value, and the contract of load_hierarchy is InvalidInput.
    try:
        return get_profile(str(name))
    except NotFound:
        raise InvalidInput(f"{where}: unknown profile {name!r}") from None


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidInput(f"'{key}' must be a table")
    return value


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: '{key}' is required and must be a string")
    return value


def _identifier(value: str, where: str) -> str:
    if not value.replace("-", "").isalnum() or value != value.lower():
        raise InvalidInput(f"{where}: identifiers are lower-case kebab-case")
    return value


def _subject(table: dict[str, Any], where: str, placeholders: dict[str, str]) -> x509.Name:
    subject = table.get("subject")
    if not isinstance(subject, dict) or "CN" not in subject:
        raise InvalidInput(f"{where}: 'subject' must be a table with at least CN")
    pairs = []
    for key, value in subject.items():
        text = str(value)
        for placeholder, replacement in placeholders.items():
            text = text.replace(placeholder, replacement)
        pairs.append((key, text))
    try:
        return build_name(pairs)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}") from None
