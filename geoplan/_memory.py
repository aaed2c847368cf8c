"""How a city's millions of objects and gigabytes of arrays are allocated and handed back.

Three process-wide switches, each turned for the duration of a stage and restored:

* Python's cyclic garbage collector is paused (:func:`collector_paused`): every geometry
  is an object it tracks, and it would go over all of them again and again while
  millions are made.
* numpy's large arrays take ordinary pages (:func:`ordinary_pages`): numpy asks Linux
  for 2 MB pages for every array of 4 MB or more (``madvise``), and where the kernel
  compacts memory on the fault to find them (``transparent_hugepage/defrag = madvise``,
  as on the machine of ``benchmarks/results``) the first writes to a city's fresh arrays
  wait for it: 1.5-2 s of a 20 s plan at a million corridor edges.
* Memory freed by a large stage goes back to the system (:func:`return_freed_memory`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
from collections.abc import Iterator

import numpy as np


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector meanwhile.

    Reference counting frees memory as usual meanwhile; the collector is on again
    afterwards if it was on before.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


@contextlib.contextmanager
def ordinary_pages() -> Iterator[None]:
    """Let numpy's new arrays take ordinary pages meanwhile (not ``madvise``'d huge ones).

    numpy's own switch (the one ``NUMPY_MADVISE_HUGEPAGE=0`` turns at import), set back
    afterwards; nothing changes where numpy has no such switch.
    """
    switch = getattr(getattr(np, "_core", None), "multiarray", None)
    switch = getattr(switch, "_set_madvise_hugepage", None)
    if switch is None:  # pragma: no cover - a numpy without it
        yield
        return
    was_on = switch(False)
    try:
        yield
    finally:
        switch(was_on)


def return_freed_memory() -> None:
    """Hand the heap memory freed by a large stage back to the system (glibc only).

    A city's geometries are millions of small heap blocks; once noding or attaching
    frees them, glibc would keep the space in the process, and the arrays of the next
    stages (mapped afresh) would add to it: 0.9 GB of the peak at 1M corridor edges.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)
