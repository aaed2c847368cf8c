"""A city's compound pages are written by two processes (geoplan.maps, geoplan._fork).

Apart from the browser tests' modules, whose servers run threads (no fork is made while
other threads run).
"""

from __future__ import annotations

import os
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from test_city_maps import city_plan

from geoplan.maps import write_maps
from geoplan.plan import Plan


@pytest.fixture(scope="module")
def plan() -> Plan:
    return city_plan()


def test_pages_written_by_two_processes_are_those_written_by_one(
    plan: Plan,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forked: list[tuple[str, BaseProcess]],
):
    """A city's compound pages are shared with a forked process: the same files, byte
    for byte; and when the child fails, this process writes its pages after all."""
    import geoplan.maps as maps_module

    ids = sorted(plan.layers["compounds"]["compound_id"].astype(str))[:9]
    monkeypatch.setattr(maps_module, "_PAGES_IN_TWO", 10**9)
    one = write_maps(plan, tmp_path / "one", scale="city", compounds=ids)
    assert not forked
    monkeypatch.setattr(maps_module, "_PAGES_IN_TWO", 2)
    two = write_maps(plan, tmp_path / "two", scale="city", compounds=ids)
    if os.uname().sysname == "Linux":
        assert len(forked) == 1
        assert forked[0][1].exitcode == 0
    assert [p.relative_to(tmp_path / "two") for p in two] == [
        p.relative_to(tmp_path / "one") for p in one
    ]
    for path in one:
        assert (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes() == (
            path.read_bytes()
        )

    here = os.getpid()
    real = maps_module._write

    def fails_in_the_child(path: Path, text: str) -> Path:
        if os.getpid() != here:
            raise OSError("the child cannot write")
        return real(path, text)

    monkeypatch.setattr(maps_module, "_write", fails_in_the_child)
    again = write_maps(plan, tmp_path / "again", scale="city", compounds=ids)
    if os.uname().sysname == "Linux":
        assert forked[-1][1].exitcode != 0
    for path in again:
        assert (
            path.read_bytes()
            == (tmp_path / "one" / path.relative_to(tmp_path / "again")).read_bytes()
        )
