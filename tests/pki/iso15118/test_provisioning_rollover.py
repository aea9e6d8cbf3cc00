"""Contract provisioning (ISO 15118-2 CertificateInstallation/Update through OCPP) across root rollovers.

After ``rollover_root`` of ``v2g-root``, ``mo-root`` or ``oem-root`` provisioning keeps working for
cars of either generation: a car that lists only the new V2G root gets the new CPS chain (the CPS
leaf's successor), one that lists only the old root the old chain while it is valid; contract
certificates come from the new MO generation; an OEM provisioning certificate of the new OEM
generation is trusted like one of the old.
"""

from __future__ import annotations

import base64

from cryptography import x509

from pki import PKI
from pki.iso15118 import ev
from pki.iso15118.messages import ResponseCode
from tests.pki.iso15118.test_provisioning import ISO2, opened
from tests.pki.iso15118.vehicles import Car, make_car, new_emaid

SESSION = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def _install(pki: PKI, car: Car, v2g_roots: list[x509.Certificate]) -> ev.InstalledContract:
    exi = ev.installation_request(car.certificate, car.key, v2g_roots, SESSION)
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(exi).decode()
    )
    assert result.status == "Accepted" and result.response_code is ResponseCode.OK, result.to_ocpp()
    return opened(pki, result, car.key, SESSION)


def _root_of(pki: PKI, ca_id: str) -> x509.Certificate:
    return pki.cas.chain(ca_id)[-1]


def test_after_a_v2g_rollover_each_car_gets_the_cps_chain_of_the_root_it_lists(fresh_pki: PKI) -> None:
    old_root = fresh_pki.cas.chain("v2g-root")[0]
    new_root = fresh_pki.cas.chain(fresh_pki.cas.rollover("v2g-root"))[0]
    for listed, cps_sub in ((old_root, "cps-sub2"), (new_root, "cps-sub2-2")):
        car = make_car(fresh_pki)
        fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
        exi = ev.installation_request(car.certificate, car.key, [listed], SESSION)
        result = fresh_pki.contracts.provision(
            iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(exi).decode()
        )
        assert result.status == "Accepted" and result.response_code is ResponseCode.OK
        contract = ev.open_response(
            base64.b64decode(result.exi_response),
            car.key,
            v2g_roots=[listed],  # the car verifies the CPS chain against the one root it has
            mo_roots=[_root_of(fresh_pki, "mo-sub2")],
            session_id=SESSION,
            now=fresh_pki.clock.now(),
        )
        assert contract.certificate.issuer == fresh_pki.cas.chain("mo-sub2")[0].subject
        # The CPS leaf that signed the answer is the one under the listed root's generation.
        assert contract.cps_chain[0].issuer == fresh_pki.cas.chain(cps_sub)[0].subject


def test_after_the_old_v2g_root_is_revoked_cars_listing_the_new_root_are_still_provisioned(fresh_pki: PKI) -> None:
    old = fresh_pki.cas.get("v2g-root")
    new_root = fresh_pki.cas.chain(fresh_pki.cas.rollover("v2g-root"))[0]
    fresh_pki.revocation.revoke(old.serial, "superseded", ca_id="v2g-root")
    car = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    _install(fresh_pki, car, [new_root])


def test_after_an_mo_rollover_contracts_come_from_the_new_generation(fresh_pki: PKI) -> None:
    new_id = fresh_pki.cas.rollover("mo-root")
    car = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    exi = ev.installation_request(car.certificate, car.key, fresh_pki.cas.roots("V2GRootCertificate"), SESSION)
    result = fresh_pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(exi).decode()
    )
    assert result.response_code is ResponseCode.OK
    contract = ev.open_response(
        base64.b64decode(result.exi_response),
        car.key,
        v2g_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        mo_roots=[fresh_pki.cas.chain(new_id)[0]],
        session_id=SESSION,
        now=fresh_pki.clock.now(),
    )
    assert contract.certificate.issuer == fresh_pki.cas.chain("mo-sub2-2")[0].subject


def test_a_contract_of_the_old_mo_generation_is_updated_into_the_new_one(fresh_pki: PKI) -> None:
    car = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    first = _install(fresh_pki, car, fresh_pki.cas.roots("V2GRootCertificate"))
    new_id = fresh_pki.cas.rollover("mo-root")
    exi = ev.update_request(first, fresh_pki.cas.roots("V2GRootCertificate"), SESSION)
    result = fresh_pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Update", exi_request=base64.b64encode(exi).decode()
    )
    assert result.status == "Accepted" and result.response_code is ResponseCode.OK, result.to_ocpp()
    second = ev.open_response(
        base64.b64decode(result.exi_response),
        first.private_key,
        v2g_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        mo_roots=[fresh_pki.cas.chain(new_id)[0]],
        session_id=SESSION,
        now=fresh_pki.clock.now(),
    )
    assert second.certificate.issuer == fresh_pki.cas.chain("mo-sub2-2")[0].subject


def test_after_an_oem_rollover_cars_of_both_generations_are_provisioned(fresh_pki: PKI) -> None:
    old_car = make_car(fresh_pki)
    fresh_pki.cas.rollover("oem-root")
    new_car = make_car(fresh_pki)
    assert new_car.certificate.issuer == fresh_pki.cas.chain("oem-sub2-2")[0].subject
    for car in (old_car, new_car):
        fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
        _install(fresh_pki, car, fresh_pki.cas.roots("V2GRootCertificate"))


def test_once_the_old_oem_root_is_revoked_only_cars_of_the_new_generation_are_provisioned(fresh_pki: PKI) -> None:
    old_car = make_car(fresh_pki)
    old_root = fresh_pki.cas.get("oem-root")
    fresh_pki.cas.rollover("oem-root")
    new_car = make_car(fresh_pki)
    fresh_pki.revocation.revoke(old_root.serial, "superseded", ca_id="oem-root")
    for car in (old_car, new_car):
        fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    exi = ev.installation_request(old_car.certificate, old_car.key, fresh_pki.cas.roots("V2GRootCertificate"), SESSION)
    refused = fresh_pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(exi).decode()
    )
    assert refused.response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR
    _install(fresh_pki, new_car, fresh_pki.cas.roots("V2GRootCertificate"))
