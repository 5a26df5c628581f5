"""The simulated database: how often it fails, how retries behave, what gets logged."""

import asyncio
import io
import json
import random

import pytest

from bookstore import faults, logs


@pytest.fixture
def lines():
    stream = io.StringIO()
    logs.configure("catalog", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs.configure("bookstore", stream=io.StringIO())


def test_fault_rate_is_the_share_of_failed_requests_plus_as_many_transient_ones():
    switch = faults.FaultSwitch(0.2, random.Random(7))
    outcomes = [switch.failing_attempts(forced=False) for _ in range(20_000)]
    failed, transient = outcomes.count(faults.ATTEMPTS), outcomes.count(1)
    assert 3700 < failed < 4300  # 20% of requests answer 503
    assert 3700 < transient < 4300  # as many again recover on the retry
    assert outcomes.count(0) == 20_000 - failed - transient


def test_no_faults_at_rate_zero_and_always_when_forced():
    switch = faults.FaultSwitch(0.0)
    assert {switch.failing_attempts(forced=False) for _ in range(1000)} == {0}
    assert switch.failing_attempts(forced=True) == faults.ATTEMPTS


def test_a_transient_failure_is_retried_with_a_warn_and_succeeds(lines):
    switch = faults.FaultSwitch(0.0)
    switch.failing_attempts = lambda forced: 1
    database = faults.SimulatedDatabase("catalog-db", switch)
    assert asyncio.run(database.run(lambda: "rows")) == "rows"
    [warn] = lines()
    assert (warn["level"], warn["retry_attempt"], warn["error_type"]) == (
        "WARN",
        1,
        "DatabaseConnectionError",
    )


def test_a_persistent_failure_raises_after_every_attempt(lines):
    database = faults.SimulatedDatabase("orders-db", faults.FaultSwitch(0.0))
    calls = []
    with pytest.raises(faults.DatabaseUnavailable) as caught:
        asyncio.run(database.run(lambda: calls.append(1), forced=True))
    assert caught.value.attempts == faults.ATTEMPTS
    assert isinstance(caught.value.last, faults.DatabaseConnectionError)
    assert "orders-db" in str(caught.value.last)
    assert calls == [], "the operation never runs without a connection"
    assert [line["retry_attempt"] for line in lines()] == list(range(1, faults.ATTEMPTS))


@pytest.mark.parametrize("value", [True, "lots", 1.5, -0.1, [0.5]])
def test_bad_rates_are_refused_with_the_range(value):
    with pytest.raises(ValueError, match="between 0 and 1"):
        faults.parse_rate(value, source="rate")


def test_rates_parse_from_env_strings_and_numbers():
    assert faults.parse_rate("0.25") == 0.25
    assert faults.parse_rate(1) == 1.0
    assert faults.parse_rate(None) == faults.parse_rate("") == 0.0


def test_requested_fault():
    assert faults.requested_fault(None) is None
    assert faults.requested_fault(" Database ") == "database"
    with pytest.raises(ValueError, match="not a known fault"):
        faults.requested_fault("disk")
