"""How a city's millions of objects and gigabytes of arrays are allocated and handed back.

Two process-wide switches, held off while a stage runs (:func:`large_stage` holds both;
when stages of several threads overlap, the last to end restores them), and a hand-back:

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
import threading
from collections.abc import Callable, Iterator

import numpy as np


class _Switch:
    """A process-wide switch held off while any caller (of any thread) is in a stage.

    The first to enter notes how it was and turns it off; the last to leave turns it on
    again if it was on. (Each caller restoring what it found would leave it off when two
    threads' stages overlap: the second finds it off.)
    """

    def __init__(self, get: Callable[[], bool], turn: Callable[[bool], object]) -> None:
        self._get, self._turn = get, turn
        self._lock = threading.Lock()
        self._holders = 0
        self._was_on = False

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        """Hold the switch off meanwhile."""
        with self._lock:
            if not self._holders:
                self._was_on = self._get()
                self._turn(False)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if not self._holders and self._was_on:
                    self._turn(True)


def _turn_collector(on: bool) -> None:
    if on:
        gc.enable()
    else:
        gc.disable()


_COLLECTOR = _Switch(gc.isenabled, _turn_collector)
_multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
_HUGE_PAGES = (
    _Switch(_multiarray._get_madvise_hugepage, _multiarray._set_madvise_hugepage)
    if hasattr(_multiarray, "_set_madvise_hugepage")
    else _Switch(lambda: False, lambda _on: None)  # pragma: no cover - a numpy without it
)


def collector_paused() -> contextlib.AbstractContextManager[None]:
    """Pause Python's cyclic garbage collector meanwhile.

    Reference counting frees memory as usual meanwhile; the collector is on again
    afterwards if it was on before.
    """
    return _COLLECTOR.off()


def ordinary_pages() -> contextlib.AbstractContextManager[None]:
    """Let numpy's new arrays take ordinary pages meanwhile (not ``madvise``'d huge ones).

    numpy's own switch (the one ``NUMPY_MADVISE_HUGEPAGE=0`` turns at import), set back
    afterwards; nothing changes where numpy has no such switch.
    """
    return _HUGE_PAGES.off()


@contextlib.contextmanager
def large_stage() -> Iterator[None]:
    """Hold both switches off meanwhile: :func:`collector_paused` and :func:`ordinary_pages`.

    For the stages that make a city's millions of geometries and gigabytes of arrays
    (reading the layers, planning); usable as a decorator too.
    """
    with collector_paused(), ordinary_pages():
        yield


def return_freed_memory() -> None:
    """Hand the heap memory freed by a large stage back to the system (glibc only).

    A city's geometries are millions of small heap blocks; once noding or attaching
    frees them, glibc would keep the space in the process, and the arrays of the next
    stages (mapped afresh) would add to it: 0.9 GB of the peak at 1M corridor edges.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)
