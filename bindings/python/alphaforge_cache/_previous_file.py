"""The file a snapshot save replaces, held open across the rename so that the rename does not
free its blocks: the last close does, on a thread of its own, after the save has returned.

The twin of the engine's ``PreviousFile`` (``alphaforge-cache/src/snapshot/atomic_file.rs``).
Freeing a large file's blocks can take a good part of a save (on ext4 mounted with ``discard``
and no journal each freed extent is discarded before ``rename`` returns: 17-19 ms for a
snapshot of 89 MB), and none of it is the save's work: the new snapshot is in place and on disk
before. Held with ``O_PATH`` (Linux), which opens nothing (no read permission needed, no side
effect on a device or a pipe), and only when it is a regular file of at least
:data:`HOLD_MIN_BYTES`; elsewhere the rename frees it, as before.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from typing import Optional

__all__ = ["HOLD_MIN_BYTES", "hold", "release_in_background"]

HOLD_MIN_BYTES = 4 << 20
"""The smallest previous snapshot whose freeing is left to a thread: smaller ones are freed
sooner than a thread starts."""

_O_PATH: Optional[int] = getattr(os, "O_PATH", None) if sys.platform.startswith("linux") else None


def hold(target: str) -> Optional[int]:
    """A descriptor of the file at ``target`` if it is one worth holding (a regular file, not
    a symbolic link, of at least :data:`HOLD_MIN_BYTES`), else ``None``. Never raises: a file
    that cannot be held is freed by the rename, as it would be anyway."""
    if _O_PATH is None:
        return None
    try:
        fd = os.open(target, _O_PATH | os.O_NOFOLLOW)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size < HOLD_MIN_BYTES:
        os.close(fd)
        return None
    return fd


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:  # the blocks are freed either way
        pass


def release_in_background(fd: int) -> None:
    """Closes ``fd`` on a thread of its own (on this one if no thread can be started). The
    thread is not a daemon: an interpreter that exits first waits for the close, which is
    short, rather than leave it to the process's end."""
    try:
        threading.Thread(target=_close, args=(fd,), name="afc-release").start()
    except RuntimeError:  # no thread can be started (or the interpreter is shutting down)
        _close(fd)
