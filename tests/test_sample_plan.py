"""The planner on the shipped Haibowan sample district: the plan's invariants hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import shapely
from conftest import SAMPLE_DIR

from geoplan.layers import Layers
from geoplan.plan import Plan


def test_every_block_to_plan_is_served_or_explained(sample_layers: Layers, sample_plan: Plan):
    blocks = sample_layers["storage_blocks"]
    to_plan = set(blocks.loc[blocks["status"] != "energized", "block_id"])
    boxes = sample_plan.meter_boxes
    assert set(boxes["block_id"]) == to_plan
    served = set(sample_plan.cables["box_id"])
    unserved = sample_plan.unserved.set_index("box_id")
    assert served.isdisjoint(unserved.index)
    assert served | set(unserved.index) == set(boxes["box_id"])
    assert (unserved["reason"] != "").all()
    assert (unserved["detail"] != "").all()
    # the outlying compound is out of any supply's reach
    assert (unserved["reason"] == "beyond_radius").any()


def test_boxes_hold_their_rooms(sample_plan: Plan):
    boxes = sample_plan.meter_boxes
    assert (boxes["positions"] >= boxes["rooms"]).all()
    assert (boxes["used"] + boxes["reserved"] == boxes["positions"]).all()
    assert (boxes["reserved"] >= 0).all()


def test_shared_trenches_are_shorter_than_the_cables(sample_plan: Plan):
    trench_m = sample_plan.trenches["length_m"].sum()
    cable_m = sample_plan.cables["length_m"].sum()
    assert 0 < trench_m < cable_m
    assert (sample_plan.trenches["length_m"] > 0).all()
    assert (sample_plan.cables["length_m"] > 0).all()


def test_no_supply_exceeds_its_spare_capacity_or_circuits(sample_layers: Layers, sample_plan: Plan):
    supplies = sample_layers["supply_points"].set_index("supply_id")
    catalogue = sample_plan.settings.catalogue
    loading_limit = catalogue.value("supply", "loading_limit")
    power_factor = catalogue.value("loads", "power_factor")
    boxes = sample_plan.meter_boxes
    served = boxes[boxes["supply_id"].isin(supplies.index)]
    kva = (served["design_load_kw"] / power_factor).groupby(served["supply_id"]).sum()
    spare = (supplies["capacity_kva"] * loading_limit - supplies["load_kva"]).clip(lower=0)
    assert (kva <= spare.loc[kva.index] + 1e-6).all()
    circuits = served.groupby("supply_id").size()
    assert (circuits <= supplies.loc[circuits.index, "max_circuits"]).all()


def test_cables_run_from_their_supply_to_their_box(sample_layers: Layers, sample_plan: Plan):
    boxes = sample_plan.meter_boxes.set_index("box_id").geometry
    supplies = sample_layers["supply_points"].set_index("supply_id").geometry
    feeders = sample_layers["feeders"].set_index("feeder_id").geometry
    for cable in sample_plan.cables.itertuples():
        line = cable.geometry
        assert line.geom_type == "LineString"
        assert shapely.Point(line.coords[-1]).distance(boxes[cable.box_id]) < 1e-6
        start = shapely.Point(line.coords[0])
        if cable.supply_id in supplies.index:
            assert start.distance(supplies[cable.supply_id]) < 1e-6
        else:  # a tap on an existing feeder: <feeder_id>@<compound_id>
            assert start.distance(feeders[cable.supply_id.split("@")[0]]) < 1e-6


def test_no_trench_enters_a_building_block_or_obstacle(sample_layers: Layers, sample_plan: Plan):
    barriers = pd.concat(
        [sample_layers[n].geometry for n in ("buildings", "storage_blocks", "obstacles")]
    )
    interiors = shapely.union_all(barriers.buffer(-0.05).to_numpy())
    crossing = sample_plan.trenches.geometry.intersection(interiors).length
    assert crossing.max() < 1e-6


def test_every_served_box_passes_ampacity_and_voltage_drop_or_is_flagged(sample_plan: Plan):
    cables = sample_plan.cables
    limit_pct = sample_plan.settings.catalogue.value("voltage", "drop_limit_pct")
    fine = cables["flags"] == ""
    assert (cables.loc[fine, "ampacity_a"] >= cables.loc[fine, "design_current_a"]).all()
    assert (cables.loc[fine, "voltage_drop_pct"] <= limit_pct + 1e-9).all()


def test_pandapower_agrees_with_geoplan_within_half_a_point(sample_plan: Plan):
    check = sample_plan.power_flow
    assert check is not None
    assert len(check) == len(sample_plan.cables)
    assert check["difference_pct_points"].notna().all()
    assert check["difference_pct_points"].abs().max() <= 0.5


def test_the_plan_command_writes_the_plan(tmp_path: Path):
    out = tmp_path / "plan"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "geoplan.cli",
            "plan",
            str(SAMPLE_DIR),
            "--out",
            str(out),
            "--no-maps",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "trench km" in done.stdout
    assert (out / "plan.gpkg").is_file()


def test_the_export_command_rewrites_a_plan_folder(tmp_path: Path):
    out = tmp_path / "plan"
    geoplan = [sys.executable, "-m", "geoplan.cli"]
    subprocess.run(
        [*geoplan, "plan", str(SAMPLE_DIR), "--out", str(out), "--no-maps"],
        check=True,
        capture_output=True,
    )
    again = tmp_path / "again"
    done = subprocess.run(
        [*geoplan, "export", str(out), "--format", "geojson", "--out", str(again)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for layer in ("meter_boxes", "cables", "trenches", "removals", "unserved"):
        written = again / "geojson" / f"{layer}.geojson"
        assert written.read_bytes() == (out / "geojson" / f"{layer}.geojson").read_bytes()
    missing = subprocess.run(
        [*geoplan, "export", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert "plan.gpkg" in missing.stderr
