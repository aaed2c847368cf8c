"""Tests for geoplan._memory: the process-wide switches a city's stages hold off."""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from geoplan._memory import collector_paused, large_stage


def huge_pages() -> bool:
    return bool(np._core.multiarray._get_madvise_hugepage())


def test_overlapping_stages_of_two_threads_leave_both_switches_as_they_found_them() -> None:
    """The first stage to start turns them off, the last to end back on: a stage that
    restored what it found would have left them off (it found them off)."""
    assert gc.isenabled()
    was = huge_pages()
    entered, go, left = threading.Event(), threading.Event(), threading.Event()

    def first() -> list[bool]:
        with large_stage():
            entered.set()
            assert go.wait(10)
        left.set()
        return []

    def second() -> list[bool]:
        assert entered.wait(10)
        with large_stage():
            go.set()
            assert left.wait(10)  # the first stage has ended; this one runs on
            return [gc.isenabled() or huge_pages()]

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        one.result(), two.result()
    assert two.result() == [False]  # still off after the first stage ended
    assert gc.isenabled()
    assert huge_pages() == was


def test_a_collector_off_before_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
