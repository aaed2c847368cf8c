"""The planner on small hand-built layer sets with known answers (EPSG:32648 metres)."""

from __future__ import annotations

import gc
import importlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from geoplan.errors import LayerError, Problem
from geoplan.layers import Layers, read_layers
from geoplan.plan import Plan, plan
from geoplan.settings import load_settings

X0, Y0 = 600_000.0, 4_390_000.0
CRS = "EPSG:32648"


def at(x: float, y: float) -> tuple[float, float]:
    return (X0 + x, Y0 + y)


def block(block_id: str, x: float, y: float, rooms: int = 4, **extra: object) -> dict:
    """A row of ``rooms`` storage rooms (3 m x 4 m each) with its lower-left corner at x, y."""
    return {
        "block_id": block_id,
        "compound_id": "C1",
        "units": rooms,
        "applicants": extra.pop("applicants", rooms),
        "status": extra.pop("status", "applied"),
        "geometry": box(*at(x, y), *at(x + 3 * rooms, y + 4)),
    }


def supply(supply_id: str, x: float, y: float, capacity_kva: float = 400.0, **extra) -> dict:
    return {
        "supply_id": supply_id,
        "kind": extra.pop("kind", "transformer"),
        "capacity_kva": capacity_kva,
        "load_kva": extra.pop("load_kva", 0.0),
        "max_circuits": extra.pop("max_circuits", 8),
        "geometry": Point(at(x, y)),
    }


def corridor(corridor_id: str, *xy: tuple[float, float], surface: str = "paving", **extra) -> dict:
    return {
        "corridor_id": corridor_id,
        "surface": surface,
        "kind": extra.pop("kind", "walkway"),
        "allowed": extra.pop("allowed", True),
        "geometry": LineString([at(x, y) for x, y in xy]),
    }


def make_layers(
    folder: Path,
    *,
    blocks: list[dict],
    supplies: list[dict],
    corridors: list[dict] = (),
    buildings: list[dict] = (),
    obstacles: list[dict] = (),
    area_class: str = "B",
) -> Layers:
    """Write a layer set into one GeoPackage and read it back through the contract."""
    path = folder / "layers.gpkg"
    compound = gpd.GeoDataFrame(
        [{"compound_id": "C1", "name": "测试小区", "area_class": area_class}],
        geometry=[box(*at(-1000, -1000), *at(1000, 1000))],
        crs=CRS,
    )
    compound.to_file(path, layer="compounds")
    gpd.GeoDataFrame(blocks, crs=CRS).to_file(path, layer="storage_blocks")
    gpd.GeoDataFrame(supplies, crs=CRS).to_file(path, layer="supply_points")
    if corridors:
        gpd.GeoDataFrame(list(corridors), crs=CRS).to_file(path, layer="corridors")
    if buildings:
        gpd.GeoDataFrame(list(buildings), crs=CRS).to_file(path, layer="buildings")
    if obstacles:
        gpd.GeoDataFrame(list(obstacles), crs=CRS).to_file(path, layer="obstacles")
    return read_layers(path, settings=load_settings(options={"crs": CRS}))


def served_by(result: Plan) -> dict[str, str]:
    return dict(zip(result.meter_boxes["box_id"], result.meter_boxes["supply_id"], strict=True))


def test_the_cheapest_supply_is_chosen(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[block("S1", 100, 2)],
        supplies=[supply("T1", 0, 0), supply("T2", 230, 0)],
        corridors=[corridor("K1", (0, 0), (230, 0))],
    )
    result = plan(layers)
    assert served_by(result) == {"S1-M1": "T1"}
    assert result.unserved.empty


def test_a_full_supply_forces_the_next_one(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[block("S1", 100, 2)],
        supplies=[supply("T1", 0, 0, capacity_kva=10.0, load_kva=5.0), supply("T2", 230, 0)],
        corridors=[corridor("K1", (0, 0), (230, 0))],
    )
    assert served_by(plan(layers)) == {"S1-M1": "T2"}


def test_assignment_is_exact_not_nearest_first(tmp_path: Path) -> None:
    # A is a little nearer T1 than T2; B is much nearer T1. Each supply has one circuit.
    # Nearest-first gives A->T1, B->T2 (long); the optimum is B->T1, A->T2.
    layers = make_layers(
        tmp_path,
        blocks=[block("A", 95, 2), block("B", 20, 2)],
        supplies=[supply("T1", 0, 0, max_circuits=1), supply("T2", 220, 0, max_circuits=1)],
        corridors=[corridor("K1", (0, 0), (220, 0))],
    )
    result = plan(layers)
    assert served_by(result) == {"A-M1": "T2", "B-M1": "T1"}
    nearest_first_m = (95 + 6) + (220 - 26)
    assert result.cables["length_m"].sum() < nearest_first_m


def test_no_circuit_and_no_capacity_are_reported(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[block("A", 40, 2), block("B", 60, 2), block("C", 400, 2)],
        supplies=[
            supply("T1", 0, 0, max_circuits=1),
            supply("T2", 460, 0, capacity_kva=10.0, load_kva=8.0),
        ],
        corridors=[corridor("K1", (0, 0), (200, 0)), corridor("K2", (380, 0), (460, 0))],
    )
    result = plan(layers)
    reasons = dict(zip(result.unserved["box_id"], result.unserved["reason"], strict=True))
    assert len(result.cables) == 1
    assert sorted(reasons.values()) == ["no_capacity", "no_circuit"]
    assert reasons["C-M1"] == "no_capacity"
    assert all(result.unserved["detail"] != "")


PIPE_ZONE = {  # a gas-pipe zone cutting the corridor and the land 50-60 m west of x = 0
    "obstacle_id": "O1",
    "kind": "gas_pipe_zone",
    "geometry": box(*at(-60, -900), *at(-50, 900)),
}


def unserved_reasons(result: Plan) -> dict[str, str]:
    return dict(zip(result.unserved["box_id"], result.unserved["reason"], strict=True))


def test_beyond_radius_and_cut_off_by_an_obstacle(tmp_path: Path) -> None:
    # Radius of area class A is 150 m; block F lies 300 m along the corridor.
    # Block G sits behind a gas-pipe zone that cuts its corridor and the land around it.
    layers = make_layers(
        tmp_path,
        blocks=[block("F", 300, 2), block("G", -100, 2)],
        supplies=[supply("T1", 0, 0)],
        corridors=[corridor("K1", (0, 0), (320, 0)), corridor("K2", (0, 0), (-120, 0))],
        obstacles=[PIPE_ZONE],
        area_class="A",
    )
    reasons = unserved_reasons(plan(layers))
    assert reasons == {"F-M1": "beyond_radius", "G-M1": "no_path"}


def test_reasons_depend_only_on_supplies_within_the_radius(tmp_path: Path) -> None:
    # Radius 150 m. G is walled off from T1, 100 m away, and joined by 300 m of corridor
    # to T2: the supply that could feed it is cut off, so no_path. H is cut off from
    # everything, but no supply stands within 150 m of it: beyond_radius. Each is what a
    # planning area holding only the supplies within the radius says.
    layers = make_layers(
        tmp_path,
        blocks=[block("G", -100, 2), block("H", 650, 2)],
        supplies=[supply("T1", 0, 0), supply("T2", -400, 0)],
        corridors=[corridor("K1", (-420, 0), (100, 0)), corridor("K2", (640, 0), (700, 0))],
        obstacles=[PIPE_ZONE],
        area_class="A",
    )
    reasons = unserved_reasons(plan(layers))
    assert reasons == {"G-M1": "no_path", "H-M1": "beyond_radius"}


def test_cable_runs_continuously_from_its_supply_to_its_box(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[block("S1", 50, 30)],
        supplies=[supply("T1", 0, -5)],
        corridors=[corridor("K1", (0, 0), (100, 0)), corridor("K2", (56, 0), (56, 25))],
    )
    result = plan(layers)
    cable = result.cables.geometry.iloc[0]
    box_point = result.meter_boxes.geometry.iloc[0]
    supply_point = layers["supply_points"].geometry.iloc[0]
    assert isinstance(cable, LineString)
    assert Point(cable.coords[0]).distance(supply_point) < 1e-6
    assert Point(cable.coords[-1]).distance(box_point) < 1e-6
    assert result.cables["length_m"].iloc[0] == pytest.approx(cable.length)


def test_crossing_corridors_without_a_shared_vertex_are_noded(tmp_path: Path) -> None:
    # Two straight corridors cross at (50, 0) with no vertex there.
    layers = make_layers(
        tmp_path,
        blocks=[block("S1", 52, 60)],
        supplies=[supply("T1", 0, 0)],
        corridors=[corridor("K1", (0, 0), (100, 0)), corridor("K2", (50, -50), (50, 58))],
    )
    result = plan(layers)
    assert served_by(result) == {"S1-M1": "T1"}
    assert result.cables["off_corridor_m"].iloc[0] < 5
    assert result.cables["length_m"].iloc[0] == pytest.approx(50 + 58, abs=3)


def test_without_corridors_the_route_goes_around_buildings(tmp_path: Path) -> None:
    building = box(*at(20, -30), *at(40, 30))
    layers = make_layers(
        tmp_path,
        blocks=[block("S1", 60, -2)],
        supplies=[supply("T1", 0, 0)],
        buildings=[
            {"building_id": "B1", "compound_id": "C1", "households": 24, "geometry": building}
        ],
    )
    result = plan(layers)
    assert served_by(result) == {"S1-M1": "T1"}
    cable = result.cables.geometry.iloc[0]
    interior = building.buffer(-0.01)
    assert shapely.intersection(cable, interior).length == 0
    assert (result.trenches["off_corridor"]).all()
    assert result.cables["off_corridor_m"].iloc[0] == pytest.approx(
        result.cables["length_m"].iloc[0]
    )


def test_cables_of_one_supply_share_trenches(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[block("A", 40, 3), block("B", 80, 3), block("C", 120, 3)],
        supplies=[supply("T1", 0, 0)],
        corridors=[corridor("K1", (0, 0), (160, 0))],
    )
    result = plan(layers)
    assert len(result.cables) == 3
    trench_m = result.trenches["length_m"].sum()
    assert trench_m < result.cables["length_m"].sum()
    assert result.trenches["n_cables"].max() == 3
    assert result.stats["trench_saving_pct"] > 0


def test_energized_blocks_are_done_and_not_planned(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[block("A", 40, 3, status="energized"), block("B", 80, 3)],
        supplies=[supply("T1", 0, 0)],
        corridors=[corridor("K1", (0, 0), (160, 0))],
    )
    result = plan(layers)
    assert list(result.meter_boxes["block_id"]) == ["B"]
    assert result.summary["energized_blocks"].iloc[0] == 1


def test_boxes_are_sized_and_long_blocks_split(tmp_path: Path) -> None:
    layers = make_layers(
        tmp_path,
        blocks=[
            block("A", 0, 5, rooms=7, applicants=5),
            block("L", 0, 20, rooms=36, applicants=30),
        ],
        supplies=[supply("T1", -10, 0)],
        corridors=[corridor("K1", (-10, 0), (120, 0))],
    )
    boxes = plan(layers).meter_boxes.set_index("box_id")
    assert boxes.loc["A-M1", ["positions", "used", "reserved"]].tolist() == [8, 5, 3]
    long_boxes = boxes[boxes["block_id"] == "L"]
    assert len(long_boxes) >= 2
    assert long_boxes["rooms"].sum() == 36
    assert long_boxes["used"].sum() == 30
    assert (long_boxes["positions"] >= long_boxes["rooms"]).all()
    # each box of the long block stands near its own part of the row
    xs = sorted(long_boxes.geometry.x - X0)
    assert xs[-1] - xs[0] > 40


def test_a_corridor_marked_no_in_text_carries_neither_box_nor_cable(tmp_path: Path) -> None:
    """``allowed`` read as text (no, or empty): the boxes and the graph read it alike.

    The block lies between a corridor marked "no" just south of it and one left empty
    (usable) to the north: its box faces the north one, and the cable runs along it.
    """
    layers = make_layers(
        tmp_path,
        blocks=[block("S1", 40, 10)],
        supplies=[supply("T1", 0, 30)],
        corridors=[
            corridor("K1", (0, 5), (100, 5), allowed="no"),
            corridor("K2", (0, 30), (100, 30), allowed=None),
        ],
    )
    assert layers["corridors"]["allowed"].tolist() == ["no", None]
    result = plan(layers)
    box_point = result.meter_boxes.geometry.iloc[0]
    top = shapely.get_coordinates(layers["storage_blocks"].geometry)[:, 1].max()
    assert box_point.y > top  # on the block's north side, towards K2
    assert served_by(result) == {"S1-M1": "T1"}
    south = shapely.LineString([at(0, 5), at(100, 5)])
    assert result.cables.geometry.iloc[0].distance(south) > 4


def test_plan_pauses_the_cyclic_collector_and_leaves_it_as_it_was(
    sample_layers: Layers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector would go over a city's millions of geometries again and again, and
    numpy's arrays would wait for huge pages (geoplan._memory): both are off meanwhile."""
    huge_pages = np._core.multiarray._get_madvise_hugepage
    plan_module = importlib.import_module("geoplan.plan")
    real = plan_module.build_arrays
    seen: list[tuple[bool, bool]] = []

    def watched(*args: object, **kwargs: object) -> object:
        seen.append((gc.isenabled(), huge_pages()))
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_module, "build_arrays", watched)
    assert gc.isenabled()
    was = huge_pages()
    plan(sample_layers)
    assert seen == [(False, False)]
    assert gc.isenabled()
    assert huge_pages() == was

    def fails(*_args: object, **_kwargs: object) -> None:
        raise LayerError(Problem("cannot be joined", layer="corridors", feature_id="K1"))

    monkeypatch.setattr(plan_module, "build_arrays", fails)
    with pytest.raises(LayerError):
        plan(sample_layers)
    assert gc.isenabled()
    assert huge_pages() == was
    gc.disable()
    try:
        with pytest.raises(LayerError):
            plan(sample_layers)
        assert not gc.isenabled()  # left off, as it was
    finally:
        gc.enable()
