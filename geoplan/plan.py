"""plan(): the pipeline from validated layers to a Plan."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from ._fork import Beside
from ._graph import GraphArrays, to_networkx
from ._memory import large_stage, return_freed_memory
from .boxes import site_boxes
from .costs import _compound_costs, _sum_by, _trench_shares
from .electrical import design_load_kw, size_cables
from .errors import LayerError, Problem
from .hazards import compound_hazard, rank_priority, score_wires
from .layers import Layers
from .network import attach_arrays, attach_points, build_arrays
from .power_flow import check_power_flow as run_power_flow_check
from .routing import UNSERVED_REASONS, Clock, Routes, route, supply_candidates
from .schema import conform
from .settings import Settings


@dataclass(frozen=True)
class Plan:
    """An engineered plan: plain data, reproducible from the same layers and settings.

    Every layer is in the working CRS ``crs`` and has the columns of
    :mod:`geoplan.schema` (``OUTPUT_LAYERS``), in that order.

    Parameters
    ----------
    meter_boxes, cables, trenches, removals, unserved
        The plan's layers.
    summary
        One row per compound (``schema.SUMMARY_COLUMNS``).
    layers
        The validated input layers the plan was made from.
    settings
        The settings it was made with.
    stats
        Headline figures (boxes, positions, km of cable and trench, saving from shared
        trenches, unserved by reason).
    power_flow
        The pandapower check of every cable's voltage drop, when it was asked for
        (:func:`geoplan.power_flow.check_power_flow`).
    """

    meter_boxes: gpd.GeoDataFrame
    cables: gpd.GeoDataFrame
    trenches: gpd.GeoDataFrame
    removals: gpd.GeoDataFrame
    unserved: gpd.GeoDataFrame
    summary: pd.DataFrame
    layers: Layers
    settings: Settings
    stats: dict[str, float | int | str]
    power_flow: pd.DataFrame | None = None

    @property
    def crs(self) -> pyproj.CRS:
        """The working CRS of every layer."""
        return self.layers.crs


NETWORKX_MAX_EDGES = 50_000
"""Largest routing graph (edges) that ``engine="auto"`` routes with networkx."""

#: Layers with at least this many corridors have their meter boxes sited by a forked
#: process while this one builds the routing graph (:class:`geoplan._fork.Beside`).
_BESIDE_MIN_CORRIDORS = 20_000


def _cable_id(supply_id: str, box_id: str) -> str:
    """Return the id of the cable from a supply to a box."""
    return f"{supply_id}/{box_id}"


def _radius_by_compound(compounds: gpd.GeoDataFrame, settings: Settings) -> pd.Series:
    """Return the low-voltage supply radius (m) of each compound from its area class."""
    catalogue = settings.catalogue
    radius_m = catalogue.value("supply", "radius_m")
    default = str(catalogue.value("supply", "area_class"))
    classes = (
        compounds["area_class"].fillna(default).astype(str)
        if "area_class" in compounds
        else pd.Series(default, index=compounds.index)
    )
    unknown = sorted(set(classes) - set(radius_m))
    if unknown:
        problems = [
            Problem(
                f"area_class = {c!r} must be one of {', '.join(radius_m)}",
                layer="compounds",
                feature_id=str(i),
            )
            for i, c in zip(compounds["compound_id"], classes, strict=True)
            if c in unknown
        ]
        raise LayerError(problems)
    return pd.Series(classes.map(radius_m).astype(float).to_numpy(), index=compounds["compound_id"])


def _barriers(layers: Layers) -> gpd.GeoSeries:
    """Polygons no trench may cross: buildings, storage blocks and obstacles."""
    parts = [layers[name].geometry for name in ("buildings", "storage_blocks", "obstacles")]
    return gpd.GeoSeries(pd.concat(parts, ignore_index=True), crs=layers.crs)


def _removals(
    scored: gpd.GeoDataFrame, boxes: gpd.GeoDataFrame, served: set[str]
) -> gpd.GeoDataFrame:
    """List the flying wires that go (of ``scored``, see score_wires), each with its box."""
    present = scored[~scored["reasons"].astype(str).str.contains("removed", regex=False)]
    if "to_block_id" not in present or not len(present):
        return present.assign(box_id="")
    ends = shapely.get_point(np.asarray(present.geometry.array, dtype=object), -1)
    # Each wire goes to the served box of its block nearest its end (the first of equals).
    wires = pd.DataFrame({"wire": np.arange(len(present)), "block_id": present["to_block_id"]})
    mask = boxes["box_id"].isin(served).to_numpy()
    fed = pd.DataFrame(
        {
            "box_id": boxes["box_id"].to_numpy()[mask],
            "block_id": boxes["block_id"].to_numpy()[mask],
            "position": np.arange(int(mask.sum())),
            "geometry": np.asarray(boxes.geometry.array, dtype=object)[mask],
        }
    )
    pairs = wires.merge(fed, on="block_id", how="inner")
    box_ids = np.full(len(present), "", dtype=object)
    if len(pairs):
        wire = pairs["wire"].to_numpy()
        dist = shapely.distance(ends[wire], np.asarray(pairs["geometry"].to_numpy(), dtype=object))
        order = np.lexsort((pairs["position"].to_numpy(), dist, wire))
        first = order[np.r_[True, wire[order][1:] != wire[order][:-1]]]
        box_ids[wire[first]] = pairs["box_id"].to_numpy()[first].astype(str)
    return present.assign(box_id=box_ids)


@large_stage()  # a city's millions of geometries and gigabytes of arrays (geoplan._memory)
def plan(
    layers: Layers,
    *,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
    check_power_flow: bool = False,
    engine: Literal["auto", "networkx", "csgraph"] = "auto",
    timings: dict[str, float] | None = None,
) -> Plan:
    """Make the plan: boxes, supply assignment, cables, shared trenches, costs, hazards.

    Parameters
    ----------
    layers
        Validated layers from :func:`geoplan.layers.read_layers`.
    settings
        Run settings; the defaults when omitted.
    progress
        Called with the name of each stage as it starts (for progress bars).
    check_power_flow
        Also run a pandapower load flow of the planned cables and record the largest
        difference from geoplan's voltage drops in ``stats`` (needs pandapower).
    engine
        How to route: ``"networkx"`` (the reference), ``"csgraph"`` (the compiled path on
        arrays, for cities; same routes and costs) or ``"auto"``: networkx up to
        :data:`NETWORKX_MAX_EDGES` graph edges, csgraph above.
    timings
        When given, the seconds spent in each stage are added to it (for benchmarks).

    Returns
    -------
    Plan
        The plan's layers, per-compound summary and headline figures.
    """
    settings = settings or Settings()
    catalogue = settings.catalogue
    clock = Clock(timings)
    step = progress or (lambda _name: None)

    step("meter boxes")
    fork = len(layers["corridors"]) >= _BESIDE_MIN_CORRIDORS
    with Beside(functools.partial(_site, layers, settings), fork=fork) as beside:
        clock.skip()  # _site counts its own seconds (beside the graph's, when forked)
        step("routing graph")
        barriers = _barriers(layers)
        try:
            arrays = build_arrays(
                layers["corridors"], barriers=barriers, settings=settings, timings=timings
            )
        except Exception:
            beside.result()  # an error in the blocks first, as when the stages ran in turn
            raise
        clock.skip()
        sited = beside.result()
    clock("meter boxes")  # the wait for them, if any
    if timings is not None:
        timings["meter boxes"] += sited.seconds
    boxes, candidates = sited.boxes, sited.candidates
    radius_m = _radius_by_compound(layers["compounds"], settings)
    power_factor = float(catalogue.value("loads", "power_factor"))
    basis = boxes["used"] if settings.load_basis == "applicants" else boxes["rooms"]
    work = gpd.GeoDataFrame(
        {
            "box_id": boxes["box_id"],
            "compound_id": boxes["compound_id"],
            "demand_kva": boxes["design_load_kw"] / power_factor,
            "radius_m": boxes["compound_id"].map(radius_m).astype(float),
            "cable_load_kw": design_load_kw(basis.to_numpy(), catalogue=catalogue, cable=True),
        },
        geometry=boxes.geometry,
    )
    city = arrays.n_edges > NETWORKX_MAX_EDGES
    if city:
        return_freed_memory()
    points = gpd.GeoDataFrame(
        {
            "id": [f"box:{b}" for b in boxes["box_id"]]
            + [f"supply:{c}" for c in candidates["candidate_id"]]
        },
        geometry=np.concatenate([boxes.geometry.to_numpy(), candidates.geometry.to_numpy()]),
        crs=layers.crs,
    )
    if engine == "networkx" or (engine == "auto" and not city):
        graph, nodes = attach_points(
            to_networkx(arrays), points, barriers=barriers, settings=settings
        )
    else:
        graph, nodes = attach_arrays(arrays, points, barriers=barriers, settings=settings)
    del arrays  # the graph before attaching: its arrays were copied into the new one
    if city:
        return_freed_memory()
    clock("snapping")

    step("assignment and trenches")
    routes = route(graph, nodes, work, candidates, settings=settings, timings=timings)
    if isinstance(graph, GraphArrays):
        clock.skip()  # route() booked its own steps
    else:
        clock("assignment and trenches")

    step("cable sizing")
    supply_of = dict(zip(routes.assignment["box_id"], routes.assignment["supply_id"], strict=True))
    cables = routes.assignment.merge(
        boxes[["box_id", "compound_id", "rooms", "phases"]], on="box_id", how="left"
    ).merge(work[["box_id", "cable_load_kw"]], on="box_id", how="left")
    cables = cables.rename(columns={"cable_load_kw": "design_load_kw"})
    cables["cable_id"] = [
        _cable_id(s, b) for s, b in zip(cables["supply_id"], cables["box_id"], strict=True)
    ]
    cables = size_cables(gpd.GeoDataFrame(cables, crs=layers.crs), catalogue=catalogue)
    boxes = boxes.assign(supply_id=boxes["box_id"].map(supply_of).fillna(""))

    unserved = routes.unserved.merge(
        boxes[["box_id", "block_id", "compound_id", "geometry"]], on="box_id", how="left"
    )
    unserved = gpd.GeoDataFrame(unserved, geometry="geometry", crs=layers.crs)

    clock("cable sizing")

    step("hazards and costs")
    scored = sited.scored
    removals = _removals(scored, boxes, set(supply_of))
    summary = _summary(
        layers,
        boxes=boxes,
        cables=cables,
        trenches=routes.trenches,
        trench_boxes=routes.trench_boxes,
        removals=removals,
        unserved=unserved,
        scored=scored,
    )
    meter_boxes = conform(boxes, "meter_boxes")
    cables = conform(cables.sort_values("cable_id", ignore_index=True), "cables")
    stats = _stats(meter_boxes, cables, routes, unserved)
    clock("hazards and costs")
    power_flow = None
    if check_power_flow:
        step("power flow check")
        power_flow = run_power_flow_check(cables, catalogue=catalogue)
        difference = power_flow["difference_pct_points"].abs()
        stats["power_flow_max_difference_pct_points"] = (
            float(difference.max()) if difference.notna().any() else 0.0
        )
        stats["power_flow_unsolved_cables"] = int(difference.isna().sum())
        clock("power flow check")
    return Plan(
        meter_boxes=meter_boxes,
        cables=cables,
        trenches=conform(routes.trenches, "trenches"),
        removals=conform(removals.sort_values("wire_id", ignore_index=True), "removals"),
        unserved=conform(unserved.sort_values("box_id", ignore_index=True), "unserved"),
        summary=summary,
        layers=layers,
        settings=settings,
        stats=stats,
        power_flow=power_flow,
    )


@dataclass(frozen=True)
class _Sited:
    """What needs no routing graph: meter boxes, supply candidates, scored flying wires."""

    boxes: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    scored: gpd.GeoDataFrame
    seconds: float


def _site(layers: Layers, settings: Settings) -> _Sited:
    """Site the meter boxes, list the supply candidates and score the flying wires."""
    started = time.perf_counter()
    boxes = site_boxes(
        layers["storage_blocks"],
        corridors=layers["corridors"],
        supplies=layers["supply_points"],
        settings=settings,
    )
    candidates = supply_candidates(
        layers["supply_points"], layers["feeders"], boxes, settings=settings
    )
    scored = score_wires(layers["flying_wires"], corridors=layers["corridors"], settings=settings)
    return _Sited(boxes, candidates, scored, time.perf_counter() - started)


def _summary(
    layers: Layers,
    *,
    boxes: gpd.GeoDataFrame,
    cables: gpd.GeoDataFrame,
    trenches: gpd.GeoDataFrame,
    trench_boxes: pd.DataFrame,
    removals: gpd.GeoDataFrame,
    unserved: gpd.GeoDataFrame,
    scored: gpd.GeoDataFrame,
) -> pd.DataFrame:
    """One row per compound: households, boxes, positions, lengths, cost, hazard, rank.

    ``trench_boxes`` says which box's cable lies in which trench (``trench_id``,
    ``box_id``); a trench's length and cost are shared among compounds by their cables.
    """
    compounds = layers["compounds"]
    ids = compounds["compound_id"]
    blocks = layers["storage_blocks"]
    applicants = (
        blocks["applicants"].fillna(blocks["units"]) if "applicants" in blocks else blocks["units"]
    )
    block_status = blocks["status"] if "status" in blocks else pd.Series("", index=blocks.index)
    shares = _trench_shares(cables, trenches, trench_boxes, on="box_id")
    trench_m = shares["trench_id"].map(trenches.set_index("trench_id")["length_m"])
    costs = _compound_costs(boxes, cables, trenches, shares=shares)
    costs = costs.set_index("compound_id")["cost_cny"]
    served_wires = removals.loc[removals["box_id"] != "", "wire_id"]
    hazard = compound_hazard(scored, compounds, removed_wire_ids=served_wires)
    ranked = rank_priority(hazard, costs.reindex(ids.astype(str)).fillna(0.0))
    summary = pd.DataFrame(
        {
            "compound_id": ids,
            "name": compounds["name"],
            "status": compounds.get("status", ""),
            "households": compounds["households"].fillna(0) if "households" in compounds else 0,
        }
    ).set_index("compound_id", drop=False)
    summary["applicants"] = _sum_by(blocks["compound_id"], applicants)
    summary["boxes"] = _sum_by(boxes["compound_id"], np.ones(len(boxes), dtype=np.int64))
    for column in ("positions", "used", "reserved"):
        summary[column] = _sum_by(boxes["compound_id"], boxes[column])
    summary["energized_blocks"] = _sum_by(blocks["compound_id"], block_status == "energized")
    summary["unserved_blocks"] = unserved.groupby("compound_id")["block_id"].nunique()
    summary["cable_m"] = _sum_by(cables["compound_id"], cables["length_m"])
    summary["trench_m"] = _sum_by(shares["compound_id"], trench_m * shares["share"])
    summary["cost_cny"] = costs
    ranked = ranked.set_index("compound_id")
    summary["hazard_before"] = ranked["hazard_index"]
    summary["hazard_after"] = ranked["hazard_after"]
    summary["priority_rank"] = ranked["priority_rank"]
    summary = summary.fillna(0).reset_index(drop=True)
    return conform(summary.sort_values("compound_id", ignore_index=True), "summary")


def _stats(
    boxes: gpd.GeoDataFrame, cables: gpd.GeoDataFrame, routes: Routes, unserved: pd.DataFrame
) -> dict[str, float | int | str]:
    """Headline figures of a plan (what the command line prints).

    ``unserved_<reason>`` counts the unserved boxes for every reason routing can give,
    0 when none, so that the figures of any two plans have the same keys.
    """
    trench_m = float(routes.trenches["length_m"].sum())
    separate_m = routes.separate_trench_m
    stats: dict[str, float | int | str] = {
        "boxes": len(boxes),
        "positions": int(boxes["positions"].sum()),
        "positions_used": int(boxes["used"].sum()),
        "positions_reserved": int(boxes["reserved"].sum()),
        "served_boxes": len(cables),
        "cable_km": float(cables["length_m"].sum()) / 1000.0,
        "trench_km": trench_m / 1000.0,
        "separate_trench_km": separate_m / 1000.0,
        "trench_saving_pct": 100.0 * (1.0 - trench_m / separate_m) if separate_m else 0.0,
        "cost_cny": float(
            boxes["cost_cny"].sum() + cables["cost_cny"].sum() + routes.trenches["cost_cny"].sum()
        ),
        "flagged_cables": int((cables["flags"] != "").sum()),
        "max_voltage_drop_pct": float(cables["voltage_drop_pct"].max()) if len(cables) else 0.0,
        "unserved_boxes": len(unserved),
    }
    counts = unserved["reason"].value_counts()
    for reason in UNSERVED_REASONS:
        stats[f"unserved_{reason}"] = int(counts.get(reason, 0))
    return stats
