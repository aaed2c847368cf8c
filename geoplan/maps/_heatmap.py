"""The hazard heatmap: flying-wire hazard weighted by score, with each compound's index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import HeatMap

from ._page import (
    COORDINATE_DECIMALS,
    Field,
    Overlay,
    add_overlays,
    esc,
    geojson_overlay,
    legend,
    lonlat,
    new_map,
    render,
)
from ._planmap import COLOURS, LABELS, _bounds, by_compound, column, number, wire_scores

if TYPE_CHECKING:
    from geoplan.plan import Plan

HEAT_STEP_M = 5.0  # a wire is sampled every few metres so its whole span glows
HEAT_RADIUS_PX = 18
HEAT_BLUR_PX = 14
HEAT_MIN_OPACITY = 0.35  # leaflet.heat's faintest glow
HEAT_MAX_ZOOM = 17  # zoom at which a point glows fully
HEAT_SWATCH = "linear-gradient(90deg,blue,cyan,lime,yellow,red)"  # leaflet.heat's gradient
INDEX_CLASSES = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")  # low → high


def heat_points(wires: gpd.GeoDataFrame, scores: Sequence[float]) -> list[list[float]]:
    """Return ``[lat, lon, weight]`` points along each wire, weighted by its score.

    Wires scoring zero (removed) give no points.
    """
    keep = np.asarray(scores, dtype="float64") > 0
    wires = wires[keep]
    weights = np.asarray(scores, dtype="float64")[keep]
    if wires.empty:
        return []
    lengths = wires.geometry.length.to_numpy()
    counts = np.maximum(1, np.ceil(lengths / HEAT_STEP_M).astype(int)) + 1
    owner = np.repeat(np.arange(len(wires)), counts)
    fractions = np.concatenate([np.linspace(0.0, 1.0, n) for n in counts])
    points = shapely.line_interpolate_point(
        wires.geometry.to_numpy()[owner], fractions, normalized=True
    )
    xy = np.round(shapely.get_coordinates(lonlat(points, wires.crs)), COORDINATE_DECIMALS)
    return [
        [float(lat), float(lon), round(float(w), 2)]
        for (lon, lat), w in zip(xy, weights[owner], strict=True)
    ]


def wire_hazards(wires: gpd.GeoDataFrame, scores: Mapping[str, tuple[float, str]]) -> list[float]:
    """Return each wire's hazard score from :func:`wire_scores` (0 for a wire without one)."""
    return [scores.get(str(w), (0.0, ""))[0] for w in column(wires, "wire_id")]


def hazard_after(
    wires: gpd.GeoDataFrame, now: Sequence[float], removals: pd.DataFrame
) -> list[float]:
    """Return each wire's hazard score once the plan is built: 0 for the wires it takes down.

    ``now`` is each wire's score today (:func:`wire_hazards`), ``removals`` the plan's. A
    removal without a meter box (its block stays unserved) leaves its wire up.
    """
    if "box_id" in removals.columns:
        removals = removals[removals["box_id"].fillna("").astype(str) != ""]
    gone = {str(w) for w in column(removals, "wire_id")}
    return [
        0.0 if str(w) in gone else s for w, s in zip(column(wires, "wire_id"), now, strict=True)
    ]


def _classes(values: pd.Series) -> tuple[list[int], list[float]]:
    """Split hazard indices into equal-count classes; return class per value and limits."""
    positive = values[values > 0]
    if positive.empty:
        return [0] * len(values), []
    limits = sorted({float(q) for q in np.quantile(positive, [0.2, 0.4, 0.6, 0.8])})
    return [int(np.searchsorted(limits, v, side="right")) if v > 0 else 0 for v in values], limits


def _index_overlay(
    compounds: gpd.GeoDataFrame, summary: pd.DataFrame, links: Mapping[str, str]
) -> tuple[Overlay, list[float]]:
    ids = [str(c) for c in column(compounds, "compound_id")]
    info = by_compound(summary, ids)
    before = pd.to_numeric(pd.Series(info("hazard_before")), errors="coerce").fillna(0.0)
    classes, limits = _classes(before)
    fields = [
        Field("小区 compound", column(compounds, "name")),
        Field("编号 id", ids),
        Field("隐患指数 hazard index", [number(v, 1) for v in before]),
        Field("方案后 after the plan", [number(v, 1) for v in info("hazard_after")]),
        Field("优先 priority rank", [number(v) for v in info("priority_rank")]),
        Field(
            "地图 map",
            [
                f'<a href="{esc(links[c])}">打开小区地图 open the compound map</a>'
                if c in links
                else ""
                for c in ids
            ],
            tip=False,
            markup=True,
        ),
    ]
    styles = [
        {"color": COLOURS["compound"], "weight": 1.5, "fillColor": c, "fillOpacity": 0.35}
        for c in INDEX_CLASSES
    ]
    overlay = geojson_overlay(
        "compounds",
        "小区隐患指数 Compound hazard index",
        compounds,
        fields=fields,
        popup=True,
        styles=styles,
        style_index=classes,
    )
    return overlay, limits


def heatmap_page(
    plan: Plan,
    *,
    title: str,
    links: Mapping[str, str],
    back_links: Sequence[tuple[str, str]],
    tiles: str | None,
    scores: Mapping[str, tuple[float, str]] | None = None,
) -> tuple[str, dict[str, int]]:
    """Render the hazard heatmap page.

    ``scores`` are the plan's :func:`wire_scores` when the caller has them already
    (:class:`~geoplan.maps._index.PlanIndex`); None works them out here.

    Returns
    -------
    html
        The page.
    counts
        Features drawn per overlay key (``heat`` counts heat points).
    """
    layers = plan.layers
    wires = layers["flying_wires"]
    wire_score = wire_hazards(wires, wire_scores(plan) if scores is None else scores)
    after = hazard_after(wires, wire_score, plan.removals)
    fmap = new_map(
        _bounds({"compounds": layers["compounds"], "wires": wires}, plan.crs), tiles=tiles
    )

    overlays: list[Overlay] = []
    limits: list[float] = []
    if len(layers["compounds"]):
        index_overlay, limits = _index_overlay(layers["compounds"], plan.summary, links)
        overlays.append(index_overlay)
    now = heat_points(wires, wire_score)
    heat_options = {
        "radius": HEAT_RADIUS_PX,
        "blur": HEAT_BLUR_PX,
        "min_opacity": HEAT_MIN_OPACITY,
        "max_zoom": HEAT_MAX_ZOOM,
    }
    if now:
        layer = HeatMap(now, name="隐患热力 Hazard now", **heat_options)
        overlays.append(Overlay("heat", "隐患热力 Hazard now", layer, len(now)))
    later = heat_points(wires, after)
    if later:
        label = "方案后残余 Hazard left after the plan"
        layer = HeatMap(later, name=label, show=False, **heat_options)
        overlays.append(Overlay("heat_after", label, layer, len(later)))
    if len(wires):
        fields = [
            Field("飞线 flying wire", column(wires, "wire_id")),
            Field("隐患分 hazard score", [number(s, 1) for s in wire_score]),
        ]
        overlays.append(
            geojson_overlay(
                "flying_wires",
                LABELS["flying_wires"],
                wires,
                fields=fields,
                styles=[{"color": COLOURS["wire"], "weight": 1.0, "opacity": 0.8}],
                show=False,
            )
        )
    add_overlays(fmap, overlays)

    edges = [0.0, *limits]
    items = [
        ("box", colour, f"指数 index ≥ {number(edge, 1)}")
        for colour, edge in zip(INDEX_CLASSES, edges, strict=False)
    ]
    items.append(("box", HEAT_SWATCH, "热力 heat: 飞线隐患分 wire hazard score"))
    page = render(
        fmap,
        title=title,
        legend_html=legend(title, items, back_links),
        heat=True,
        tiles=tiles,
    )
    return page, {o.key: o.count for o in overlays}
