"""Repeated identical errors are logged once per interval (issue 10, item 17): keyed by
logger, message template and exception type, with the count of those held back."""

from __future__ import annotations

import logging

import pytest

from cryptowire.logthrottle import Throttle, log_exception, log_throttled


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_let_through_once_per_interval_with_the_count_held_back() -> None:
    clock = Clock()
    throttle = Throttle(60.0, clock=clock)
    assert throttle.admit("k") == 0
    assert [throttle.admit("k") for _ in range(5)] == [None] * 5
    clock.now += 59.9
    assert throttle.admit("k") is None
    clock.now += 0.2
    assert throttle.admit("k") == 6
    assert throttle.admit("other") == 0


def test_the_keys_are_bounded() -> None:
    throttle = Throttle(60.0, max_keys=10, clock=Clock())
    for i in range(1000):
        throttle.admit(i)
    assert len(throttle._seen) == 10


def test_repeats_of_one_failure_are_one_record(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttle = Throttle(60.0, clock=clock)
    log = logging.getLogger("cryptowire.test.throttle")
    caplog.set_level(logging.ERROR, logger=log.name)

    def fail(session: int, exc: Exception) -> None:
        try:
            raise exc
        except Exception:
            log_throttled(log, logging.ERROR, "frame failed on session %s", session,
                          exc_info=True, throttle=throttle)

    for session in range(4500):  # the arguments differ; the error is the same
        fail(session, TypeError("Recursion limit reached"))
    fail(1, ValueError("another kind"))  # another exception type: its own key
    assert [(r.getMessage(), r.exc_info[0] if r.exc_info else None)
            for r in caplog.records] == [("frame failed on session 0", TypeError),
                                         ("frame failed on session 1", ValueError)]
    clock.now += 61
    fail(7, TypeError("Recursion limit reached"))
    assert caplog.records[-1].getMessage() == ("frame failed on session 7 (4499 more like it "
                                               "not logged since the last one)")
    assert len(caplog.text) < 5000  # not 3.9 MB of tracebacks


def test_log_exception_uses_the_shared_throttle(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("cryptowire.test.throttle.shared")
    caplog.set_level(logging.ERROR, logger=log.name)
    for _ in range(100):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log_exception(log, "op failed")
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None
    assert caplog.records[0].funcName == "test_log_exception_uses_the_shared_throttle"
