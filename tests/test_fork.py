"""Work done by a forked process while this one goes on (geoplan._fork), and the plan
that sites its meter boxes that way at city scale."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from multiprocessing.process import BaseProcess

import pandas as pd
import pytest
import shapely

from geoplan._fork import Beside
from geoplan.errors import LayerError, Problem
from geoplan.layers import Layers
from geoplan.plan import Plan, plan

logger = logging.getLogger("geoplan.test_fork")
plan_module = importlib.import_module("geoplan.plan")  # the package's `plan` is a function


def test_the_work_is_done_by_another_process_while_this_one_goes_on() -> None:
    with Beside(os.getpid, fork=True) as beside:
        assert beside.forked
        assert beside.result() not in (os.getpid(), None)


def test_unforked_work_is_done_here_at_once() -> None:
    done: list[int] = []
    beside = Beside(lambda: done.append(os.getpid()) or len(done), fork=False)
    assert done == [os.getpid()]
    assert not beside.forked
    assert beside.result() == 1


def test_no_fork_while_another_thread_runs() -> None:
    """A fork copies no thread but may copy a lock one holds: the work is done here."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        beside = Beside(os.getpid, fork=True)
        assert not beside.forked
        assert beside.result() == os.getpid()
    finally:
        release.set()
        thread.join()


def test_a_child_that_fails_has_the_work_done_here() -> None:
    here = os.getpid()

    def fails_elsewhere() -> str:
        if os.getpid() != here:
            raise MemoryError
        return "done here"

    beside = Beside(fails_elsewhere, fork=True)
    assert beside.forked
    assert beside.result() == "done here"


def test_an_error_is_raised_here_as_the_work_would_raise_it() -> None:
    def bad_block() -> None:
        raise LayerError(Problem("has no rooms", layer="storage_blocks", feature_id="S9"))

    beside = Beside(bad_block, fork=True)
    with pytest.raises(LayerError, match="S9"):
        beside.result()


def test_the_childs_log_records_are_written_here_when_the_result_is_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def sites() -> int:
        logger.info("sited %d meter boxes", 7)
        return os.getpid()

    with caplog.at_level(logging.INFO, logger="geoplan"):
        beside = Beside(sites, fork=True)
        child = beside.result()
    records = [r for r in caplog.records if r.name == logger.name]
    assert [r.getMessage() for r in records] == ["sited 7 meter boxes"]
    assert records[0].process == child != os.getpid()


def test_leaving_early_stops_the_child() -> None:
    beside = Beside(lambda: time.sleep(600), fork=True)
    assert beside.forked

    def interrupted() -> None:
        with beside:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert beside._child is not None
    assert beside._child.exitcode is not None  # it is gone, not left sleeping


@pytest.fixture
def forks(
    monkeypatch: pytest.MonkeyPatch, forked: list[tuple[str, BaseProcess]]
) -> list[tuple[str, BaseProcess]]:
    """Site the meter boxes of any layers in a forked process; list the children."""
    monkeypatch.setattr(plan_module, "_BESIDE_MIN_CORRIDORS", 0)
    return forked


def test_boxes_sited_by_a_forked_process_give_the_same_plan(
    sample_layers: Layers, sample_plan: Plan, forks: list[tuple[str, BaseProcess]]
) -> None:
    timings: dict[str, float] = {}
    forked = plan(sample_layers, check_power_flow=True, timings=timings)
    assert [(name, child.exitcode) for name, child in forks] == [("_send_result", 0)]
    assert timings["meter boxes"] > 0
    for name in ("meter_boxes", "cables", "trenches", "removals", "unserved"):
        a, b = getattr(forked, name), getattr(sample_plan, name)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.array, b.geometry.array, 0).all(), name
    pd.testing.assert_frame_equal(forked.summary, sample_plan.summary)
    assert forked.stats == sample_plan.stats


def test_a_routing_graph_error_waits_for_the_boxes_and_is_raised(
    sample_layers: Layers, forks: list[tuple[str, BaseProcess]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph's error reaches the user once the forked siting is done (none left)."""

    def unnodable(*_args: object, **_kwargs: object) -> None:
        raise LayerError(Problem("cannot be joined", layer="corridors", feature_id="K1"))

    monkeypatch.setattr(plan_module, "build_arrays", unnodable)
    with pytest.raises(LayerError, match="K1"):
        plan(sample_layers)
    assert [(name, child.exitcode) for name, child in forks] == [("_send_result", 0)]
