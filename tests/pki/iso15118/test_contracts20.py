"""Several contracts per vehicle (ISO 15118-20, OPCP): concurrent contracts, their priority, -2 keeping one."""

from __future__ import annotations

import datetime as dt

import pytest

from pki import PKI
from pki.core.errors import Conflict, InvalidInput
from pki.iso15118.contract_registry import active_for_pcid, find_active_for_pcid
from tests.pki.iso15118.test_provisioning import install
from tests.pki.iso15118.vehicles import make_car, new_emaid, new_pcid

DAY = dt.timedelta(days=1)


def test_concurrent_contracts_overlap_and_are_ordered_by_priority(fresh_pki: PKI) -> None:
    pcid = new_pcid()
    first, second, third = new_emaid(), new_emaid(), new_emaid()
    fresh_pki.contracts.add(emaid=first, pcid=pcid, priority=5)
    fresh_pki.contracts.add(emaid=second, pcid=pcid, priority=1, concurrent=True)
    fresh_pki.contracts.add(emaid=third, pcid=pcid, priority=5, concurrent=True)
    now = fresh_pki.clock.now()
    ordered = [c.emaid for c in active_for_pcid(fresh_pki._ctx, pcid, now)]
    assert ordered == [second, first, third]  # priority, then the oldest
    prioritised = find_active_for_pcid(fresh_pki._ctx, pcid, now)
    assert prioritised is not None and prioritised.emaid == second
    assert fresh_pki.contracts.get(second).to_json()["priority"] == 1
    record = fresh_pki.audit.records(after=fresh_pki.audit.count() - 1)[-1]
    assert record.action == "contract-add" and '"concurrent":true' in record.details.replace(" ", "")


def test_a_plain_contract_still_may_not_overlap_concurrent_ones(fresh_pki: PKI) -> None:
    pcid = new_pcid()
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=pcid, validity=10 * DAY)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=pcid, concurrent=True)
    with pytest.raises(Conflict, match="add it as concurrent"):
        fresh_pki.contracts.add(emaid=new_emaid(), pcid=pcid, valid_from=fresh_pki.clock.now() + 20 * DAY)


@pytest.mark.parametrize("priority", [-1, 1_000_001, True])
def test_priority_is_checked(fresh_pki: PKI, priority: int) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        fresh_pki.contracts.add(emaid=new_emaid(), pcid=new_pcid(), priority=priority)


def test_iso15118_2_installs_the_prioritised_contract(pki: PKI) -> None:
    car = make_car(pki)
    later, preferred = new_emaid(), new_emaid()
    pki.contracts.add(emaid=later, pcid=car.pcid, priority=2)
    pki.contracts.add(emaid=preferred, pcid=car.pcid, priority=0, concurrent=True)
    result = install(pki, car)
    assert result.response_code is not None and result.response_code.ok and result.emaid == preferred
