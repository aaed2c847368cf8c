"""Tests of the synthetic Haibowan sample district and its committed copy."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geoplan.sample import DEFAULT_SEED, LAYER_COLUMNS, make_sample, write_sample

SAMPLE_DIR = Path(__file__).parents[1] / "layers" / "haibowan"
GEOMETRY_TYPES = {
    "compounds": "Polygon",
    "buildings": "Polygon",
    "storage_blocks": "Polygon",
    "supply_points": "Point",
    "feeders": "LineString",
    "corridors": "LineString",
    "flying_wires": "LineString",
    "obstacles": "Polygon",
}


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    """The committed sample, read back with pyogrio."""
    return {
        name: gpd.read_file(SAMPLE_DIR / f"{name}.geojson", engine="pyogrio")
        for name in LAYER_COLUMNS
    }


def _read_bytes(paths: list[Path]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths}


def test_committed_files_match_the_generator(tmp_path: Path) -> None:
    written = _read_bytes(write_sample(tmp_path / "sample"))
    committed = {p.name: p.read_bytes() for p in SAMPLE_DIR.glob("*.geojson")}
    assert sorted(written) == sorted(committed) == sorted(f"{n}.geojson" for n in LAYER_COLUMNS)
    for name, data in written.items():
        assert data == committed[name], f"{name} differs: run `geoplan sample layers/haibowan`"


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    first = _read_bytes(write_sample(tmp_path / "a", seed=7))
    second = _read_bytes(write_sample(tmp_path / "b", seed=7))
    assert first == second
    other = make_sample(seed=8)
    again = make_sample(seed=7)
    assert not other["corridors"].geometry.equals(again["corridors"].geometry)
    assert DEFAULT_SEED == 20261126


def test_files_are_rfc7946_utf8() -> None:
    text = (SAMPLE_DIR / "compounds.geojson").read_text(encoding="utf-8")
    assert '"crs"' not in text
    assert "团结小区" in text
    assert text.endswith("]}\n")
    wires = (SAMPLE_DIR / "flying_wires.geojson").read_text(encoding="utf-8")
    assert '"height_m":null' in wires
    assert '"insulated":false' in wires


def test_columns_and_crs(layers: dict[str, gpd.GeoDataFrame]) -> None:
    for name, frame in layers.items():
        assert frame.crs is not None
        assert frame.crs.to_epsg() == 4326, name
        assert list(frame.columns[:-1]) == list(LAYER_COLUMNS[name]), name


def test_story_holds(layers: dict[str, gpd.GeoDataFrame]) -> None:
    compounds = layers["compounds"].set_index("name")
    blocks = layers["storage_blocks"]
    wires = layers["flying_wires"]
    assert len(compounds) >= 80
    assert compounds.index.is_unique
    open_ids = set(compounds.loc[compounds.status != "energized", "compound_id"])
    assert blocks.loc[blocks.compound_id.isin(open_ids), "applicants"].sum() >= 700
    assert (blocks.applicants <= blocks.units).all()
    assert blocks.units.between(6, 40).all()
    assert blocks.units.sum() > blocks.applicants.sum()

    def applicants(name: str) -> int:
        return int(
            blocks.loc[blocks.compound_id == compounds.at[name, "compound_id"]].applicants.sum()
        )

    court = compounds.loc["法院住宅小区"]
    assert court.status == "energized"
    assert applicants("法院住宅小区") == 11
    court_wires = wires[wires.compound_id == court.compound_id]
    assert len(court_wires) > 0
    assert (court_wires.status == "removed").all()
    assert (blocks[blocks.compound_id == court.compound_id].status == "energized").all()
    assert (wires[wires.compound_id != court.compound_id].status == "present").all()

    pair = compounds.loc[["园林楼", "机械楼"]]
    assert pair.households.sum() == 120
    assert (pair.status == "planned").all()
    pair_blocks = blocks[blocks.compound_id.isin(pair.compound_id)]
    assert (pair_blocks.status == "planned").all()
    buildings = layers["buildings"]
    assert buildings.compound_id.isin(pair.compound_id).sum() == 2

    assert compounds.at["建新小区", "households"] == 384
    assert compounds.at["建新小区", "status"] == "surveyed"
    assert compounds.at["团结小区", "status"] == "under_construction"


def test_households_and_wires_are_consistent(layers: dict[str, gpd.GeoDataFrame]) -> None:
    compounds = layers["compounds"]
    per_compound = layers["buildings"].groupby("compound_id").households.sum()
    assert (compounds.set_index("compound_id").households == per_compound).all()
    wires = layers["flying_wires"]
    assert wires.households.between(1, 4).all()
    per_block = wires.groupby("to_block_id").households.sum()
    applicants = layers["storage_blocks"].set_index("block_id").applicants
    assert (per_block == applicants[per_block.index]).all()
    assert wires.height_m.isna().any()
    assert (wires.height_m < 2.5).any()
    assert (wires.to_crs(32648).length > 40).any()


def test_supply_points(layers: dict[str, gpd.GeoDataFrame]) -> None:
    supply = layers["supply_points"]
    assert set(supply.kind) == {"transformer", "branch_box", "pole"}
    assert (supply.load_kva < supply.capacity_kva).all()
    transformers = supply[supply.kind == "transformer"]
    assert set(transformers.capacity_kva) <= {200.0, 250.0, 315.0, 400.0, 500.0, 630.0}
    assert (transformers.load_kva / transformers.capacity_kva > 0.9).sum() >= 2
    assert (transformers.max_circuits == 8).all()
    assert set(supply[supply.kind == "branch_box"].max_circuits) <= {4, 6}
    assert set(layers["feeders"].kind) == {"cable", "overhead"}


def test_supply_within_reach_except_the_outlying_compound(
    layers: dict[str, gpd.GeoDataFrame],
) -> None:
    supply = layers["supply_points"].to_crs(32648).geometry.union_all()
    blocks = layers["storage_blocks"].to_crs(32648)
    distance_m = blocks.geometry.distance(supply)
    outlying = layers["compounds"].set_index("name").at["千里山矿工新村", "compound_id"]
    far = blocks.compound_id == outlying
    assert 1 <= far.sum() <= 2
    assert (distance_m[far] > 400.0).all()
    assert (distance_m[~far] < 250.0).all()


def test_ids_unique_and_foreign_keys_resolve(layers: dict[str, gpd.GeoDataFrame]) -> None:
    for name, frame in layers.items():
        id_column = LAYER_COLUMNS[name][0]
        assert frame[id_column].is_unique, name
        assert list(frame[id_column]) == sorted(frame[id_column]), name
    compound_ids = set(layers["compounds"].compound_id)
    for name in ("buildings", "storage_blocks", "flying_wires"):
        assert set(layers[name].compound_id) <= compound_ids, name
    wires = layers["flying_wires"]
    buildings = layers["buildings"].set_index("building_id")
    blocks = layers["storage_blocks"].set_index("block_id")
    assert set(wires.from_building_id) <= set(buildings.index)
    assert set(wires.to_block_id) <= set(blocks.index)
    assert (
        buildings.loc[wires.from_building_id, "compound_id"].to_numpy() == wires.compound_id
    ).all()
    assert (blocks.loc[wires.to_block_id, "compound_id"].to_numpy() == wires.compound_id).all()
    assert set(layers["feeders"].supply_id) <= set(layers["supply_points"].supply_id)


def test_geometry_single_part_valid_and_in_haibowan(layers: dict[str, gpd.GeoDataFrame]) -> None:
    for name, frame in layers.items():
        assert (frame.geom_type == GEOMETRY_TYPES[name]).all(), name
        assert frame.geometry.is_valid.all(), name
        assert not frame.geometry.is_empty.any(), name
        lon_min, lat_min, lon_max, lat_max = frame.total_bounds
        assert 106.7 <= lon_min <= lon_max <= 106.95, name
        assert 39.55 <= lat_min <= lat_max <= 39.75, name


def test_some_corridors_cross_without_a_shared_vertex(layers: dict[str, gpd.GeoDataFrame]) -> None:
    corridors = layers["corridors"].geometry.to_numpy()
    left, right = shapely.STRtree(corridors).query(corridors, predicate="crosses")
    unnoded = 0
    for i, j in zip(left[left < right], right[left < right], strict=True):
        point = shapely.intersection(corridors[i], corridors[j])
        vertices = shapely.get_coordinates([corridors[i], corridors[j]])
        if point.geom_type == "Point" and not (vertices == [point.x, point.y]).all(axis=1).any():
            unnoded += 1
    assert unnoded >= 1


def test_corridors_keep_out_of_buildings_blocks_and_obstacles(
    layers: dict[str, gpd.GeoDataFrame],
) -> None:
    corridors = layers["corridors"].to_crs(32648).geometry.to_numpy()
    tree = shapely.STRtree(corridors)
    for name in ("buildings", "storage_blocks", "obstacles"):
        interiors = layers[name].to_crs(32648).geometry.buffer(-0.2).to_numpy()
        hits = tree.query(interiors, predicate="intersects")
        assert hits.shape[1] == 0, f"corridors run through {name}: {np.unique(hits[0])}"
