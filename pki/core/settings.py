"""Settings: ``EVPKI_*`` environment variables first, then an optional ``evpki.toml``.

``EVPKI_HOME`` (default ``./evpki-data``) holds the SQLite database and the encrypted key
files; ``EVPKI_DATABASE_URL`` points elsewhere (PostgreSQL: ``postgresql+psycopg://...``).
The key passphrase comes from ``EVPKI_KEY_PASSPHRASE`` or the file named by
``EVPKI_KEY_PASSPHRASE_FILE`` (which must not be readable by group or others).
``EVPKI_KEYSTORE=pkcs11`` keeps the keys on a PKCS#11 token instead: ``EVPKI_PKCS11_MODULE``,
``EVPKI_PKCS11_TOKEN_LABEL`` and ``EVPKI_PKCS11_PIN`` or ``EVPKI_PKCS11_PIN_FILE`` (same 0600 rule).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import stat
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pki.core.clock import parse_duration
from pki.core.errors import InvalidInput, Unavailable

__all__ = ["Settings"]

_MIN_PASSPHRASE = 12


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVPKI_", toml_file="evpki.toml", extra="ignore")

    home: Path = Path("evpki-data")
    database_url: str | None = None
    public_url: str = "http://127.0.0.1:8080"
    key_passphrase: SecretStr | None = None
    key_passphrase_file: Path | None = None
    keystore: Literal["file", "pkcs11"] = "file"
    pkcs11_module: str | None = None  # e.g. /usr/lib/softhsm/libsofthsm2.so
    pkcs11_token_label: str = "evpki"  # noqa: S105 - a token label, not a secret
    pkcs11_pin: SecretStr | None = None
    pkcs11_pin_file: Path | None = None
    crl_validity: str = "7d"  # nextUpdate of full CRLs
    crl_refresh_before: str = "2d"  # a full CRL is regenerated this long before its nextUpdate
    delta_crl_validity: str = "1d"
    ocsp_validity: str = "1d"  # nextUpdate - thisUpdate of OCSP responses
    ocsp_refresh_before: str = "6h"  # pre-signed responses are re-signed this long before nextUpdate
    ocsp_max_age: str = "5m"  # HTTP max-age of OCSP and CRL responses: bounds how stale a cache gets
    ocsp_responder_renew_before: str = "10d"  # responder certificates are rotated this long before expiry
    firmware_max_bytes: int = 4 * 1024**3
    maintenance_interval: str = "5m"  # how often `evpki serve` re-signs OCSP and refreshes CRLs
    # ISO 15118 contract provisioning: the OEM roots whose vehicles may install contracts, as a
    # comma-separated list of our CA ids and/or PEM files (a file's self-signed certificates are
    # anchors, the others intermediates that lead to them).
    iso15118_oem_roots: str = "oem-root"
    # OCPP bridge (issue 5): renewal is triggered this long before a station or SECC certificate expires.
    ocpp_renew_before_station: str = "30d"
    ocpp_renew_before_secc: str = "30d"
    # Revoke a station's superseded certificate once it has reconnected with its new one.
    ocpp_revoke_superseded: bool = False
    # Root reconciliation (M03-M05) after a station's boot: on/off and a delay in seconds; a station
    # may override both (`evpki station root-sync`), for operators and test tools that manage roots by hand.
    ocpp_root_sync: bool = True
    ocpp_root_sync_delay: float = 0.0
    # GetCertificateStatus / GetCertificateChainStatus for foreign responders: per-request timeout (seconds).
    ocpp_status_timeout: float = 5.0
    # Get15118EVCertificate forwarded to an OPCP contract pool (its base URL, e.g. https://<evpki>/opcp)
    # instead of answered locally; access with a static bearer token or OAuth2 client credentials
    # (token URL default: the pool URL + /oauth/token; audience default: the pool URL).
    contract_pool_url: str | None = None
    contract_pool_token: SecretStr | None = None
    contract_pool_client_id: str | None = None
    contract_pool_client_secret: SecretStr | None = None
    contract_pool_token_url: str | None = None
    contract_pool_audience: str | None = None
    contract_pool_timeout: float = 3.5  # seconds for the whole exchange; capped at 3.9 (ISO 15118-2 timing)
    # EST enrollment (RFC 7030): CAs whose certificates may authenticate a first enrollment (a
    # factory certificate), as our CA ids and/or PEM files, comma-separated; empty: none.
    est_bootstrap_cas: str = ""
    est_secret_ttl: str = "7d"  # noqa: S105 - a default lifetime, not a secret
    # OPCP pool services (`evpki serve` under /opcp): the token audience clients must ask for
    # (default: the public URL + /opcp) and how long an access token lives.
    opcp_audience: str | None = None
    opcp_token_lifetime: str = "24h"  # noqa: S105 - a duration, not a secret

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'evpki.db').resolve()}"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def crl_next_update(self) -> dt.timedelta:
        return parse_duration(self.crl_validity)

    def duration(self, name: str) -> dt.timedelta:
        """One of the duration settings above (``crl_refresh_before``, ``ocsp_validity``, ...) parsed."""
        return _parsed(getattr(self, name))

    @property
    def public_base_url(self) -> str:
        return self.public_url.rstrip("/")

    def passphrase(self) -> bytes:
        """The key-encryption passphrase; raises :class:`Unavailable` when none is configured."""
        if self.key_passphrase is not None:
            value = self.key_passphrase.get_secret_value()
        elif self.key_passphrase_file is not None:
            value = _read_passphrase_file(self.key_passphrase_file)
        else:
            raise Unavailable(
                "no key passphrase: set EVPKI_KEY_PASSPHRASE or EVPKI_KEY_PASSPHRASE_FILE "
                "(CA keys are never stored unencrypted)"
            )
        if len(value) < _MIN_PASSPHRASE:
            raise InvalidInput(f"the key passphrase must have at least {_MIN_PASSPHRASE} characters")
        return value.encode()

    def pkcs11_user_pin(self) -> str:
        """The token's user PIN; raises :class:`Unavailable` when none is configured."""
        if self.pkcs11_pin is not None:
            return self.pkcs11_pin.get_secret_value()
        if self.pkcs11_pin_file is not None:
            return _read_passphrase_file(self.pkcs11_pin_file, "PIN")
        raise Unavailable("no PKCS#11 PIN: set EVPKI_PKCS11_PIN or EVPKI_PKCS11_PIN_FILE")


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> dt.timedelta:
    # Durations are read on hot paths (every OCSP response); parsing the same text once is enough.
    return parse_duration(text)


def _read_passphrase_file(path: Path, what: str = "passphrase") -> str:
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Unavailable(f"{what} file {path} is readable by others; chmod 600 it")
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise Unavailable(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise Unavailable(f"cannot read {what} file {path}: {exc.strerror}") from None
