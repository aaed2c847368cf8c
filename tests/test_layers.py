"""The input contract: reading, validating and reprojecting a layer set."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyproj
import pytest
import shapely
from conftest import LAYER_FORMATS, make_layers, write_layers
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import MultiPolygon, Point, Polygon

from geoplan.errors import CRSError, LayerError
from geoplan.layers import LAYER_NAMES, SPEC_BY_NAME, SPECS, read_layers
from geoplan.settings import Settings

Frames = dict[str, gpd.GeoDataFrame]


def read_error(layers: Frames, folder: Path, fmt: str = "geojson") -> LayerError:
    """Write ``layers`` and return the LayerError that reading them raises."""
    path = write_layers(layers, folder, fmt)
    with pytest.raises(LayerError) as info:
        read_layers(path)
    return info.value


def at(folder: Path, layer: str, feature: str | None = None) -> str:
    """Return how an error line starts for a GeoJSON layer file (and a feature) in folder."""
    where = f"{folder / layer}.geojson, layer {layer}"
    return f"{where}, feature {feature}: " if feature else f"{where}: "


def lines(error: LayerError) -> list[str]:
    """Return the error's message, one line per problem."""
    reported = str(error).splitlines()
    assert len(reported) == len(error.problems)
    return reported


def set_value(layers: Frames, layer: str, feature: str, column: str, value: object) -> None:
    """Set ``column`` of the feature with id ``feature`` in ``layers[layer]``."""
    frame = layers[layer]
    rows = frame.index[frame[SPEC_BY_NAME[layer].id_column] == feature]
    assert len(rows) == 1, f"{layer} has no single feature {feature}"
    if column != frame.geometry.name:
        frame[column] = frame[column].astype(object)  # room for a value of another type
    frame.loc[rows[0], column] = value


# --- one test per problem -------------------------------------------------------------


def test_missing_required_layer(tmp_path: Path) -> None:
    layers = make_layers()
    del layers["storage_blocks"]
    error = read_error(layers, tmp_path)
    (line,) = lines(error)
    assert line.startswith(f"{tmp_path}, layer storage_blocks: required layer missing")
    assert "add storage_blocks.geojson" in line


def test_missing_required_layer_hints_at_a_misspelt_file(tmp_path: Path) -> None:
    layers = make_layers()
    layers["storage_block"] = layers.pop("storage_blocks")
    (line,) = lines(read_error(layers, tmp_path))
    assert line.startswith(f"{tmp_path}, layer storage_blocks: required layer missing")
    assert "is storage_block meant to be it? rename it" in line


def test_missing_required_column(tmp_path: Path) -> None:
    layers = make_layers()
    layers["compounds"] = layers["compounds"].drop(columns="name")
    (line,) = lines(read_error(layers, tmp_path))
    assert line == at(tmp_path, "compounds") + "required column 'name' is missing"


def test_missing_required_column_hints_at_a_misspelling(tmp_path: Path) -> None:
    layers = make_layers()
    layers["storage_blocks"] = layers["storage_blocks"].rename(columns={"units": "unit"})
    (line,) = lines(read_error(layers, tmp_path))
    assert line.startswith(at(tmp_path, "storage_blocks") + "required column 'units' is missing")
    assert "(found 'unit': rename it to 'units')" in line


def test_wrong_geometry_type(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "compounds", "C2", "geometry", Point(106.82, 39.66))
    (line,) = lines(read_error(layers, tmp_path))
    assert line.startswith(at(tmp_path, "compounds", "C2") + "geometry is Point")
    assert "a Polygon is expected" in line


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_empty_geometry(tmp_path: Path, fmt: str) -> None:
    layers = make_layers()
    set_value(layers, "storage_blocks", "S2", "geometry", Polygon())
    (line,) = lines(read_error(layers, tmp_path, fmt))
    expected = f"{tmp_path / 'storage_blocks'}.{fmt}, layer storage_blocks, feature S2: "
    assert line.startswith(expected + "geometry is empty")


def test_invalid_self_intersecting_geometry(tmp_path: Path) -> None:
    layers = make_layers()
    (x0, y0, x1, y1) = layers["compounds"].total_bounds
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    set_value(layers, "compounds", "C1", "geometry", bowtie)
    (line,) = lines(read_error(layers, tmp_path))
    assert line.startswith(at(tmp_path, "compounds", "C1") + "geometry is invalid")
    assert "Self-intersection" in line


@pytest.mark.parametrize("fmt", ["gpkg", "gpkg_single", "shp"])
def test_missing_crs(tmp_path: Path, fmt: str) -> None:
    layers = make_layers()
    layers["storage_blocks"] = layers["storage_blocks"].set_crs(None, allow_override=True)
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        path = write_layers(layers, tmp_path, fmt)
    with pytest.raises(CRSError) as info:
        read_layers(path)
    (line,) = lines(info.value)
    file = path if fmt == "gpkg_single" else tmp_path / f"storage_blocks.{fmt}"
    assert line.startswith(f"{file}, layer storage_blocks: has no coordinate reference system")


def test_geojson_without_crs_is_read_as_wgs84(tmp_path: Path) -> None:
    """RFC 7946: GeoJSON is always lon/lat, so a GeoJSON file never lacks a CRS."""
    layers = make_layers()
    layers["storage_blocks"] = layers["storage_blocks"].set_crs(None, allow_override=True)
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        path = write_layers(layers, tmp_path)
    assert len(read_layers(path)["storage_blocks"]) == 3


def test_numeric_ids_are_named_as_written(tmp_path: Path) -> None:
    """Integer ids read as floats (a column with a gap) are still named 7, not 7.0."""
    layers = make_layers()
    obstacle = layers["obstacles"].geometry[0]
    layers["obstacles"] = gpd.GeoDataFrame(
        {"obstacle_id": [7, None]}, geometry=[Polygon(), obstacle], crs="EPSG:4326"
    )
    assert lines(read_error(layers, tmp_path)) == [
        at(tmp_path, "obstacles", "7") + "geometry is empty; draw it or delete the feature",
        at(tmp_path, "obstacles", "row 2") + "obstacle_id is empty; give every feature an id",
    ]


def test_duplicate_ids(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "supply_points", "P1", "supply_id", "T1")
    (line,) = lines(read_error(layers, tmp_path))
    assert (
        line == at(tmp_path, "supply_points", "T1") + "supply_id is used twice; ids must be unique"
    )


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ("many", "units = 'many' is not a number"),
        (-3, "units = -3 must not be negative"),
        (2.5, "units = 2.5 must be a whole number"),
    ],
)
def test_bad_count_is_reported_once(tmp_path: Path, units: object, message: str) -> None:
    """A bad count of units is one problem, not also "applicants exceed units"."""
    layers = make_layers()
    set_value(layers, "storage_blocks", "S2", "units", units)
    (line,) = lines(read_error(layers, tmp_path))
    assert line == at(tmp_path, "storage_blocks", "S2") + message


def test_negative_count(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "buildings", "B2", "households", -48)
    (line,) = lines(read_error(layers, tmp_path))
    assert line == at(tmp_path, "buildings", "B2") + "households = -48 must not be negative"


def test_fractional_count(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "flying_wires", "W2", "households", 1.5)
    (line,) = lines(read_error(layers, tmp_path))
    assert line == at(tmp_path, "flying_wires", "W2") + "households = 1.5 must be a whole number"


def test_infinite_amount(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "flying_wires", "W1", "height_m", "inf")
    (line,) = lines(read_error(layers, tmp_path))
    assert line == at(tmp_path, "flying_wires", "W1") + "height_m = 'inf' is not a number"


def test_unknown_references(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "storage_blocks", "S3", "compound_id", "C9")
    set_value(layers, "flying_wires", "W1", "from_building_id", "B9")
    set_value(layers, "flying_wires", "W2", "to_block_id", "S9")
    error = read_error(layers, tmp_path)
    assert sorted(lines(error)) == sorted(
        [
            at(tmp_path, "storage_blocks", "S3")
            + "compound_id = 'C9' names no feature of layer compounds; "
            "fix the id or add that compound_id",
            at(tmp_path, "flying_wires", "W1")
            + "from_building_id = 'B9' names no feature of layer buildings; "
            "fix the id or add that building_id",
            at(tmp_path, "flying_wires", "W2")
            + "to_block_id = 'S9' names no feature of layer storage_blocks; "
            "fix the id or add that block_id",
        ]
    )


@pytest.mark.parametrize("capacity_kva", [0, -50.0])
def test_supply_without_capacity(tmp_path: Path, capacity_kva: float) -> None:
    layers = make_layers()
    set_value(layers, "supply_points", "P1", "capacity_kva", capacity_kva)
    (line,) = lines(read_error(layers, tmp_path))
    assert line == (
        at(tmp_path, "supply_points", "P1")
        + f"capacity_kva = {capacity_kva} must be greater than zero"
    )


def test_more_applicants_than_units(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "storage_blocks", "S1", "applicants", 15)
    (line,) = lines(read_error(layers, tmp_path))
    assert line.startswith(
        at(tmp_path, "storage_blocks", "S1") + "applicants = 15 exceeds units = 12"
    )


def test_invalid_status(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "compounds", "C2", "status", "done")
    set_value(layers, "flying_wires", "W2", "status", "gone")
    error = read_error(layers, tmp_path)
    assert sorted(lines(error)) == sorted(
        [
            at(tmp_path, "compounds", "C2") + "status = 'done' must be one of "
            "surveyed, applied, planned, under_construction, energized",
            at(tmp_path, "flying_wires", "W2") + "status = 'gone' must be one of present, removed",
        ]
    )


def test_unknown_surface(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "corridors", "K3", "surface", "gravel")
    (line,) = lines(read_error(layers, tmp_path))
    assert line == (
        at(tmp_path, "corridors", "K3")
        + "surface = 'gravel' must be one of soil, lawn, paving, asphalt, concrete"
    )


def test_unknown_area_class(tmp_path: Path) -> None:
    layers = make_layers()
    layers["compounds"]["area_class"] = ["B", "E"]
    (line,) = lines(read_error(layers, tmp_path))
    expected = "area_class = 'E' must be one of A+, A, B, C, D"
    assert line == at(tmp_path, "compounds", "C2") + expected


def test_an_empty_area_class_is_allowed(tmp_path: Path) -> None:
    layers = make_layers()
    layers["compounds"]["area_class"] = ["A+", None]  # empty: [supply] area_class applies
    compounds = read_layers(write_layers(layers, tmp_path))["compounds"]
    assert compounds["area_class"].iloc[0] == "A+"
    assert compounds["area_class"].isna().iloc[1]


# --- reporting --------------------------------------------------------------------------


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    layers = make_layers()
    set_value(layers, "compounds", "C2", "geometry", Point(106.82, 39.66))
    set_value(layers, "storage_blocks", "S2", "units", "many")
    set_value(layers, "supply_points", "P1", "supply_id", "T1")
    set_value(layers, "corridors", "K3", "surface", "gravel")
    layers["obstacles"] = layers["obstacles"].drop(columns="obstacle_id")
    error = read_error(layers, tmp_path)
    reported = lines(error)
    assert len(reported) == 5
    for start in [
        at(tmp_path, "compounds", "C2") + "geometry is Point",
        at(tmp_path, "storage_blocks", "S2") + "units = 'many'",
        at(tmp_path, "supply_points", "T1") + "supply_id is used twice",
        at(tmp_path, "corridors", "K3") + "surface = 'gravel'",
        at(tmp_path, "obstacles") + "required column 'obstacle_id' is missing",
    ]:
        assert any(line.startswith(start) for line in reported), start
    assert [p.layer for p in error.problems] == [
        "compounds",
        "storage_blocks",
        "supply_points",
        "corridors",
        "obstacles",
    ]


def test_missing_layer_does_not_cascade_into_reference_problems(tmp_path: Path) -> None:
    """A layer that is missing or unreadable is reported once, not once per reference."""
    layers = make_layers()
    layers["compounds"] = layers["compounds"].drop(columns="name")
    del layers["storage_blocks"]
    reported = lines(read_error(layers, tmp_path))
    assert reported == [
        f"{tmp_path}, layer storage_blocks: required layer missing: "
        "add storage_blocks.geojson (or .gpkg, .shp)",
        at(tmp_path, "compounds") + "required column 'name' is missing",
    ]


def test_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="no such file or folder"):
        read_layers(tmp_path / "nowhere")


# --- what a valid set gives -----------------------------------------------------------


def test_optional_layers_may_be_absent(tmp_path: Path) -> None:
    mandatory = ("compounds", "storage_blocks", "supply_points")
    given = {name: frame for name, frame in make_layers().items() if name in mandatory}
    result = read_layers(write_layers(given, tmp_path))
    assert tuple(result) == LAYER_NAMES
    for spec in SPECS:
        frame = result[spec.name]
        assert result.has(spec.name) == (spec.name in mandatory)
        assert frame.crs == result.crs
        assert set(spec.required) <= set(frame.columns)
        assert len(frame) == (len(given[spec.name]) if spec.name in mandatory else 0)


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    layers = make_layers()
    layers["storage_blocks"]["note"] = ["东门旁", "", "锅炉房后"]
    result = read_layers(write_layers(layers, tmp_path))
    blocks = result["storage_blocks"].set_index("block_id")
    assert blocks.loc["S1", "note"] == "东门旁"
    assert blocks.loc["S3", "note"] == "锅炉房后"
    assert list(result["compounds"]["name"]) == ["海北小区", "新华小区"]


@pytest.mark.parametrize("fmt", [f for f in LAYER_FORMATS if f != "geojson"])
def test_every_format_gives_the_same_features(tmp_path: Path, fmt: str) -> None:
    expected = read_layers(write_layers(make_layers(), tmp_path / "geojson"))
    result = read_layers(write_layers(make_layers(), tmp_path / fmt, fmt))
    assert result.crs == expected.crs
    for name in LAYER_NAMES:
        assert_geodataframe_equal(
            result[name], expected[name], check_less_precise=True, normalize=True
        )


def test_shapefile_column_names_are_restored(tmp_path: Path) -> None:
    path = write_layers(make_layers(), tmp_path, "shp")
    on_disk = gpd.read_file(path / "flying_wires.shp").columns
    assert "from_build" in on_disk
    assert "from_building_id" not in on_disk
    wires = read_layers(path)["flying_wires"]
    assert {"wire_id", "compound_id", "from_building_id", "to_block_id"} <= set(wires.columns)
    assert list(wires["from_building_id"]) == ["B1", "B2", "B3"]


# --- reprojection -----------------------------------------------------------------------


def test_default_working_crs_is_the_local_utm_zone(tmp_path: Path) -> None:
    result = read_layers(write_layers(make_layers(), tmp_path))
    assert result.crs == pyproj.CRS.from_epsg(32648)
    assert all(result[name].crs == result.crs for name in result)


@pytest.mark.parametrize(("crs", "epsg"), [(None, 32648), ("EPSG:4545", 4545)])
def test_lengths_in_metres_agree_with_geodesic_lengths(
    tmp_path: Path, crs: str | None, epsg: int
) -> None:
    layers = make_layers()
    geod = pyproj.Geod(ellps="WGS84")
    geodesic_m = {
        row.corridor_id: geod.geometry_length(row.geometry)
        for row in layers["corridors"].itertuples()
    }
    result = read_layers(write_layers(layers, tmp_path), settings=Settings(crs=crs))
    assert result.crs.to_epsg() == epsg
    corridors = result["corridors"]
    assert corridors.crs.to_epsg() == epsg
    for corridor_id, length_m in zip(corridors["corridor_id"], corridors.length, strict=True):
        assert length_m == pytest.approx(geodesic_m[corridor_id], rel=0.005)
    assert geodesic_m["K1"] == pytest.approx(270.0, rel=0.005)


# --- repairs and side effects ---------------------------------------------------------


def test_one_part_multipolygon_and_3d_geometry_are_repaired_with_a_warning(
    tmp_path: Path,
) -> None:
    layers = make_layers()
    compounds = layers["compounds"]
    set_value(layers, "compounds", "C1", "geometry", MultiPolygon([compounds.geometry[0]]))
    blocks = layers["storage_blocks"]
    set_value(layers, "storage_blocks", "S2", "geometry", shapely.force_3d(blocks.geometry[1], 5.0))
    result = read_layers(write_layers(layers, tmp_path))
    assert result.warnings == (
        f"{tmp_path / 'compounds.geojson'}, layer compounds, feature C1: "
        "one-part MultiPolygon read as Polygon",
        f"{tmp_path / 'storage_blocks.geojson'}, layer storage_blocks, feature S2: "
        "dropped Z values",
    )
    for name in ("compounds", "storage_blocks"):
        geometry = result[name].geometry
        assert list(geometry.geom_type) == ["Polygon"] * len(geometry)
        assert not geometry.has_z.any()


@pytest.mark.parametrize("fmt", LAYER_FORMATS)
def test_reading_leaves_the_input_files_untouched(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "in"
    path = write_layers(make_layers(), folder, fmt)

    def snapshot() -> dict[str, tuple[bytes, int]]:
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}

    before = snapshot()
    read_layers(path)
    assert snapshot() == before
