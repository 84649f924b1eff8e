"""The service's process holds what it uses, not the high-water mark of its busiest minute.

glibc's allocator keeps memory a program has freed, and gives every thread that allocates
under contention a heap of its own (up to eight per core), each holding its own freed
memory. A service that polls for months passes through busy moments (the first pass over
every feed, a burst of new items) and then idles on 304s: measured at 1,000 feeds, some 50 MB
of the service's 150 MB were freed memory kept this way. So the service asks for at most
:data:`ARENAS` heaps when it starts, before its threads do, and hands whole free pages back to
the kernel on a chore's interval (``malloc_trim``, which walks the heaps: tens of
milliseconds, in a thread). Both are glibc's; elsewhere (musl, macOS) they are skipped.
"""

from __future__ import annotations

import ctypes
import functools

ARENAS = 2  # the event loop's thread and the worker threads share the rest
TRIM_EVERY = 60.0  # seconds between hand-backs
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018  # glibc's, absent elsewhere
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap glibc's heaps at ``count``; True when it took. Only heaps created afterwards obey,
    so this runs before the service starts its threads."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, count))


def release_free_memory() -> bool:
    """Hand the free pages of every heap back to the kernel; True when some were."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))
