"""The background repeat that the rollup fold and the release refresh run in served processes."""

from __future__ import annotations

import threading

from flask import Flask, current_app

from fieldsvc.background import repeat


def test_a_job_repeats_in_its_app_context_and_a_failure_only_waits_for_the_next_turn(caplog):
    app = Flask("background-test")
    app.config["EVERY"] = 0.01
    turns: list[str] = []
    done = threading.Event()

    def job() -> None:
        turns.append(current_app.name)
        if len(turns) == 1:
            raise RuntimeError("first turn fails")
        if len(turns) == 3:
            done.set()

    thread = repeat(app, "EVERY", 5, job, name="test-repeat", on_failure="the job failed")
    assert thread is not None and thread.daemon and thread.name == "test-repeat"
    assert done.wait(5)
    assert turns[:3] == ["background-test"] * 3
    assert "the job failed" in caplog.text


def test_zero_seconds_starts_nothing():
    app = Flask("background-test")
    app.config["EVERY"] = 0
    assert repeat(app, "EVERY", 5, lambda: None, name="never", on_failure="") is None
    app.config["EVERY"] = None
    assert repeat(app, "EVERY", 5, lambda: None, name="never", on_failure="") is None
