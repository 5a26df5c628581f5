"""The benchmarks themselves run (tiny sizes): a broken bench would hide a missed target.
The targets are judged only by `nox -s bench`, never here."""

import pytest

from benchmarks import logline, throughput


def test_logline_gives_one_sample_per_round_for_every_line_kind():
    samples = logline.measure(lines=20, rounds=3)
    assert set(samples) == set(logline.LINES)
    assert all(len(values) == 3 and min(values) > 0 for values in samples.values())


def test_spread_orders_the_values_and_handles_one():
    assert throughput.spread([0.3, -0.1, 0.2, 0.1]) == pytest.approx(
        {"min": -0.1, "q1": -0.05, "median": 0.15, "q3": 0.275, "max": 0.3}
    )
    assert throughput.spread([0.05])["median"] == 0.05


@pytest.mark.timeout(120)
def test_throughput_loads_two_real_catalogs_in_turns():
    result = throughput.measure(seconds=0.1, rounds=2, connections=2)
    assert len(result["costs"]) == 2
    assert result["wall"]["on"] > 0 and result["wall"]["off"] > 0
    assert -1 < result["cost"] < 1 and result["spread"]["min"] <= result["spread"]["max"]
