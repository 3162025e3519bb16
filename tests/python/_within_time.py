"""A watchdog for tests of deadlocks: a case that waits for itself would never finish."""

from __future__ import annotations

import threading
from typing import Callable, List

SECONDS = 20.0  # a deadlocked case would never finish


def within_time(run: Callable[[], None], hung_because: str) -> None:
    """Runs ``run`` on a daemon thread; fails, saying the case ``hung_because``, if it has not
    finished in ``SECONDS``, and re-raises what ``run`` raised."""
    errors: List[BaseException] = []

    def body() -> None:
        try:
            run()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(SECONDS)
    assert not worker.is_alive(), f"hung: {hung_because}"
    if errors:
        raise errors[0]
