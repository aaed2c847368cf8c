"""A corpus of bad inputs, each generated here from the tiny valid layer set.

Every case must give, from the command line (``geoplan validate`` and ``geoplan plan``),
exit code 2 and one ``error:`` line per problem naming the file, the layer and the
feature, no traceback, no output folder, and inputs left as they were; and from the API
a typed :class:`~geoplan.errors.GeoplanError` with the same problems. Inputs that can be
repaired safely give a plan and a warning line; valid inputs with hopeless outcomes
give a complete plan with every block unserved and its reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner
from conftest import make_layers, point, rect, write_layers
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from test_browser import browser, visit  # noqa: F401 - fixtures of the hostile-text test
from test_cli import assert_user_error, geoplan

from geoplan.cli import cli
from geoplan.errors import CRSError, GeoplanError, LayerError, OutputError, SettingsError
from geoplan.export import export_plan
from geoplan.layers import SPEC_BY_NAME, read_layers
from geoplan.plan import plan
from geoplan.routing import BEYOND_RADIUS, NO_CAPACITY, NO_PATH, UNSERVED_REASONS
from geoplan.schema import OUTPUT_LAYERS
from geoplan.settings import load_settings, parse_assignments

Frames = dict[str, gpd.GeoDataFrame]
EXIT_BAD_INPUT = 2
MIN_CORPUS = 40
OUT = "<out>"


@dataclass(frozen=True)
class Expect:
    """One expected problem line: where it points and a fragment of what it says.

    ``file`` is relative to the case folder: None for ``<layer>.geojson``, ``""`` for the
    folder itself, ``OUT`` for the output folder; ``layer`` and ``feature`` None when the
    line names none.
    """

    text: str
    layer: str | None = None
    feature: str | None = None
    file: str | None = None

    def prefix(self, folder: Path, out: Path) -> str:
        if self.file == OUT:
            file = out
        elif self.file == "":
            file = folder
        else:
            file = folder / (f"{self.layer}.geojson" if self.file is None else self.file)
        parts = [str(file)]
        if self.layer:
            parts.append(f"layer {self.layer}")
        if self.feature:
            parts.append(f"feature {self.feature}")
        return ", ".join(parts) + ": "


@dataclass(frozen=True)
class Case:
    """A bad input: how to write it into a folder, and the problems it must give.

    ``build(folder)`` writes the input and returns the LAYERS path; ``out(folder, layers)``
    returns the ``--out`` folder (default: a fresh folder beside the input).
    """

    id: str
    build: Callable[[Path], Path]
    expect: tuple[Expect, ...]
    error: type[GeoplanError] = LayerError
    out: Callable[[Path, Path], Path] | None = None
    layers_path: Callable[[Path], Path] = field(default=lambda folder: folder)


def edited(change: Callable[[Frames], object], fmt: str = "geojson") -> Callable[[Path], Path]:
    """Write the valid layer set after ``change(layers)``."""

    def build(folder: Path) -> Path:
        layers = make_layers()
        change(layers)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            return write_layers(layers, folder, fmt)

    return build


def then(change: Callable[[Path], object], fmt: str = "geojson") -> Callable[[Path], Path]:
    """Write the valid layer set, then ``change(folder)`` its files."""

    def build(folder: Path) -> Path:
        path = write_layers(make_layers(), folder, fmt)
        change(folder)
        return path

    return build


def set_value(layer: str, feature: str, column: str, value: object) -> Callable[[Frames], None]:
    """Return a change setting ``column`` of one feature (any type of value)."""

    def change(layers: Frames) -> None:
        frame = layers[layer]
        rows = frame.index[frame[SPEC_BY_NAME[layer].id_column] == feature]
        assert len(rows) == 1
        if column != frame.geometry.name:
            frame[column] = frame[column].astype(object)
        frame.loc[rows[0], column] = value

    return change


def add_column(layer: str, column: str, values: list[object]) -> Callable[[Frames], None]:
    """Return a change adding ``column`` to ``layer``, one value per feature."""

    def change(layers: Frames) -> None:
        layers[layer][column] = values

    return change


def swap_axes(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: xy[:, ::-1])


def swapped(*names: str) -> Callable[[Frames], None]:
    def change(layers: Frames) -> None:
        for name in names:
            frame = layers[name]
            frame["geometry"] = frame.geometry.map(swap_axes)

    return change


def recrs(name: str, data_crs: str | None, declared: str | None) -> Callable[[Frames], None]:
    """Write layer ``name`` with coordinates in ``data_crs`` but declared as ``declared``."""

    def change(layers: Frames) -> None:
        frame = layers[name].to_crs(data_crs) if data_crs else layers[name]
        layers[name] = frame.set_crs(declared, allow_override=True)

    return change


def write_text(name: str, data: str | bytes) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        (folder / name).write_bytes(raw)

    return change


def truncate(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / name
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])

    return change


def reencode(name: str, encoding: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))

    return change


def remove(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink()

    return change


def drop_layer(name: str) -> Callable[[Frames], None]:
    return lambda layers: layers.pop(name)


def no_features(name: str) -> Callable[[Frames], None]:
    def change(layers: Frames) -> None:
        layers[name] = layers[name].iloc[:0]

    return change


def nan_vertex(layers: Frames) -> None:
    x0, y0, x1, y1 = layers["storage_blocks"].geometry.iloc[0].bounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ring = Polygon([(x0, y0), (x1, y0), (math.nan, y1), (x0, y1), (x0, y0)])
    layers["storage_blocks"].loc[0, "geometry"] = ring


def bowtie(layers: Frames) -> None:
    x0, y0, x1, y1 = layers["compounds"].geometry.iloc[0].bounds
    layers["compounds"].loc[0, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])


def two_parts(layers: Frames) -> None:
    blocks = layers["storage_blocks"].geometry
    layers["storage_blocks"].loc[0, "geometry"] = MultiPolygon([blocks.iloc[0], blocks.iloc[1]])


def far_away(layers: Frames) -> None:
    blocks = layers["storage_blocks"]
    blocks.loc[0, "geometry"] = shapely.affinity.translate(blocks.geometry.iloc[0], xoff=30.0)


def twin_file(folder: Path) -> None:
    make_layers()["compounds"].to_file(folder / "compounds.gpkg")


def settings_file(text: str | bytes) -> Callable[[Path], Path]:
    return then(write_text("geoplan.toml", text))


def settings_expect(text: str) -> tuple[Expect, ...]:
    return (Expect(text, file="geoplan.toml"),)


def under_a_file(tmp: Path, _layers: Path) -> Path:
    blocker = tmp / "a_file"
    blocker.write_text("not a folder")
    return blocker / "plan"


def one(text: str, layer: str, feature: str | None = None, file: str | None = None) -> tuple:
    return (Expect(text, layer, feature, file),)


CASES = [
    # --- files ---------------------------------------------------------------------------
    Case(
        "missing_layer_file",
        edited(drop_layer("storage_blocks")),
        one("required layer missing: add storage_blocks.geojson", "storage_blocks", file=""),
    ),
    Case(
        "misspelt_layer_file",
        edited(lambda layers: layers.update(storage_block=layers.pop("storage_blocks"))),
        one("is storage_block meant to be it? rename it", "storage_blocks", file=""),
    ),
    Case(
        "no_such_folder",
        then(lambda folder: None),
        (Expect("no such file or folder", file="nowhere"),),
        layers_path=lambda folder: folder / "nowhere",
    ),
    Case(
        "garbage_geojson",
        then(write_text("compounds.geojson", "this is not GeoJSON")),
        one("cannot read (not a format GDAL reads", "compounds"),
    ),
    Case(
        "truncated_geojson",
        then(truncate("storage_blocks.geojson")),
        one("cannot read (", "storage_blocks"),
    ),
    Case(
        "empty_file",
        then(write_text("supply_points.geojson", b"")),
        one("cannot read (not a format GDAL reads", "supply_points"),
    ),
    Case(
        "json_but_not_geojson",
        then(write_text("compounds.geojson", "[1, 2, 3]")),
        one("cannot read (not a format GDAL reads", "compounds"),
    ),
    Case(
        "not_utf8",
        then(reencode("compounds.geojson", "gbk")),
        one("is not UTF-8 text; save it as UTF-8", "compounds"),
    ),
    Case(
        "shapefile_without_dbf",
        then(remove("storage_blocks.dbf"), "shp"),
        one("storage_blocks.dbf is missing", "storage_blocks", file="storage_blocks.shp"),
    ),
    Case(
        "shapefile_without_shx",
        then(remove("supply_points.shx"), "shp"),
        one("supply_points.shx is missing", "supply_points", file="supply_points.shp"),
    ),
    Case(
        "no_crs_geopackage",
        edited(recrs("storage_blocks", None, None), "gpkg"),
        one("has no coordinate reference system", "storage_blocks", file="storage_blocks.gpkg"),
        error=CRSError,
    ),
    Case(
        "no_crs_shapefile",
        then(remove("buildings.prj"), "shp"),
        one("has no coordinate reference system", "buildings", file="buildings.shp"),
        error=CRSError,
    ),
    Case(
        "geopackage_without_a_layer",
        edited(drop_layer("supply_points"), "gpkg_single"),
        one("no layer named supply_points", "supply_points", file="layers.gpkg"),
        layers_path=lambda folder: folder / "layers.gpkg",
    ),
    Case(
        "two_files_for_one_layer",
        then(twin_file),
        one(
            "several files for one layer (compounds.geojson, compounds.gpkg)", "compounds", file=""
        ),
    ),
    # --- coordinates and CRS --------------------------------------------------------------
    Case(
        "lat_lon_swapped",
        edited(swapped("storage_blocks")),
        one("lat/lon swapped", "storage_blocks"),
    ),
    Case(
        "lat_lon_swapped_everywhere",
        edited(swapped(*make_layers())),
        tuple(Expect("lat/lon swapped", name) for name in make_layers()),
    ),
    Case(
        "lat_lon_swapped_one_point",
        edited(set_value("supply_points", "P1", "geometry", swap_axes(point(280, 50)))),
        one("lat/lon swapped", "supply_points", "P1"),
    ),
    Case(
        "metres_declared_as_degrees",
        edited(recrs("storage_blocks", "EPSG:32648", "EPSG:4326")),
        one("coordinates are not longitudes and latitudes", "storage_blocks"),
    ),
    Case(
        "degrees_declared_as_metres",
        edited(recrs("supply_points", None, "EPSG:4545"), "gpkg"),
        one("look like longitudes and latitudes", "supply_points", file="supply_points.gpkg"),
    ),
    Case(
        "outside_the_crs_area_of_use",
        edited(recrs("compounds", "EPSG:32648", "EPSG:2154"), "gpkg"),
        one(
            "outside the area where the layer's CRS EPSG:2154 is used",
            "compounds",
            None,
            "compounds.gpkg",
        ),
    ),
    Case(
        "one_feature_thousands_of_km_away",
        edited(far_away),
        one("km from the rest of the layers", "storage_blocks", "S1"),
    ),
    Case(
        "coordinates_out_of_range",
        edited(set_value("supply_points", "T1", "geometry", Point(1e10, 1e10))),
        one("outside the range of longitude and latitude", "supply_points", "T1"),
    ),
    # --- columns ----------------------------------------------------------------------------
    Case(
        "missing_required_column",
        edited(lambda layers: layers["compounds"].drop(columns="name", inplace=True)),
        one("required column 'name' is missing", "compounds"),
    ),
    Case(
        "misspelt_required_column",
        edited(
            lambda layers: layers["storage_blocks"].rename(columns={"units": "unit"}, inplace=True)
        ),
        one("(found 'unit': rename it to 'units')", "storage_blocks"),
    ),
    Case(
        "misspelt_id_column",
        edited(
            lambda layers: layers["supply_points"].rename(
                columns={"supply_id": "suply_id"}, inplace=True
            )
        ),
        one("(found 'suply_id': rename it to 'supply_id')", "supply_points"),
    ),
    # --- values -----------------------------------------------------------------------------
    Case(
        "text_for_a_count",
        edited(set_value("storage_blocks", "S1", "units", "twelve")),
        one("units = 'twelve' is not a number", "storage_blocks", "S1"),
    ),
    Case(
        "negative_count",
        edited(set_value("storage_blocks", "S2", "units", -3)),
        one("units = -3 must not be negative", "storage_blocks", "S2"),
    ),
    Case(
        "zero_count",
        edited(set_value("storage_blocks", "S1", "units", 0)),
        one("units = 0 must be greater than zero", "storage_blocks", "S1"),
    ),
    Case(
        "absurdly_large_count",
        edited(set_value("storage_blocks", "S1", "units", 10**9)),
        one("units = 1000000000 is implausibly large", "storage_blocks", "S1"),
    ),
    Case(
        "count_too_large_for_an_integer",
        edited(set_value("compounds", "C1", "households", 1e20)),
        one("households = 1e+20 is implausibly large", "compounds", "C1"),
    ),
    Case(
        "fractional_count",
        edited(set_value("buildings", "B2", "floors", 5.5)),
        one("floors = 5.5 must be a whole number", "buildings", "B2"),
    ),
    Case(
        "text_for_an_amount",
        edited(set_value("flying_wires", "W2", "height_m", "high")),
        one("height_m = 'high' is not a number", "flying_wires", "W2"),
    ),
    Case(
        "negative_amount",
        edited(set_value("flying_wires", "W1", "height_m", -4.5)),
        one("height_m = -4.5 must not be negative", "flying_wires", "W1"),
    ),
    Case(
        "duplicate_ids",
        edited(set_value("supply_points", "P1", "supply_id", "T1")),
        one("supply_id is used twice; ids must be unique", "supply_points", "T1"),
    ),
    Case(
        "empty_id",
        edited(set_value("obstacles", "O1", "obstacle_id", None)),
        one("obstacle_id is empty; give every feature an id", "obstacles", "row 1"),
    ),
    Case(
        "unknown_compound",
        edited(set_value("storage_blocks", "S3", "compound_id", "C9")),
        one("compound_id = 'C9' names no feature of layer compounds", "storage_blocks", "S3"),
    ),
    Case(
        "unknown_building",
        edited(set_value("flying_wires", "W1", "from_building_id", "B9")),
        one("from_building_id = 'B9' names no feature of layer buildings", "flying_wires", "W1"),
    ),
    Case(
        "unknown_block",
        edited(set_value("flying_wires", "W2", "to_block_id", "S9")),
        one("to_block_id = 'S9' names no feature of layer storage_blocks", "flying_wires", "W2"),
    ),
    Case(
        "unknown_supply",
        edited(set_value("feeders", "F1", "supply_id", "T9")),
        one("supply_id = 'T9' names no feature of layer supply_points", "feeders", "F1"),
    ),
    Case(
        "unknown_status",
        edited(set_value("compounds", "C1", "status", "done")),
        one("status = 'done' must be one of surveyed", "compounds", "C1"),
    ),
    Case(
        "unknown_surface",
        edited(set_value("corridors", "K1", "surface", "gravel")),
        one("surface = 'gravel' must be one of", "corridors", "K1"),
    ),
    Case(
        "unknown_supply_kind",
        edited(set_value("supply_points", "T1", "kind", "generator")),
        one("kind = 'generator' must be one of transformer", "supply_points", "T1"),
    ),
    Case(
        "unknown_area_class",
        edited(add_column("compounds", "area_class", ["B", "E"])),
        one("area_class = 'E' must be one of A+, A, B, C, D", "compounds", "C2"),
    ),
    Case(
        "more_applicants_than_rooms",
        edited(set_value("storage_blocks", "S3", "applicants", 20)),
        one("applicants = 20 exceeds units = 8", "storage_blocks", "S3"),
    ),
    # --- geometry ---------------------------------------------------------------------------
    Case(
        "self_intersecting_polygon",
        edited(bowtie),
        one("geometry is invalid (Self-intersection", "compounds", "C1"),
    ),
    Case(
        "empty_geometry",
        edited(set_value("storage_blocks", "S2", "geometry", Polygon())),
        one("geometry is empty; draw it or delete the feature", "storage_blocks", "S2"),
    ),
    Case(
        "null_geometry",
        edited(set_value("buildings", "B1", "geometry", None)),
        one("geometry is empty; draw it or delete the feature", "buildings", "B1"),
    ),
    Case(
        "multi_part_geometry",
        edited(two_parts),
        one("geometry is MultiPolygon; a Polygon is expected", "storage_blocks", "S1"),
    ),
    Case(
        "wrong_geometry_type",
        edited(set_value("compounds", "C2", "geometry", point(200, 50))),
        one("geometry is Point; a Polygon is expected", "compounds", "C2"),
    ),
    Case(
        "nan_coordinates",
        edited(nan_vertex, "gpkg"),
        one(
            "geometry has NaN or infinite coordinates",
            "storage_blocks",
            "S1",
            "storage_blocks.gpkg",
        ),
    ),
    Case(
        "nan_point",
        edited(set_value("supply_points", "P1", "geometry", Point(math.nan, math.nan)), "gpkg"),
        one("geometry is empty", "supply_points", "P1", "supply_points.gpkg"),
    ),
    Case(
        "line_with_one_point",
        edited(set_value("corridors", "K2", "geometry", LineString([(106.82, 39.66)] * 2))),
        one("geometry is invalid (Too few points", "corridors", "K2"),
    ),
    # --- empty layers, supplies ---------------------------------------------------------------
    Case(
        "corridor_layer_without_edges",
        then(write_text("corridors.geojson", '{"type": "FeatureCollection", "features": []}')),
        one("has no features; draw the corridors", "corridors"),
    ),
    Case(
        "corridor_geopackage_without_edges",
        edited(no_features("corridors"), "gpkg"),
        one(
            "or delete the file to plan cables over open ground",
            "corridors",
            None,
            "corridors.gpkg",
        ),
    ),
    Case(
        "supply_layer_without_features",
        edited(no_features("supply_points")),
        one("has no features; add the supply_points", "supply_points"),
    ),
    Case(
        "zero_capacity",
        edited(set_value("supply_points", "P1", "capacity_kva", 0)),
        one("must be greater than zero", "supply_points", "P1"),
    ),
    Case(
        "negative_capacity",
        edited(set_value("supply_points", "T1", "capacity_kva", -400)),
        one("must be greater than zero", "supply_points", "T1"),
    ),
    # --- settings -----------------------------------------------------------------------------
    Case(
        "settings_unknown_key",
        settings_file("[voltage]\ndrop_limt_pct = 5.0\n"),
        settings_expect("unknown key [voltage] drop_limt_pct"),
        error=SettingsError,
    ),
    Case(
        "settings_unknown_option",
        settings_file("[plan]\nspeed = 3\n"),
        settings_expect("unknown option [plan] speed"),
        error=SettingsError,
    ),
    Case(
        "settings_wrong_type",
        settings_file("[voltage]\ndrop_limit_pct = 'high'\n"),
        settings_expect("[voltage] drop_limit_pct = 'high' should be"),
        error=SettingsError,
    ),
    Case(
        "settings_unknown_area_class",
        settings_file("[supply]\narea_class = 'E'\n"),
        settings_expect("[supply] area_class = 'E' must be one of A+, A, B, C, D"),
        error=SettingsError,
    ),
    Case(
        "settings_empty_list",
        settings_file("[meter_boxes]\nsingle_phase_positions = []\n"),
        settings_expect("[meter_boxes] single_phase_positions = [] must list at least one"),
        error=SettingsError,
    ),
    Case(
        "settings_out_of_range",
        settings_file("[voltage]\ndrop_limit_pct = -1\n[supply]\nloading_limit = 0\n"),
        (
            Expect("[voltage] drop_limit_pct = -1 must be above 0", file="geoplan.toml"),
            Expect("[supply] loading_limit = 0 must be above 0", file="geoplan.toml"),
        ),
        error=SettingsError,
    ),
    Case(
        "settings_wrong_type_of_option",
        settings_file("[plan]\ninclude_personal = 'yes'\n"),
        settings_expect("[plan] include_personal = 'yes' must be true or false"),
        error=SettingsError,
    ),
    Case(
        "settings_not_toml",
        settings_file("[plan\nload_basis = 'rooms'\n"),
        settings_expect("not valid TOML"),
        error=SettingsError,
    ),
    Case(
        "settings_not_utf8",
        settings_file("[plan]\nload_basis = '全部'\n".encode("gbk")),
        settings_expect("is not UTF-8 text; save it as UTF-8"),
        error=SettingsError,
    ),
    # --- output folders ---------------------------------------------------------------------
    Case(
        "output_folder_is_the_input_folder",
        then(lambda folder: None),
        (Expect("this folder holds the input layers", file=OUT),),
        error=OutputError,
        out=lambda tmp, layers: layers,
    ),
    Case(
        "output_folder_not_writable",
        then(lambda folder: None),
        (Expect("cannot write the plan here", file=OUT),),
        error=OutputError,
        out=under_a_file,
    ),
]
CASE_IDS = [case.id for case in CASES]


def snapshot(folder: Path) -> dict[str, str]:
    """Return every file under ``folder`` with a digest of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass
class Prepared:
    case: Case
    root: Path
    folder: Path
    layers: Path
    out: Path

    def expected_lines(self) -> list[str]:
        return [e.prefix(self.folder, self.out) for e in self.case.expect]


def prepare(case: Case, tmp_path: Path) -> Prepared:
    folder = tmp_path / "input"
    case.build(folder)
    layers = case.layers_path(folder)
    out = case.out(tmp_path, layers) if case.out else tmp_path / "plan"
    return Prepared(case, tmp_path, folder, layers, out)


def assert_lines(reported: list[str], prepared: Prepared) -> None:
    """One line per expected problem, each starting where it should, saying what it should."""
    assert len(reported) == len(prepared.case.expect), reported
    unmatched = list(reported)
    for expect in prepared.case.expect:
        start = expect.prefix(prepared.folder, prepared.out)
        hits = [line for line in unmatched if line.startswith(start) and expect.text in line]
        assert hits, (start, expect.text, reported)
        unmatched.remove(hits[0])


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= MIN_CORPUS
    assert len(set(CASE_IDS)) == len(CASES)


def run_api(prepared: Prepared) -> None:
    """Do what ``geoplan plan`` does, through the API."""
    settings = load_settings(prepared.layers)
    layers = read_layers(prepared.layers, settings=settings)
    export_plan(plan(layers, settings=settings), prepared.out)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_api_raises_a_typed_error(case: Case, tmp_path: Path) -> None:
    prepared = prepare(case, tmp_path)
    before = snapshot(prepared.folder)
    with pytest.raises(case.error) as info:
        run_api(prepared)
    assert isinstance(info.value, GeoplanError)
    assert_lines([str(p) for p in info.value.problems], prepared)
    assert snapshot(prepared.folder) == before
    assert not prepared.out.exists() or prepared.out == prepared.layers


CLI_RUNS = [
    pytest.param(case, command, id=f"{command}-{case.id}")
    for case in CASES
    for command in ("validate", "plan")
    if command == "plan" or case.out is None  # an output folder is a problem of plan only
]


@pytest.mark.parametrize(("case", "command"), CLI_RUNS)
def test_the_command_line_prints_one_line_per_problem(
    case: Case, command: str, tmp_path: Path
) -> None:
    prepared = prepare(case, tmp_path)
    before = snapshot(prepared.folder)
    args = [command, str(prepared.layers)]
    if command == "plan":
        args += ["--out", str(prepared.out), "--no-maps"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == EXIT_BAD_INPUT, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    reported = result.stderr.splitlines()
    assert all(line.startswith("error: ") for line in reported), reported
    assert_lines([line.removeprefix("error: ") for line in reported], prepared)
    assert snapshot(prepared.folder) == before, "the input was changed"
    if prepared.out != prepared.layers:
        assert not prepared.out.exists(), "a failed run left output behind"


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.id in {"not_utf8", "lat_lon_swapped", "output_folder_not_writable"}],
    ids=lambda c: c.id,
)
def test_a_real_process_prints_no_traceback(case: Case, tmp_path: Path) -> None:
    prepared = prepare(case, tmp_path)
    result = geoplan("plan", prepared.layers, "--out", prepared.out, cwd=tmp_path)
    assert_user_error(result, prepared.expected_lines())
    assert not prepared.out.exists()


def test_output_folder_that_is_a_file(tmp_path: Path) -> None:
    layers = write_layers(make_layers(), tmp_path / "input")
    blocker = tmp_path / "plan"
    blocker.write_text("a file")
    result = CliRunner().invoke(cli, ["plan", str(layers), "--out", str(blocker), "--no-maps"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.splitlines() == [
        f"error: {blocker}: this is a file, not a folder; give a folder for the plan's files"
    ]


#: Settings given with --set (or in a --settings file) that are refused: (VALUE, the line).
BAD_FLAGS = [
    ("supply.area_class=E", "[supply] area_class = 'E' must be one of A+, A, B, C, D"),
    (
        "meter_boxes.single_phase_positions=[]",
        "[meter_boxes] single_phase_positions = [] must list at least one value",
    ),
    ("cables.group_factors=[]", "[cables] group_factors = [] must list at least one value"),
    ("voltage.drop_limit_pct=-1", "[voltage] drop_limit_pct = -1 must be above 0"),
    ("supply.loading_limit=0", "[supply] loading_limit = 0 must be above 0"),
    ("supply.radius_m={B = 0.0}", "[supply] radius_m: B = 0.0 must be above 0"),
]


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize(("assignment", "expected"), BAD_FLAGS, ids=[a for a, _ in BAD_FLAGS])
def test_bad_settings_flags_give_one_line(
    assignment: str, expected: str, command: str, tmp_path: Path
) -> None:
    layers = write_layers(make_layers(), tmp_path / "input")
    before = snapshot(layers)
    out = tmp_path / "plan"
    ((section, body),) = parse_assignments([assignment]).items()
    ((key, value),) = body.items()
    raw = assignment.partition("=")[2]
    settings_file = tmp_path / "other.toml"
    text = f"[{section}]\n{key} = {json.dumps(value) if isinstance(value, str) else raw}\n"
    settings_file.write_text(text, encoding="utf-8")
    for flags, source in (
        (["--set", assignment], "--set"),
        (["--settings", str(settings_file)], str(settings_file)),
    ):
        args = [command, str(layers), *flags]
        if command == "plan":
            args += ["--out", str(out), "--no-maps"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == EXIT_BAD_INPUT, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit)
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {source}: {expected}")
        assert not out.exists()
    assert snapshot(layers) == before


def test_a_real_process_refuses_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    layers = write_layers(make_layers(), tmp_path / "input")
    out = tmp_path / "plan"
    result = geoplan("plan", layers, "--out", out, "--set", "supply.area_class=E", cwd=tmp_path)
    assert_user_error(result, ["--set: [supply] area_class = 'E' must be one of A+, A, B, C, D"])
    assert not out.exists()


# --- safe repairs -----------------------------------------------------------------------------


def one_part_multi(layers: Frames) -> None:
    blocks = layers["storage_blocks"]
    blocks.loc[1, "geometry"] = MultiPolygon([blocks.geometry.iloc[1]])


def three_d(layers: Frames) -> None:
    corridors = layers["corridors"]
    corridors["geometry"] = corridors.geometry.force_3d(1050.0)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            one_part_multi,
            ["layer storage_blocks, feature S2: one-part MultiPolygon read as Polygon"],
        ),
        (three_d, [f"layer corridors, feature {k}: dropped Z values" for k in ("K1", "K2", "K3")]),
    ],
    ids=["one_part_multi", "three_d"],
)
def test_safe_repairs_plan_with_a_warning(
    change: Callable[[Frames], None], expected: list[str], tmp_path: Path
) -> None:
    layers = make_layers()
    change(layers)
    path = write_layers(layers, tmp_path / "input")
    result = CliRunner().invoke(
        cli, ["plan", str(path), "--out", str(tmp_path / "plan"), "--no-maps"]
    )
    assert result.exit_code == 0, result.output
    warned = result.stderr.splitlines()
    assert len(warned) == len(expected), warned
    for line, fragment in zip(warned, expected, strict=True):
        assert line.startswith(f"warning: {path}")
        assert fragment in line
    assert (tmp_path / "plan" / "plan.gpkg").is_file()


def test_a_real_process_prints_each_warning_once(tmp_path: Path) -> None:
    layers = make_layers()
    three_d(layers)
    layers["storage_blocks"]["phone"] = ["13912345678", None, None]
    path = write_layers(layers, tmp_path / "input")
    result = geoplan("validate", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    said = result.stderr.splitlines()
    assert len(said) == 4, said  # three repairs, one column left out
    assert all(line.startswith(f"warning: {path}") for line in said), said


# --- hopeless but valid ----------------------------------------------------------------------


def all_supplies_full(layers: Frames) -> None:
    supplies = layers["supply_points"]
    supplies["load_kva"] = supplies["capacity_kva"]
    layers["feeders"]["spare_kva"] = 0.0


def supplies_out_of_reach(layers: Frames) -> None:
    supplies = layers["supply_points"]
    supplies["geometry"] = [point(3000, 3000), point(3050, 3000)]
    del layers["feeders"]


def blocks_walled_in(layers: Frames) -> None:
    wall = rect(-60, -60, 330, 160).difference(rect(-40, -40, 310, 140))
    layers["obstacles"] = gpd.GeoDataFrame(
        {"obstacle_id": ["WALL"]}, geometry=[wall], crs=layers["obstacles"].crs
    )
    layers["supply_points"]["geometry"] = [point(140, -80), point(150, -80)]
    del layers["feeders"]


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        (all_supplies_full, {NO_CAPACITY}),
        (supplies_out_of_reach, {NO_PATH, BEYOND_RADIUS}),
        (blocks_walled_in, {NO_PATH, BEYOND_RADIUS}),
    ],
    ids=["all_supplies_full", "supplies_out_of_reach", "blocks_walled_in"],
)
def test_hopeless_outcomes_give_a_complete_plan(
    change: Callable[[Frames], None], reasons: set[str], tmp_path: Path
) -> None:
    layers = make_layers()
    change(layers)
    path = write_layers(layers, tmp_path / "input")
    made = plan(read_layers(path))
    assert len(made.meter_boxes) == 3
    assert made.cables.empty
    assert made.trenches.empty
    assert sorted(made.unserved["block_id"]) == ["S1", "S2", "S3"]
    assert set(made.unserved["reason"]) <= reasons
    assert (made.unserved["detail"] != "").all()
    assert made.summary["unserved_blocks"].sum() == 3
    result = CliRunner().invoke(cli, ["plan", str(path), "--out", str(tmp_path / "plan")])
    assert result.exit_code == 0, result.output
    for name in ("plan.gpkg", "plan.xlsx", "summary.csv", "geojson/unserved.geojson", "index.html"):
        assert (tmp_path / "plan" / name).is_file(), name


def test_the_schema_lists_the_unserved_reasons_routing_gives() -> None:
    (description,) = [d for c, _, d in OUTPUT_LAYERS["unserved"] if c == "reason"]
    assert sorted(description.split(", ")) == list(UNSERVED_REASONS)


# --- hostile text: attribute text never becomes markup or script -----------------------------

PAYLOADS = (
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    '"><svg onload="window.__pwned = \'svg\'">',
    "'); window.__pwned = 'quote'; ('",
    "</script><script>window.__pwned = 'close'</script>",
    "{{ 7 * 7 }} ${window.__pwned = 'template'} `x`",
    "<a href=\"javascript:window.__pwned = 'link'\">a</a>",
    "<b onmouseover=\"window.__pwned = 'hover'\">&amp;</b>",
)


def hostile(n: int, tag: str) -> str:
    """A payload (by number) that is also a unique id."""
    return f"{PAYLOADS[n % len(PAYLOADS)]}{tag}"


def rename(frame: gpd.GeoDataFrame, column: str, names: dict[str, str]) -> None:
    frame[column] = [names.get(v, v) if isinstance(v, str) else v for v in frame[column]]


def hostile_layers() -> Frames:
    """The tiny layer set with a payload in every free text column, ids included."""
    layers = make_layers()
    ids: dict[str, dict[str, str]] = {}
    n = 0
    for name in layers:
        column = SPEC_BY_NAME[name].id_column
        ids[name] = {}
        for value in layers[name][column]:
            ids[name][value] = hostile(n, value)
            n += 1
        rename(layers[name], column, ids[name])
    for layer, column, target in (
        ("buildings", "compound_id", "compounds"),
        ("storage_blocks", "compound_id", "compounds"),
        ("flying_wires", "compound_id", "compounds"),
        ("flying_wires", "from_building_id", "buildings"),
        ("flying_wires", "to_block_id", "storage_blocks"),
        ("feeders", "supply_id", "supply_points"),
    ):
        rename(layers[layer], column, ids[target])
    texts = (
        ("compounds", "name"),
        ("compounds", "name_en"),
        ("buildings", "name"),
        ("supply_points", "name"),
        ("corridors", "name"),
        ("obstacles", "kind"),
        ("flying_wires", "surveyed_on"),
    )
    for layer, column in texts:
        frame = layers[layer]
        frame[column] = [hostile(n + i, f" {layer}.{column}") for i in range(len(frame))]
        n += len(frame)
    return layers


OPEN_EVERYTHING_JS = """
async () => {
  const g = window.geoplan, texts = [];
  const tick = () => new Promise((done) => setTimeout(done, 0));
  const leaves = (layer) => layer.getLayers ? layer.getLayers().flatMap(leaves) : [layer];
  const text = (selector) => [...document.querySelectorAll(selector)]
    .map((e) => e.textContent).join(' | ');
  for (const layer of Object.values(g.overlays)) {
    if (!layer.getLayers) continue;
    if (!g.map.hasLayer(layer)) g.map.addLayer(layer);
    for (const leaf of leaves(layer)) {
      const at = leaf.getLatLng ? leaf.getLatLng() : leaf.getBounds().getCenter();
      leaf.fire('mouseover', {latlng: at}, true);
      await tick();
      texts.push(text('.leaflet-tooltip'));
      leaf.fire('mouseout', {latlng: at}, true);
      leaf.fire('click', {latlng: at}, true);
      await tick();
      texts.push(text('.leaflet-popup-content'));
    }
  }
  await new Promise((done) => setTimeout(done, 300));
  return texts;
}
"""


#: Columns whose (hostile) text the pages show: each value must appear as text.
SHOWN_AS_TEXT = (
    ("compounds", "compound_id"),
    ("compounds", "name"),
    ("buildings", "building_id"),
    ("buildings", "name"),
    ("storage_blocks", "block_id"),
    ("supply_points", "supply_id"),
    ("supply_points", "name"),
    ("flying_wires", "wire_id"),
)
INJECTED_JS = "() => document.querySelectorAll('svg[onload], img[onerror], [onmouseover]').length"


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geoplan.maps import write_maps

    folder = tmp_path_factory.mktemp("hostile")
    layers = read_layers(write_layers(hostile_layers(), folder / "layers"))
    made = plan(layers)
    assert len(made.cables), "the hostile district should still be planned"
    write_maps(made, folder / "site", scale="district")
    return folder / "site"


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    """Page load times (not written out: test_browser.py keeps the artifact)."""
    return {}


def test_hostile_text_stays_text_in_every_page(
    hostile_site: Path, request: pytest.FixtureRequest
) -> None:
    import test_browser

    if not test_browser.CHROMIUM.exists():
        test_browser._require(f"{test_browser.CHROMIUM} is missing (apt-get install chromium)")
    open_page = request.getfixturevalue("visit")
    pages = sorted(hostile_site.rglob("*.html"))
    assert len(pages) >= 5
    shown: list[str] = []
    for page in pages:
        is_map = "window.geoplan" in page.read_text(encoding="utf-8")
        seen = open_page(page, ready=test_browser.MAP_READY if is_map else "() => true")
        assert seen.page.title()
        if is_map:
            shown += seen.page.evaluate(OPEN_EVERYTHING_JS)
        shown.append(seen.page.evaluate("() => document.body.innerText"))
        seen.page.wait_for_timeout(100)
        test_browser.assert_clean(seen)
        injected = seen.page.evaluate(INJECTED_JS)
        assert injected == 0, f"{page.name}: {injected} elements made from attribute text"
    text = "\n".join(shown)
    for payload in PAYLOADS:
        assert payload in text, f"{payload!r} is not shown as text anywhere"
    layers = hostile_layers()
    for layer, column in SHOWN_AS_TEXT:
        for value in layers[layer][column]:
            assert value in text, f"{layer}.{column} = {value!r} is not shown as text"
