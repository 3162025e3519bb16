"""The ``timer`` of a ``TTLCache``: the user's timer, callable, and a context manager that
freezes time (as cachetools' ``_TimedCache._Timer``).

``with cache.timer as now:`` reads the user's timer once (the outermost ``with`` of a nest) and,
until the outermost ``with`` ends, every read of the timer (the cache's own reads included)
returns that same time. Other attributes are looked up on the user's timer.

The cache reads the time through ``_Timer__read``: the user's timer itself while time runs, a
C-level callable returning the frozen time while it is frozen. So a read costs one call of the
user's timer, with no Python frame of ours in between.
"""

from __future__ import annotations

import copy
from itertools import repeat
from typing import Any, Callable, Dict, Tuple


class Timer:
    """A cache's timer: ``timer()`` reads the time; ``with timer as now:`` freezes it."""

    # A __dict__ as well: attributes may be set on the timer itself, as on cachetools'.
    __slots__ = ("__timer", "__nesting", "__time", "__read", "__dict__")

    def __init__(self, timer: Callable[[], Any]) -> None:
        self.__timer = timer
        self.__nesting = 0
        self.__time: Any = None
        self.__read: Callable[[], Any] = timer

    def __call__(self) -> Any:
        return self.__read()

    def __enter__(self) -> Any:
        if self.__nesting == 0:
            self.__time = time = self.__timer()
            self.__read = repeat(time).__next__
        else:
            time = self.__time
        self.__nesting += 1
        return time

    def __exit__(self, *exc: object) -> None:
        self.__nesting -= 1
        if self.__nesting == 0:
            self.__read = self.__timer

    def __copy__(self) -> "Timer":
        return Timer(self.__timer)

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Timer":
        return Timer(copy.deepcopy(self.__timer, memo))

    def __reduce__(self) -> Tuple[Any, Tuple[Callable[[], Any]]]:
        return Timer, (self.__timer,)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not the timer's own: they are the user timer's.
        if name.startswith("_Timer__"):
            raise AttributeError(name)
        return getattr(self.__timer, name)
