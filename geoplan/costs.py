"""Costs of meter boxes and trenches, the bill of quantities, and costs per compound.

Unit costs come from the catalogue (``[meter_boxes]``, ``[trench]``; cable costs per
metre are applied by :func:`geoplan.electrical.size_cables`). They are assumptions [A]:
replace them with your own figures in ``geoplan.toml``. The bill of quantities and the
costs per compound are read from the plan's frames (their ``cost_cny`` columns), so their
sums always equal the frames' totals.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from ._arraylike import FloatOrArray, nonnegative, shaped_like
from .catalogue import Catalogue, load_catalogue

OPEN_SURFACE = "open"
ENERGIZED = "energized"
ITEM_KINDS = ("meter_box", "cable", "trench", "road_crossing")
BOQ_COLUMNS = ("item_kind", "item", "unit", "quantity", "unit_cost_cny", "cost_cny")
COMPOUND_COST_COLUMNS = ("compound_id", "box_cny", "cable_cny", "trench_cny", "cost_cny")
UNALLOCATED = ""


def box_cost_cny(positions: npt.ArrayLike, *, catalogue: Catalogue) -> FloatOrArray:
    """Return the cost of collective meter boxes.

    ``[meter_boxes] cost_cny_base + positions x cost_cny_per_position``.

    Parameters
    ----------
    positions
        Meter positions of each box (used and reserved), a scalar, array or Series.
    catalogue
        The engineering catalogue.

    Returns
    -------
    cost_cny
        Cost of each box, CNY, shaped like ``positions``.
    """
    count = nonnegative(positions, "positions")
    base = float(catalogue.value("meter_boxes", "cost_cny_base"))
    per_position = float(catalogue.value("meter_boxes", "cost_cny_per_position"))
    return shaped_like(base + count * per_position, positions)


def trench_rates_cny_per_m(catalogue: Catalogue) -> dict[str, float]:
    """Return the trench cost per metre by surface, ``"open"`` for open ground.

    Parameters
    ----------
    catalogue
        The engineering catalogue.

    Returns
    -------
    rates
        ``[trench] cost_cny_per_m`` plus ``open`` = ``open_ground_cost_cny_per_m``.
    """
    rates = {str(k): float(v) for k, v in catalogue.value("trench", "cost_cny_per_m").items()}
    rates[OPEN_SURFACE] = float(catalogue.value("trench", "open_ground_cost_cny_per_m"))
    return rates


def trench_cost_cny(
    length_m: npt.ArrayLike,
    surface: str | npt.ArrayLike,
    road_crossings: npt.ArrayLike,
    *,
    catalogue: Catalogue,
) -> FloatOrArray:
    """Return the cost of trench sections, road crossings included.

    ``length_m x rate(surface) + road_crossings x [trench] road_crossing_cny``, where the
    rate is ``[trench] cost_cny_per_m[surface]``, or ``open_ground_cost_cny_per_m`` for
    the surface ``"open"`` (digging off the surveyed corridors).

    Parameters
    ----------
    length_m
        Length of each section, m.
    surface
        Surface dug: soil, lawn, paving, asphalt, concrete (the keys of ``[trench]
        cost_cny_per_m``) or open; one string for all sections or one per section.
    road_crossings
        Roads crossed by each section.
    catalogue
        The engineering catalogue.

    Returns
    -------
    cost_cny
        Cost of each section, CNY, shaped like ``length_m``.

    Raises
    ------
    ValueError
        A surface the catalogue has no rate for, or a negative length or count.
    """
    length = nonnegative(length_m, "length_m")
    crossings = nonnegative(road_crossings, "road_crossings")
    rates = trench_rates_cny_per_m(catalogue)
    surfaces = np.asarray(surface, dtype=object).astype(str)
    names, inverse = np.unique(surfaces, return_inverse=True)
    unknown = [name for name in names if name not in rates]
    if unknown:
        msg = f"no trench cost for surface {', '.join(unknown)}; known: {', '.join(rates)}"
        raise ValueError(msg)
    rate = np.array([rates[name] for name in names])[inverse].reshape(surfaces.shape)
    crossing_cny = float(catalogue.value("trench", "road_crossing_cny"))
    return shaped_like(length * rate + crossings * crossing_cny, length_m, surface, road_crossings)


# --- bill of quantities ------------------------------------------------------------------


def _planned(meter_boxes: pd.DataFrame) -> pd.DataFrame:
    """Return the boxes still to be built (an energized block's box already exists)."""
    if "status" not in meter_boxes.columns:
        return meter_boxes
    return meter_boxes[meter_boxes["status"].astype(str) != ENERGIZED]


def _group(
    frame: pd.DataFrame, *, kind: str, by: str, unit: str, quantity: pd.Series, cost: pd.Series
) -> pd.DataFrame:
    sums = (
        pd.DataFrame(
            {
                "item": frame[by].fillna("").astype(str).to_numpy(),
                "quantity": quantity.to_numpy(float),
                "cost_cny": cost.to_numpy(float),
            }
        )
        .groupby("item", sort=True, as_index=False)
        .sum()
    )
    sums.insert(0, "item_kind", kind)
    sums.insert(2, "unit", unit)
    return sums


def bill_of_quantities(
    meter_boxes: gpd.GeoDataFrame,
    cables: gpd.GeoDataFrame,
    trenches: gpd.GeoDataFrame,
    *,
    catalogue: Catalogue | None = None,
) -> pd.DataFrame:
    """Return the bill of quantities of a plan.

    One row per item: meter boxes by ``model`` (pcs), cables by ``cable_type`` (m),
    trenches by ``surface`` (m) and road crossings (pcs). Costs are the sums of the
    frames' ``cost_cny``, so the bill's total equals the frames' totals; the unit cost is
    cost / quantity (the average, should a group mix prices). A trench's ``cost_cny``
    includes its road crossings (see :func:`trench_cost_cny`): they are split out at
    ``[trench] road_crossing_cny`` and the trench rows keep the rest. Boxes whose
    ``status`` is ``energized`` exist already and are left out.

    Parameters
    ----------
    meter_boxes
        The plan's boxes: ``model``, ``cost_cny`` (``status`` if any).
    cables
        The plan's cables: ``cable_type``, ``length_m``, ``cost_cny``.
    trenches
        The plan's trenches: ``surface``, ``length_m``, ``road_crossings``, ``cost_cny``.
    catalogue
        The catalogue the plan was priced with (``settings.catalogue``); it gives the
        price of a road crossing. Default: the shipped catalogue.

    Returns
    -------
    bill
        Columns ``item_kind``, ``item``, ``unit``, ``quantity``, ``unit_cost_cny``,
        ``cost_cny``; sorted by item kind (meter_box, cable, trench, road_crossing), then
        item. Items of zero quantity and cost are left out.
    """
    catalogue = catalogue if catalogue is not None else load_catalogue()
    boxes = _planned(meter_boxes)
    crossing_cny = float(catalogue.value("trench", "road_crossing_cny"))
    crossings = trenches["road_crossings"].astype(float)
    parts = [
        _group(
            boxes,
            kind="meter_box",
            by="model",
            unit="pcs",
            quantity=pd.Series(1.0, index=boxes.index),
            cost=boxes["cost_cny"],
        ),
        _group(
            cables,
            kind="cable",
            by="cable_type",
            unit="m",
            quantity=cables["length_m"],
            cost=cables["cost_cny"],
        ),
        _group(
            trenches,
            kind="trench",
            by="surface",
            unit="m",
            quantity=trenches["length_m"],
            cost=trenches["cost_cny"] - crossings * crossing_cny,
        ),
        pd.DataFrame(
            {
                "item_kind": ["road_crossing"],
                "item": ["road crossing (duct or pipe jacking)"],
                "unit": ["pcs"],
                "quantity": [float(crossings.sum())],
                "cost_cny": [float(crossings.sum()) * crossing_cny],
            }
        ),
    ]
    bill = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    bill = bill[(bill["quantity"] != 0) | (bill["cost_cny"] != 0)]
    quantity = bill["quantity"].to_numpy(float)
    safe = np.where(quantity > 0, quantity, 1.0)
    bill["unit_cost_cny"] = np.where(quantity > 0, bill["cost_cny"].to_numpy(float) / safe, 0.0)
    bill["order"] = bill["item_kind"].map({k: i for i, k in enumerate(ITEM_KINDS)})
    bill = bill.sort_values(["order", "item"], kind="stable", ignore_index=True)
    return bill.loc[:, list(BOQ_COLUMNS)]


# --- costs per compound ------------------------------------------------------------------


def _sum_by(keys: npt.ArrayLike, values: npt.ArrayLike) -> pd.Series:
    """Return the sums of ``values`` by ``keys``, in order of first appearance.

    pandas sums each group's values in row order, so the sums are those of a sorted
    groupby to the bit; missing keys are left out.
    """
    return pd.Series(np.asarray(values)).groupby(np.asarray(keys, dtype=object), sort=False).sum()


def _links(cables: pd.DataFrame, links: pd.DataFrame, *, on: str = "cable_id") -> pd.DataFrame:
    """Return (trench_id, compound_id as text) of each cable in a trench.

    The rows of ``links`` (``trench_id`` and ``on``) whose cable is in ``cables``, with
    its compound: their inner merge on ``on``, by position when the cables' keys are
    unique (``on="box_id"``: a cable is known by the box it feeds).
    """
    compound = cables[[on, "compound_id"]].astype({"compound_id": str})
    keys = pd.Index(cables[on])
    if not keys.is_unique or keys.hasnans:
        merged = links[["trench_id", on]].merge(compound, on=on)
        return merged[["trench_id", "compound_id"]]
    found = keys.get_indexer(links[on])
    hit = found >= 0
    return pd.DataFrame(
        {
            "trench_id": links["trench_id"].to_numpy(object)[hit],
            "compound_id": compound["compound_id"].to_numpy(object)[found[hit]],
        }
    )


def _link_shares(trench_id: npt.ArrayLike, compound_id: npt.ArrayLike) -> pd.DataFrame:
    """Return (trench_id, compound_id, share) from one row per cable in a trench.

    A compound's share of a trench is its cables' part of the trench's cables; sorted by
    trench, then compound, like a groupby of the two.
    """
    trench, trench_ids = pd.factorize(np.asarray(trench_id, dtype=object), sort=True)
    compound, compound_ids = pd.factorize(np.asarray(compound_id, dtype=object), sort=True)
    kept = (trench >= 0) & (compound >= 0)
    pairs, n = np.unique(
        trench[kept] * max(len(compound_ids), 1) + compound[kept], return_counts=True
    )
    of_trench, of_compound = np.divmod(pairs, max(len(compound_ids), 1))
    total = np.bincount(of_trench, weights=n, minlength=len(trench_ids))
    return pd.DataFrame(
        {
            "trench_id": trench_ids[of_trench],
            "compound_id": compound_ids[of_compound],
            "share": n / total[of_trench],
        }
    )


def _trench_shares(
    cables: pd.DataFrame,
    trenches: pd.DataFrame,
    trench_cables: pd.DataFrame | None,
    *,
    on: str = "cable_id",
) -> pd.DataFrame:
    """Return (trench_id, compound_id, share): each trench's cost shares by compound.

    ``trench_cables`` links trenches to cables by ``on`` (cable_id, or box_id).
    """
    if trench_cables is not None:
        links = _links(cables, trench_cables, on=on)
        return _link_shares(links["trench_id"], links["compound_id"])
    by_supply = (
        cables.assign(compound_id=cables["compound_id"].astype(str))
        .groupby(["supply_id", "compound_id"])
        .size()
        .rename("n")
        .reset_index()
    )
    counts = trenches[["trench_id", "supply_id"]].merge(by_supply, on="supply_id")
    counts = counts[["trench_id", "compound_id", "n"]]
    counts["share"] = counts["n"] / counts.groupby("trench_id")["n"].transform("sum")
    return counts[["trench_id", "compound_id", "share"]]


def costs_by_compound(
    meter_boxes: gpd.GeoDataFrame,
    cables: gpd.GeoDataFrame,
    trenches: gpd.GeoDataFrame,
    *,
    trench_cables: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the cost of boxes, cables and trenches per compound.

    Boxes and cables belong to their ``compound_id``. A trench is shared: its ``cost_cny``
    is split among compounds in proportion to the number of cables it carries for each.
    With ``trench_cables`` (which cables lie in which trench) the split is exact; without
    it, each trench is split by the compound shares of all the cables of its
    ``supply_id`` (an approximation: a trench near a box may carry only that box's
    cable). A trench no cable can be traced to is reported under the compound ``""``, so
    the totals always equal the frames' totals. Boxes whose ``status`` is ``energized``
    are left out, as in :func:`bill_of_quantities`.

    Parameters
    ----------
    meter_boxes
        The plan's boxes: ``compound_id``, ``cost_cny`` (``status`` if any).
    cables
        The plan's cables: ``cable_id``, ``supply_id``, ``compound_id``, ``cost_cny``.
    trenches
        The plan's trenches: ``trench_id``, ``supply_id``, ``cost_cny``.
    trench_cables
        Optional link table, one row per cable in a trench: ``trench_id``, ``cable_id``.

    Returns
    -------
    costs
        Columns ``compound_id``, ``box_cny``, ``cable_cny``, ``trench_cny``, ``cost_cny``
        (their sum); one row per compound, sorted by ``compound_id``.
    """
    shares = _trench_shares(cables, trenches, trench_cables)
    return _compound_costs(meter_boxes, cables, trenches, shares=shares)


def _compound_costs(
    meter_boxes: pd.DataFrame, cables: pd.DataFrame, trenches: pd.DataFrame, *, shares: pd.DataFrame
) -> pd.DataFrame:
    """:func:`costs_by_compound` with the trenches' ``shares`` (see :func:`_trench_shares`)."""
    boxes = _planned(meter_boxes)
    box_cny = _sum_by(boxes["compound_id"].astype(str), boxes["cost_cny"])
    cable_cny = _sum_by(cables["compound_id"].astype(str), cables["cost_cny"])
    split = (
        trenches[["trench_id", "cost_cny"]]
        .astype({"trench_id": object})  # (an empty layer reads it as float)
        .merge(shares.astype({"trench_id": object}), on="trench_id", how="left")
    )
    trench_cny = _sum_by(
        split["compound_id"].fillna(UNALLOCATED), split["cost_cny"] * split["share"].fillna(1.0)
    )

    costs = pd.concat(
        {"box_cny": box_cny, "cable_cny": cable_cny, "trench_cny": trench_cny}, axis=1
    )
    costs = costs.astype(float).fillna(0.0).sort_index()
    costs["cost_cny"] = costs["box_cny"] + costs["cable_cny"] + costs["trench_cny"]
    costs.index.name = "compound_id"
    return costs.reset_index().loc[:, list(COMPOUND_COST_COLUMNS)]
