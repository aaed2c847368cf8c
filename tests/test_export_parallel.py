"""A large plan is written by three processes at once, to the same files (geoplan.export).

The sample plan is small; these tests lower the threshold so that it takes the parallel
path, and compare with what the plain path writes.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sqlite3
import zipfile
from collections.abc import Mapping
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from test_export import _files

from geoplan import _xlsx, export
from geoplan.export import export_plan
from geoplan.plan import Plan


def _assert_same_outputs(left: Path, right: Path) -> None:
    a, b = _files(left), _files(right)
    assert sorted(a) == sorted(b)
    for name, data in a.items():
        if name.endswith(".gpkg") and data != b[name]:
            dumps = [list(sqlite3.connect(folder / name).iterdump()) for folder in (left, right)]
            assert dumps[0] == dumps[1], name
        else:
            assert data == b[name], name


@pytest.fixture
def parallel(
    monkeypatch: pytest.MonkeyPatch, forked: list[tuple[str, BaseProcess]]
) -> list[tuple[str, BaseProcess]]:
    """Take the parallel path for any plan; list the writers started in a child."""
    monkeypatch.setattr(export, "_PARALLEL_FEATURES", 0)
    return forked


def test_the_parallel_path_writes_the_same_files(
    sample_plan: Plan, tmp_path: Path, parallel: list[tuple[str, BaseProcess]]
) -> None:
    with pytest.MonkeyPatch.context() as plain:
        plain.setattr(export, "_PARALLEL_FEATURES", 10**12)
        export_plan(sample_plan, tmp_path / "plain")
    export_plan(sample_plan, tmp_path / "parallel")
    _assert_same_outputs(tmp_path / "plain", tmp_path / "parallel")
    if os.uname().sysname == "Linux":
        assert sorted(name for name, _ in parallel) == ["_write_gpkg", "_write_xlsx"]
    assert not multiprocessing.active_children()


def test_a_child_that_fails_has_its_file_written_here(
    sample_plan: Plan,
    tmp_path: Path,
    parallel: list[tuple[str, BaseProcess]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = os.getpid()
    write_gpkg = export._write_gpkg

    def fails_in_a_child(tables: Mapping[str, export.Table], path: Path) -> None:
        if os.getpid() != here:
            path.write_bytes(b"half a file")
            raise RuntimeError("disk on fire")
        write_gpkg(tables, path)

    export_plan(sample_plan, tmp_path / "plain")
    monkeypatch.setattr(export, "_write_gpkg", fails_in_a_child)
    export_plan(sample_plan, tmp_path / "parallel")
    _assert_same_outputs(tmp_path / "plain", tmp_path / "parallel")


def test_a_failure_here_stops_the_children_and_leaves_nothing(
    sample_plan: Plan,
    tmp_path: Path,
    parallel: list[tuple[str, BaseProcess]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(export, "_write_geojson", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_plan(sample_plan, tmp_path)
    assert not list(tmp_path.iterdir())
    assert not multiprocessing.active_children()


def test_large_sheets_are_deflated_faster_with_the_same_content(
    sample_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = export.plan_tables(sample_plan)
    usual = export._xlsx_bytes(tables)
    monkeypatch.setattr(_xlsx, "_FAST_DEFLATE_CELLS", 1)
    fast = export._xlsx_bytes(tables)
    with zipfile.ZipFile(io.BytesIO(usual)) as a, zipfile.ZipFile(io.BytesIO(fast)) as b:
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        for entry in a.namelist():
            assert a.read(entry) == b.read(entry), entry
        sheet = "xl/worksheets/sheet5.xml"  # trenches
        assert b.getinfo(sheet).compress_size > a.getinfo(sheet).compress_size
    assert fast == export._xlsx_bytes(tables)  # still reproducible


def test_the_geopackage_written_through_arrow_is_the_same(
    sample_plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = export.plan_tables(sample_plan)
    export._write_gpkg(tables, tmp_path / "arrow.gpkg")
    write = export.pyogrio.write_dataframe

    def plain_write(*args: object, use_arrow: bool, **options: object) -> None:
        assert use_arrow
        write(*args, use_arrow=False, **options)

    monkeypatch.setattr(export.pyogrio, "write_dataframe", plain_write)
    export._write_gpkg(tables, tmp_path / "plain.gpkg")
    dumps = [list(sqlite3.connect(tmp_path / n).iterdump()) for n in ("arrow.gpkg", "plain.gpkg")]
    assert dumps[0] == dumps[1]
