"""``pki.firmware``: sign firmware files and verify signatures (OCPP L01, 1.6 SignedUpdateFirmware)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pki.firmware.payloads import FirmwareSignature, OcppVersion
from pki.firmware.signing import sign_firmware
from pki.firmware.verification import FirmwareVerification, verify_firmware
from pki.runtime.context import Context

__all__ = ["Firmware"]


class Firmware:
    """``pki.firmware``: streamed signing with the newest valid signer, and verification."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def sign(
        self,
        chunks: Iterable[bytes],
        *,
        location: str | None = None,
        retrieve_at: dt.datetime | None = None,
        actor: str = "system",
        signer_ca: str | None = None,
        payloads: Iterable[OcppVersion] = (),
        request_id: int | None = None,
    ) -> FirmwareSignature:
        """Sign a firmware file, streamed as byte chunks, with the newest valid firmware-signer key (OCPP L01);
        ``signer_ca`` picks the signer of one manufacturer root generation (after a root rollover).
        ``payloads`` and ``request_id``: the OCPP payloads the caller builds next, checked before signing."""
        return sign_firmware(
            self._ctx,
            chunks,
            location=location,
            retrieve_at=retrieve_at,
            max_bytes=self._ctx.settings.firmware_max_bytes,
            actor=actor,
            signer_ca=signer_ca,
            payloads=payloads,
            request_id=request_id,
        )

    def verify(self, chunks: Iterable[bytes], *, signature: str, certificate: str | bytes) -> FirmwareVerification:
        """Check a firmware file against its Base64 signature and PEM signing certificate (OCPP A00.FR.707)."""
        return verify_firmware(
            self._ctx,
            chunks,
            signature_b64=signature,
            certificate_pem=certificate,
            max_bytes=self._ctx.settings.firmware_max_bytes,
        )
