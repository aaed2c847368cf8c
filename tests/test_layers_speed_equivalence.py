"""The column-at-a-time checks say what checking feature by feature would (issue #7).

Each check of :mod:`geoplan._checks` is compared with the one-value-at-a-time rule it
replaced, on values of every kind a layer may hold; reading through Arrow and on two
threads is compared with the plain reader on one.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyproj
import pytest
import shapely
from conftest import LAYER_FORMATS, make_layers, write_layers
from geopandas.testing import assert_geodataframe_equal

from geoplan import _checks, layers
from geoplan.layers import SPEC_BY_NAME, Layers, read_layers

UTM_48N = pyproj.CRS.from_epsg(32648)
SAMPLE = Path(__file__).parent.parent / "layers" / "haibowan"

COLUMNS = {
    "text": pd.Series([" B1 ", "B2", "", "  ", None, "B\u30002\u3000", np.nan], dtype=object),
    "int": pd.Series([3, -4, 0, 2**40], dtype="int64"),
    "int32": pd.Series([3, 12], dtype="int32"),
    "float": pd.Series([3.0, 3.5, -0.0, np.nan, np.inf, 1e20, 2.0**63, -7.0, 1e-7]),
    "float32": pd.Series([0.1, 2.0, np.nan], dtype="float32"),
    "bool": pd.Series([True, False]),
    "nullable int": pd.Series([1, None, -5], dtype="Int64"),
    "mixed": pd.Series(["7", 7, 7.0, 7.5, True, None, pd.NA, " x "], dtype=object),
    "empty": pd.Series([], dtype=object),
    "gaps": pd.Series([None, np.nan], dtype=object),
}


def as_id(value: object) -> str:
    """The rule ids follow, one value at a time."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def feature_id(i: int, value: object) -> str:
    """How a problem names a feature, one value at a time."""
    return f"row {i + 1}" if pd.isna(value) or str(value).strip() == "" else as_id(value)


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_ids_as_named_one_by_one(kind: str) -> None:
    values = COLUMNS[kind]
    expected = [None if pd.isna(v) else as_id(v) for v in values]
    got = _checks._as_ids(values).tolist()
    assert [type(v) for v in got] == [type(v) for v in expected]
    assert got == expected
    ids = _checks.FeatureIds(pd.DataFrame({"block_id": values}), SPEC_BY_NAME["storage_blocks"])
    assert [ids[i] for i in range(len(values))] == [feature_id(i, v) for i, v in enumerate(values)]


def number_problems(values: pd.Series, column: str, layer: str) -> list[tuple[int, str]]:
    """The problems of a number column, one value at a time."""
    spec = SPEC_BY_NAME[layer]
    numeric = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_bool_dtype(values):
        numeric = pd.Series(np.nan, index=values.index)
    numeric = numeric.where(np.isfinite(numeric.astype("float64")))
    top = spec.maxima.get(column, np.inf)
    found = []
    for i, (raw, num) in enumerate(zip(values, numeric, strict=True)):
        if pd.isna(raw):
            if column in spec.required or column in spec.positive:
                found.append((i, f"{column} is empty; give a number"))
        elif pd.isna(num) or isinstance(raw, bool | np.bool_):
            found.append((i, f"{column} = {raw!r} is not a number"))
        elif num < 0 and column in spec.counts:
            found.append((i, f"{column} = {raw} must not be negative"))
        elif column in spec.positive and num <= 0:
            found.append((i, f"{column} = {raw} must be greater than zero"))
        elif num < 0:
            found.append((i, f"{column} = {raw} must not be negative"))
        elif column in spec.counts and not float(num).is_integer():
            found.append((i, f"{column} = {raw} must be a whole number"))
        elif num > top:
            large = f"is implausibly large (at most {top:,.0f}); correct the value"
            found.append((i, f"{column} = {raw} {large}"))
    return found


NUMBERS = {
    **{kind: values for kind, values in COLUMNS.items() if kind != "text"},
    "text numbers": pd.Series(["12", " 4 ", "-1", "2.5", "abc", "", None, "1e9"], dtype=object),
    "huge": pd.Series([2**62 + 1, 99_999, 100_001], dtype="int64"),
}


@pytest.mark.parametrize("kind", list(NUMBERS))
@pytest.mark.parametrize(
    ("layer", "column"),
    [
        ("storage_blocks", "units"),  # required, positive count
        ("storage_blocks", "applicants"),  # optional count
        ("supply_points", "capacity_kva"),  # required positive amount
        ("supply_points", "load_kva"),  # optional amount
    ],
)
def test_numbers_reported_as_one_by_one(kind: str, layer: str, column: str) -> None:
    spec = SPEC_BY_NAME[layer]
    values = NUMBERS[kind]
    n = len(values)
    frame = gpd.GeoDataFrame(
        {spec.id_column: [f"F{i}" for i in range(n)], column: values},
        geometry=[shapely.Point(500_000.0 + i, 4_370_000.0) for i in range(n)],
        crs=UTM_48N,
    )
    ids = _checks.FeatureIds(frame, spec)
    checked, problems = _checks.check_values(frame, spec, None, ids)
    assert [(p.feature_id, p.message) for p in problems] == [
        (f"F{i}", message) for i, message in number_problems(values, column, layer)
    ]
    assert checked[column].dtype == ("Int64" if column in spec.counts else "float64")


def test_choices_reported_as_one_by_one() -> None:
    spec = SPEC_BY_NAME["storage_blocks"]
    statuses = pd.Series(["applied", "Applied", None, 5, np.nan, "planned", True], dtype=object)
    frame = gpd.GeoDataFrame(
        {"block_id": [f"B{i}" for i in range(len(statuses))], "status": statuses},
        geometry=[shapely.Point(500_000.0, 4_370_000.0)] * len(statuses),
        crs=UTM_48N,
    )
    _, problems = _checks.check_values(frame, spec, None, _checks.FeatureIds(frame, spec))
    allowed = spec.choices["status"]
    assert [(p.feature_id, p.message) for p in problems] == [
        (f"B{i}", f"status = {v!r} must be one of {', '.join(allowed)}")
        for i, v in enumerate(statuses)
        if pd.notna(v) and v not in allowed
    ]


def test_geometry_checked_feature_by_feature() -> None:
    square = shapely.box(0.0, 0.0, 10.0, 10.0)
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    geometries = [
        square,
        None,
        shapely.Polygon(),
        shapely.force_3d(square, 2.0),  # Z dropped
        shapely.MultiPolygon([square]),  # one part: read as a Polygon
        shapely.force_3d(shapely.MultiPolygon([square]), 1.0),  # both repairs
        shapely.MultiPolygon([square, shapely.box(20.0, 0.0, 30.0, 10.0)]),
        shapely.Point(1.0, 1.0),
        shapely.force_3d(bowtie, 1.0),  # repaired, then found invalid
        shapely.Polygon([(0, 0), (np.inf, 0), (1, 1), (0, 0)]),
    ]
    frame = gpd.GeoDataFrame(
        {"block_id": [f"B{i}" for i in range(len(geometries))]}, geometry=geometries, crs=UTM_48N
    )
    spec = SPEC_BY_NAME["storage_blocks"]
    fixed, problems, notes, sound = _checks.fix_geometry(
        frame, spec, None, _checks.FeatureIds(frame, spec)
    )
    assert sound.tolist() == [True, False, False, True, True, True, False, False, False, False]
    assert [(p.feature_id, p.message.split(";")[0].split(" (")[0]) for p in problems] == [
        ("B1", "geometry is empty"),
        ("B2", "geometry is empty"),
        ("B6", "geometry is MultiPolygon"),
        ("B7", "geometry is Point"),
        ("B8", "geometry is invalid"),
        ("B9", "geometry has NaN or infinite coordinates"),
    ]
    assert notes == [
        "layer storage_blocks, feature B3: dropped Z values",
        "layer storage_blocks, feature B4: one-part MultiPolygon read as Polygon",
        "layer storage_blocks, feature B5: dropped Z values",
        "layer storage_blocks, feature B5: one-part MultiPolygon read as Polygon",
        "layer storage_blocks, feature B8: dropped Z values",
    ]
    kept = np.asarray(fixed.geometry.array)
    assert all(shapely.equals_identical(kept[[0, 3, 4, 5]], square))
    assert kept[8] is geometries[8]  # a bad feature is kept as read
    assert kept[6] is geometries[6]
    assert frame.geometry.iloc[3].has_z  # the input is not changed


@pytest.mark.parametrize("crs", [UTM_48N, pyproj.CRS.from_epsg(4326), pyproj.CRS.from_epsg(4545)])
def test_outline_bounds_are_geopandas_bounds(crs: pyproj.CRS) -> None:
    x0, y0 = (104.0, 36.0) if crs.is_geographic else (500_000.0, 4_000_000.0)
    s = 0.01 if crs.is_geographic else 1000.0
    shell = shapely.box(x0, y0, x0 + 5 * s, y0 + 5 * s)
    hole = shapely.box(x0 + s, y0 + s, x0 + 2 * s, y0 + 2 * s)
    holed = shapely.Polygon(shell.exterior.coords, [hole.exterior.coords])
    frame = gpd.GeoDataFrame(
        geometry=[
            holed,
            shapely.LineString([(x0 - s, y0), (x0 + 9 * s, y0 + 7 * s)]),
            shapely.Point(x0 + 3 * s, y0 - 2 * s),
        ],
        crs=crs,
    )
    outline = _checks.outline_bounds(np.asarray(frame.geometry.array), frame.crs)
    assert outline is not None
    np.testing.assert_array_equal(outline, frame.to_crs(4326).total_bounds)
    multi = frame.set_geometry([shapely.MultiPolygon([holed]), holed.exterior, None])
    assert _checks.outline_bounds(np.asarray(multi.geometry.array), multi.crs) is None


def test_far_points_measured_on_the_ellipsoid() -> None:
    rng = np.random.default_rng(7)
    xy = np.column_stack([rng.uniform(-180.0, 180.0, 20_000), rng.uniform(-90.0, 90.0, 20_000)])
    xy[:5] = [[np.inf, 0.0], [np.nan, 1.0], [105.0, 91.0], [104.0 + 720.0, 36.0], [105.0, 36.0]]
    near, distance_km = _checks._distances_km(104.5, 36.5, xy)
    with np.errstate(invalid="ignore"):
        _, _, exact_m = pyproj.Geod(ellps="WGS84").inv(
            np.full(len(xy), 104.5), np.full(len(xy), 36.5), xy[:, 0], xy[:, 1]
        )
    assert (exact_m[near] / 1000.0 < _checks.FAR_KM).all()
    np.testing.assert_array_equal(distance_km[~near], exact_m[~near] / 1000.0)
    assert near[4]
    assert not near[:3].any()


def write_typed(path: Path) -> None:
    """Write a GeoPackage whose columns Arrow hands over differently from the plain reader."""
    n = 4
    frame = gpd.GeoDataFrame(
        {
            "block_id": [f"B{i}" for i in range(n)],
            "flag": pd.array([True, None, False, True], dtype="boolean"),
            "no_flag": pd.array([None] * n, dtype="boolean"),
            "count": pd.array([1, None, 3, 4], dtype="Int32"),
            "note": [None] * n,
            "day": pd.to_datetime(["2024-01-02", None, "2024-03-04", "2024-05-06"]).date,
        },
        geometry=[shapely.Point(500_000.0 + i, 4_370_000.0) for i in range(n)],
        crs=UTM_48N,
    )
    pyogrio.write_dataframe(frame, path, layer="typed")
    pyogrio.write_dataframe(frame[["block_id", "count", "geometry"]], path, layer="plain")


@pytest.mark.parametrize("layer", ["typed", "plain"])
def test_arrow_read_is_the_plain_read(tmp_path: Path, layer: str) -> None:
    path = tmp_path / "typed.gpkg"
    write_typed(path)
    read = layers._read_frame(path, layer)
    plain = pyogrio.read_dataframe(path, layer=layer)
    assert_geodataframe_equal(read, plain, check_dtype=True, check_index_type=True)
    arrow = pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
    assert layers._columns_read_otherwise(arrow) == (
        [] if layer == "plain" else ["flag", "no_flag", "note"]
    )


def test_arrow_read_keeps_a_point_with_one_nan_coordinate(tmp_path: Path) -> None:
    path = tmp_path / "supply_points.fgb"
    points = [shapely.Point(500_000.0, 4_370_000.0), shapely.Point(np.nan, 4_370_000.0)]
    pyogrio.write_dataframe(
        gpd.GeoDataFrame({"supply_id": ["S1", "S2"]}, geometry=points, crs=UTM_48N), path
    )
    read = layers._read_frame(path, None)
    assert shapely.equals_identical(np.asarray(read.geometry.array), points).all()
    assert not read.geometry.iloc[1].is_empty  # Arrow makes it POINT EMPTY


def write_dated(path: Path) -> None:
    """Write a layer with fields GDAL holds as dates and date-times, not as text."""
    day = [dt.date(2026, 4, 28), None, dt.date(1677, 9, 22), dt.date(2262, 4, 11)]
    late = [dt.date(2026, 4, 28), dt.date(3000, 1, 1), None, dt.date(1969, 12, 31)]
    at = [dt.datetime(2026, 4, 28, 10, 30), None, dt.datetime(1970, 1, 1), dt.datetime(2262, 1, 1)]
    points = [shapely.Point(500_000.0 + i, 4_370_000.0) for i in range(len(day))]
    table = pa.table(
        {
            "block_id": [f"B{i}" for i in range(len(day))],
            "day": pa.array(day, pa.date32()),
            "late": pa.array(late, pa.date32()),  # beyond pandas' dates: text, read plainly
            "at": pa.array(at, pa.timestamp("ms")),
            "wkb": shapely.to_wkb(points).tolist(),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a Shapefile holds the date-time as a date
        pyogrio.write_arrow(
            table, path, geometry_name="wkb", geometry_type="Point", crs=UTM_48N.to_wkt()
        )


@pytest.mark.parametrize(
    ("suffix", "dated"),
    [
        (".gpkg", ["day", "late", "at"]),
        (".geojson", ["day", "late", "at"]),
        (".fgb", ["day", "at"]),  # all date-times; the year 3000 is text both ways
        (".shp", ["day", "late"]),  # the date-time is text
    ],
)
def test_arrow_read_takes_dates_from_the_plain_reader(
    tmp_path: Path, suffix: str, dated: list[str]
) -> None:
    path = tmp_path / f"storage_blocks{suffix}"
    write_dated(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyogrio: the year 3000 is left as text
        read = layers._read_frame(path, None)
        plain = pyogrio.read_dataframe(path)
        arrow = pyogrio.read_dataframe(path, use_arrow=True)
    assert_geodataframe_equal(read, plain, check_dtype=True, check_index_type=True)
    assert layers._columns_read_otherwise(arrow) == dated


def test_arrow_read_refuses_an_impossible_date_as_the_plain_reader(tmp_path: Path) -> None:
    path = tmp_path / "flying_wires.geojson"
    features = [
        {
            "type": "Feature",
            "properties": {"day": day},
            "geometry": {"type": "Point", "coordinates": [106.8, 39.6]},
        }
        for day in ("2026-04-28", "2026-02-30")  # Arrow makes it 2 March
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(ValueError, match="out of range") as plain:
        pyogrio.read_dataframe(path)
    with pytest.raises(ValueError, match="out of range") as read:
        layers._read_frame(path, None)
    assert str(read.value) == str(plain.value)


def test_the_sample_is_read_once_with_the_wires_dates_plainly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read = pyogrio.read_dataframe
    calls: list[tuple[str, dict[str, Any]]] = []

    def recording(path: Path, /, **options: Any) -> pd.DataFrame:
        calls.append((Path(path).name, options))
        return read(path, **options)

    monkeypatch.setattr(pyogrio, "read_dataframe", recording)
    got = read_layers(SAMPLE)
    monkeypatch.undo()
    whole = sorted(name for name, options in calls if options.get("read_geometry", True))
    assert whole == sorted(p.name for p in SAMPLE.glob("*.geojson"))
    assert all(options["use_arrow"] for _, options in calls if "columns" not in options)
    assert [(n, o) for n, o in calls if "columns" in o] == [
        (
            "flying_wires.geojson",
            {"layer": None, "columns": ["surveyed_on"], "read_geometry": False},
        )
    ]
    wires = SAMPLE / "flying_wires.geojson"
    plain = pyogrio.read_dataframe(wires)
    assert plain["surveyed_on"].dtype == "datetime64[ms]"
    assert_geodataframe_equal(
        layers._read_frame(wires, None), plain, check_dtype=True, check_index_type=True
    )
    assert_same_layers(got, read_layers_plainly(monkeypatch, SAMPLE))


def plain_read(file: Path, inner: str | None) -> pd.DataFrame:
    """Read a layer the plain way, without Arrow."""
    return pyogrio.read_dataframe(file, layer=inner)


def assert_same_layers(got: Layers, expected: Layers) -> None:
    assert got.crs == expected.crs
    assert got.warnings == expected.warnings
    assert dict(got.sources) == dict(expected.sources)
    for name, frame in expected.frames.items():
        assert_geodataframe_equal(got[name], frame, check_dtype=True, check_index_type=True)
        assert shapely.equals_identical(
            np.asarray(got[name].geometry.array), np.asarray(frame.geometry.array)
        ).all()


@pytest.mark.parametrize("fmt", [*LAYER_FORMATS, "sample"])
def test_read_the_same_through_arrow_and_threads_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    path = SAMPLE if fmt == "sample" else write_layers(make_layers(), tmp_path, fmt)
    fast = read_layers(path)
    assert_same_layers(fast, read_layers_plainly(monkeypatch, path))


def read_layers_plainly(monkeypatch: pytest.MonkeyPatch, path: Path) -> Layers:
    """Read the layers without Arrow, one at a time."""
    with monkeypatch.context() as patch:
        patch.setattr(layers, "_read_frame", plain_read)
        patch.setattr(layers, "_READERS", 1)
        return read_layers(path)
