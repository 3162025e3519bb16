/*
 * alphaforge_cache._reads.CacheLock: the lock a native cache with the C read path takes around
 * every engine call and mirror change, from C (a put, put_many, a flush of the read buffer) and
 * from Python (`with cache._lock:`).
 *
 * A threading.Lock did the same job, but the C paths could reach it only by calling its
 * `acquire(False)` and `release()`: argument parsing, a clock reading (CPython computes a
 * deadline even for a lock that does not wait) and a semaphore, ~160 ns of a put that evicts
 * (~460 ns in all on a cache of 100k entries). Here the C paths take and release a mutex
 * directly; Python code sees a small lock: acquire(blocking=True), release(), locked(), and
 * `with`.
 *
 * Unlike a threading.Lock, only the thread holding it may release it (RuntimeError otherwise),
 * and a thread waiting for it cannot be interrupted (KeyboardInterrupt is raised once it has the
 * lock): no code of the caller runs while it is held, so waits are as short as an engine call.
 * A wait releases the GIL first, so the thread holding the lock can always finish.
 *
 * An exception that leaves a `with` block (or a C path's failed call into Python under the lock)
 * marks the lock `dirty`: the next Python-level acquire calls the cache's mender (set_mend)
 * before anything else, and the C paths leave a dirty lock to the Python path (docs/python-api.md,
 * Errors).
 */
#ifndef ALPHAFORGE_CACHE_CACHE_LOCK_H
#define ALPHAFORGE_CACHE_CACHE_LOCK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef _WIN32
#include <windows.h>
typedef SRWLOCK CacheMutex;
#else
#include <pthread.h>
typedef pthread_mutex_t CacheMutex;
#endif

typedef struct {
    PyObject_HEAD
    CacheMutex mutex;
    /* PyThread_get_thread_ident() of the thread holding it, 0 when free: written only by that
       thread while it holds the mutex (set after taking it, cleared before releasing it), so a
       thread reads its own ident there exactly when it holds the lock. */
    unsigned long owner;
    /* An operation was cut short under the lock (an exception left its `with` block, or a C
       path's call into Python failed while holding it): the cache's tables may disagree, and
       the next holder has them mended (`mend`) before anything else. */
    int dirty;
    /* A weakref.WeakMethod of the cache's mender (set_mend), or NULL: called, lock held, by the
       next Python-level acquire after an operation was cut short. A weak reference, as the
       cache holds this lock (no cycle that only the collector could break). */
    PyObject *mend;
} CacheLock;

/* Creates the type and adds it to `module` as "CacheLock". 0, or -1 with an exception set. */
int CacheLock_add_type(PyObject *module);

/* Whether `obj` is a CacheLock. */
int CacheLock_check(PyObject *obj);

/* Takes the lock if it is free: 1 when taken, 0 when another thread holds it (or this one).
   (The C paths that take it treat a lock whose tables await mending, `dirty`, as taken by
   another: they release it and go the Python way, whose acquire mends.) */
int CacheLock_try(CacheLock *self);

/* Takes the lock, waiting with the GIL released if another thread holds it. */
void CacheLock_wait(CacheLock *self);

/* Marks the tables as to be mended by the next holder (lock held): a C path's call into Python
   failed in the middle of an operation. */
void CacheLock_cut_short(CacheLock *self);

/* Releases the lock: 0, or -1 with RuntimeError when this thread does not hold it. */
int CacheLock_release(CacheLock *self);

#endif
