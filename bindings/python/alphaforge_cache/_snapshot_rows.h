/*
 * alphaforge_cache._reads.parse_rows: the fast path of a snapshot's entries (_snapshot_format.py,
 * Reader._parse) in C, for the native backend's load.
 *
 * The Python reader parses an entry whose bytes are all in its buffer, and that passes every
 * check, in place, and leaves anything else (an entry cut by the buffer's end, a field it must
 * refuse) to its general path, which reads that entry again and says what is wrong. parse_rows
 * does the first part for a run of entries in one call: 1M entries of a snapshot took ~640 ms of
 * Python, ~75 % of a native `Cache.load`. It takes exactly the entries the Python fast path takes
 * and makes the same rows of them, so a file loads, or is refused with the same error, whichever
 * path read it (tests/python/test_snapshot_rows.py).
 */
#ifndef ALPHAFORGE_CACHE_SNAPSHOT_ROWS_H
#define ALPHAFORGE_CACHE_SNAPSHOT_ROWS_H

#include <Python.h>

/* Adds parse_rows to `module`. 0, or -1 with an exception set. */
int SnapshotRows_add_function(PyObject *module);

#endif
