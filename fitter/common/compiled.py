"""Compiled (numba) kernels: how they are compiled, cached and run on several threads.

Kernels are compiled with ``cache=True``. numba stores the cache in the package's ``__pycache__`` when it is
writable and falls back to the user-wide cache directory (``~/.cache/numba`` or ``$NUMBA_CACHE_DIR``) when
the package is installed read-only in site-packages; if no location at all is writable the kernels are
compiled at every start instead of failing the import.

Parallelism: kernels are sequential and release the GIL (``nogil=True``); the renderer runs them on ranges of
its work (row bands, frames) on a small thread pool of ``torch.get_num_threads()`` threads. numba's own
``parallel=True`` is avoided on purpose: parallel kernels compile about twice as slowly, the ``workqueue``
threading layer is not safe for concurrent calls, and the ``omp`` layer is not fork-safe with GNU OpenMP and
adds a second OpenMP pool next to torch's.
"""
from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import numba
import numpy as np
import torch

_cache_warned = False


def njit_cached(**options) -> Callable:
    """``numba.njit(cache=True, **options)``, or uncached when no cache directory is writable."""

    def decorate(fn):
        global _cache_warned
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError as error:  # "cannot cache function ...: no locator available for file ..."
            if not _cache_warned:
                _cache_warned = True
                warnings.warn(
                    f"facefit: numba cannot cache its compiled kernels ({error}); they will be compiled "
                    "at every start (a few seconds). Set NUMBA_CACHE_DIR to a writable directory to avoid this.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return numba.njit(cache=False, **options)(fn)

    return decorate


_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None
_pool_lock = threading.Lock()


def num_threads() -> int:
    """Threads the kernels may use: torch's (``OMP_NUM_THREADS``, ``torch.set_num_threads``)."""
    return max(1, torch.get_num_threads())


def run_parallel(fn: Callable, tasks: Iterable[tuple]) -> None:
    """Run ``fn(*task)`` for every task, on the shared thread pool when there is more than one."""
    tasks = list(tasks)
    threads = num_threads()
    if threads == 1 or len(tasks) <= 1:
        for task in tasks:
            fn(*task)
        return
    global _pool, _pool_key
    with _pool_lock:
        key = (os.getpid(), threads)  # a forked child or a new thread count gets a fresh pool
        if _pool is None or _pool_key != key:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="facefit-kernels")
            _pool_key = key
        pool = _pool
    for future in [pool.submit(fn, *task) for task in tasks]:
        future.result()


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) in ``parts`` nearly equal consecutive ranges (empty ones dropped)."""
    bounds = np.linspace(0, n, max(1, parts) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
