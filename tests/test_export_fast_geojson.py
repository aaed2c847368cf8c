"""The fast GeoJSON writer gives GDAL's bytes exactly (geoplan._geojson).

Every case is written twice, once by GDAL alone and once by the fast writer (which
leaves to GDAL only what it cannot vouch for), and the files must be equal byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geoplan import _geojson
from geoplan.plan import Plan

OPTIONS = {"RFC7946": "YES", "COORDINATE_PRECISION": str(_geojson.PRECISION)}


def _gdal(frame: gpd.GeoDataFrame, path: Path) -> None:
    pyogrio.write_dataframe(
        frame, path, layer="layer", driver="GeoJSON", geometry_type="Unknown", layer_options=OPTIONS
    )


#: Rows per part in the "in_parts" runs; the tests of many features say their own.
PART_ROWS = 3
LARGE_PART_ROWS = 4999


@pytest.fixture(autouse=True, params=[False, True], ids=["whole", "in_parts"])
def parts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: the features made all at once, and in a few parts."""
    if request.param:
        size = getattr(request.module, "part_rows", {}).get(request.function.__name__, PART_ROWS)
        monkeypatch.setattr(_geojson, "_ROWS_AT_ONCE", size)


def _both(frame: gpd.GeoDataFrame, folder: Path) -> tuple[bytes, bytes, int]:
    """GDAL's file, the fast writer's file, and how many features the latter left to GDAL.

    GDAL writes the layer reprojected by geopandas; the fast writer reprojects it itself.
    """
    folder.mkdir(parents=True, exist_ok=True)
    _gdal(frame.to_crs(4326), folder / "gdal.geojson")
    left: list[int] = []

    def counting(part: gpd.GeoDataFrame, path: Path) -> None:
        left.append(len(part))
        _gdal(part, path)

    _geojson.write_geojson(frame, folder / "fast.geojson", counting)
    fast = (folder / "fast.geojson").read_bytes()
    return (folder / "gdal.geojson").read_bytes(), fast, left[-1]


def test_the_sample_plan_is_written_as_gdal_writes_it(sample_plan: Plan, tmp_path: Path) -> None:
    for name in ("meter_boxes", "cables", "trenches", "removals", "unserved"):
        frame = getattr(sample_plan, name)  # in the plan's projected CRS
        gdal, fast, left = _both(frame, tmp_path / name)
        assert fast == gdal, name
        assert left <= len(frame) // 100, f"{name}: {left} features left to GDAL"


def _coordinates(rng: np.random.Generator, count: int) -> np.ndarray:
    """Longitudes in every range, many on and around the 7th decimal's halves."""
    step = rng.integers(-1_799_999_999, 1_799_999_999, count)
    return np.concatenate(
        [
            (step + 0.5) * 1e-7,
            (step + 0.5 + rng.normal(0, 1e-4, count)) * 1e-7,
            (step + rng.choice([0.0, 1e-3, -1e-3, 0.9999, 0.49999], count)) * 1e-7,
            rng.uniform(-180, 180, count),
            rng.uniform(-1, 1, count) * 10.0 ** rng.integers(-12, 3, count),
            np.round(rng.uniform(-180, 180, count), rng.integers(0, 9)),
            [0.0, -0.0, 180.0, -180.0, 99.99999995, -9.99999996, 100.0000000499],
        ]
    ).clip(-180, 180)


def test_coordinates_are_rounded_as_gdal_rounds_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = _coordinates(rng, 20_000)
    y = np.clip(rng.permutation(x) / 2, -90, 90)
    points = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=4326)
    lines = gpd.GeoDataFrame(
        geometry=shapely.linestrings(
            np.stack([x, y, x[::-1] * 0.5, y[::-1]], axis=1).reshape(-1, 2, 2)
        ),
        crs=4326,
    )
    for name, frame in (("points", points), ("lines", lines)):
        gdal, fast, _ = _both(frame, tmp_path / name)
        assert fast == gdal, name


def test_floats_are_written_as_gdal_writes_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    count = 20_000
    decimals = 10.0 ** rng.integers(0, 6, count)
    noisy = np.round(rng.uniform(-1e4, 1e4, count) * decimals) / decimals
    values = np.concatenate(
        [
            noisy,
            noisy / 3,
            rng.normal(0, 1, count) * 10.0 ** rng.integers(-20, 25, count),
            rng.integers(-(10**18), 10**18, count).astype(float),
            [0.0, -0.0, 1e17, 1e16, 99999999999999999.0, 5e-324, 1.7976931348623157e308],
            [0.1 + 0.2, 7.2, 63.36, 1e-7, 123456789.125, 1e6, 1999999.0, 10000000.5, -9999990.0],
        ]
    )
    frame = gpd.GeoDataFrame(
        {"value_m": values, "half": values / 2},
        geometry=shapely.points(np.zeros(len(values)), 0),
        crs=4326,
    )
    gdal, fast, left = _both(frame, tmp_path)
    assert fast == gdal
    assert left == 0


def test_every_character_is_written_as_gdal_writes_it(tmp_path: Path) -> None:
    codes = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]  # NUL: left to GDAL
    texts = [f"x{''.join(map(chr, codes[i : i + 256]))}x" for i in range(0, len(codes), 256)]
    texts += [chr(c) for c in range(1, 0x80)] + ["\u2028", "\u2029", "\ufeff", "a/b"]
    frame = gpd.GeoDataFrame(
        {'名称\n"\\\u2028\x1f': texts}, geometry=shapely.points(np.zeros(len(texts)), 0), crs=4326
    )
    gdal, fast, left = _both(frame, tmp_path)
    assert fast == gdal
    assert left == 0


TEXT = st.one_of(
    st.text(alphabet='ab 中文"\\/{}[]\t\n\r\b\f\x01\x1f\x7f\u2028é', max_size=8),
    st.sampled_from(["{x}", "[1]", '{"a": 1}', "{", "", "x\x00y"]),
)
GEOMETRIES = st.sampled_from(
    [
        shapely.Point(106.8, 39.6),
        shapely.Point(-0.00000004, 0.0),
        shapely.LineString([(106.8, 39.6), (106.80000001, 39.60000001)]),  # collapses
        shapely.LineString([(106.8, 39.6), (106.8, 39.6)]),
        shapely.LineString([(106.8, 39.6), (106.9, 39.7), (106.90000001, 39.7)]),
        shapely.Polygon([(0, 0), (0, 1), (1, 1), (0, 0)]),  # clockwise: GDAL turns it
        shapely.MultiPoint([(1, 2), (3, 4)]),
        shapely.LineString(),
        shapely.Point(1, 2, 3),
        None,
    ]
)
ROWS = st.tuples(
    TEXT,
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    GEOMETRIES,
)


@pytest.mark.filterwarnings("ignore:NaN of Infinity value found:RuntimeWarning")  # GDAL's
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(rows=st.lists(ROWS, min_size=0, max_size=8))
def test_any_layer_is_written_as_gdal_writes_it(
    rows: list[tuple[str, int, bool, float, shapely.Geometry | None]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    frame = gpd.GeoDataFrame(
        {
            '名称 "id"': [r[0] for r in rows],
            "count": np.array([r[1] for r in rows], dtype="int64"),
            "flag": np.array([r[2] for r in rows], dtype=bool),
            "cost_cny": np.array([r[3] for r in rows], dtype="float64"),
        },
        geometry=[r[4] for r in rows],
        crs=4326,
    )
    gdal, fast, _ = _both(frame, tmp_path_factory.mktemp("layer"))
    assert fast == gdal


# ~140k coordinates each: parts of a few thousand rows, not of three
part_rows = {
    test_coordinates_are_rounded_as_gdal_rounds_them.__name__: LARGE_PART_ROWS,
    test_floats_are_written_as_gdal_writes_them.__name__: LARGE_PART_ROWS,
}


def test_columns_of_few_distinct_values_are_written_as_gdal_writes_them(tmp_path: Path) -> None:
    """Few distinct values: each written once, with its neighbours' (the lines the same)."""
    rng = np.random.default_rng(3)
    count = 2000
    frame = gpd.GeoDataFrame(
        {
            "id": [f"T{i}" for i in range(count)],
            "surface": rng.choice(["asphalt", "lawn", ""], count),
            "crossings": rng.choice([0.0, 1.0, np.nan, 2.5], count),
            "cables": rng.integers(1, 5, count),
            "shared": rng.integers(0, 2, count).astype(bool),
            "note": rng.choice(["ok", 'say "hi"', "{x}"], count),
            "length_m": rng.uniform(0, 100, count),
            "status": rng.choice(["planned", "applied"], count),
        },
        geometry=shapely.points(rng.uniform(100, 110, count), rng.uniform(30, 40, count)),
        crs=4326,
    )
    gdal, fast, left = _both(frame, tmp_path)
    assert fast == gdal
    assert left == ((frame["note"] == "{x}") | frame["crossings"].isna()).sum()


# parts large enough that their columns still have few values (3 rows never do)
part_rows[test_columns_of_few_distinct_values_are_written_as_gdal_writes_them.__name__] = 500
