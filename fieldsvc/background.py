"""Jobs that served processes repeat off the request path (the rollup fold, the release refresh).

Each runs in a daemon thread, in its own application context; a failure is logged and the job
tries again at its next turn, so a request never waits for it nor fails because of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Flask


def repeat(app: Flask, seconds_key: str, default: float, job: Callable[[], object], *,
           name: str, on_failure: str) -> threading.Thread | None:
    """Run ``job`` every ``app.config[seconds_key]`` seconds (0 or less: never) in a daemon thread."""
    seconds = float(app.config.get(seconds_key, default) or 0)
    if seconds <= 0:
        return None

    def loop() -> None:
        while True:
            try:
                with app.app_context():
                    job()
            except Exception:  # noqa: BLE001 - logged; the next turn retries
                app.logger.exception(on_failure)
            time.sleep(seconds)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
