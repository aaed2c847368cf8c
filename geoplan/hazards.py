"""Flying-wire hazards: score each wire, sum per compound, rank compounds for priority.

A flying wire (飞线) breaks the rules for a low-voltage service drop when it is longer
than the allowed span, hangs lower than the minimum height, is bare, crosses a road or a
walkway, or is shared by several households. Each broken rule adds its weight from the
catalogue's ``[hazards]`` section to the wire's score and its code to ``reasons``:

==================  ===================================================================
code                rule (catalogue key)
==================  ===================================================================
long_span           length over ``max_span_m``
very_long_span      length over ``max_span_with_pole_m`` too (adds to long_span)
low                 ``height_m`` under ``min_height_m``
unknown_height      no ``height_m`` surveyed
uninsulated         ``insulated`` is false
crosses_corridor    crosses a corridor of a kind in ``corridor_kinds``, once per corridor
shared              ``households`` over one, per extra household
removed             the wire is already gone (status ``removed``); it scores 0
==================  ===================================================================

Every wire still in place also scores ``weight_present``: an unauthorised service drop
is a hazard even when it breaks none of the rules above.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import CRSError
from .settings import Settings

logger = logging.getLogger(__name__)

REASONS: tuple[str, ...] = (
    "long_span",
    "very_long_span",
    "low",
    "unknown_height",
    "uninsulated",
    "crosses_corridor",
    "shared",
    "removed",
)
"""The fixed vocabulary of ``reasons`` codes, in the order they are joined."""

_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "bare"})


def _insulated(values: pd.Series) -> pd.Series:
    """Read an ``insulated`` column as a nullable boolean (unknown → <NA>)."""

    def one(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return pd.NA
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | float | np.integer | np.floating):
            return bool(value)
        word = str(value).strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        return pd.NA

    return pd.Series([one(v) for v in values], index=values.index, dtype="boolean")


def count_crossings(
    wires: gpd.GeoSeries, corridors: gpd.GeoSeries, *, corridor_ids: pd.Series | None = None
) -> np.ndarray:
    """Count the corridors each wire crosses.

    A wire crosses a corridor when they meet anywhere but at the wire's own ends (a wire
    that ends on a walkway does not span it). Pairs come from one vectorised tree query:
    the tree holds the wires, usually far fewer than the corridors.

    Parameters
    ----------
    wires
        Wire lines, in the same CRS as ``corridors``.
    corridors
        Corridor lines.
    corridor_ids
        Ids of the corridors (aligned with ``corridors``); a corridor split into several
        lines under one id counts once. Defaults to the row position.

    Returns
    -------
    crossings
        One count per wire, in the order of ``wires``.
    """
    counts = np.zeros(len(wires), dtype="int64")
    if len(wires) == 0 or len(corridors) == 0:
        return counts
    wire_geoms = np.asarray(wires.array, dtype=object)
    corridor_geoms = np.asarray(corridors.array, dtype=object)
    corridor_pos, wire_pos = shapely.STRtree(wire_geoms).query(
        corridor_geoms, predicate="intersects"
    )
    if not len(wire_pos):
        return counts
    meets = shapely.intersection(wire_geoms[wire_pos], corridor_geoms[corridor_pos])
    at_ends = shapely.covered_by(meets, shapely.boundary(wire_geoms)[wire_pos])
    ids = np.arange(len(corridors)) if corridor_ids is None else corridor_ids.astype(str).to_numpy()
    crossing = pd.DataFrame({"wire": wire_pos[~at_ends], "corridor": ids[corridor_pos[~at_ends]]})
    per_wire = crossing.drop_duplicates().groupby("wire").size()
    counts[per_wire.index.to_numpy()] = per_wire.to_numpy()
    return counts


def score_wires(
    wires: gpd.GeoDataFrame, *, corridors: gpd.GeoDataFrame, settings: Settings
) -> gpd.GeoDataFrame:
    """Score each flying wire by the service-drop rules it breaks.

    Parameters
    ----------
    wires
        The ``flying_wires`` layer in a projected metric CRS; optional columns used:
        ``households``, ``height_m``, ``insulated``, ``status``.
    corridors
        The ``corridors`` layer (reprojected to the wires' CRS if need be); when it has a
        ``kind`` column only the kinds in ``[hazards] corridor_kinds`` count as crossings.
    settings
        The run's settings; weights and limits come from its catalogue's ``[hazards]``.

    Returns
    -------
    scored
        A copy of ``wires`` with ``length_m``, ``corridor_crossings``, ``hazard_score``
        and ``reasons`` (codes of :data:`REASONS` joined by ``;``, empty when the wire
        breaks no rule).

    Raises
    ------
    CRSError
        The wires have no CRS or a geographic one.
    """
    if wires.crs is None or not wires.crs.is_projected:
        msg = "flying wires must be in a projected metric CRS to score them; read them with "
        raise CRSError(msg + "geoplan.layers.read_layers")
    cat = settings.catalogue
    figure = {
        key: cat.value("hazards", key)
        for key in (
            "max_span_m",
            "max_span_with_pole_m",
            "min_height_m",
            "weight_present",
            "weight_long_span",
            "weight_very_long_span",
            "weight_low",
            "weight_unknown_height",
            "weight_uninsulated",
            "weight_crosses_corridor",
            "weight_per_extra_household",
        )
    }
    kinds = tuple(cat.value("hazards", "corridor_kinds"))

    out = wires.copy()
    n = len(out)
    index = out.index
    length_m = pd.Series(out.geometry.length.to_numpy(dtype="float64"), index=index)

    counted = corridors
    if len(counted) and "kind" in counted.columns:
        counted = counted[counted["kind"].isin(kinds)]
    if len(counted) and counted.crs != out.crs:
        counted = counted.to_crs(out.crs)
    ids = counted["corridor_id"] if "corridor_id" in counted.columns else None
    crossings = pd.Series(count_crossings(out.geometry, counted.geometry, corridor_ids=ids), index)

    def column(name: str) -> pd.Series:
        if name in out.columns:
            return out[name]
        return pd.Series([pd.NA] * n, index=index, dtype="object")

    height_m = pd.to_numeric(column("height_m"), errors="coerce").astype("float64")
    households = pd.to_numeric(column("households"), errors="coerce").fillna(1).clip(lower=1)
    insulated = _insulated(column("insulated"))
    removed = column("status").astype("string").str.strip().str.lower().eq("removed")
    removed = removed.fillna(False).astype(bool)

    rules: dict[str, tuple[pd.Series, pd.Series | float]] = {
        "long_span": (length_m > figure["max_span_m"], figure["weight_long_span"]),
        "very_long_span": (
            length_m > figure["max_span_with_pole_m"],
            figure["weight_very_long_span"],
        ),
        "low": (height_m < figure["min_height_m"], figure["weight_low"]),
        "unknown_height": (height_m.isna(), figure["weight_unknown_height"]),
        "uninsulated": (
            insulated.eq(False).fillna(False).astype(bool),
            figure["weight_uninsulated"],
        ),
        "crosses_corridor": (crossings > 0, crossings * figure["weight_crosses_corridor"]),
        "shared": (households > 1, (households - 1) * figure["weight_per_extra_household"]),
    }
    score = pd.Series(float(figure["weight_present"]), index=index)
    broken_rules: dict[str, np.ndarray] = {}
    for code, (rule, weight) in rules.items():
        broken = (rule.astype(bool) & ~removed).to_numpy()
        score = score + np.where(broken, weight, 0.0)
        broken_rules[code] = broken
    score[removed] = 0.0
    broken_rules["removed"] = removed.to_numpy()

    out["length_m"] = length_m.round(2)
    out["corridor_crossings"] = crossings.astype("int64")
    out["hazard_score"] = score.astype("float64")
    out["reasons"] = _reasons(broken_rules)
    logger.info(
        "scored %d flying wires: %d present, total hazard %.1f",
        n,
        int((~removed).sum()),
        float(out["hazard_score"].sum()),
    )
    return out


def _reasons(broken: dict[str, np.ndarray]) -> np.ndarray:
    """Return the codes of :data:`REASONS` each wire breaks, joined by ``;`` in that order.

    ``broken`` holds one boolean array per code; each distinct combination is joined once.
    """
    combination = np.zeros(len(broken[REASONS[0]]), dtype=np.int64)
    for bit, code in enumerate(REASONS):
        combination |= broken[code].astype(np.int64) << bit
    kinds, inverse = np.unique(combination, return_inverse=True)
    joined = [";".join(c for bit, c in enumerate(REASONS) if k >> bit & 1) for k in kinds]
    return np.array(joined, dtype=object)[inverse]


def compound_hazard(
    scored_wires: gpd.GeoDataFrame,
    compounds: gpd.GeoDataFrame,
    *,
    removed_wire_ids: pd.Series | None = None,
) -> pd.DataFrame:
    """Sum the wires' hazard per compound.

    Parameters
    ----------
    scored_wires
        The output of :func:`score_wires`.
    compounds
        The ``compounds`` layer; every compound gets a row, with or without wires.
    removed_wire_ids
        Ids of the wires a plan takes down. Without them, every present wire is counted
        as removed (the field practice: a compound's wires all go when it is built).

    Returns
    -------
    hazard
        One row per compound, sorted by ``compound_id``: ``compound_id``,
        ``wires_present``, ``wires_removed`` (already gone before the plan),
        ``hazard_index`` (sum of the scores of present wires), ``hazard_removed`` (the
        part of it the plan takes away) and ``hazard_after``.
    """
    ids = compounds["compound_id"].astype(str).sort_values(kind="stable").drop_duplicates()
    wires = pd.DataFrame(
        {
            "compound_id": scored_wires["compound_id"].astype(str).to_numpy(),
            "score": scored_wires["hazard_score"].to_numpy(dtype="float64"),
            "gone": scored_wires["reasons"]
            .astype(str)
            .str.contains("removed", regex=False)
            .to_numpy(),
        }
    )
    if removed_wire_ids is None:
        wires["taken"] = ~wires["gone"]
    else:
        taken = set(pd.Series(removed_wire_ids).astype(str))
        wires["taken"] = scored_wires["wire_id"].astype(str).isin(taken).to_numpy() & ~wires["gone"]
    wires["present"] = ~wires["gone"]
    wires["score_present"] = np.where(wires["present"], wires["score"], 0.0)
    wires["score_taken"] = np.where(wires["taken"], wires["score"], 0.0)
    per = wires.groupby("compound_id").agg(
        wires_present=("present", "sum"),
        wires_removed=("gone", "sum"),
        hazard_index=("score_present", "sum"),
        hazard_removed=("score_taken", "sum"),
    )
    out = per.reindex(ids.to_numpy()).fillna(0)
    out.index.name = "compound_id"
    out = out.reset_index()
    for name in ("wires_present", "wires_removed"):
        out[name] = out[name].astype("int64")
    for name in ("hazard_index", "hazard_removed"):
        out[name] = out[name].astype("float64")
    out["hazard_after"] = (out["hazard_index"] - out["hazard_removed"]).clip(lower=0.0)
    return out


def rank_priority(hazard: pd.DataFrame, cost_cny: pd.Series | None = None) -> pd.DataFrame:
    """Rank compounds: most hazard removed per yuan first, or most hazard without costs.

    Parameters
    ----------
    hazard
        The output of :func:`compound_hazard` (``hazard_removed`` is used when present,
        else ``hazard_index``).
    cost_cny
        Cost of each compound's works, indexed by ``compound_id``. A compound without a
        cost, or with a cost of zero and no hazard, ranks after those that have one.

    Returns
    -------
    ranked
        A copy sorted by ``priority_rank`` (1 = first), with ``hazard_per_kcny`` (hazard
        removed per thousand yuan; NaN without costs) and ``cost_cny`` when costs are given.
        Ties are broken by ``compound_id``.
    """
    out = hazard.copy()
    out["compound_id"] = out["compound_id"].astype(str)
    gain = (out["hazard_removed"] if "hazard_removed" in out else out["hazard_index"]).astype(
        "float64"
    )
    if cost_cny is None:
        out["hazard_per_kcny"] = np.nan
        keys = [-gain.to_numpy()]
    else:
        costs = pd.Series(cost_cny, dtype="float64")
        costs.index = costs.index.astype(str)
        cost = out["compound_id"].map(costs).astype("float64")
        out["cost_cny"] = cost
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(cost > 0, gain / (cost / 1000.0), np.where(gain > 0, np.inf, 0.0))
        ratio = np.where(cost.isna(), np.nan, ratio)
        out["hazard_per_kcny"] = ratio
        # NaN ratios (no cost) sort last; then more hazard first.
        keys = [np.where(np.isnan(ratio), np.inf, -ratio), -gain.to_numpy()]
    order = np.lexsort([out["compound_id"].to_numpy(), *reversed(keys)])
    out = out.iloc[order].reset_index(drop=True)
    out["priority_rank"] = np.arange(1, len(out) + 1, dtype="int64")
    return out
