"""``api.metrics._Tally``: observations handed over in bulk give the samples ``observe``/``inc`` would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from api import metrics

_BUCKETS = (0.001, 0.01, 0.1, 1.0)


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name.removeprefix(name), tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith(name) and not sample.name.endswith("_created")
    }


@pytest.mark.parametrize("replay", [False, True])
def test_a_tally_matches_observe_one_at_a_time(replay: bool) -> None:
    registry = CollectorRegistry()
    direct = Histogram("direct", "d", ["k"], buckets=_BUCKETS, registry=registry).labels("x")
    tallied_family = Histogram("tallied", "t", ["k"], buckets=_BUCKETS, registry=registry)
    tallied = tallied_family.labels("x")
    if replay:  # a prometheus_client without the values the bulk hand-over adds to
        tally = metrics._Tally(object(), _BUCKETS)
        tally._child = tallied
    else:
        tally = metrics._Tally(tallied, _BUCKETS)
    rng = random.Random(7)
    values = [rng.choice([0.0005, 0.001, 0.005, 0.01, 0.5, 1.0, 3.0]) for _ in range(1300)]
    for value in values:  # 1300: two hand-overs on the count, the rest pending until flush
        direct.observe(value)
        tally.add(value)
    pending = _samples(registry, "tallied")
    assert pending[("_count", (("k", "x"),))] == 1024  # handed over at 512 and 1024
    tally.flush()
    direct_samples = {key: value for key, value in _samples(registry, "direct").items()}
    tallied_samples = {key: value for key, value in _samples(registry, "tallied").items()}
    assert tallied_samples.keys() == direct_samples.keys()
    for key, value in direct_samples.items():
        assert tallied_samples[key] == pytest.approx(value), key


def test_a_counter_tally_counts_and_hands_over_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    counter = Counter("answers", "a", registry=registry)
    tally = metrics._Tally(counter, None)
    clock = iter([100.0, 100.5, 101.2])
    monkeypatch.setattr(metrics.time, "monotonic", lambda: next(clock))
    tally.add()
    tally.add()
    assert registry.get_sample_value("answers_total") == 0
    tally.add()  # 1.2 s after the first pending one
    assert registry.get_sample_value("answers_total") == 3
