"""A thread that keeps changing a list while a test passes that list to the cache: what a caller
sharing a list across threads does to a batch call that works on it without the GIL."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, List


@contextmanager
def changing(shared: List[Any], more: Callable[[int], Iterable[Any]]) -> Iterator[None]:
    """Until the block ends, another thread clears ``shared``, extends it with ``more(i)`` and
    cuts it in half, in turn (``i`` counts its steps)."""
    stop = threading.Event()

    def mutate() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 3 == 0:
                shared.clear()
            elif i % 3 == 1:
                shared.extend(more(i))
            else:
                del shared[: len(shared) // 2]

    thread = threading.Thread(target=mutate)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
