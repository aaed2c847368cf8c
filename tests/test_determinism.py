"""Determinism: the same layers and settings give the same files, run after run.

Two separate ``geoplan plan layers/haibowan`` processes with different
``PYTHONHASHSEED`` must write byte-identical GeoJSON, CSV, XLSX and HTML, and a
GeoPackage with identical content (compared through pyogrio, or byte for byte); and the
order of the features in the input files must not matter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from conftest import SAMPLE_DIR, make_layers, write_layers
from geopandas.testing import assert_geodataframe_equal

from geoplan.export import export_plan
from geoplan.layers import read_layers
from geoplan.maps import write_maps
from geoplan.plan import plan

HASH_SEEDS = ("0", "4242")
RUN_TIMEOUT_S = 600


def files(folder: Path) -> dict[str, Path]:
    """Every file under a folder, by path relative to it."""
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_gpkg(a: Path, b: Path) -> None:
    """Two GeoPackages hold the same layers, columns, values and geometries."""
    if a.read_bytes() == b.read_bytes():
        return
    layers_a = [str(n) for n in pyogrio.list_layers(a)[:, 0]]
    assert layers_a == [str(n) for n in pyogrio.list_layers(b)[:, 0]]
    for name in layers_a:
        left = pyogrio.read_dataframe(a, layer=name)
        right = pyogrio.read_dataframe(b, layer=name)
        if isinstance(left, gpd.GeoDataFrame):
            assert_geodataframe_equal(left, right, check_less_precise=False)
        else:
            pd.testing.assert_frame_equal(left, right)


def assert_same_outputs(a: Path, b: Path) -> None:
    """Two output folders hold the same files with the same content."""
    left, right = files(a), files(b)
    assert list(left) == list(right)
    kinds = {p.suffix for p in left.values()}
    assert {".geojson", ".csv", ".html", ".gpkg"} <= kinds
    for name, path in left.items():
        if path.suffix == ".gpkg":
            assert_same_gpkg(path, right[name])
        else:
            assert path.read_bytes() == right[name].read_bytes(), f"{name} differs"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Plan the sample twice, at once, in two processes with different hash seeds."""
    root = tmp_path_factory.mktemp("determinism")
    outs = [root / f"run_{seed}" for seed in HASH_SEEDS]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "geoplan.cli", "plan", str(SAMPLE_DIR), "--out", str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, out in zip(HASH_SEEDS, outs, strict=True)
    ]
    for child in children:
        _, stderr = child.communicate(timeout=RUN_TIMEOUT_S)
        assert child.returncode == 0, stderr
    return outs[0], outs[1]


def test_two_processes_write_identical_files(two_runs: tuple[Path, Path]) -> None:
    first, second = two_runs
    assert len(files(first)) > 10
    assert_same_outputs(first, second)


def test_the_plan_is_written_whole(two_runs: tuple[Path, Path]) -> None:
    written = files(two_runs[0])
    for name in ("plan.gpkg", "plan.xlsx", "summary.csv", "index.html", "district.html"):
        assert name in written
    assert not [n for n in written if n.startswith(".")], "a staging file was left"


def test_the_order_of_input_features_does_not_matter(tmp_path: Path) -> None:
    layers = make_layers()
    shuffled = {
        name: frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
        for name, frame in reversed(list(layers.items()))
    }
    outs = []
    for label, frames in (("given", layers), ("shuffled", shuffled)):
        made = plan(read_layers(write_layers(frames, tmp_path / f"layers_{label}")))
        out = tmp_path / f"plan_{label}"
        export_plan(made, out)
        write_maps(made, out)
        outs.append(out)
    assert_same_outputs(*outs)
