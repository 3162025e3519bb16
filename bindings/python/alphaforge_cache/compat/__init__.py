"""Drop-in replacements for ``cachetools`` and ``functools`` caches.

Change an import and keep the behaviour::

    from alphaforge_cache.compat import LRUCache, TTLCache, cached, ttl_cache  # cachetools
    from alphaforge_cache.compat import lru_cache, cache                      # functools

* ``LRUCache(maxsize, getsizeof=None)`` and ``TTLCache(maxsize, ttl, timer=time.monotonic,
  getsizeof=None)`` behave as cachetools (8.x) documents and implements them, subclass hooks
  (``__missing__``, ``popitem``, ``getsizeof``, ``expire``, ...) included;
* ``cached(cache, key=keys.hashkey, lock=None, condition=None, info=False)`` and ``keys`` as
  cachetools', for any mutable mapping; ``ttl_cache`` as ``cachetools.func.ttl_cache``;
* ``lru_cache(maxsize=128, typed=False)`` and ``cache`` as ``functools``' C implementation.

The caches are pure Python on both backends (``alphaforge_cache.BACKEND``): each read is one
lookup in one ``OrderedDict`` and one ``move_to_end``, in one Python frame. See
``docs/python-api.md`` ("Compatibility with cachetools and functools").
"""

from __future__ import annotations

from . import keys
from ._cached import CacheInfo, cached
from ._func import ttl_cache
from ._functools import cache, lru_cache
from ._lru import LRUCache
from ._ttl import TTLCache

__all__ = [
    "CacheInfo",
    "LRUCache",
    "TTLCache",
    "cache",
    "cached",
    "keys",
    "lru_cache",
    "ttl_cache",
]

# Pickles and reprs name the public classes by the module users import them from.
for _public in (LRUCache, TTLCache, CacheInfo):
    _public.__module__ = __name__
del _public
