"""Plan a large area on a Dask cluster: one task per partition, merged into one Plan.

:func:`plan_on_dask` cuts the layers with :func:`geoplan.partition.partition_layers`,
sends each partition to the cluster as a task (the partition's data travel inside the
task, so that the scheduler can run it again on another worker when one dies, and
``retries`` covers errors raised by a task), and merges the partitions' plans with
:func:`merge_partition_plans`. When the partitions do not interact the merged plan is the
single-process plan; when they do, the border supplies are reported beside it.

Trench ids stay those of a single-process plan: sections are numbered in the order of
the cables they carry (box ids), then surface, off-corridor and first vertex — the order
:mod:`geoplan.routing` gives them — so the merge renumbers them across partitions with
:func:`merge_trenches`.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .catalogue import build_catalogue
from .errors import PlanningError
from .hazards import rank_priority
from .layers import Layers
from .partition import Partition, Partitioning, partition_layers
from .plan import Plan, plan
from .schema import conform
from .settings import Settings

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

DEFAULT_RETRIES = 2
_TOUCH_M = 1e-6  # a point this close to a cable's route lies on it


@dataclass(frozen=True)
class PortableSettings:
    """Settings in plain data, to send to workers (the catalogue's mappings don't pickle)."""

    crs: str | None
    load_basis: str
    catalogue: dict[str, Any]
    origin: str
    files: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> PortableSettings:
        """Return the portable form of ``settings``."""
        return cls(
            crs=settings.crs,
            load_basis=settings.load_basis,
            catalogue=settings.catalogue.to_dict(),
            origin=settings.catalogue.origin,
            files=settings.files,
        )

    def settings(self) -> Settings:
        """Rebuild the settings (the catalogue is validated again)."""
        return Settings(
            crs=self.crs,
            load_basis=self.load_basis,
            catalogue=build_catalogue(self.catalogue, origin=self.origin),
            files=self.files,
        )


@dataclass(frozen=True)
class PartitionPlan:
    """What a worker sends back: a partition's plan without the input layers.

    The frames are those of :class:`geoplan.plan.Plan`; ``trench_first_box`` holds, for
    each trench section, the smallest id of the boxes whose cables it carries.
    """

    partition_id: str
    meter_boxes: gpd.GeoDataFrame
    cables: gpd.GeoDataFrame
    trenches: gpd.GeoDataFrame
    trench_first_box: tuple[str, ...]
    removals: gpd.GeoDataFrame
    unserved: gpd.GeoDataFrame
    summary: pd.DataFrame
    stats: dict[str, float | int | str]
    power_flow: pd.DataFrame | None = None
    seconds: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class ScaledPlan:
    """A plan made partition by partition.

    Parameters
    ----------
    plan
        The merged plan.
    partitioning
        How the layers were cut.
    border
        The border supplies (see :class:`geoplan.partition.Partitioning`) with what the
        plan did there: ``boxes_fed`` (boxes the owner feeds from it) and
        ``unserved_elsewhere`` (unserved boxes of the other partitions that reach it:
        where a single-process plan may differ). Empty when partitions do not interact.
    seconds
        Planning time of each partition (partition_id, seconds).
    """

    plan: Plan
    partitioning: Partitioning
    border: pd.DataFrame
    seconds: pd.DataFrame


# ---------------------------------------------------------------------------- workers


def plan_partition(
    partition: Partition, *, settings: PortableSettings, check_power_flow: bool = False
) -> PartitionPlan:
    """Plan one partition (the task run on a worker).

    Parameters
    ----------
    partition
        A partition from :func:`geoplan.partition.partition_layers`.
    settings
        The run's settings in portable form.
    check_power_flow
        Also run the pandapower check of the partition's cables.

    Returns
    -------
    PartitionPlan
        The partition's plan, without the input layers.
    """
    start = time.perf_counter()
    made = plan(partition.layers(), settings=settings.settings(), check_power_flow=check_power_flow)
    return PartitionPlan(
        partition_id=partition.partition_id,
        meter_boxes=made.meter_boxes,
        cables=made.cables,
        trenches=made.trenches,
        trench_first_box=trench_first_boxes(made.trenches, made.cables),
        removals=made.removals,
        unserved=made.unserved,
        summary=made.summary,
        stats=made.stats,
        power_flow=made.power_flow,
        seconds=time.perf_counter() - start,
    )


def trench_first_boxes(trenches: gpd.GeoDataFrame, cables: gpd.GeoDataFrame) -> tuple[str, ...]:
    """Return, for each trench section, the smallest id of the boxes whose cables it carries.

    A cable runs in a section when its route covers the section and comes from one of
    the section's supplies (two supplies at one spot may have connectors that coincide).
    """
    if not len(trenches):
        return ()
    tree = shapely.STRtree(np.asarray(cables.geometry.array))
    t, c = tree.query(np.asarray(trenches.geometry.array), predicate="covered_by")
    supplies = [set(s.split(";")) for s in trenches["supply_id"].astype(str)]
    cable_supply = cables["supply_id"].astype(str).to_numpy()
    boxes = cables["box_id"].astype(str).to_numpy()
    first = [""] * len(trenches)
    for i, j in zip(t.tolist(), c.tolist(), strict=True):
        if cable_supply[j] in supplies[i] and (not first[i] or boxes[j] < first[i]):
            first[i] = boxes[j]
    return tuple(first)


def merge_trenches(parts: Sequence[PartitionPlan]) -> gpd.GeoDataFrame:
    """Merge the partitions' trench sections and number them ``TR00001``... over the whole.

    A plan orders its sections by the box ids of the cables they carry (then surface,
    off-corridor and first vertex). Partitions share no box, so the whole's order is
    each partition's order, merged by the smallest box id of each section.

    Parameters
    ----------
    parts
        The partitions' plans.

    Returns
    -------
    geopandas.GeoDataFrame
        All trench sections, in that order, with new trench ids.
    """
    sequences = [
        [(first, k, i) for i, first in enumerate(p.trench_first_box)] for k, p in enumerate(parts)
    ]
    order = list(heapq.merge(*sequences, key=lambda row: row[0]))
    frames = [p.trenches for p in parts]
    stacked = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    offset = np.cumsum([0, *(len(f) for f in frames)])
    rows = [int(offset[k] + i) for _, k, i in order]
    out = gpd.GeoDataFrame(stacked.iloc[rows].reset_index(drop=True))
    out["trench_id"] = [f"TR{i:05d}" for i in range(1, len(out) + 1)]
    return conform(out, "trenches")


# ------------------------------------------------------------------------------ merge


def merge_partition_plans(
    layers: Layers, parts: Sequence[PartitionPlan], *, settings: Settings
) -> Plan:
    """Merge the partitions' plans into one plan of the whole layer set.

    Rows are concatenated and put in the order of a single-process plan; trench ids,
    priority ranks and headline figures are recomputed over the whole.

    Parameters
    ----------
    layers
        The whole layer set.
    parts
        One plan per partition, in any order.
    settings
        The run's settings.

    Returns
    -------
    Plan
        The merged plan.
    """
    parts = sorted(parts, key=lambda p: p.partition_id)
    crs = layers.crs

    def stack(name: str) -> gpd.GeoDataFrame:
        frames = [getattr(p, name) for p in parts]
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)

    block_order = pd.Series(
        np.arange(len(layers["storage_blocks"])),
        index=layers["storage_blocks"]["block_id"].astype(str),
    )
    boxes = stack("meter_boxes")
    order = np.argsort(block_order.loc[boxes["block_id"]].to_numpy(), kind="stable")
    meter_boxes = conform(boxes.iloc[order].reset_index(drop=True), "meter_boxes")
    cables = conform(stack("cables").sort_values("cable_id", ignore_index=True), "cables")
    trenches = merge_trenches(parts)
    removals = conform(stack("removals").sort_values("wire_id", ignore_index=True), "removals")
    unserved = conform(stack("unserved").sort_values("box_id", ignore_index=True), "unserved")
    summary = _merge_summary([p.summary for p in parts])
    power_flow = None
    if parts and all(p.power_flow is not None for p in parts):
        power_flow = pd.concat([p.power_flow for p in parts], ignore_index=True)
        power_flow = power_flow.sort_values("cable_id", ignore_index=True)
    stats = _merge_stats([p.stats for p in parts], meter_boxes, cables, trenches, unserved)
    return Plan(
        meter_boxes=meter_boxes,
        cables=cables,
        trenches=trenches,
        removals=removals,
        unserved=unserved,
        summary=summary,
        layers=layers,
        settings=settings,
        stats=stats,
        power_flow=power_flow,
    )


def _merge_summary(summaries: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack the per-compound summaries and rank the priorities over all compounds."""
    summary = pd.concat(summaries, ignore_index=True)
    hazard = pd.DataFrame(
        {
            "compound_id": summary["compound_id"].astype(str),
            "hazard_index": summary["hazard_before"],
            "hazard_removed": summary["hazard_before"] - summary["hazard_after"],
        }
    )
    costs = pd.Series(summary["cost_cny"].to_numpy(), index=hazard["compound_id"])
    ranked = rank_priority(hazard, costs).set_index("compound_id")["priority_rank"]
    summary["priority_rank"] = summary["compound_id"].astype(str).map(ranked)
    return conform(summary.sort_values("compound_id", ignore_index=True), "summary")


_POWER_FLOW_MAX = "power_flow_max_difference_pct_points"


def _merge_stats(
    stats: Sequence[dict[str, float | int | str]],
    boxes: gpd.GeoDataFrame,
    cables: gpd.GeoDataFrame,
    trenches: gpd.GeoDataFrame,
    unserved: pd.DataFrame,
) -> dict[str, float | int | str]:
    """Headline figures of the whole: recomputed from the rows, or summed over parts."""
    keys = list(dict.fromkeys(k for s in stats for k in s))
    reasons = sorted(k for k in keys if k.startswith("unserved_") and k != "unserved_boxes")
    power = [k for k in keys if k.startswith("power_flow_")]
    keys = [k for k in keys if k not in reasons and k not in power] + reasons + power
    merged: dict[str, float | int | str] = {}
    for key in keys:
        values = [s[key] for s in stats if key in s]
        if key.startswith("max_") or key == _POWER_FLOW_MAX:
            merged[key] = max(float(v) for v in values)
        elif all(isinstance(v, int) for v in values):
            merged[key] = sum(int(v) for v in values)
        elif all(isinstance(v, float) for v in values):
            merged[key] = math.fsum(float(v) for v in values)
        else:
            merged[key] = values[0]
    trench_m = float(trenches["length_m"].sum())
    separate_m = 1000.0 * float(merged.get("separate_trench_km", 0.0))
    merged.update(
        {
            "boxes": len(boxes),
            "served_boxes": len(cables),
            "cable_km": float(cables["length_m"].sum()) / 1000.0,
            "trench_km": trench_m / 1000.0,
            "cost_cny": float(
                boxes["cost_cny"].sum() + cables["cost_cny"].sum() + trenches["cost_cny"].sum()
            ),
            "max_voltage_drop_pct": float(cables["voltage_drop_pct"].max()) if len(cables) else 0.0,
            "unserved_boxes": len(unserved),
        }
    )
    if "trench_saving_pct" in merged:
        merged["trench_saving_pct"] = 100.0 * (1.0 - trench_m / separate_m) if separate_m else 0.0
    return merged


def border_effects(partitioning: Partitioning, merged: Plan) -> pd.DataFrame:
    """Add to the border supplies what the merged plan did around them.

    Returns the border supplies with ``boxes_fed`` (boxes fed from the supply, or from
    taps on the feeder) and ``unserved_elsewhere`` (unserved boxes, in other partitions
    than the owner, within reach of it): where a plan of the whole may differ.
    """
    border = partitioning.border_supplies.copy()
    if border.empty:
        return border.assign(boxes_fed=pd.Series(dtype="int64"), unserved_elsewhere=0)
    layers = merged.layers
    fed = merged.cables["supply_id"].astype(str).str.split("@").str[0].value_counts()
    border["boxes_fed"] = border["supply_id"].map(fed).fillna(0).astype("int64")
    part_of = partitioning.compounds.set_index("compound_id")["partition_id"]
    unserved = merged.unserved
    box_part = unserved["compound_id"].astype(str).map(part_of).to_numpy()
    tree = shapely.STRtree(np.asarray(unserved.geometry.array))
    geometry = {
        "supply_point": layers["supply_points"].set_index("supply_id").geometry,
        "feeder": layers["feeders"].set_index("feeder_id").geometry,
    }
    counts = []
    for row in border.itertuples(index=False):
        near = tree.query(
            geometry[row.kind].loc[row.supply_id],
            predicate="dwithin",
            distance=partitioning.reach_m,
        )
        counts.append(int((box_part[near] != row.owner_partition).sum()))
    border["unserved_elsewhere"] = np.asarray(counts, dtype="int64")
    return border


# ------------------------------------------------------------------------------- dask


@contextmanager
def dask_client(*, workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """Connect to a Dask cluster: a new local one of ``workers`` processes or ``scheduler``.

    Parameters
    ----------
    workers
        Start a :class:`distributed.LocalCluster` of this many single-threaded worker
        processes on this machine (no dashboard), closed on exit.
    scheduler
        Or connect to the running scheduler at this address (``tcp://HOST:PORT``),
        waiting up to ``distributed.comm.timeouts.connect`` (Dask's configuration).

    Yields
    ------
    distributed.Client
        The client, closed on exit.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = "--workers and --scheduler need dask.distributed: pip install 'dask[distributed]'"
        raise PlanningError(msg) from exc
    if (workers is None) == (scheduler is None):
        msg = "give either a number of local workers or a scheduler address, not both"
        raise ValueError(msg)
    if scheduler is not None:
        try:
            client = Client(scheduler)
        except OSError as exc:
            msg = f"cannot reach the Dask scheduler at {scheduler} ({exc}); is it running?"
            raise PlanningError(msg) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def plan_on_dask(
    layers: Layers,
    *,
    client: Client,
    settings: Settings | None = None,
    partitioning: Partitioning | None = None,
    check_power_flow: bool = False,
    retries: int = DEFAULT_RETRIES,
    progress: Callable[[str, int, int], None] | None = None,
    task: Callable[..., PartitionPlan] = plan_partition,
) -> ScaledPlan:
    """Plan ``layers`` on a Dask cluster, one task per partition, and merge the results.

    Parameters
    ----------
    layers
        Validated layers from :func:`geoplan.layers.read_layers`.
    client
        A client of the cluster to run on (see :func:`dask_client`).
    settings
        Run settings; the defaults when omitted.
    partitioning
        How to cut the layers; :func:`geoplan.partition.partition_layers` when omitted.
    check_power_flow
        Also run the pandapower check in each partition.
    retries
        How many times a task that raised is run again. A task whose worker dies is
        rescheduled by Dask regardless (up to ``distributed.scheduler.allowed-failures``).
    progress
        Called as each partition finishes with its id, the number finished and the total.
    task
        The function run per partition, with :func:`plan_partition`'s signature.

    Returns
    -------
    ScaledPlan
        The merged plan, the partitioning and the border report.
    """
    from distributed import as_completed

    settings = settings or Settings()
    partitioning = partitioning or partition_layers(layers, settings=settings)
    portable = PortableSettings.of(settings)
    partitions = partitioning.partitions
    if not partitions:  # no compounds: nothing to spread
        made = plan(layers, settings=settings, check_power_flow=check_power_flow)
        empty = pd.DataFrame({"partition_id": [], "seconds": []})
        return ScaledPlan(made, partitioning, border_effects(partitioning, made), empty)
    run = uuid.uuid4().hex[:12]
    futures = client.map(
        task,
        partitions,
        settings=portable,
        check_power_flow=check_power_flow,
        key=[f"geoplan-{p.partition_id}-{run}" for p in partitions],
        retries=retries,
    )
    total = len(futures)
    results: list[PartitionPlan] = []
    try:
        for future in as_completed(futures):
            part = future.result()
            results.append(part)
            logger.info("partition %s planned in %.1f s", part.partition_id, part.seconds)
            if progress is not None:
                progress(part.partition_id, len(results), total)
    finally:
        client.cancel(futures)
    merged = merge_partition_plans(layers, results, settings=settings)
    seconds = pd.DataFrame(
        {
            "partition_id": [p.partition_id for p in results],
            "seconds": [p.seconds for p in results],
        }
    ).sort_values("partition_id", ignore_index=True)
    return ScaledPlan(
        plan=merged,
        partitioning=partitioning,
        border=border_effects(partitioning, merged),
        seconds=seconds,
    )


def write_border_report(border: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the border supplies as CSV (UTF-8, one row per supply); return the path."""
    border.to_csv(path, index=False, encoding="utf-8")
    return Path(path)


# ----------------------------------------------------------------- a synthetic city

_ID_COLUMNS = (
    "compound_id",
    "building_id",
    "block_id",
    "supply_id",
    "feeder_id",
    "corridor_id",
    "wire_id",
    "obstacle_id",
    "from_building_id",
    "to_block_id",
)


def sample_city(
    *, seeds: Sequence[int] = (2, 3), spacing_m: float = 6000.0, columns: int = 2
) -> dict[str, gpd.GeoDataFrame]:
    """Return a synthetic city of several sample districts, for trying the scale-out.

    District ``k`` (from 1) is :func:`geoplan.sample.make_sample` with ``seeds[k - 1]``,
    moved ``spacing_m`` apart on a grid of ``columns`` columns, every id prefixed with
    ``D<k>-``. Districts 6 km apart do not interact (the largest supply reach is about
    half a kilometre).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``{layer name: GeoDataFrame in EPSG:4326}``, like :func:`~geoplan.sample.make_sample`.
    """
    from .sample import METRIC_CRS, make_sample

    parts: dict[str, list[gpd.GeoDataFrame]] = {}
    for k, seed in enumerate(seeds):
        dx_m, dy_m = spacing_m * (k % columns), spacing_m * (k // columns)
        for name, frame in make_sample(seed=seed).items():
            moved = frame.to_crs(METRIC_CRS)
            moved = moved.set_geometry(moved.geometry.translate(dx_m, dy_m)).to_crs(frame.crs)
            for column in _ID_COLUMNS:
                if column in moved:
                    moved[column] = [None if pd.isna(v) else f"D{k + 1}-{v}" for v in moved[column]]
            parts.setdefault(name, []).append(moved)
    return {
        name: gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
        for name, frames in parts.items()
    }
