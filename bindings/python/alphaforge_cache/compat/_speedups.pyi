"""Stub of the optional C extension ``alphaforge_cache.compat._speedups`` (see _speedups.c)."""

from typing import Any, Callable, Hashable

class Core:
    """The read paths of the compat caches (``_core.PyCore`` in C)."""

    _od: Any
    _timer: Any
    _exp: Any
    _floor: Any
    def get(self, key: Any, default: Any = None) -> Any: ...
    def __getitem__(self, key: Any) -> Any: ...
    def __contains__(self, key: object) -> bool: ...

class LRUWrapper:
    """The call of a ``compat.lru_cache`` wrapper (``_functools`` in C)."""

    def __init__(
        self,
        user_function: Callable[..., Any],
        maxsize: Any,
        typed: bool,
        cache: Any,
        make_key: Callable[..., Hashable],
        finish: Callable[..., Hashable],
        info_type: Any,
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def cache_info(self) -> Any: ...
    def cache_clear(self) -> None: ...
