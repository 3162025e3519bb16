/*
 * alphaforge_cache._reads.parse_rows and restore_columns: a native load's work on a snapshot's
 * rows in C: its reading of the entries (the fast path of _snapshot_format.py's Reader._parse)
 * and the columns it hands the engine.
 *
 * The Python reader parses an entry whose bytes are all in its buffer, and that passes every
 * check, in place, and leaves anything else (an entry cut by the buffer's end, a field it must
 * refuse) to its general path, which reads that entry again and says what is wrong. parse_rows
 * does the first part for a run of entries in one call: 1M entries of a snapshot took ~640 ms of
 * Python, ~75 % of a native `Cache.load`. It takes exactly the entries the Python fast path takes
 * and makes the same rows of them, so a file loads, or is refused with the same error, whichever
 * path read it (tests/python/test_snapshot_rows.py).
 *
 * restore_columns then makes, in one pass over the rows a load staged, the columns the engine's
 * load takes (the keys joined, their lengths, weights and TTLs as C arrays) and the (key, value)
 * pairs the mirror takes: ~290 ms of list, join and cffi conversions for 1M rows in Python.
 */
#ifndef ALPHAFORGE_CACHE_SNAPSHOT_ROWS_H
#define ALPHAFORGE_CACHE_SNAPSHOT_ROWS_H

#include <Python.h>

/* Adds parse_rows and restore_columns to `module`. 0, or -1 with an exception set. */
int SnapshotRows_add_function(PyObject *module);

#endif
