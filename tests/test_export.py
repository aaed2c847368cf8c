"""Exports: GeoPackage, RFC 7946 GeoJSON, CSV and XLSX; reproducible and crash-safe.

Two plans are exported once per session: the real planner's plan of the Haibowan sample,
and a stand-in built in code from the sample's layers that carries what the planner does
not produce (polygons with a hole and clockwise rings, Chinese text in every kind of
column, an ``open`` trench), so that every branch of the writers is exercised.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from pandas.testing import assert_frame_equal
from shapely.geometry.polygon import orient

from geoplan import costs
from geoplan.errors import LayerError, OutputError
from geoplan.export import (
    BILL_COLUMNS,
    GEOMETRY_TYPES,
    TABLES,
    export_plan,
    export_tables,
    plan_tables,
    read_plan_layers,
    schema_markdown,
)
from geoplan.layers import Layers, read_layers
from geoplan.plan import Plan, plan
from geoplan.schema import OUTPUT_LAYERS, conform
from geoplan.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "layers" / "haibowan"
LON_RANGE = (106.7, 106.95)
LAT_RANGE = (39.55, 39.75)
PLANS = ("sample", "standin")
EXPECTED_FILES = (
    "plan.gpkg",
    *(f"geojson/{name}.geojson" for name in OUTPUT_LAYERS),
    "summary.csv",
    "bill_of_quantities.csv",
    "plan.xlsx",
)
OGR_TYPES = {
    "str": ("OFTString", "OFSTNone"),
    "int64": ("OFTInteger64", "OFSTNone"),
    "float64": ("OFTReal", "OFSTNone"),
    "bool": ("OFTInteger", "OFSTBoolean"),
}
# GeoJSON has one number type: GDAL reads a whole-number Real column back as Integer.
GEOJSON_TYPES = {
    "str": {"OFTString"},
    "int64": {"OFTInteger", "OFTInteger64"},
    "float64": {"OFTReal", "OFTInteger", "OFTInteger64"},
    "bool": {"OFTInteger"},
}


# --- plans -------------------------------------------------------------------------------


def _standin(layers: Layers) -> Plan:
    """Return a plan built by hand from the sample's layers, schema columns and types."""
    crs = layers.crs
    blocks = layers["storage_blocks"].iloc[:40].reset_index(drop=True)
    supplies = layers["supply_points"].reset_index(drop=True)
    centroids = blocks.geometry.centroid
    nearest = [int(supplies.distance(c).to_numpy().argmin()) for c in centroids]
    supply_ids = supplies["supply_id"].iloc[nearest].to_numpy()
    n_served = 34
    units = blocks["units"].astype("int64")
    boxes = gpd.GeoDataFrame(
        {
            "box_id": blocks["block_id"] + "-M1",
            "block_id": blocks["block_id"],
            "compound_id": blocks["compound_id"],
            "rooms": units,
            "positions": np.where(units <= 12, 12, 24),
            "used": units // 2,
            "reserved": np.where(units <= 12, 12, 24) - units // 2,
            "phases": np.where(units > 12, 3, 1),
            "model": np.where(units > 12, "DXB-3P-24", "DXB-1P-12"),
            "design_load_kw": units * 1.25,
            "supply_id": [s if i < n_served else "" for i, s in enumerate(supply_ids)],
            "status": blocks.get("status", pd.Series("", index=blocks.index)),
            "cost_cny": 1800.0 + units * 85.5,
        },
        geometry=centroids,
        crs=crs,
    )
    served = boxes.iloc[:n_served]
    lines = [
        shapely.LineString([supplies.geometry.iloc[n], c])
        for n, c in zip(nearest[:n_served], served.geometry, strict=True)
    ]
    lengths = np.array([g.length for g in lines])
    cables = gpd.GeoDataFrame(
        {
            "cable_id": served["supply_id"] + "/" + served["box_id"],
            "box_id": served["box_id"],
            "supply_id": served["supply_id"],
            "compound_id": served["compound_id"],
            "length_m": lengths,
            "off_corridor_m": lengths / 7.0,
            "max_cables_in_trench": np.arange(n_served) % 4 + 1,
            "design_load_kw": served["design_load_kw"],
            "phases": served["phases"],
            "cable_type": np.where(served["phases"] == 3, "YJV22-4x35", "YJV22-3x16"),
            "cross_section_mm2": np.where(served["phases"] == 3, 35.0, 16.0),
            "design_current_a": served["design_load_kw"] * 1.52,
            "ampacity_a": 120.0,
            "voltage_drop_pct": lengths / 100.0,
            "cost_cny": lengths * 68.0,
            "flags": ["" if i % 5 else "电压降超限 voltage_drop" for i in range(n_served)],
        },
        geometry=lines,
        crs=crs,
    )
    surfaces = ("soil", "lawn", "paving", "asphalt", "concrete", "open")
    trench_surface = [surfaces[i % len(surfaces)] for i in range(n_served)]
    trenches = gpd.GeoDataFrame(
        {
            "trench_id": [f"T{i:05d}" for i in range(1, n_served + 1)],
            "supply_id": served["supply_id"],
            "surface": trench_surface,
            "off_corridor": [s == "open" for s in trench_surface],
            "road_crossings": (np.arange(n_served) % 3) * 0.5,
            "n_cables": np.arange(n_served) % 4 + 1,
            "length_m": lengths,
            "cost_cny": lengths * 150.0 + (np.arange(n_served) % 3) * 0.5 * 12000.0,
        },
        geometry=lines,
        crs=crs,
    )
    wires = layers["flying_wires"].iloc[:30].reset_index(drop=True)
    removals = gpd.GeoDataFrame(
        {
            "wire_id": wires["wire_id"],
            "box_id": [boxes["box_id"].iloc[i % n_served] if i % 6 else "" for i in range(30)],
            "compound_id": wires["compound_id"],
            "hazard_score": np.linspace(0.5, 9.75, 30),
            "reasons": ["低于4.5米; crosses road" if i % 2 else "" for i in range(30)],
        },
        geometry=wires.geometry,
        crs=crs,
    )
    rest = blocks.iloc[n_served:]
    polygons = []
    for i, block in enumerate(rest.geometry):
        ring = shapely.Polygon(block.exterior)
        if i == 0:  # a courtyard: a hole, its ring clockwise here and wrong once flipped
            ring = shapely.Polygon(
                block.exterior, [shapely.affinity.scale(ring, 0.3, 0.3).exterior]
            )
        polygons.append(orient(ring, sign=-1.0))  # clockwise exterior: RFC 7946 wants CCW
    unserved = gpd.GeoDataFrame(
        {
            "block_id": rest["block_id"],
            "box_id": rest["block_id"] + "-M1",
            "compound_id": rest["compound_id"],
            "reason": ["no_path", "beyond_radius", "no_capacity"] * 2,
            "detail": ["无可用通道：请补测通道 (survey a corridor)"] * len(rest),
        },
        geometry=polygons,
        crs=crs,
    )
    compounds = layers["compounds"]
    n = len(compounds)
    summary = pd.DataFrame(
        {
            "compound_id": compounds["compound_id"],
            "name": compounds["name"],
            "status": compounds.get("status", ""),
            "households": compounds.get("households", 0),
            "applicants": np.arange(n) * 3,
            "boxes": np.arange(n) % 5,
            "positions": (np.arange(n) % 5) * 12,
            "used": np.arange(n) % 7,
            "reserved": np.arange(n) % 11,
            "energized_blocks": np.arange(n) % 2,
            "unserved_blocks": np.arange(n) % 3,
            "cable_m": np.arange(n) * 12.345678,
            "trench_m": np.arange(n) * 8.1,
            "cost_cny": np.arange(n) * 10432.17,
            "hazard_before": np.arange(n) * 1.5,
            "hazard_after": np.arange(n) * 0.25,
            "priority_rank": np.arange(n) + 1,
        }
    ).fillna({"households": 0})
    return Plan(
        meter_boxes=conform(boxes, "meter_boxes"),
        cables=conform(cables, "cables"),
        trenches=conform(trenches, "trenches"),
        removals=conform(removals, "removals"),
        unserved=conform(unserved, "unserved"),
        summary=conform(summary, "summary"),
        layers=layers,
        settings=Settings(),
        stats={},
    )


@pytest.fixture(scope="session")
def sample_layers() -> Layers:
    return read_layers(SAMPLE)


@pytest.fixture(scope="session")
def plans(sample_layers: Layers) -> dict[str, Plan]:
    return {"sample": plan(sample_layers), "standin": _standin(sample_layers)}


@pytest.fixture(scope="session")
def exported(plans: dict[str, Plan], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for name, made in plans.items():
        folders[name] = tmp_path_factory.mktemp(f"export_{name}")
        export_plan(made, folders[name])
    return folders


@pytest.fixture(params=PLANS)
def case(
    request: pytest.FixtureRequest, plans: dict[str, Plan], exported: dict[str, Path]
) -> tuple[Plan, Path]:
    return plans[request.param], exported[request.param]


def _files(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` (hidden staging folders included) by path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _assert_same_tables(
    actual: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    expected: dict[str, gpd.GeoDataFrame | pd.DataFrame],
) -> None:
    assert list(actual) == list(expected)
    for name, frame in expected.items():
        if isinstance(frame, gpd.GeoDataFrame):
            assert_geodataframe_equal(actual[name], frame, check_less_precise=False)
        else:
            assert_frame_equal(actual[name], frame)


# --- what is written -----------------------------------------------------------------------


def test_export_writes_the_documented_files_and_nothing_else(case: tuple[Plan, Path]) -> None:
    _, folder = case
    assert sorted(_files(folder)) == sorted(EXPECTED_FILES)


def test_export_returns_the_written_paths_in_format_order(
    plans: dict[str, Plan], tmp_path: Path
) -> None:
    written = export_plan(plans["standin"], tmp_path / "out")
    assert written == [tmp_path / "out" / name for name in EXPECTED_FILES]
    assert export_plan(plans["standin"], tmp_path / "csv_only", formats=["csv"]) == [
        tmp_path / "csv_only" / "summary.csv",
        tmp_path / "csv_only" / "bill_of_quantities.csv",
    ]
    assert sorted(_files(tmp_path / "csv_only")) == ["bill_of_quantities.csv", "summary.csv"]


def test_an_unknown_format_is_refused(plans: dict[str, Plan], tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown export format 'shp'"):
        export_plan(plans["standin"], tmp_path, formats=("gpkg", "shp"))
    assert not list(tmp_path.iterdir())


def test_bill_of_quantities_spec_matches_costs_module() -> None:
    assert tuple(c for c, _, _ in BILL_COLUMNS) == costs.BOQ_COLUMNS


# --- GeoPackage ----------------------------------------------------------------------------


def test_gpkg_has_every_table_with_documented_field_types(case: tuple[Plan, Path]) -> None:
    made, folder = case
    path = folder / "plan.gpkg"
    assert [str(n) for n in pyogrio.list_layers(path)[:, 0]] == list(TABLES)
    tables = plan_tables(made)
    for name, spec in TABLES.items():
        info = pyogrio.read_info(path, layer=name)
        assert list(info["fields"]) == [c for c, _, _ in spec]
        assert [(t, s) for t, s in zip(info["ogr_types"], info["ogr_subtypes"], strict=True)] == [
            OGR_TYPES[dtype] for _, dtype, _ in spec
        ]
        assert info["features"] == len(tables[name])
        if name in OUTPUT_LAYERS:
            assert pyogrio.read_info(path, layer=name)["crs"] == made.crs.to_string()
            kinds = set(tables[name].geom_type)
            assert info["geometry_type"] == (kinds.pop() if len(kinds) == 1 else "Unknown")
        else:
            assert info["geometry_type"] is None  # an attribute table, not a layer


def test_gpkg_reads_back_equal_to_the_plan(case: tuple[Plan, Path]) -> None:
    made, folder = case
    tables = read_plan_layers(folder)
    _assert_same_tables(tables, plan_tables(made))
    for name in OUTPUT_LAYERS:
        assert tables[name].crs == made.crs
        assert_frame_equal(
            pd.DataFrame(tables[name]).drop(columns="geometry"),
            pd.DataFrame(getattr(made, name)).drop(columns="geometry").reset_index(drop=True),
        )


def test_gpkg_keeps_chinese_names(plans: dict[str, Plan], exported: dict[str, Path]) -> None:
    summary = pyogrio.read_dataframe(exported["sample"] / "plan.gpkg", layer="summary")
    assert summary["name"].tolist() == plans["sample"].summary["name"].tolist()
    assert any(re.search("[\u4e00-\u9fff]", name) for name in summary["name"])


def test_read_plan_layers_reports_a_missing_plan(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"no plan\.gpkg here"):
        read_plan_layers(tmp_path)


def test_read_plan_layers_reports_a_missing_table(plans: dict[str, Plan], tmp_path: Path) -> None:
    tables = plan_tables(plans["standin"])
    pyogrio.write_dataframe(tables["cables"], tmp_path / "plan.gpkg", layer="cables")
    with pytest.raises(LayerError, match="layer meter_boxes: table missing") as caught:
        read_plan_layers(tmp_path)
    assert len(caught.value.problems) == len(TABLES) - 1


def test_reexport_from_an_existing_plan_folder(
    plans: dict[str, Plan], exported: dict[str, Path], tmp_path: Path
) -> None:
    written = export_tables(read_plan_layers(exported["sample"]), tmp_path, formats=["geojson"])
    assert len(written) == len(OUTPUT_LAYERS)
    for path in written:
        assert path.read_bytes() == (exported["sample"] / "geojson" / path.name).read_bytes()


# --- GeoJSON -------------------------------------------------------------------------------


def _coordinates(geometry: dict) -> Iterator[list[float]]:
    coords = geometry["coordinates"]
    depth = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2}
    items = [coords]
    for _ in range(depth.get(geometry["type"], 3)):
        items = [inner for item in items for inner in item]
    yield from items


def test_geojson_follows_rfc7946(case: tuple[Plan, Path]) -> None:
    made, folder = case
    for name in OUTPUT_LAYERS:
        raw = (folder / "geojson" / f"{name}.geojson").read_bytes()
        document = json.loads(raw.decode("utf-8"))
        assert document["type"] == "FeatureCollection"
        assert "crs" not in document
        assert b"\\u" not in raw  # UTF-8 as is, no escapes
        assert len(document["features"]) == len(getattr(made, name))
        for feature in document["features"]:
            for lon, lat in _coordinates(feature["geometry"]):
                assert LON_RANGE[0] < lon < LON_RANGE[1]
                assert LAT_RANGE[0] < lat < LAT_RANGE[1]
                assert round(lon, 7) == lon
                assert round(lat, 7) == lat
            assert list(feature["properties"]) == [c for c, _, _ in OUTPUT_LAYERS[name]]


def test_geojson_reads_back_as_the_plan_in_lonlat(case: tuple[Plan, Path]) -> None:
    made, folder = case
    for name, spec in OUTPUT_LAYERS.items():
        path = folder / "geojson" / f"{name}.geojson"
        info = pyogrio.read_info(path)
        assert info["crs"] == "EPSG:4326"
        assert list(info["fields"]) == [c for c, _, _ in spec]
        for (_, dtype, _), ogr_type in zip(spec, info["ogr_types"], strict=True):
            assert ogr_type in GEOJSON_TYPES[dtype]
        frame = pyogrio.read_dataframe(path)
        expected = getattr(made, name).to_crs(4326).reset_index(drop=True)
        assert len(frame) == len(expected)
        assert shapely.equals_exact(
            shapely.normalize(frame.geometry.array),
            shapely.normalize(expected.geometry.array),
            tolerance=1e-7,
        ).all()
        for column, dtype, _ in spec:
            if dtype == "float64":
                np.testing.assert_allclose(frame[column], expected[column], rtol=1e-12)
            else:
                assert frame[column].astype(dtype).tolist() == expected[column].tolist()


def test_geojson_polygons_are_counter_clockwise(exported: dict[str, Path]) -> None:
    frame = pyogrio.read_dataframe(exported["standin"] / "geojson" / "unserved.geojson")
    polygons = list(frame.geometry)
    assert polygons
    assert all(p.geom_type == "Polygon" for p in polygons)
    assert all(p.exterior.is_ccw for p in polygons)
    holes = [ring for p in polygons for ring in p.interiors]
    assert holes
    assert not any(ring.is_ccw for ring in holes)


def test_geojson_keeps_chinese_text(exported: dict[str, Path]) -> None:
    raw = (exported["standin"] / "geojson" / "unserved.geojson").read_text(encoding="utf-8")
    assert "无可用通道：请补测通道" in raw


# --- CSV and XLSX --------------------------------------------------------------------------


def test_csv_is_utf8_with_bom_and_reads_back(case: tuple[Plan, Path]) -> None:
    made, folder = case
    tables = plan_tables(made)
    for name in ("summary", "bill_of_quantities"):
        raw = (folder / f"{name}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        frame = pd.read_csv(
            folder / f"{name}.csv",
            encoding="utf-8-sig",
            dtype={c: str for c, d, _ in TABLES[name] if d == "str"},
            keep_default_na=False,
        )
        assert_frame_equal(frame, tables[name], check_dtype=False)
        assert frame.dtypes.astype(str).tolist() == [
            "object" if d == "str" else d for _, d, _ in TABLES[name]
        ]
    summary = (folder / "summary.csv").read_text(encoding="utf-8-sig")
    assert made.summary["name"].iloc[0] in summary


def test_xlsx_has_one_sheet_per_table_with_chinese_intact(case: tuple[Plan, Path]) -> None:
    made, folder = case
    tables = plan_tables(made)
    book = openpyxl.load_workbook(folder / "plan.xlsx", read_only=False)
    try:
        assert book.sheetnames == [
            "summary",
            "bill_of_quantities",
            "meter_boxes",
            "cables",
            "trenches",
            "removals",
            "unserved",
        ]
        assert book.properties.created.year == 2000
        assert book.properties.modified.year == 2000
        for name in book.sheetnames:
            sheet = book[name]
            rows = list(sheet.iter_rows(values_only=True))
            assert list(rows[0]) == [c for c, _, _ in TABLES[name]]
            assert len(rows) == len(tables[name]) + 1
            assert sheet.freeze_panes == "A2"
            assert sheet["A1"].font.b
        names = [row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)]
        assert names == tables["summary"]["name"].tolist()
        at = list(tables["cables"].columns).index("cost_cny")
        costs_cny = [row[at] for row in book["cables"].iter_rows(min_row=2, values_only=True)]
        np.testing.assert_allclose(costs_cny, tables["cables"]["cost_cny"])
    finally:
        book.close()


def test_xlsx_zip_entries_carry_a_fixed_time(exported: dict[str, Path]) -> None:
    with zipfile.ZipFile(exported["sample"] / "plan.xlsx") as archive:
        assert {info.date_time for info in archive.infolist()} == {(2000, 1, 1, 0, 0, 0)}
        assert archive.testzip() is None


# --- reproducibility -----------------------------------------------------------------------


def test_exporting_twice_gives_identical_files(
    plans: dict[str, Plan], exported: dict[str, Path], tmp_path: Path
) -> None:
    for name, made in plans.items():
        export_plan(made, tmp_path / name)
        first, again = _files(exported[name]), _files(tmp_path / name)
        assert sorted(first) == sorted(again)
        for path in first:
            if path.endswith(".gpkg"):
                continue  # content, not bytes: a GeoPackage may carry timestamps
            assert first[path] == again[path], path
        _assert_same_tables(read_plan_layers(tmp_path / name), read_plan_layers(exported[name]))


def test_exporting_over_a_previous_export_replaces_it(
    plans: dict[str, Plan], tmp_path: Path
) -> None:
    standin = plans["standin"]
    export_plan(standin, tmp_path)
    renamed = standin.summary.assign(name=standin.summary["name"] + "（新）")
    export_plan(dataclasses.replace(standin, summary=renamed), tmp_path)
    assert sorted(_files(tmp_path)) == sorted(EXPECTED_FILES)
    assert read_plan_layers(tmp_path)["summary"]["name"].str.endswith("（新）").all()


def test_an_empty_layer_keeps_its_declared_geometry_type(
    plans: dict[str, Plan], tmp_path: Path
) -> None:
    standin = plans["standin"]
    export_plan(dataclasses.replace(standin, unserved=standin.unserved.iloc[:0]), tmp_path)
    info = pyogrio.read_info(tmp_path / "plan.gpkg", layer="unserved")
    assert info["features"] == 0
    assert info["geometry_type"] == GEOMETRY_TYPES["unserved"]
    document = json.loads((tmp_path / "geojson" / "unserved.geojson").read_text("utf-8"))
    assert document["features"] == []


@pytest.mark.parametrize(
    ("layer", "declared"), [("cables", "MultiLineString"), ("unserved", "Unknown")]
)
def test_mixed_geometries_get_a_layer_type_that_holds_them(
    plans: dict[str, Plan], tmp_path: Path, layer: str, declared: str
) -> None:
    standin = plans["standin"]
    frame = getattr(standin, layer).copy()
    first = frame.geometry.iloc[0]
    frame.loc[0, "geometry"] = (
        shapely.MultiLineString([first, shapely.affinity.translate(first, 5.0, 5.0)])
        if layer == "cables"
        else first.centroid
    )
    export_plan(dataclasses.replace(standin, **{layer: frame}), tmp_path, formats=["gpkg"])
    assert pyogrio.read_info(tmp_path / "plan.gpkg", layer=layer)["geometry_type"] == declared
    back = read_plan_layers(tmp_path)[layer]
    assert shapely.equals(back.geometry.array, frame.geometry.array).all()


def test_layers_without_a_crs_are_refused(plans: dict[str, Plan], tmp_path: Path) -> None:
    tables = plan_tables(plans["standin"])
    tables["cables"] = tables["cables"].set_crs(None, allow_override=True)
    with pytest.raises(ValueError, match="share one CRS"):
        export_tables(tables, tmp_path)


# --- where it may write --------------------------------------------------------------------


def test_the_input_folder_is_refused(plans: dict[str, Plan]) -> None:
    before = _files(SAMPLE)
    with pytest.raises(OutputError, match="holds the input layers") as caught:
        export_plan(plans["sample"], SAMPLE)
    assert str(SAMPLE) in str(caught.value)
    assert "choose another output folder" in str(caught.value)
    assert _files(SAMPLE) == before


def test_a_folder_whose_geojson_subfolder_holds_the_inputs_is_refused(
    plans: dict[str, Plan], tmp_path: Path
) -> None:
    standin = plans["standin"]
    inputs = tmp_path / "survey" / "geojson"
    inputs.mkdir(parents=True)
    (inputs / "compounds.geojson").write_text("{}", encoding="utf-8")
    layers = dataclasses.replace(standin.layers, sources={"compounds": str(inputs / "x.geojson")})
    with pytest.raises(OutputError, match="holds the input layers"):
        export_plan(dataclasses.replace(standin, layers=layers), tmp_path / "survey")
    assert sorted(p.name for p in (tmp_path / "survey").iterdir()) == ["geojson"]


def test_a_subfolder_of_the_input_folder_is_allowed(plans: dict[str, Plan], tmp_path: Path) -> None:
    standin = plans["standin"]
    layers = dataclasses.replace(
        standin.layers, sources={"compounds": str(tmp_path / "compounds.geojson")}
    )
    written = export_plan(
        dataclasses.replace(standin, layers=layers), tmp_path / "plan", formats=["csv"]
    )
    assert [p.parent for p in written] == [tmp_path / "plan"] * 2


def _unwritable_folder(tmp_path: Path) -> Path:
    """Return a folder nobody may write to; as root (chmod is ignored), one under a file."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    probe = folder / "probe"
    try:
        probe.mkdir()
    except PermissionError:
        return folder
    probe.rmdir()
    folder.chmod(0o700)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    return blocker / "plan"


@pytest.mark.parametrize("where", ["read_only", "under_a_file", "is_a_file"])
def test_an_unwritable_output_folder_is_an_output_error(
    plans: dict[str, Plan], tmp_path: Path, where: str
) -> None:
    if where == "read_only":
        out_dir = _unwritable_folder(tmp_path)
    else:
        blocker = tmp_path / "a_file"
        blocker.write_text("not a folder", encoding="utf-8")
        out_dir = blocker / "plan" if where == "under_a_file" else blocker
    try:
        with pytest.raises(OutputError) as caught:
            export_plan(plans["standin"], out_dir)
        assert str(out_dir) in str(caught.value)
        assert "folder" in str(caught.value)
    finally:
        if (tmp_path / "read_only").exists():
            (tmp_path / "read_only").chmod(0o700)


def test_a_failure_while_writing_leaves_the_previous_export_and_no_temp_files(
    plans: dict[str, Plan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_plan(plans["standin"], tmp_path)
    before = _files(tmp_path)

    def fail(*_args: object) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("geoplan.export._xlsx_bytes", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_plan(plans["sample"], tmp_path)
    assert _files(tmp_path) == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


# --- crash safety: SIGKILL in the middle of an export --------------------------------------

# The child exports the tables of ``sys.argv[1]`` into ``sys.argv[2]`` and stops where
# GEOPLAN_TEST_PAUSE says, prints a line and sleeps until the test kills it.
CHILD = r"""
import os, sys, time
import geoplan.export as export

def stop(line):
    print(line, flush=True)
    time.sleep(120)

pause = os.environ["GEOPLAN_TEST_PAUSE"]
if pause == "mid_file":      # half of the XLSX written into its temporary file
    def write_half(path, data):
        with open(path, "xb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        stop(f"writing {path}")
    export._write_bytes = write_half
elif pause == "staged":      # every file complete in the staging folder, none moved yet
    export._commit = lambda staging, out_dir, names: stop(f"staged {staging}")
elif pause == "committing":  # two of the files moved onto their final names
    real_replace = os.replace
    moved = []
    def replace(source, target):
        real_replace(source, target)
        moved.append(target)
        if len(moved) == 2:
            stop(f"moved {moved}")
    os.replace = replace
tables = export.read_plan_layers(sys.argv[1])
export.export_tables(tables, sys.argv[2])
print("finished", flush=True)
"""


def _run_until_paused(source: Path, target: Path, pause: str) -> str:
    """Run the child until it reports its pause, then SIGKILL it; return its line."""
    env = {**os.environ, "GEOPLAN_TEST_PAUSE": pause}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(source), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        line = child.stdout.readline() if ready else ""
        if not line:
            child.kill()
            _, stderr = child.communicate()
            pytest.fail(f"child did not pause ({pause}): {stderr}")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return line


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select on pipes are POSIX")
@pytest.mark.parametrize("pause", ["mid_file", "staged", "committing"])
def test_a_killed_export_leaves_every_file_old_or_new_and_complete(
    plans: dict[str, Plan], tmp_path: Path, pause: str
) -> None:
    standin = plans["standin"]
    target, source = tmp_path / "target", tmp_path / "source"
    export_plan(standin, target)
    old = _files(target)
    renamed = standin.summary.assign(name=standin.summary["name"] + "（新）")
    export_plan(dataclasses.replace(standin, summary=renamed), source)
    new = _files(source)

    line = _run_until_paused(source, target, pause)
    assert line.startswith(
        {"mid_file": "writing", "staged": "staged", "committing": "moved"}[pause]
    )

    after = _files(target)
    visible = {path: data for path, data in after.items() if not path.startswith(".")}
    staging = {path.split("/")[0] for path in after if path.startswith(".")}
    assert sorted(visible) == sorted(EXPECTED_FILES)  # no temp file under a final name
    assert all(re.fullmatch(r"\.geoplan-export-\d+-\w+\.tmp", name) for name in staging)
    changed = [path for path in visible if visible[path] != old[path]]
    if pause == "committing":
        assert changed  # some files are the new export's ...
    else:
        assert not changed  # ... else every file is still the previous export's
    for path in changed:
        if path.endswith(".gpkg"):
            _assert_same_tables(read_plan_layers(target), read_plan_layers(source))
        else:
            assert visible[path] == new[path], path

    # The next export completes and clears what the killed one left behind.
    export_plan(standin, target)
    assert _files(target) == old | {"plan.gpkg": _files(target)["plan.gpkg"]}
    assert sorted(_files(target)) == sorted(EXPECTED_FILES)


# --- documentation -------------------------------------------------------------------------


def test_docs_schema_md_is_generated_from_the_schema() -> None:
    committed = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    assert committed == schema_markdown(), (
        "docs/schema.md is stale; regenerate it: python -c 'from geoplan.export import "
        'schema_markdown as s; print(s(), end="")\' > docs/schema.md'
    )


def test_schema_markdown_documents_every_column_and_the_crs() -> None:
    text = schema_markdown()
    for name, spec in TABLES.items():
        assert f"### {name}" in text
        for column, dtype, description in spec:
            assert f"| {column} |" in text
            assert description.replace("<", "\\<") in text
            assert dtype in text
    assert "EPSG:4326" in text
    assert "EPSG:32648" in text
