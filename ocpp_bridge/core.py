"""The transport-free OCPP certificate handler core: payload dict in, response dict + follow-up calls out.

What a station sends and this core answers (OCPP 1.6 security whitepaper, 2.0.1, 2.1):
SignCertificate (A02/A03), Get15118EVCertificate (M01/M02), GetCertificateStatus (M06),
GetCertificateChainStatus (2.1 M07), SecurityEventNotification (A04), and 1.6 Plug & Charge wrapped
in DataTransfer (vendorId ``org.openchargealliance.iso15118pnc``). Each answer comes with the calls
the CSMS must then send (:class:`FollowUp`): CertificateSigned, InstallCertificate,
DeleteCertificate, GetInstalledCertificateIds, TriggerMessage / 1.6 ExtendedTriggerMessage.

Every request, response and follow-up payload is validated against the ``ocpp`` package's JSON
schema for its version (:mod:`ocpp_bridge.schemas`); a bad request is an :class:`OcppCallError`
(a CALLERROR), a bad payload of our own making an ``InternalError``. Transports -- the gateway,
the ``ocpp`` ChargePoint adapter, the REST routes -- only move these dicts; everything is
synchronous (run it in a thread from async code) and keeps no state that is not in the PKI,
except caches.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from ocpp_bridge import roots as root_sync
from ocpp_bridge import v2g20
from ocpp_bridge.authorize import is_pnc_authorize, pnc_authorize
from ocpp_bridge.errors import OcppCallError
from ocpp_bridge.ocsp_client import ContractOcsp
from ocpp_bridge.pool import ContractPool
from ocpp_bridge.schemas import has_schema, validate_request, validate_response
from ocpp_bridge.status import HASHES, CaIndex, CertId, StatusError, StatusForwarder, matching_single, parse_ocsp
from pki import PKI
from pki.ca import RequestIdentity, load_csr
from pki.core import Conflict, EvpkiError, InvalidInput, NotFound, PolicyViolation
from pki.iso15118 import EXI_RESPONSE_LIMITS
from pki.stations import OPERATOR, StationDisabled

__all__ = [
    "HANDLED_ACTIONS",
    "OCPP_VERSIONS",
    "PNC_VENDOR_ID",
    "CertificateService",
    "FollowUp",
    "Handled",
    "OcppCallError",
]

log = logging.getLogger("evpki.ocpp")

OCPP_VERSIONS = ("1.6", "2.0.1", "2.1")
PNC_VENDOR_ID = "org.openchargealliance.iso15118pnc"

# What each version's stations send that this core answers (DataTransfer: 1.6 Plug & Charge only).
HANDLED_ACTIONS: dict[str, tuple[str, ...]] = {
    "1.6": ("SignCertificate", "SecurityEventNotification", "DataTransfer"),
    "2.0.1": (
        "SignCertificate",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "SecurityEventNotification",
        "Authorize",  # Plug & Charge only (C07): ocpp_bridge.authorize.is_pnc_authorize
    ),
    "2.1": (
        "SignCertificate",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "GetCertificateChainStatus",
        "SecurityEventNotification",
        "Authorize",
    ),
}
# 1.6 PnC application note: the 2.0.1 messages a station wraps in DataTransfer.
_PNC_MESSAGES = frozenset({"SignCertificate", "Get15118EVCertificate", "GetCertificateStatus"})
_MAX_CHAIN_CHARS = 10000  # CertificateSigned.certificateChain maxLength (all versions)
_MAX_OCSP_RESULT = {"2.0.1": 5500, "2.1": 18000}  # GetCertificateStatusResponse.ocspResult maxLength


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A call the CSMS must send to the station, after the response is on the wire."""

    action: str
    payload: dict[str, Any]  # camelCase JSON, schema-valid for the station's version
    delivery_id: int | None = None  # a tracked delivery (pki deliveries); None when untracked
    operator: bool = False  # an operator-initiated call (ocpp_bridge.operator_calls)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "payload": self.payload, "deliveryId": self.delivery_id}


@dataclass(frozen=True, slots=True)
class Handled:
    response: dict[str, Any]  # the CALLRESULT payload (camelCase)
    follow_ups: tuple[FollowUp, ...] = ()


class _ChainTooLong(Exception):
    pass


def _status_info(version: str, reason_code: str, additional_info: str) -> dict[str, Any]:
    """2.x ``statusInfo``; 1.6 has none (its responses carry only the status)."""
    if version == "1.6":
        return {}
    limit = 512 if version == "2.0.1" else 1024
    return {"statusInfo": {"reasonCode": reason_code[:20], "additionalInfo": additional_info[:limit]}}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CertificateService:
    """The OCPP certificate handlers over one :class:`~pki.PKI`; thread-safe, one per process is enough."""

    def __init__(
        self,
        pki: PKI,
        *,
        status_client: StatusForwarder | None = None,
        contract_pool: ContractPool | None = None,
        field_lengths: v2g20.FieldLengths | None = None,
    ) -> None:
        self._pki = pki
        self._field_lengths = field_lengths  # 2.1: the stations' OCPPCommCtrlr.FieldLength, where the CSMS knows it
        settings = pki.settings
        self._status = status_client or StatusForwarder(timeout=settings.ocpp_status_timeout, now=pki.clock.now)
        self._pool = contract_pool or ContractPool.from_settings(settings)
        self._cas = CaIndex(pki.cas.list)
        from ocpp_bridge.operator_calls import OperatorCalls  # it builds FollowUps of this module

        self.operator_calls = OperatorCalls(pki)
        self._contract_ocsp = ContractOcsp(self._status, pki.clock.now)
        self._handlers: dict[str, Callable[[str, str, dict[str, Any]], Handled]] = {
            "SignCertificate": self._sign_certificate,
            "Get15118EVCertificate": self._get_15118_ev_certificate,
            "GetCertificateStatus": self._get_certificate_status,
            "GetCertificateChainStatus": self._get_certificate_chain_status,
            "SecurityEventNotification": self._security_event,
            "DataTransfer": self._data_transfer,
            "Authorize": lambda _v, station, body: Handled(pnc_authorize(pki, self._contract_ocsp, station, body)),
        }

    @property
    def pki(self) -> PKI:
        return self._pki

    # -- what stations send --------------------------------------------------------------------

    def owns(self, version: str, action: str, payload: dict[str, Any] | None = None) -> bool:
        """Whether this core answers ``action`` from a station on ``version`` (DataTransfer: by vendorId)."""
        if version == "1.6" and action == "DataTransfer":
            return isinstance(payload, dict) and payload.get("vendorId") == PNC_VENDOR_ID
        if action == "Authorize" and not is_pnc_authorize(payload):
            return False  # RFID and other idTokens are the CSMS's own
        return action != "DataTransfer" and action in HANDLED_ACTIONS.get(version, ())

    def handle(self, version: str, station_id: str, action: str, payload: dict[str, Any]) -> Handled:
        """Answer one CALL from a station; raises :class:`OcppCallError` for a CALLERROR."""
        if version not in OCPP_VERSIONS:
            raise OcppCallError("NotSupported", f"OCPP version {version!r} is not supported")
        if not self.owns(version, action, payload):
            known = has_schema(version, action)
            raise OcppCallError(
                # OCPP-J §4.2.3: NotSupported = recognised but not supported; NotImplemented = not known.
                "NotSupported" if known else "NotImplemented",
                f"{action} is not handled by the certificate service",
            )
        validate_request(version, action, payload)
        try:
            handled = self._handlers[action](version, station_id, payload)
        except OcppCallError:
            raise
        except Exception as error:  # a bug or an unreachable database: the station may retry
            log.exception("%s from %s failed", action, station_id)
            detail = error.message if isinstance(error, EvpkiError) else "unexpected error"
            raise OcppCallError("InternalError", f"{action} could not be processed: {detail}"[:255]) from error
        self._check_own(version, action, v2g20.schema_view(version, action, handled.response), "response")
        for follow_up in handled.follow_ups:
            self._check_follow_up(version, follow_up)
        return handled

    def _check_own(self, version: str, action: str, payload: dict[str, Any], direction: str) -> None:
        try:
            (validate_request if direction == "request" else validate_response)(version, action, payload)
        except OcppCallError as error:
            log.error("our own %s %s is not schema-valid: %s", action, direction, error.description)
            raise OcppCallError("InternalError", f"invalid {action} {direction} produced") from error

    def _check_follow_up(self, version: str, follow_up: FollowUp) -> None:
        self._check_own(version, follow_up.action, follow_up.payload, "request")
        if follow_up.action == "DataTransfer":
            inner = json.loads(follow_up.payload["data"])
            self._check_own("2.0.1", follow_up.payload["messageId"], inner, "request")

    # -- SignCertificate (A02/A03) ---------------------------------------------------------------

    def _sign_certificate(
        self, version: str, station_id: str, payload: dict[str, Any], *, pnc: bool = False
    ) -> Handled:
        certificate_type = payload.get("certificateType", "ChargingStationCertificate")

        def reject(reason_code: str, message: str) -> Handled:
            # Never "Accepted" followed by silence: the station learns why (2.x statusInfo).
            log.warning("SignCertificate from %s rejected (%s): %s", station_id, reason_code, message)
            return Handled({"status": "Rejected", **_status_info(version, reason_code, message)})

        ca_id: str | None = None
        identity: RequestIdentity | None = None
        if certificate_type in ("V2GCertificate", v2g20.V2G20_CERTIFICATE):
            try:
                station = self._pki.stations.get(station_id)
            except NotFound:
                return reject("UnknownStation", f"station {station_id!r} is not registered")
            if station.status != "active":
                return reject("StationDisabled", f"station {station_id!r} is disabled")
            try:
                csr = load_csr(payload["csr"])
            except InvalidInput as error:
                return reject("InvalidCSR", error.message)
            names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if not names:
                return reject("InvalidCSR", "a V2G CSR needs CN = SECC id")
            hash_root = payload.get("hashRootCertificate")
            if hash_root is not None and not v2g20.names_v2g_root(self._pki, certificate_type, hash_root):
                # OCPP 2.1 A02.FR.24-27: the station asks for a certificate under a specific V2G root.
                return reject("UnknownRoot", "hashRootCertificate names no V2G root of this PKI")
            try:
                ca_id = v2g20.secc_issuer(self._pki, certificate_type)  # -20: the -20 CPO sub-CA
            except v2g20.NoIssuer as error:
                return reject("NotSupported", str(error))
            profile = "secc"
            identity = RequestIdentity(station_id=station_id, secc_id=str(names[0].value))
        else:
            # OCPP A00.FR.511: CN = the serial registered for this identity (identity None: issuance reads
            # the station once -- unknown, disabled, then the CSR is checked, in that order).
            profile = "station"
        topic = f"CertificateSigned:{certificate_type}"
        typed = version != "1.6" or pnc

        def payload_for(chain: str) -> dict[str, Any]:
            if len(chain) > _MAX_CHAIN_CHARS:
                raise _ChainTooLong(f"the certificate chain has {len(chain)} > {_MAX_CHAIN_CHARS} characters")
            body: dict[str, Any] = {"certificateChain": chain}
            if typed:
                body["certificateType"] = certificate_type  # A02.FR.14: mirror the CSR's type
            return body

        try:
            delivery, new = self._pki.deliveries.issue_for_station(
                station=station_id,
                profile=profile,
                csr=payload["csr"],
                topic=topic,
                payload_for=payload_for,
                identity=identity,
                ca_id=ca_id,
                actor=f"ocpp:{station_id}",
            )
        except StationDisabled as error:
            return reject("StationDisabled", error.message)
        except PolicyViolation as error:
            # A CSR whose signature does not verify is not a valid CSR, whatever it asks for.
            return reject("InvalidCSR" if error.rule.startswith("csr.") else "PolicyViolation", error.message)
        except InvalidInput as error:
            return reject("InvalidCSR", error.message)
        except Conflict as error:
            return reject("Conflict", error.message)
        except NotFound as error:
            return reject("UnknownStation", error.message)
        except _ChainTooLong as error:
            return reject("ChainTooLong", str(error))
        if not new:
            # A02.FR.17-19: the same CSR re-sent with back-off while one is pending gets the same certificate.
            log.info("SignCertificate from %s: re-offering pending delivery %s", station_id, delivery.id)
        body = dict(delivery.payload)
        if version == "2.1" and "requestId" in payload:
            body["requestId"] = payload["requestId"]  # 2.1 A02.FR.26: echo the CSR's requestId
        follow_up = self._adapt("2.0.1" if pnc else version, "CertificateSigned", body, delivery.id)
        return Handled({"status": "Accepted"}, (self._wrap(follow_up) if pnc else follow_up,))

    # -- Get15118EVCertificate (M01/M02) ---------------------------------------------------------

    def _get_15118_ev_certificate(self, version: str, station_id: str, payload: dict[str, Any]) -> Handled:
        limit = v2g20.exi_response_limit(version, station_id, self._field_lengths)
        if self._pool is not None:
            return Handled(
                self._pool.get_15118_ev_certificate(
                    iso15118_schema_version=payload["iso15118SchemaVersion"],
                    action=payload["action"],
                    exi_request=payload["exiRequest"],
                    max_response_chars=limit or EXI_RESPONSE_LIMITS[version],
                    ocpp_version=version,
                    prioritized_emaids=payload.get("prioritizedEMAIDs") if version == "2.1" else None,
                )
            )
        result = self._pki.contracts.provision(
            iso15118_schema_version=payload["iso15118SchemaVersion"],
            action=payload["action"],
            exi_request=payload["exiRequest"],
            ocpp_version=version,  # its exiResponse limit: 5,600 characters in 2.0.1 (Part 2 §1.16), 17,000 in 2.1
            max_response_chars=limit,  # or the station's FieldLength (2.1 §1.23)
            actor=f"ocpp:{station_id}",
            **v2g20.provisioning_options(version, payload),  # 2.1 M01.FR.03-06
        )
        return Handled(result.to_ocpp())  # exiResponse always present, "" on Failed (pitfall P-10)

    # -- GetCertificateStatus (M06) and GetCertificateChainStatus (2.1 M07) ----------------------

    def _ocsp_response(self, cert_id: CertId, urls: list[str]) -> ocsp.OCSPResponse:
        """From our own responder when the issuer is ours, else from the first URL that answers."""
        if self._cas.issuer(cert_id) is not None:
            answer = self._pki.ocsp.respond(cert_id.ocsp_request_der())
            return parse_ocsp(answer.der, cert_id)
        failure = StatusError("NoResponderURL", "no responder URL")
        for url in urls:
            try:
                return self._status.ocsp(url, cert_id)
            except StatusError as error:
                failure = error
        raise failure

    def _get_certificate_status(self, version: str, station_id: str, payload: dict[str, Any]) -> Handled:
        data = payload["ocspRequestData"]
        try:
            cert_id = CertId.from_ocpp(data)
            response = self._ocsp_response(cert_id, [data["responderURL"]])
        except StatusError as error:
            log.info("GetCertificateStatus from %s failed: %s", station_id, error.message)
            return Handled({"status": "Failed", **_status_info(version, error.reason_code, error.message)})
        # M06.FR.08/09: ocspResult is the DER OCSPResponse, Base64.
        result = base64.b64encode(response.public_bytes(Encoding.DER)).decode()
        if len(result) > _MAX_OCSP_RESULT[version]:
            message = f"the OCSP response has {len(result)} > {_MAX_OCSP_RESULT[version]} characters"
            return Handled({"status": "Failed", **_status_info(version, "TooLarge", message)})
        return Handled({"status": "Accepted", "ocspResult": result})

    def _get_certificate_chain_status(self, version: str, station_id: str, payload: dict[str, Any]) -> Handled:
        statuses = [self._chain_entry(request) for request in payload["certificateStatusRequests"]]
        return Handled({"certificateStatus": statuses})

    def _chain_entry(self, request: dict[str, Any]) -> dict[str, Any]:
        now = self._pki.clock.now()
        entry: dict[str, Any] = {"certificateHashData": request["certificateHashData"], "source": request["source"]}
        try:
            cert_id = CertId.from_ocpp(request["certificateHashData"])
            if request["source"] == "OCSP":
                single = matching_single(self._ocsp_response(cert_id, request["urls"]), cert_id)
                status = {
                    ocsp.OCSPCertStatus.GOOD: "Good",
                    ocsp.OCSPCertStatus.REVOKED: "Revoked",
                    ocsp.OCSPCertStatus.UNKNOWN: "Unknown",
                }[single.certificate_status]
                next_update = single.next_update_utc or now
            else:
                status, next_update = self._crl_status(cert_id, request["urls"], now)
        except StatusError as error:
            log.info("certificate chain status failed: %s", error.message)
            return {**entry, "status": "Failed", "nextUpdate": _iso(now)}
        return {**entry, "status": status, "nextUpdate": _iso(next_update)}

    def _crl_status(self, cert_id: CertId, urls: list[str], now: dt.datetime) -> tuple[str, dt.datetime]:
        ours = self._cas.issuer(cert_id)
        if ours is not None:
            # Our own CA: its current CRL, in-process (the URL would lead back here anyway).
            crl = x509.load_der_x509_crl(self._pki.crls.current(ours[0]).der)
            issuer: x509.Certificate | None = ours[1]
        else:
            crl, issuer = self._fetch_crl(cert_id, urls), None
        if issuer is not None and not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise StatusError("InvalidCrl", "the CRL's signature does not verify")
        if crl.next_update_utc is not None and crl.next_update_utc <= now:
            raise StatusError("CrlExpired", "the CRL is past its nextUpdate")
        revoked = crl.get_revoked_certificate_by_serial_number(cert_id.serial_number)
        return ("Revoked" if revoked is not None else "Good"), crl.next_update_utc or now

    def _fetch_crl(self, cert_id: CertId, urls: list[str]) -> x509.CertificateRevocationList:
        failure = StatusError("NoCrlURL", "no CRL URL")
        for url in urls:
            try:
                crl = self._status.crl(url)
            except StatusError as error:
                failure = error
                continue
            digest = hashes.Hash(HASHES[cert_id.hash_algorithm]())
            digest.update(crl.issuer.public_bytes())
            if digest.finalize() != cert_id.issuer_name_hash:
                # The signature of a foreign CRL cannot be checked without its issuer's certificate;
                # at least it must be the CRL of the certificate's issuer.
                failure = StatusError("CrlIssuerMismatch", f"{url[:200]} is a CRL of another issuer")
                continue
            return crl
        raise failure

    # -- SecurityEventNotification (A04) ---------------------------------------------------------

    def _security_event(self, version: str, station_id: str, payload: dict[str, Any]) -> Handled:
        # A04.FR.03: always confirmed.
        self._pki.stations.record_security_event(
            station=station_id,
            event_type=payload["type"],
            timestamp=payload["timestamp"],
            tech_info=payload.get("techInfo"),
            actor=f"ocpp:{station_id}",
        )
        return Handled({})

    # -- 1.6 Plug & Charge in DataTransfer ---------------------------------------------------------

    def _data_transfer(self, version: str, station_id: str, payload: dict[str, Any]) -> Handled:
        message_id = payload.get("messageId")
        if message_id not in _PNC_MESSAGES:
            return Handled({"status": "UnknownMessageId"})
        try:
            # Pitfall P-15: ``data`` is the 2.0.1 payload serialised as a JSON *string*.
            inner = json.loads(payload.get("data") or "")
        except ValueError:
            raise OcppCallError("FormationViolation", f"DataTransfer {message_id}: data is not JSON") from None
        validate_request("2.0.1", message_id, inner)
        if message_id == "SignCertificate":
            handled = self._sign_certificate("2.0.1", station_id, inner, pnc=True)
        else:
            handled = self._handlers[message_id]("2.0.1", station_id, inner)
        self._check_own("2.0.1", message_id, handled.response, "response")
        return Handled(
            {"status": "Accepted", "data": json.dumps(handled.response, separators=(",", ":"))}, handled.follow_ups
        )

    @staticmethod
    def _wrap(follow_up: FollowUp) -> FollowUp:
        """A 2.0.1 call to a 1.6 PnC station: DataTransfer with the payload as a JSON string."""
        data = json.dumps(follow_up.payload, separators=(",", ":"))
        return FollowUp(
            "DataTransfer",
            {"vendorId": PNC_VENDOR_ID, "messageId": follow_up.action, "data": data},
            follow_up.delivery_id,
        )

    def _adapt(self, version: str, action: str, payload: dict[str, Any], delivery_id: int | None) -> FollowUp:
        """A stored call payload shaped for ``version`` (deliveries outlive a station's firmware update)."""
        body = dict(payload)
        if action == "CertificateSigned":
            if version == "1.6":
                if "certificateType" in body:
                    # Stored for the PnC channel: it goes back wrapped, as the 2.0.1 message it is.
                    body.pop("requestId", None)
                    return self._wrap(FollowUp(action, body, delivery_id))
            elif version == "2.0.1":
                body.pop("requestId", None)  # 2.1 only
        return FollowUp(action, body, delivery_id)

    # -- answers to our follow-ups -----------------------------------------------------------------

    def record_result(
        self, version: str, station_id: str, follow_up: FollowUp, response: dict[str, Any]
    ) -> tuple[FollowUp, ...]:
        """The station's CALLRESULT to a follow-up: close its delivery, return what to send next."""
        if follow_up.operator:
            return self.operator_calls.record_result(version, station_id, follow_up, response)
        action, request, answer = follow_up.action, follow_up.payload, response
        inner_version = version
        if action == "DataTransfer" and request.get("vendorId") == PNC_VENDOR_ID:
            validate_response(version, "DataTransfer", response)
            action, inner_version = request["messageId"], "2.0.1"
            request = json.loads(request["data"])
            if response["status"] == "Accepted" and response.get("data"):
                try:
                    answer = json.loads(response["data"])
                except ValueError:
                    raise OcppCallError("FormationViolation", "DataTransfer.conf data is not JSON") from None
                validate_response(inner_version, action, answer)
            else:
                # The station has no PnC handler for it: not an answer to the wrapped call.
                answer = {"status": response["status"]}
        else:
            validate_response(version, action, response)
        if follow_up.delivery_id is not None:
            self._pki.deliveries.record_result(
                follow_up.delivery_id, answer, station=station_id, actor=f"ocpp:{station_id}", sent=True
            )
        if action == "GetInstalledCertificateIds":
            return self._reconcile(version, station_id, request, answer)
        return ()

    def record_error(self, version: str, station_id: str, follow_up: FollowUp, code: str, description: str) -> None:
        """A CALLERROR or timeout for a follow-up: its delivery stays pending and is re-sent on reconnect."""
        if follow_up.operator:
            self.operator_calls.record_error(version, station_id, follow_up, code, description)
            return
        log.warning("%s to %s failed: %s %s", follow_up.action, station_id, code, description[:200])
        if follow_up.delivery_id is not None:
            self._pki.deliveries.mark_sent(follow_up.delivery_id, station=station_id)

    # -- connection lifecycle ------------------------------------------------------------------------

    def on_boot(self, version: str, station_id: str) -> tuple[FollowUp, ...]:
        """After BootNotification: pending deliveries to re-send, then the root inventory (M03) unless
        root sync is off or delayed for the station (:meth:`root_sync`; then :meth:`root_inventory`)."""
        enabled, delay = self.root_sync(station_id)
        inventory = list(self.root_inventory(version, station_id)) if enabled and delay <= 0 else []
        follow_ups = (*self.pending(station_id, version=version), *inventory)
        for follow_up in follow_ups:
            self._check_follow_up(version, follow_up)
        return follow_ups

    def root_sync(self, station_id: str) -> tuple[bool, float]:
        """Whether, and after how many seconds, roots are reconciled after boot (global and per station)."""
        return self._pki.station_calls.root_sync(station_id)

    def root_inventory(self, version: str, station_id: str) -> tuple[FollowUp, ...]:
        """The GetInstalledCertificateIds whose answer starts root reconciliation (M03)."""
        inventory: list[FollowUp]
        if version == "1.6":
            inventory = [
                FollowUp("GetInstalledCertificateIds", {"certificateType": use})
                for use in ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
            ]
        else:
            uses = [*root_sync.USES_2X, *(["OEMRootCertificate"] if version == "2.1" else [])]
            inventory = [FollowUp("GetInstalledCertificateIds", {"certificateType": uses})]
        return tuple(inventory)

    def pending(self, station_id: str, *, version: str | None = None) -> tuple[FollowUp, ...]:
        """The station's pending deliveries, oldest first, shaped for ``version`` (default: its last one)."""
        if version is None:
            try:
                version = self._pki.stations.get(station_id).ocpp_version
            except NotFound:
                return ()
        follow_ups: list[FollowUp] = []
        for delivery in self._pki.deliveries.pending(station_id):
            if delivery.origin == OPERATOR:
                operator = self.operator_calls.follow_up(delivery, version or "2.0.1")
                follow_ups.extend([operator] if operator is not None else [])
            else:
                follow_ups.append(self._adapt(version or "2.0.1", delivery.action, delivery.payload, delivery.id))
        return tuple(follow_ups)

    def renewal_due(self, version: str, station_id: str) -> tuple[FollowUp, ...]:
        """Trigger renewal (A02) of the station / SECC certificate when :meth:`pki.PKI.renewal_due` says so."""
        due = self._pki.stations.renewal_due(station_id)
        follow_ups: list[FollowUp] = []
        if due.station:
            if version == "1.6":
                follow_ups.append(
                    FollowUp("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
                )
            else:
                follow_ups.append(FollowUp("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}))
        if due.secc:
            trigger = FollowUp("TriggerMessage", {"requestedMessage": "SignV2GCertificate"})
            follow_ups.append(self._wrap(trigger) if version == "1.6" else trigger)
        if version == "2.1" and v2g20.secc20_renewal_due(self._pki, station_id):
            follow_ups.append(FollowUp("TriggerMessage", {"requestedMessage": "SignV2G20Certificate"}))
        for follow_up in follow_ups:
            self._check_follow_up(version, follow_up)
        return tuple(follow_ups)

    def on_connected(self, version: str, station_id: str, client_certificate: x509.Certificate | None) -> None:
        """Record the connection; optionally revoke certificates the one it connected with superseded."""
        try:
            self._pki.stations.record_connection(station_id, version)
        except NotFound:
            log.warning("connection of unregistered station %s not recorded", station_id)
            return
        if not self._pki.settings.ocpp_revoke_superseded or client_certificate is None:
            return
        # A02.FR.08-10: the station has switched to its new certificate; the old ones are done.
        fingerprint = client_certificate.fingerprint(hashes.SHA256()).hex()
        self._pki.stations.revoke_superseded(station_id, fingerprint, actor=f"ocpp:{station_id}")

    # -- root reconciliation (M03/M04/M05) ---------------------------------------------------------

    def _reconcile(
        self, version: str, station_id: str, request: dict[str, Any], response: dict[str, Any]
    ) -> tuple[FollowUp, ...]:
        plan = root_sync.plan(self._pki, version, request, response)
        follow_ups: list[FollowUp] = []
        for change in plan:
            pending = self._pki.deliveries.find_pending(station_id, change.topic)
            if pending is None:
                pending = self._pki.deliveries.create(
                    station=station_id,
                    action=change.action,
                    topic=change.topic,
                    payload=change.payload,
                    actor=f"ocpp:{station_id}",
                )
            follow_ups.append(FollowUp(pending.action, pending.payload, pending.id))
        for follow_up in follow_ups:
            self._check_follow_up(version, follow_up)
        return tuple(follow_ups)
