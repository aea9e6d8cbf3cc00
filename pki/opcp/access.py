"""Who may call which OPCP operation, and on which vehicles and contracts (OPCP ``04_authentication.md``).

An OPCP client has one role -- ``OEM``, ``CPO``, ``MO_OWN_PKI`` (a mobility operator with its own
PKI), ``MO_V2G_PKI`` (a mobility operator whose contracts the V2G PKI signs), ``CPS`` or ``ADMIN``
(the pool operator) -- and a scope: an OEM the World Manufacturer Identifiers (ISO 3780, the first
three characters of a PCID) it may manage, an MO the eMAID provider prefixes (country code +
provider id, the first five characters of an eMAID) it may manage.

:data:`ACCESS` is the access table, one row per operation; :func:`authorize` checks a caller
against it and against the scope of the PCID or eMAID the operation touches, and raises
:class:`AccessDenied` (HTTP 403) otherwise. Every OPCP operation calls it first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pki.core.errors import EvpkiError, InvalidInput

__all__ = [
    "ACCESS",
    "AccessDenied",
    "OpcpRole",
    "Operation",
    "Principal",
    "authorize",
    "normalise_emaid",
    "parse_pcid",
    "parse_provider",
    "parse_role",
    "parse_wmi",
]

_PCID = re.compile(r"^[A-Za-z0-9]{17,18}$")  # OPCP 05_handling-of-ids.md
_WMI = re.compile(r"^[A-Za-z0-9]{3}$")  # ISO 3780
_PROVIDER = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{3}$")  # ISO 15118-2 eMAID: country code + provider id
_EMAID = re.compile(r"^[A-Za-z]{2}(-?)[A-Za-z0-9]{3}\1[A-Za-z0-9]{9}(\1[A-Za-z0-9])?$")


class AccessDenied(EvpkiError):
    """The caller is authenticated but its role or scope does not cover this operation (HTTP 403)."""

    code = "forbidden"


class OpcpRole(StrEnum):
    OEM = "OEM"
    CPO = "CPO"
    MO_OWN_PKI = "MO_OWN_PKI"
    MO_V2G_PKI = "MO_V2G_PKI"
    CPS = "CPS"
    ADMIN = "ADMIN"


class Operation(StrEnum):
    """The OPCP operations evpki serves, by the ``operationId``/summary the published specs give them."""

    GET_ROOT_CERT = "getRootCert"
    GET_ALL_ROOT_CERTS = "getAllRootCerts"
    GET_CERTIFICATE_TRUST_LIST = "GetCertificateTrustList"
    SAVE_ROOT_CA = "saveRootCa"
    DELETE_ROOT_CA = "deleteRootCa"
    ADD_OEM_PROV_CERT = "addOEMProvCert"
    DELETE_OEM_PROV_CERT = "deleteOEMProvCert"
    GET_OEM_PROV_CERT = "getOEMProvCert"
    LOOKUP_VEHICLE = "lookupVehicle"
    GET_WEBHOOKS = "getWebhooks"
    GET_WEBHOOK = "getWebhook"
    ADD_WEBHOOK = "addWebhook"
    UPDATE_WEBHOOK = "updateWebhook"
    DELETE_WEBHOOK = "deleteWebhook"
    GET_SIGNED_CONTRACT_DATA = "getSignedContractData"
    DELETE_SIGNED_CONTRACT_DATA = "deleteSignedContractData"
    LOOKUP_CONTRACT = "lookupContract"
    GET_CONTRACTS = "getContracts"
    SET_DEFAULT_CONTRACT = "setDefaultContract"
    GET_ALL_CPS_SIGNERS = "getAllCpsSigners"
    CREATE_SIGNED_CONTRACT_DATA = "createSignedContractData"
    ADD_SIGNED_CONTRACT_DATA = "addSignedContractData"
    CREATE_AND_FORWARD_SIGNED_CONTRACT_DATA = "createAndForwardSignedContractData"
    GENERATE_SIGNED_CONTRACT_DATA = "generateSignedContractData"
    PROVIDE_SIGNED_CONTRACT_DATA = "provideSignedContractData"


_EVERYONE = frozenset(OpcpRole)
_PARTICIPANTS = _EVERYONE - {OpcpRole.ADMIN}
_PCP_READERS = frozenset({OpcpRole.OEM, OpcpRole.MO_OWN_PKI, OpcpRole.MO_V2G_PKI, OpcpRole.CPS})

# The access table of 04_authentication.md. The pool operator (ADMIN) reads the RCP like everyone and
# alone writes it; it holds no vehicles or contracts, so the PCP is not its business. Webhooks are for
# every participant; the operator may subscribe too (to watch its own pool).
ACCESS: dict[Operation, frozenset[OpcpRole]] = {
    Operation.GET_ROOT_CERT: _EVERYONE,
    Operation.GET_ALL_ROOT_CERTS: _EVERYONE,
    Operation.GET_CERTIFICATE_TRUST_LIST: _EVERYONE,
    Operation.SAVE_ROOT_CA: frozenset({OpcpRole.ADMIN}),
    Operation.DELETE_ROOT_CA: frozenset({OpcpRole.ADMIN}),
    Operation.ADD_OEM_PROV_CERT: frozenset({OpcpRole.OEM}),
    Operation.DELETE_OEM_PROV_CERT: frozenset({OpcpRole.OEM}),
    Operation.GET_OEM_PROV_CERT: _PCP_READERS,
    Operation.LOOKUP_VEHICLE: _PCP_READERS,
    Operation.GET_WEBHOOKS: _EVERYONE,
    Operation.GET_WEBHOOK: _EVERYONE,
    Operation.ADD_WEBHOOK: _EVERYONE,
    Operation.UPDATE_WEBHOOK: _EVERYONE,
    Operation.DELETE_WEBHOOK: _EVERYONE,
    # CCP and CPS rows (the OEM's "signedContractData" read is getContracts, its default choice
    # setDefaultContract); getAllCpsSigners is for every participant.
    Operation.GET_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.CPO}),
    Operation.DELETE_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.MO_OWN_PKI, OpcpRole.MO_V2G_PKI}),
    Operation.LOOKUP_CONTRACT: frozenset({OpcpRole.MO_OWN_PKI, OpcpRole.MO_V2G_PKI}),
    Operation.GET_CONTRACTS: frozenset({OpcpRole.OEM}),
    Operation.SET_DEFAULT_CONTRACT: frozenset({OpcpRole.OEM}),
    Operation.GET_ALL_CPS_SIGNERS: _PARTICIPANTS,
    Operation.CREATE_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.MO_OWN_PKI}),  # and contractData/signed
    # the CPS puts signed contract data (the table's "signedContractData PUT"); MOs add their own too
    # (04_contract-certificate-pool.md: "added contracts by the MOs")
    Operation.ADD_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.CPS, OpcpRole.MO_OWN_PKI, OpcpRole.MO_V2G_PKI}),
    Operation.CREATE_AND_FORWARD_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.MO_OWN_PKI}),
    # our MO CA makes the contract of an MO without its own PKI; an OEM fetches it for its vehicle
    Operation.GENERATE_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.MO_V2G_PKI}),
    Operation.PROVIDE_SIGNED_CONTRACT_DATA: frozenset({OpcpRole.OEM}),
}
assert set(ACCESS) == set(Operation)
assert ACCESS[Operation.ADD_WEBHOOK] >= _PARTICIPANTS

_ROLE_NAMES = {
    "oem": OpcpRole.OEM,
    "cpo": OpcpRole.CPO,
    "mo-own-pki": OpcpRole.MO_OWN_PKI,
    "mo-v2g-pki": OpcpRole.MO_V2G_PKI,
    "cps": OpcpRole.CPS,
    "admin": OpcpRole.ADMIN,
}


def parse_role(text: str) -> OpcpRole:
    """``oem``, ``cpo``, ``mo-own-pki``, ``mo-v2g-pki``, ``cps``, ``admin`` (or the enum's own values)."""
    key = text.strip().lower().replace("_", "-")
    if key in _ROLE_NAMES:
        return _ROLE_NAMES[key]
    raise InvalidInput(f"unknown OPCP role {text!r}; use one of {', '.join(_ROLE_NAMES)}")


def parse_pcid(text: str) -> str:
    """A PCID as OPCP checks it (17-18 letters and digits), kept as given: PCIDs compare exactly."""
    if not isinstance(text, str) or not _PCID.match(text):
        raise InvalidInput(f'pcid : must match "^[a-zA-Z0-9]{{17,18}}$" (got {str(text)[:40]!r})')
    return text


def parse_wmi(text: str) -> str:
    if not _WMI.match(text.strip()):
        raise InvalidInput(f"a WMI is three letters or digits (ISO 3780), not {text[:20]!r}")
    return text.strip().upper()


def parse_provider(text: str) -> str:
    if not _PROVIDER.match(text.strip()):
        raise InvalidInput(
            f"an eMAID provider prefix is a country code and a provider id (e.g. DEABC), not {text[:20]!r}"
        )
    return text.strip().upper()


def normalise_emaid(text: str) -> str:
    """OPCP 05_handling-of-ids.md: separators removed, upper case."""
    if not isinstance(text, str) or not _EMAID.match(text):
        raise InvalidInput(f"not an eMAID: {str(text)[:40]!r}")
    return text.replace("-", "").upper()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated OPCP caller, as its access token says."""

    client_id: str
    name: str
    role: OpcpRole
    wmis: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"opcp:{self.name}"

    def covers_pcid(self, pcid: str) -> bool:
        return pcid[:3].upper() in self.wmis

    def covers_emaid(self, emaid: str) -> bool:
        return normalise_emaid(emaid)[:5] in self.providers


def authorize(principal: Principal, operation: Operation, *, pcid: str | None = None, emaid: str | None = None) -> None:
    """Raise :class:`AccessDenied` unless the access table lets ``principal`` call ``operation`` on these ids.

    An OEM reaches only PCIDs of its WMIs (read and write: OPCP gives an OEM its own data only); an MO
    only eMAIDs of its provider prefixes. MOs and the CPS read every provisioning certificate (OPCP
    ``02_provisioning-certificate-pool.md``: "every authorized MO access is granted to all").
    """
    if principal.role not in ACCESS[operation]:
        raise AccessDenied(f"role {principal.role.value} may not call {operation.value}")
    if pcid is not None and principal.role is OpcpRole.OEM and not principal.covers_pcid(pcid):
        raise AccessDenied(f"PCID {pcid} is not of a WMI this OEM client may manage")
    if (
        emaid is not None
        and principal.role in (OpcpRole.MO_OWN_PKI, OpcpRole.MO_V2G_PKI)
        and not principal.covers_emaid(emaid)
    ):
        raise AccessDenied(f"eMAID {emaid} is not of a provider this MO client may manage")
