"""Shared test fixtures: a tiny valid layer set, built in code, and writers for it.

``make_layers()`` returns a minimal valid layer set (two compounds near 39.66 N 106.82 E,
EPSG:4326) as ``{layer name: GeoDataFrame}``; every call returns fresh frames that a test
may edit. ``write_layers(layers, folder, fmt)`` writes it in one of ``LAYER_FORMATS`` and
returns the path to give :func:`geoplan.layers.read_layers`. Other test modules may
import both (``from conftest import make_layers, write_layers``) or use the fixtures
below.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from multiprocessing.process import BaseProcess
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from geoplan import _fork
from geoplan.layers import Layers, read_layers
from geoplan.plan import Plan, plan

ORIGIN_LON = 106.82
ORIGIN_LAT = 39.66
INPUT_CRS = "EPSG:4326"
M_PER_DEG_LAT = 111_320.0

#: ``geojson``, ``gpkg`` and ``shp``: a folder of one file per layer;
#: ``gpkg_single``: one GeoPackage holding every layer.
LAYER_FORMATS = ("geojson", "gpkg", "gpkg_single", "shp")


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    """Return (lon, lat) of the point ``x_m`` east and ``y_m`` north of the origin."""
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT))
    return ORIGIN_LON + x_m / m_per_deg_lon, ORIGIN_LAT + y_m / M_PER_DEG_LAT


def point(x_m: float, y_m: float) -> Point:
    """Return a lon/lat point given in metres from the origin."""
    return Point(lonlat(x_m, y_m))


def line(*xy_m: tuple[float, float]) -> LineString:
    """Return a lon/lat line through points given in metres from the origin."""
    return LineString([lonlat(x, y) for x, y in xy_m])


def rect(x0_m: float, y0_m: float, x1_m: float, y1_m: float) -> Polygon:
    """Return a lon/lat rectangle given by two corners in metres from the origin."""
    (lon0, lat0), (lon1, lat1) = lonlat(x0_m, y0_m), lonlat(x1_m, y1_m)
    return box(lon0, lat0, lon1, lat1)


def _frame(records: list[dict[str, object]], geometry: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(records, geometry=geometry, crs=INPUT_CRS)


def make_layers() -> dict[str, gpd.GeoDataFrame]:
    """Return a minimal valid layer set, all eight layers, in EPSG:4326.

    Two compounds (C1 with buildings B1, B2 and storage blocks S1, S2; C2 with B3, S3),
    a transformer T1 with feeder F1 and a pole P1, three corridors along the streets,
    three flying wires (W3 already removed) and one obstacle. Names are Chinese.
    """
    compounds = _frame(
        [
            {"compound_id": "C1", "name": "海北小区", "households": 96, "status": "applied"},
            {"compound_id": "C2", "name": "新华小区", "households": 48, "status": "surveyed"},
        ],
        [rect(0, 0, 120, 100), rect(150, 0, 270, 100)],
    )
    buildings = _frame(
        [
            {"building_id": "B1", "compound_id": "C1", "households": 48, "floors": 6},
            {"building_id": "B2", "compound_id": "C1", "households": 48, "floors": 6},
            {"building_id": "B3", "compound_id": "C2", "households": 48, "floors": 5},
        ],
        [rect(10, 60, 50, 75), rect(60, 60, 100, 75), rect(160, 60, 200, 75)],
    )
    storage_blocks = _frame(
        [
            {"block_id": "S1", "compound_id": "C1", "units": 12, "applicants": 9},
            {"block_id": "S2", "compound_id": "C1", "units": 10, "applicants": 10},
            {"block_id": "S3", "compound_id": "C2", "units": 8, "applicants": 3},
        ],
        [rect(10, 20, 50, 28), rect(60, 20, 100, 28), rect(160, 20, 200, 28)],
    )
    storage_blocks["status"] = ["applied", "planned", "surveyed"]
    supply_points = _frame(
        [
            {
                "supply_id": "T1",
                "kind": "transformer",
                "capacity_kva": 400.0,
                "load_kva": 180.0,
                "max_circuits": 6,
            },
            {
                "supply_id": "P1",
                "kind": "pole",
                "capacity_kva": 50.0,
                "load_kva": 10.0,
                "max_circuits": 2,
            },
        ],
        [point(135, -20), point(280, 50)],
    )
    feeders = _frame(
        [{"feeder_id": "F1", "supply_id": "T1", "kind": "cable", "spare_kva": 80.0}],
        [line((135, -20), (135, 110))],
    )
    corridors = _frame(
        [
            {"corridor_id": "K1", "surface": "asphalt", "allowed": True},
            {"corridor_id": "K2", "surface": "paving", "allowed": True},
            {"corridor_id": "K3", "surface": "soil", "allowed": False},
        ],
        [line((0, -10), (270, -10)), line((55, -10), (55, 50)), line((205, -10), (205, 50))],
    )
    flying_wires = _frame(
        [
            {
                "wire_id": "W1",
                "compound_id": "C1",
                "from_building_id": "B1",
                "to_block_id": "S1",
                "households": 3,
                "height_m": 4.5,
                "status": "present",
            },
            {
                "wire_id": "W2",
                "compound_id": "C1",
                "from_building_id": "B2",
                "to_block_id": "S2",
                "households": 1,
                "height_m": 7.0,
                "status": "present",
            },
            {
                "wire_id": "W3",
                "compound_id": "C2",
                "from_building_id": "B3",
                "to_block_id": "S3",
                "households": 2,
                "height_m": 3.0,
                "status": "removed",
            },
        ],
        [line((30, 60), (30, 28)), line((80, 60), (80, 28)), line((180, 60), (180, 28))],
    )
    obstacles = _frame([{"obstacle_id": "O1", "kind": "tree"}], [rect(110, 30, 118, 40)])
    return {
        "compounds": compounds,
        "buildings": buildings,
        "storage_blocks": storage_blocks,
        "supply_points": supply_points,
        "feeders": feeders,
        "corridors": corridors,
        "flying_wires": flying_wires,
        "obstacles": obstacles,
    }


def write_layers(
    layers: Mapping[str, gpd.GeoDataFrame], folder: str | Path, fmt: str = "geojson"
) -> Path:
    """Write a layer set into ``folder`` (created if needed) in one of ``LAYER_FORMATS``.

    Returns
    -------
    Path
        What :func:`geoplan.layers.read_layers` takes: the folder, or for
        ``gpkg_single`` the one GeoPackage inside it.
    """
    if fmt not in LAYER_FORMATS:
        msg = f"unknown format {fmt!r}; use one of {LAYER_FORMATS}"
        raise ValueError(msg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "gpkg_single":
        path = folder / "layers.gpkg"
        for name, frame in layers.items():
            frame.to_file(path, layer=name, driver="GPKG")
        return path
    for name, frame in layers.items():
        with warnings.catch_warnings():
            # Shapefiles cut column names to 10 characters; geopandas and GDAL warn.
            warnings.filterwarnings("ignore", "Column names longer than 10", UserWarning)
            warnings.filterwarnings("ignore", ".*laundered", RuntimeWarning)
            frame.to_file(folder / f"{name}.{fmt}")
    return folder


@pytest.fixture
def layer_frames() -> dict[str, gpd.GeoDataFrame]:
    """Return a fresh valid layer set (see :func:`make_layers`), free to edit."""
    return make_layers()


@pytest.fixture
def layer_writer(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(layers, fmt="geojson")``, writing each call into a new folder."""
    count = 0

    def write(layers: Mapping[str, gpd.GeoDataFrame], fmt: str = "geojson") -> Path:
        nonlocal count
        count += 1
        return write_layers(layers, tmp_path / f"layers_{count}", fmt)

    return write


SAMPLE_DIR = Path(__file__).resolve().parents[1] / "layers" / "haibowan"


@pytest.fixture(scope="session")
def sample_layers() -> Layers:
    """Return the shipped Haibowan sample district, validated (read once per session)."""
    return read_layers(SAMPLE_DIR)


@pytest.fixture(scope="session")
def sample_plan(sample_layers: Layers) -> Plan:
    """Return the plan of the sample district with the default settings (made once)."""
    return plan(sample_layers, check_power_flow=True)


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, BaseProcess]]:
    """List the work started in forked processes (geoplan._fork): (call's name, process)."""
    started: list[tuple[str, BaseProcess]] = []
    start = _fork.start_in_child

    def counting(call: Callable[[], None]) -> BaseProcess | None:
        child = start(call)
        if child is not None:
            started.append((getattr(call, "func", call).__name__, child))
        return child

    monkeypatch.setattr(_fork, "start_in_child", counting)
    return started
