"""Packed byte strings: many keys or values in one buffer, for ``PackedCache``'s batches.

A batch of a ``PackedCache`` crosses into the engine as one buffer of concatenated byte strings
and one array of their lengths, and comes back the same way: no Python object per key or value
on either side, so the whole batch runs without the GIL (see ``PackedCache``).
"""

from __future__ import annotations

from array import array
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from ._common import key_bytes

#: What ``PackedHits.offsets`` and ``PackedHits.lengths`` hold for a key that missed.
MISSING = 2**64 - 1


def _lengths_array(lengths: Any) -> "array[int]":
    """An ``array('Q')`` copy of ``lengths`` (a copy: the caller may change theirs later)."""
    if isinstance(lengths, array) and lengths.typecode == "Q":
        return lengths[:]
    if isinstance(lengths, (str, bytes, bytearray)):
        raise TypeError("lengths must be a sequence of ints, not a byte string")
    try:
        return array("Q", lengths)
    except OverflowError:
        raise ValueError("every length must be between 0 and 2**64 - 1") from None
    except TypeError:
        raise TypeError(
            f"lengths must be a sequence of ints, not {type(lengths).__name__}"
        ) from None


def _frozen_bytes(data: Any, name: str) -> Any:
    """``data`` as bytes that cannot change: ``bytes`` and views of ``bytes`` as they are (a flat
    view of bytes), any other buffer (``bytearray``, ``array``, ``mmap``...) copied, so that
    nothing can resize or rewrite it under a ``Packed`` (PyPy lets a ``bytearray`` be resized
    even while views of it exist)."""
    if type(data) is bytes:
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"{name} must be bytes-like, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise ValueError(f"{name} must be a contiguous buffer")
    if type(view.obj) is not bytes:
        return view.tobytes()
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _size(data: Any) -> int:
    return len(data) if type(data) is bytes else int(data.nbytes)


class Packed(Sequence[bytes]):
    """``n`` byte strings in one buffer: ``data`` holds them one after the other, ``lengths``
    says how long each is. A sequence of ``bytes`` (``len``, ``[i]``, iteration), immutable.

    Make one with ``Packed(data, lengths)``, ``Packed.fixed(data, width)`` (strings of one
    width, e.g. 16-byte keys or 64-byte records: ``len(data)`` must be a multiple of
    ``width``) or ``Packed.of(items)`` (from bytes-like or ``str`` items, UTF-8 encoded).
    ``data`` is any contiguous bytes-like object: ``bytes`` (and views of ``bytes``) are used
    without a copy, any other buffer (``bytearray``, ``array``, ...) is copied, so a ``Packed``
    never changes.
    """

    # _data and _lengths are None until _source(*_args) gives them (a backend's output, read
    # lazily); _native is what the native backend passes for them, kept once made.
    __slots__ = ("_data", "_lengths", "_n", "_offsets", "_native", "_source", "_args")

    def __init__(self, data: Any, lengths: Iterable[int]) -> None:
        frozen = _frozen_bytes(data, "data")
        counts = _lengths_array(lengths)
        total, size = sum(counts), _size(frozen)
        if total != size:
            raise ValueError(f"the lengths add up to {total} bytes, but data holds {size}")
        self._data: Any = frozen
        self._lengths: Any = counts
        self._n = len(counts)
        self._offsets: Optional[List[int]] = None
        self._native: Any = None
        self._source: Optional[Callable[..., Tuple[Any, Any]]] = None
        self._args: Tuple[Any, ...] = ()

    @classmethod
    def _trusted(cls, data: Any, lengths: Any) -> "Packed":
        """A ``Packed`` over lengths known to add up to ``len(data)``."""
        packed = cls.__new__(cls)
        packed._data, packed._lengths, packed._n = data, lengths, len(lengths)
        packed._offsets = packed._native = packed._source = None
        packed._args = ()
        return packed

    @classmethod
    def _lazy(
        cls, n: int, source: Callable[..., Tuple[Any, Any]], args: Tuple[Any, ...]
    ) -> "Packed":
        """A backend's output: ``n`` strings whose ``(data, lengths)`` ``source(*args)`` gives
        when Python asks for them (the backend may pass them on without asking)."""
        packed = cls.__new__(cls)
        packed._data = packed._lengths = packed._offsets = packed._native = None
        packed._n, packed._source, packed._args = n, source, args
        return packed

    def _parts(self) -> Tuple[Any, Any]:
        if self._data is None:
            assert self._source is not None
            self._data, self._lengths = self._source(*self._args)
        return self._data, self._lengths

    @classmethod
    def fixed(cls, data: Any, width: int) -> "Packed":
        """Byte strings of ``width`` bytes each, one after the other in ``data``."""
        if isinstance(width, bool) or not isinstance(width, int):
            raise TypeError(f"width must be an int, not {type(width).__name__}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        frozen = _frozen_bytes(data, "data")
        count, rest = divmod(_size(frozen), width)
        if rest:
            raise ValueError(
                f"data holds {_size(frozen)} bytes, not a multiple of the width {width}"
            )
        return cls._trusted(frozen, array("Q", [width]) * count)

    @classmethod
    def of(cls, items: Iterable[Any]) -> "Packed":
        """The given byte strings (bytes-like, or ``str`` as UTF-8), packed into one buffer."""
        raws = [key_bytes(item) for item in items]
        return cls._trusted(b"".join(raws), array("Q", map(len, raws)))

    @property
    def data(self) -> Any:
        """The buffer holding the byte strings, one after the other."""
        return self._parts()[0]

    @property
    def lengths(self) -> Sequence[int]:
        """The length of each byte string (an ``array('Q')`` or a view of one)."""
        lengths: Sequence[int] = self._parts()[1]
        return lengths

    @property
    def nbytes(self) -> int:
        """The total length of the byte strings."""
        return _size(self._parts()[0])

    def _offset(self, index: int) -> int:
        offsets = self._offsets
        if offsets is None:
            offsets = [0]
            total = 0
            for length in self._parts()[1]:
                total += length
                offsets.append(total)
            self._offsets = offsets
        return offsets[index]

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> List[bytes]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[bytes, List[bytes]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        n = self._n
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("Packed index out of range")
        data, lengths = self._parts()
        start = self._offset(index)
        return bytes(data[start : start + lengths[index]])

    def __iter__(self) -> Iterator[bytes]:
        data, lengths = self._parts()
        at = 0
        for length in lengths:
            yield bytes(data[at : at + length])
            at += length

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packed):
            return NotImplemented
        return list(self.lengths) == list(other.lengths) and bytes(self.data) == bytes(other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(repr(item) for item in self[:3])
        more = ", ..." if self._n > 3 else ""
        return f"Packed([{shown}{more}], n={self._n})"


#: A ``PackedHits``'s arrays: values, offsets, lengths, missing_at.
HitParts = Tuple[Any, Sequence[int], Sequence[int], Sequence[int]]


def _given(*parts: Any) -> HitParts:
    """The ``source`` of a ``PackedHits`` whose arrays are made already: ``args`` are they."""
    return parts


class PackedHits(Sequence[Optional[bytes]]):
    """What ``PackedCache.get_many`` found: for key ``i``, ``hits[i]`` is its value (``bytes``)
    or ``None``. ``view(i)`` gives the value without a copy; ``missing`` packs the keys that
    missed (ready for ``put_many``) and ``missing_at`` their indexes; ``found`` counts the hits.

    The values lie in ``values`` in no particular order: key ``i``'s is ``lengths[i]`` bytes
    at ``offsets[i]``; both are ``MISSING`` for a miss.
    """

    __slots__ = ("_n", "missing", "_parts", "_source", "_args")

    def __init__(
        self, n: int, missing: Packed, source: Callable[..., HitParts], args: Tuple[Any, ...]
    ) -> None:
        self._n = n
        #: The keys that missed, in order.
        self.missing: Packed = missing
        self._parts: Optional[HitParts] = None
        self._source, self._args = source, args  # source(*args): the arrays, made on first use

    def _loaded(self) -> HitParts:
        parts = self._parts
        if parts is None:
            parts = self._parts = self._source(*self._args)
        return parts

    @property
    def values(self) -> Any:
        """The buffer the hits' values lie in."""
        return self._loaded()[0]

    @property
    def offsets(self) -> Sequence[int]:
        """Where each key's value starts in ``values`` (``MISSING`` for a miss)."""
        return self._loaded()[1]

    @property
    def lengths(self) -> Sequence[int]:
        """Each key's value length (``MISSING`` for a miss)."""
        return self._loaded()[2]

    @property
    def missing_at(self) -> Sequence[int]:
        """The indexes of the keys that missed, in order."""
        return self._loaded()[3]

    @property
    def found(self) -> int:
        """How many keys hit."""
        return self._n - len(self.missing)

    def view(self, index: int) -> Optional[memoryview]:
        """Key ``index``'s value as a read-only view into ``values`` (no copy), or ``None``."""
        values, offsets, lengths, _ = self._loaded()
        offset = offsets[index]
        if offset == MISSING:
            return None
        return memoryview(values)[offset : offset + lengths[index]].toreadonly()

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Optional[bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> List[Optional[bytes]]: ...

    def __getitem__(
        self, index: Union[int, slice]
    ) -> Union[Optional[bytes], List[Optional[bytes]]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        values, offsets, lengths, _ = self._loaded()
        offset = offsets[index]
        if offset == MISSING:
            return None
        return bytes(values[offset : offset + lengths[index]])

    def __iter__(self) -> Iterator[Optional[bytes]]:
        values, offsets, lengths, _ = self._loaded()
        for offset, length in zip(offsets, lengths):
            yield None if offset == MISSING else bytes(values[offset : offset + length])

    def __repr__(self) -> str:
        return f"PackedHits(n={self._n}, found={self.found})"
