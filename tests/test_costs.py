"""Box and trench costs, the bill of quantities and costs per compound."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from geoplan.catalogue import load_catalogue
from geoplan.costs import (
    bill_of_quantities,
    box_cost_cny,
    costs_by_compound,
    trench_cost_cny,
)
from geoplan.settings import load_settings

CATALOGUE = load_catalogue()
CRS = "EPSG:4545"


def test_box_cost_by_hand() -> None:
    assert box_cost_cny(12, catalogue=CATALOGUE) == pytest.approx(1200 + 12 * 350)
    np.testing.assert_allclose(box_cost_cny([1, 4], catalogue=CATALOGUE), [1550, 2600])


def test_trench_cost_by_hand() -> None:
    # 30 m under paving with one road crossing: 30 x 260 + 4500
    assert trench_cost_cny(30.0, "paving", 1, catalogue=CATALOGUE) == pytest.approx(12_300)
    # open ground off the corridors: 10 x 180
    assert trench_cost_cny(10.0, "open", 0, catalogue=CATALOGUE) == pytest.approx(1_800)


def test_trench_cost_is_vectorised() -> None:
    length = pd.Series([10.0, 20.0, 5.0], index=[7, 8, 9])
    surface = pd.Series(["soil", "asphalt", "soil"], index=[7, 8, 9])
    crossings = pd.Series([0, 2, 0], index=[7, 8, 9])
    cost = trench_cost_cny(length, surface, crossings, catalogue=CATALOGUE)
    assert isinstance(cost, pd.Series)
    assert list(cost.index) == [7, 8, 9]
    np.testing.assert_allclose(cost, [1200, 20 * 380 + 2 * 4500, 600])
    # one surface for all sections
    np.testing.assert_allclose(
        trench_cost_cny(np.array([1.0, 2.0]), "lawn", np.array([0, 0]), catalogue=CATALOGUE),
        [150, 300],
    )


def test_trench_cost_refuses_an_unknown_surface() -> None:
    with pytest.raises(ValueError, match="gravel"):
        trench_cost_cny([1.0], ["gravel"], [0], catalogue=CATALOGUE)


def test_trench_cost_follows_overrides() -> None:
    catalogue = load_settings(overrides={"trench": {"road_crossing_cny": 1000.0}}).catalogue
    assert trench_cost_cny(0.0, "soil", 3, catalogue=catalogue) == pytest.approx(3000)


@pytest.fixture
def plan_frames() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    boxes = gpd.GeoDataFrame(
        {
            "box_id": ["B1-M1", "B2-M1", "B3-M1", "B4-M1"],
            "compound_id": ["C1", "C1", "C2", "C2"],
            "positions": [12, 12, 4, 8],
            "model": ["DXB-1P-12", "DXB-1P-12", "DXB-3P-4", "DXB-1P-8"],
            "status": ["planned", "planned", "planned", "energized"],
        },
        geometry=[Point(0, 0), Point(10, 0), Point(20, 0), Point(30, 0)],
        crs=CRS,
    )
    boxes["cost_cny"] = box_cost_cny(boxes["positions"], catalogue=CATALOGUE)
    cables = gpd.GeoDataFrame(
        {
            "cable_id": ["S1/B1-M1", "S1/B2-M1", "S1/B3-M1"],
            "box_id": ["B1-M1", "B2-M1", "B3-M1"],
            "supply_id": ["S1", "S1", "S1"],
            "compound_id": ["C1", "C1", "C2"],
            "cable_type": ["YJLV22-4x25", "YJLV22-4x25", "YJLV22-4x95"],
            "length_m": [100.0, 50.0, 200.0],
        },
        geometry=[LineString([(0, 0), (1, 1)])] * 3,
        crs=CRS,
    )
    cables["cost_cny"] = cables["length_m"] * cables["cable_type"].map(
        {"YJLV22-4x25": 34.0, "YJLV22-4x95": 75.0}
    )
    trenches = gpd.GeoDataFrame(
        {
            "trench_id": ["T1", "T2", "T3"],
            "supply_id": ["S1", "S1", "S1"],
            "surface": ["asphalt", "soil", "open"],
            "road_crossings": [1, 0, 0],
            "n_cables": [3, 2, 1],
            "length_m": [40.0, 30.0, 20.0],
        },
        geometry=[LineString([(0, 0), (1, 1)])] * 3,
        crs=CRS,
    )
    trenches["cost_cny"] = trench_cost_cny(
        trenches["length_m"], trenches["surface"], trenches["road_crossings"], catalogue=CATALOGUE
    )
    links = pd.DataFrame(
        {
            "trench_id": ["T1", "T1", "T1", "T2", "T2", "T3"],
            "cable_id": ["S1/B1-M1", "S1/B2-M1", "S1/B3-M1", "S1/B1-M1", "S1/B2-M1", "S1/B3-M1"],
        }
    )
    return boxes, cables, trenches, links


def test_bill_of_quantities(plan_frames: tuple) -> None:
    boxes, cables, trenches, _ = plan_frames
    before = [f.copy() for f in (boxes, cables, trenches)]
    bill = bill_of_quantities(boxes, cables, trenches, catalogue=CATALOGUE)
    for frame, copy in zip((boxes, cables, trenches), before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)
    assert list(bill.columns) == [
        "item_kind",
        "item",
        "unit",
        "quantity",
        "unit_cost_cny",
        "cost_cny",
    ]
    rows = {(r.item_kind, r.item): r for r in bill.itertuples()}
    assert list(bill["item_kind"]) == ["meter_box"] * 2 + ["cable"] * 2 + ["trench"] * 3 + [
        "road_crossing"
    ]
    # the energized box exists already: not in the bill
    assert ("meter_box", "DXB-1P-8") not in rows
    box = rows["meter_box", "DXB-1P-12"]
    assert (box.unit, box.quantity, box.unit_cost_cny) == ("pcs", 2, 1200 + 12 * 350)
    cable = rows["cable", "YJLV22-4x25"]
    assert (cable.unit, cable.quantity, cable.unit_cost_cny) == ("m", 150, 34)
    asphalt = rows["trench", "asphalt"]
    assert (asphalt.quantity, asphalt.unit_cost_cny, asphalt.cost_cny) == (40, 380, 40 * 380)
    assert rows["trench", "open"].unit_cost_cny == 180
    crossing = bill[bill["item_kind"] == "road_crossing"].iloc[0]
    assert (crossing["unit"], crossing["quantity"], crossing["cost_cny"]) == ("pcs", 1, 4500)
    planned_boxes = boxes.loc[boxes["status"] != "energized", "cost_cny"].sum()
    total = planned_boxes + cables["cost_cny"].sum() + trenches["cost_cny"].sum()
    assert bill["cost_cny"].sum() == pytest.approx(total)


def test_bill_of_quantities_is_deterministic(plan_frames: tuple) -> None:
    boxes, cables, trenches, _ = plan_frames
    first = bill_of_quantities(boxes, cables, trenches)
    shuffled = bill_of_quantities(boxes.iloc[::-1], cables.iloc[::-1], trenches.iloc[::-1])
    pd.testing.assert_frame_equal(first, shuffled)


def test_bill_of_quantities_of_an_empty_plan(plan_frames: tuple) -> None:
    boxes, cables, trenches, _ = plan_frames
    bill = bill_of_quantities(boxes.iloc[:0], cables.iloc[:0], trenches.iloc[:0])
    assert bill.empty
    assert "unit_cost_cny" in bill.columns


def test_costs_by_compound_with_the_trench_cables(plan_frames: tuple) -> None:
    boxes, cables, trenches, links = plan_frames
    costs = costs_by_compound(boxes, cables, trenches, trench_cables=links).set_index("compound_id")
    assert list(costs.columns) == ["box_cny", "cable_cny", "trench_cny", "cost_cny"]
    t1, t2, t3 = trenches["cost_cny"]
    # T1 carries two cables of C1 and one of C2; T2 only C1; T3 only C2
    assert costs.loc["C1", "trench_cny"] == pytest.approx(t1 * 2 / 3 + t2)
    assert costs.loc["C2", "trench_cny"] == pytest.approx(t1 / 3 + t3)
    assert costs.loc["C1", "box_cny"] == pytest.approx(2 * 5400)
    assert costs.loc["C2", "box_cny"] == pytest.approx(1200 + 4 * 350)  # B4 is energized
    assert costs.loc["C1", "cable_cny"] == pytest.approx(150 * 34)
    assert (costs["cost_cny"] == costs[["box_cny", "cable_cny", "trench_cny"]].sum(axis=1)).all()


def test_costs_by_compound_by_supply_share(plan_frames: tuple) -> None:
    boxes, cables, trenches, _ = plan_frames
    costs = costs_by_compound(boxes, cables, trenches).set_index("compound_id")
    # without the links every trench of S1 is split 2:1 like S1's cables
    total = trenches["cost_cny"].sum()
    assert costs.loc["C1", "trench_cny"] == pytest.approx(total * 2 / 3)
    assert costs.loc["C2", "trench_cny"] == pytest.approx(total / 3)


def test_costs_by_compound_keeps_the_totals(plan_frames: tuple) -> None:
    boxes, cables, trenches, links = plan_frames
    orphan = trenches.iloc[:1].assign(trench_id="T9", supply_id="S9")
    trenches = pd.concat([trenches, orphan], ignore_index=True)
    costs = costs_by_compound(boxes, cables, trenches, trench_cables=links)
    assert list(costs["compound_id"]) == ["", "C1", "C2"]
    bill = bill_of_quantities(boxes, cables, trenches)
    assert costs["cost_cny"].sum() == pytest.approx(bill["cost_cny"].sum())
