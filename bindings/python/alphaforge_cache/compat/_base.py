"""What ``LRUCache`` and ``TTLCache`` share: the mapping, the size accounting of cachetools'
``Cache``, copying, pickling, and the routing of fast paths around overridden hooks.

The data of a cache lives in two dicts:

* ``_od``, an ``OrderedDict`` from key to value in least-recently-used-first order. It serves
  every read in one lookup, and its ``move_to_end`` is the recency update: the order is exact at
  every moment, so ``popitem`` and eviction take the true least recently used item. (A TTL
  cache adds its expiry times, ``_ttl.py``.) The reads themselves are ``Core``'s (``_core.py``:
  C with the native backend, Python otherwise).
* ``_ins``, a plain dict from key to ``None`` in insertion order: the order in which cachetools
  iterates and prints a cache (its data dict's order, which a hit does not change).

cachetools composes its methods through overridable hooks (``get`` calls ``__contains__`` and
``__getitem__``, eviction calls ``popitem``, which calls ``__delitem__``, ...). The fast paths
here do the same work inline; a subclass that overrides a hook gets, for each fast method that
would bypass it, the generic composition instead (``__init_subclass__``), so subclasses observe
exactly the calls cachetools makes.
"""

from __future__ import annotations

import copyreg
import sys
import threading
from collections import OrderedDict
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterator,
    Optional,
    Tuple,
    TypeVar,
)

from ._core import MISSING, Core

if sys.version_info >= (3, 9):
    from collections.abc import MutableMapping
else:  # pragma: no cover - Python 3.8: subscriptable through typing
    from typing import MutableMapping

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")
_T = TypeVar("_T")

# Caches whose repr is being built, per thread: a cache holding itself prints as "{...}".
_repr_running = threading.local()

#: A route: (the fast function, the generic composition, the hooks the fast one bypasses).
Route = Tuple[Callable[..., Any], Callable[..., Any], Tuple[str, ...]]


class CacheBase(Core, MutableMapping[_KT, _VT]):
    """The mapping behaviour of cachetools' ``Cache`` over ``_od`` and ``_ins`` (the reads,
    ``get``, ``__getitem__`` and ``__contains__``, are ``Core``'s)."""

    __slots__ = ("_ins", "_sizes", "_currsize", "_maxsize", "__dict__", "__weakref__")

    _ins: Dict[Any, None]
    _sizes: Optional[Dict[Any, Any]]
    _currsize: Any
    _maxsize: Any

    #: Fast method name -> route, filled by each concrete class (see ``__init_subclass__``).
    _routes: ClassVar[Dict[str, Route]] = {}
    #: The class whose hooks the routes were written against.
    _route_owner: ClassVar[Optional[type]] = None

    def __init__(self, maxsize: Any, getsizeof: Optional[Callable[[_VT], Any]] = None) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be non-negative")
        if getsizeof is not None:
            self.getsizeof = getsizeof  # type: ignore[method-assign,assignment]
        # As in cachetools: sizes are kept (and getsizeof called) only when getsizeof is
        # given or overridden; otherwise every value has size 1 and currsize is the length.
        sized = self.getsizeof is not CacheBase.getsizeof
        self._sizes = {} if sized else None
        self._currsize = 0
        self._maxsize = maxsize
        self._od = OrderedDict()
        self._timer = None  # a TTL cache's is set by TTLCache.__init__
        self._ins = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls._route_owner
        if owner is None or not issubclass(cls, owner):
            return
        for name, (fast, generic, hooks) in cls._routes.items():
            if getattr(cls, name) is fast and any(
                getattr(cls, hook) is not getattr(owner, hook) for hook in hooks
            ):
                setattr(cls, name, generic)

    # ----- sizes --------------------------------------------------------------------------------

    @staticmethod
    def getsizeof(value: Any) -> Any:
        """Return the size of a cache element's value (1 unless ``getsizeof`` was given)."""
        return 1

    @property
    def maxsize(self) -> Any:
        """The maximum size of the cache."""
        return self._maxsize

    @property
    def currsize(self) -> Any:
        """The current size of the cache (the sum of the sizes of its items)."""
        return len(self._od) if self._sizes is None else self._currsize

    def _drop(self, key: Any) -> Any:
        """Removes ``key`` from the structures (no hook, no timer); its value."""
        entry = self._od.pop(key, MISSING)
        if entry is MISSING:
            raise KeyError(key)  # (OrderedDict.pop would raise KeyError(*key) for a tuple)
        del self._ins[key]
        sizes = self._sizes
        if sizes is not None:
            self._currsize -= sizes.pop(key)
        return entry

    # ----- the mapping --------------------------------------------------------------------------

    def __missing__(self, key: _KT) -> _VT:
        raise KeyError(key)

    def __iter__(self) -> Iterator[_KT]:
        return iter(self._ins)

    def __len__(self) -> int:
        return len(self._od)

    def _data_repr(self) -> str:
        """The repr of the data as cachetools prints it: a dict in insertion order."""
        running = getattr(_repr_running, "ids", None)
        if running is None:
            running = _repr_running.ids = set()
        if id(self) in running:
            return "{...}"
        running.add(id(self))
        try:
            od = self._od
            return repr({key: od[key] for key in self._ins})
        finally:
            running.discard(id(self))

    def __repr__(self) -> str:
        return "%s(%s, maxsize=%r, currsize=%r)" % (
            type(self).__name__,
            self._data_repr(),
            self._maxsize,
            self._currsize if self._sizes is not None else len(self._od),
        )

    def clear(self) -> None:
        """Remove every item (no hook is called)."""
        self._od.clear()
        self._ins.clear()
        if self._sizes is not None:
            self._sizes.clear()
        self._currsize = 0

    # ----- copying and pickling -----------------------------------------------------------------

    def _copy_into(self, new: "CacheBase[Any, Any]") -> None:
        """Copies the structures into ``new`` (made by ``__new__``)."""
        new._od = self._od.copy()
        new._timer = None
        new._ins = self._ins.copy()
        new._sizes = None if self._sizes is None else self._sizes.copy()
        new._currsize = self._currsize
        new._maxsize = self._maxsize

    def __copy__(self: _T) -> _T:
        """A copy sharing the instance attributes (as cachetools), with data of its own."""
        cls = type(self)
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        self._copy_into(new)  # type: ignore[attr-defined]
        return new

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Every protocol the same way (protocols 0 and 1 would otherwise try to pickle the C
        # base); a subclass's own __reduce__ still wins, as with object.__reduce_ex__.
        if type(self).__reduce__ is not object.__reduce__:
            return self.__reduce__()
        return copyreg.__newobj__, (type(self),), self.__getstate__()  # type: ignore[attr-defined]

    def __getstate__(self) -> Dict[str, Any]:
        return {
            "dict": self.__dict__,
            "od": self._od,
            "ins": self._ins,
            "sizes": self._sizes,
            "currsize": self._currsize,
            "maxsize": self._maxsize,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state["dict"])
        self._od = state["od"]
        self._timer = None
        self._ins = state["ins"]
        self._sizes = state["sizes"]
        self._currsize = state["currsize"]
        self._maxsize = state["maxsize"]


def routes(owner: type, table: Dict[str, Tuple[str, Tuple[str, ...]]]) -> None:
    """Declares ``owner``'s routes: ``{fast method: (generic method, hooks)}``, where the generic
    method is another attribute of ``owner``."""
    owner._routes = {  # type: ignore[attr-defined]
        name: (getattr(owner, name), getattr(owner, generic), hooks)
        for name, (generic, hooks) in table.items()
    }
    owner._route_owner = owner  # type: ignore[attr-defined]
