"""The plan map: what is there (compounds, buildings, sheds, flying wires) and what is built.

One page for the district and one per compound. Each layer of the plan becomes one
GeoJson overlay; every text from the input is escaped before it reaches the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from ._page import (
    Field,
    Overlay,
    add_overlays,
    esc,
    geojson_overlay,
    legend,
    lonlat_bounds,
    new_map,
    render,
)

if TYPE_CHECKING:
    from geoplan.plan import Plan

    from ._index import PlanIndex

COLOURS = {
    "compound": "#4d4d4d",
    "building": "#b7b0a4",
    "building_edge": "#847c70",
    "block": "#dcb98f",
    "block_edge": "#8c6d46",
    "block_energized": "#8cc58a",
    "block_building": "#f2cf72",
    "trench": "#8d6e63",
    "wire": "#e41a1c",
    "wire_removed": "#9e9e9e",
    "supply": "#1a237e",
    "box": "#0b7a3b",
    "box_energized": "#7cb342",
    "unserved": "#d500f9",
}
# Colours of cable types, thinnest first (a visual palette, not engineering data).
CABLE_PALETTE = (
    "#1f78b4",
    "#33a02c",
    "#6a3d9a",
    "#ff7f00",
    "#17becf",
    "#b15928",
    "#e7298a",
    "#66a61e",
    "#386cb0",
    "#7570b3",
    "#a6761d",
    "#666666",
)
TRENCH_BUFFER_M = 0.5  # a trench belongs to a compound page when its cables run along it ...
TRENCH_MIN_M = 0.5  # ... for more than this length
LABELS = {
    "compounds": "小区 Compounds",
    "buildings": "楼栋 Buildings",
    "storage_blocks": "凉房 Storage blocks",
    "trenches": "电缆沟 Trenches",
    "cables": "新电缆 Planned cables",
    "flying_wires": "飞线 Flying wires (to remove)",
    "supply_points": "电源点 Supply points",
    "unserved": "未供电 Unserved blocks",
    "meter_boxes": "集体表箱 Meter boxes",
}


def column(frame: pd.DataFrame, name: str) -> list[object]:
    """Return a column as a list, or Nones when the frame lacks it."""
    if name in frame.columns:
        return frame[name].tolist()
    return [None] * len(frame)


def by_compound(summary: pd.DataFrame, ids: Sequence[str]) -> Callable[[str], list[object]]:
    """Return ``info(name)``: the summary's column ``name`` for each compound of ``ids``.

    A compound gets the summary's first row with its id (text), None where it has none:
    what a reindex of the summary by ``ids`` gives, without a frame made per page.
    """
    row_of: dict[str, int] = {}
    for i, c in enumerate(column(summary, "compound_id")):
        row_of.setdefault(str(c), i)

    def info(name: str) -> list[object]:
        values = column(summary, name)
        return [values[row_of[c]] if c in row_of else None for c in ids]

    return info


def number(value: object, digits: int = 0, unit: str = "") -> str:
    """Format a number for people (empty when missing)."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if math.isnan(x):
        return ""
    text = f"{x:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def cable_colours(cables: pd.DataFrame) -> dict[str, str]:
    """Give each cable type a colour, thinnest conductor first."""
    if cables.empty:
        return {}
    types = (
        cables[["cable_type", "cross_section_mm2"]]
        .astype({"cable_type": str})
        .drop_duplicates("cable_type")
        .sort_values(["cross_section_mm2", "cable_type"], kind="stable")
    )
    return {
        name: CABLE_PALETTE[i % len(CABLE_PALETTE)] for i, name in enumerate(types["cable_type"])
    }


def _polygon_style(fill: str, edge: str, opacity: float = 0.7, weight: float = 1.0) -> dict:
    return {"color": edge, "weight": weight, "fillColor": fill, "fillOpacity": opacity}


def _line_style(colour: str, weight: float, opacity: float = 0.9, dash: str | None = None) -> dict:
    style: dict[str, object] = {"color": colour, "weight": weight, "opacity": opacity}
    if dash:
        style["dashArray"] = dash
    return style


def _point_style(fill: str, edge: str = "#ffffff", weight: float = 1.5) -> dict:
    return {"color": edge, "weight": weight, "fill": True, "fillColor": fill, "fillOpacity": 1.0}


def _link(href: str | None, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>' if href else ""


def compound_overlay(
    compounds: gpd.GeoDataFrame, summary: pd.DataFrame, links: Mapping[str, str]
) -> Overlay:
    """Compounds with name, households, status, hazard and a link to their page.

    Without ``links`` (a page shown alone) the popups have no map row.
    """
    ids = [str(c) for c in column(compounds, "compound_id")]
    info = by_compound(summary, ids)
    fields = [
        Field("小区 compound", column(compounds, "name")),
        Field("编号 id", ids),
        Field("户数 households", [number(v) for v in column(compounds, "households")]),
        Field("状态 status", column(compounds, "status")),
        Field("表箱 boxes", [number(v) for v in info("boxes")]),
        Field(
            "隐患 hazard before → after",
            [
                f"{number(b, 1)} → {number(a, 1)}"
                for b, a in zip(info("hazard_before"), info("hazard_after"), strict=True)
            ],
        ),
        Field("优先 priority rank", [number(v) for v in info("priority_rank")]),
    ]
    if links:
        opens = [_link(links.get(c), "打开小区地图 open the compound map") for c in ids]
        fields.append(Field("地图 map", opens, tip=False, markup=True))
    return geojson_overlay(
        "compounds",
        LABELS["compounds"],
        compounds,
        fields=fields,
        popup=True,
        styles=[_polygon_style("#ffffff", COLOURS["compound"], opacity=0.25, weight=2.0)],
    )


def _building_overlay(buildings: gpd.GeoDataFrame) -> Overlay:
    fields = [
        Field("楼栋 building", column(buildings, "building_id")),
        Field("名称 name", column(buildings, "name")),
        Field("户数 households", [number(v) for v in column(buildings, "households")]),
        Field("层数 floors", [number(v) for v in column(buildings, "floors")]),
    ]
    return geojson_overlay(
        "buildings",
        LABELS["buildings"],
        buildings,
        fields=fields,
        styles=[_polygon_style(COLOURS["building"], COLOURS["building_edge"])],
    )


def _block_overlay(blocks: gpd.GeoDataFrame) -> Overlay:
    statuses = column(blocks, "status")
    fields = [
        Field("凉房 storage block", column(blocks, "block_id")),
        Field("间数 rooms", [number(v) for v in column(blocks, "units")]),
        Field("申请 applicants", [number(v) for v in column(blocks, "applicants")]),
        Field("状态 status", statuses),
    ]
    return geojson_overlay(
        "storage_blocks",
        LABELS["storage_blocks"],
        blocks,
        fields=fields,
        styles=[
            _polygon_style(COLOURS["block"], COLOURS["block_edge"]),
            _polygon_style(COLOURS["block_energized"], COLOURS["block_edge"]),
            _polygon_style(COLOURS["block_building"], COLOURS["block_edge"]),
        ],
        style_index=[
            1 if s == "energized" else 2 if s == "under_construction" else 0 for s in statuses
        ],
    )


def _trench_overlay(trenches: gpd.GeoDataFrame) -> Overlay:
    fields = [
        Field("电缆沟 trench", column(trenches, "trench_id")),
        Field("路面 surface", column(trenches, "surface")),
        Field("电缆数 cables", [number(v) for v in column(trenches, "n_cables")]),
        Field("长度 length", [number(v, 1, "m") for v in column(trenches, "length_m")]),
        Field("费用 cost", [number(v, 0, "CNY") for v in column(trenches, "cost_cny")]),
    ]
    return geojson_overlay(
        "trenches",
        LABELS["trenches"],
        trenches,
        fields=fields,
        styles=[_line_style(COLOURS["trench"], 8.0, opacity=0.35)],
    )


def _cable_overlay(cables: gpd.GeoDataFrame, colours: Mapping[str, str]) -> Overlay:
    types = list(colours)
    fields = [
        Field("电缆 cable", column(cables, "cable_id")),
        Field("型号 type", column(cables, "cable_type")),
        Field("长度 length", [number(v, 1, "m") for v in column(cables, "length_m")]),
        Field("压降 voltage drop", [number(v, 2, "%") for v in column(cables, "voltage_drop_pct")]),
        Field(
            "设计电流 design current",
            [number(v, 1, "A") for v in column(cables, "design_current_a")],
        ),
        Field("电源 supply", column(cables, "supply_id")),
        Field("提示 flags", column(cables, "flags")),
    ]
    index = [types.index(str(t)) if str(t) in colours else 0 for t in column(cables, "cable_type")]
    return geojson_overlay(
        "cables",
        LABELS["cables"],
        cables,
        fields=fields,
        styles=[_line_style(colours[t], 3.0) for t in types] or [_line_style("#1f78b4", 3.0)],
        style_index=index,
    )


def _wire_overlay(wires: gpd.GeoDataFrame, scores: Mapping[str, tuple[float, str]]) -> Overlay:
    ids = [str(w) for w in column(wires, "wire_id")]
    statuses = [s or "present" for s in column(wires, "status")]
    found = [scores.get(w, (float("nan"), "")) for w in ids]
    fields = [
        Field("飞线 flying wire", ids),
        Field("户数 households", [number(v) for v in column(wires, "households")]),
        Field("高度 height", [number(v, 1, "m") for v in column(wires, "height_m")]),
        Field("状态 status", statuses),
        Field("隐患分 hazard score", [number(s, 1) for s, _ in found]),
        Field("原因 reasons", [r.replace(";", ", ") for _, r in found]),
    ]
    return geojson_overlay(
        "flying_wires",
        LABELS["flying_wires"],
        wires,
        fields=fields,
        styles=[
            _line_style(COLOURS["wire"], 1.6),
            _line_style(COLOURS["wire_removed"], 1.2, opacity=0.7, dash="3 4"),
        ],
        style_index=[1 if s == "removed" else 0 for s in statuses],
    )


def _supply_overlay(supplies: gpd.GeoDataFrame) -> Overlay:
    fields = [
        Field("电源 supply", column(supplies, "supply_id")),
        Field("名称 name", column(supplies, "name")),
        Field("类型 kind", column(supplies, "kind")),
        Field("容量 capacity", [number(v, 0, "kVA") for v in column(supplies, "capacity_kva")]),
        Field("现有负荷 load", [number(v, 0, "kVA") for v in column(supplies, "load_kva")]),
    ]
    return geojson_overlay(
        "supply_points",
        LABELS["supply_points"],
        supplies,
        fields=fields,
        popup=True,
        styles=[_point_style(COLOURS["supply"])],
        radius=6.0,
    )


def positions_text(positions: object, used: object, reserved: object) -> str:
    """Return how a box's positions are shown: ``12 (used 9 / reserved 3)``."""
    return f"{number(positions)} (used {number(used)} / reserved {number(reserved)})"


def box_fields(boxes: pd.DataFrame, cables: pd.DataFrame) -> list[Field]:
    """Rows of a meter box's popup: id, block, positions used / reserved, its cable."""
    shown = {
        name: column(cables, name)
        for name in ("cable_type", "length_m", "voltage_drop_pct", "supply_id")
        if name in cables.columns
    }
    by_box = {
        str(b): {name: values[i] for name, values in shown.items()}
        for i, b in enumerate(column(cables, "box_id"))
    }
    feeds = [by_box.get(str(b), {}) for b in column(boxes, "box_id")]
    return [
        Field("表箱 meter box", column(boxes, "box_id")),
        Field("凉房 block", column(boxes, "block_id")),
        Field(
            "表位 positions",
            [
                positions_text(p, u, r)
                for p, u, r in zip(
                    column(boxes, "positions"),
                    column(boxes, "used"),
                    column(boxes, "reserved"),
                    strict=True,
                )
            ],
        ),
        Field("型号 model", column(boxes, "model"), tip=False),
        Field("相数 phases", [number(v) for v in column(boxes, "phases")], tip=False),
        Field(
            "设计负荷 design load",
            [number(v, 1, "kW") for v in column(boxes, "design_load_kw")],
            tip=False,
        ),
        Field("状态 status", column(boxes, "status"), tip=False),
        Field(
            "电缆 cable",
            [c.get("cable_type", "无 none (unserved)") for c in feeds],
            tip=False,
        ),
        Field(
            "电缆长度 cable length", [number(c.get("length_m"), 1, "m") for c in feeds], tip=False
        ),
        Field(
            "压降 voltage drop",
            [number(c.get("voltage_drop_pct"), 2, "%") for c in feeds],
            tip=False,
        ),
        Field("电源 supply", [c.get("supply_id") for c in feeds], tip=False),
    ]


def _box_overlay(boxes: gpd.GeoDataFrame, cables: pd.DataFrame) -> Overlay:
    return geojson_overlay(
        "meter_boxes",
        LABELS["meter_boxes"],
        boxes,
        fields=box_fields(boxes, cables),
        popup=True,
        styles=[_point_style(COLOURS["box"]), _point_style(COLOURS["box_energized"])],
        style_index=[1 if s == "energized" else 0 for s in column(boxes, "status")],
        radius=6.0,
    )


def _unserved_overlay(unserved: gpd.GeoDataFrame) -> Overlay:
    fields = [
        Field("未供电 unserved block", column(unserved, "block_id")),
        Field("表箱 box", column(unserved, "box_id")),
        Field("原因 reason", column(unserved, "reason")),
        Field("处理 what to do", column(unserved, "detail")),
    ]
    style = {"color": COLOURS["unserved"], "weight": 3.0, "fill": False, "opacity": 1.0}
    return geojson_overlay(
        "unserved",
        LABELS["unserved"],
        unserved,
        fields=fields,
        popup=True,
        styles=[style],
        radius=10.0,
    )


def wire_scores(plan: Plan) -> dict[str, tuple[float, str]]:
    """Return ``{wire_id: (hazard score, reasons)}`` for every flying wire of the plan.

    The plan's removals carry the scores of the present wires; wires already removed
    score 0. When some present wires are missing from the removals, all wires are
    scored with :func:`geoplan.hazards.score_wires` (scoring only: the plan is not
    recomputed).
    """
    wires = plan.layers["flying_wires"]
    removals = plan.removals
    scores = {
        str(w): (0.0, "removed")
        for w, s in zip(column(wires, "wire_id"), column(wires, "status"), strict=True)
        if str(s).strip().lower() == "removed"
    }
    scores.update(
        (str(w), (float(s), str(r or "")))  # type: ignore[arg-type] # scores are numbers
        for w, s, r in zip(
            column(removals, "wire_id"),
            column(removals, "hazard_score"),
            column(removals, "reasons"),
            strict=True,
        )
    )
    if all(str(w) in scores for w in column(wires, "wire_id")):
        return scores
    from geoplan.hazards import score_wires

    scored = score_wires(wires, corridors=plan.layers["corridors"], settings=plan.settings)
    return {
        str(w): (float(s), str(r))
        for w, s, r in zip(
            scored["wire_id"], scored["hazard_score"], scored["reasons"], strict=True
        )
    }


def _in_compound(frame: gpd.GeoDataFrame, compound_id: str | None) -> gpd.GeoDataFrame:
    if compound_id is None or "compound_id" not in frame.columns:
        return frame
    return frame[frame["compound_id"].astype(str) == compound_id]


def _select(plan: Plan, compound_id: str | None) -> dict[str, gpd.GeoDataFrame]:
    """Return the frames to draw: everything, or what belongs to one compound."""
    layers = plan.layers
    frames = {
        "compounds": _in_compound(layers["compounds"], compound_id),
        "buildings": _in_compound(layers["buildings"], compound_id),
        "storage_blocks": _in_compound(layers["storage_blocks"], compound_id),
        "flying_wires": _in_compound(layers["flying_wires"], compound_id),
        "cables": _in_compound(plan.cables, compound_id),
        "meter_boxes": _in_compound(plan.meter_boxes, compound_id),
        "unserved": _in_compound(plan.unserved, compound_id),
        "trenches": plan.trenches,
        "supply_points": layers["supply_points"],
    }
    if compound_id is None:
        return frames
    cables = frames["cables"]
    supplies = layers["supply_points"]
    area = frames["compounds"].geometry.union_all()
    feeding = supplies["supply_id"].astype(str).isin(set(cables["supply_id"].astype(str)))
    frames["supply_points"] = supplies[feeding | supplies.intersects(area)]
    trenches = plan.trenches
    if len(cables) and len(trenches):
        along = cables.geometry.union_all().buffer(TRENCH_BUFFER_M)
        frames["trenches"] = trenches[trenches.intersection(along).length > TRENCH_MIN_M]
    else:
        frames["trenches"] = trenches.iloc[:0]
    return frames


def _bounds(frames: Mapping[str, gpd.GeoDataFrame], crs: object) -> list[float]:
    parts = [np.asarray(f.geometry.array, dtype=object) for f in frames.values() if len(f)]
    if not parts:
        return [106.8, 39.6, 106.9, 39.7]
    return [float(v) for v in lonlat_bounds(np.concatenate(parts), crs)]


def plan_page(
    plan: Plan,
    *,
    compound_id: str | None = None,
    title: str,
    links: Mapping[str, str],
    back_links: Sequence[tuple[str, str]],
    tiles: str | None,
    index: PlanIndex | None = None,
    assets: str | None = None,
) -> tuple[str, dict[str, int]]:
    """Render the plan map of the district (``compound_id=None``) or of one compound.

    Parameters
    ----------
    plan
        The plan to draw.
    compound_id
        The compound to draw, or None for all.
    title
        Page title (escaped here).
    links
        ``{compound_id: relative link}`` to each compound's page (popups of compounds);
        empty: the popups have no map row.
    back_links
        (href, text) links shown in the legend; empty: none.
    tiles
        None for a plain offline background, else a folium tiles name or URL.
    index
        The plan's :class:`~geoplan.maps._index.PlanIndex`, when many pages of one plan
        are drawn: the work every page shares is then done once.
    assets
        None to inline Leaflet; a relative folder holding the files of
        :func:`~geoplan.maps._page.asset_texts` to link to them instead.

    Returns
    -------
    html
        The page.
    counts
        Features drawn per overlay key.
    """
    summary, box_cables = plan.summary, plan.cables
    if index is None:
        frames = _select(plan, compound_id)
        colours, scores = cable_colours(plan.cables), wire_scores(plan)
    else:
        colours, scores = index.colours, index.scores
        if compound_id is None:
            frames = _select(plan, None)
        else:
            frames = index.frames(compound_id)
            summary, box_cables = index.summary(compound_id), index.box_cables(compound_id)
    fmap = new_map(_bounds(frames, plan.crs), tiles=tiles)
    builders = {
        "compounds": lambda f: compound_overlay(f, summary, links),
        "buildings": _building_overlay,
        "storage_blocks": _block_overlay,
        "trenches": _trench_overlay,
        "cables": lambda f: _cable_overlay(f, colours),
        "flying_wires": lambda f: _wire_overlay(f, scores),
        "supply_points": _supply_overlay,
        "unserved": _unserved_overlay,
        "meter_boxes": lambda f: _box_overlay(f, box_cables),
    }
    overlays = [build(frames[key]) for key, build in builders.items() if len(frames[key])]
    add_overlays(fmap, overlays)
    present_types = (
        set(frames["cables"]["cable_type"].astype(str)) if len(frames["cables"]) else set()
    )
    items = [
        ("box", "#ffffff", LABELS["compounds"]),
        ("box", COLOURS["building"], LABELS["buildings"]),
        ("box", COLOURS["block"], "凉房 Storage block"),
        ("box", COLOURS["block_energized"], "凉房 已通电 Storage block, energized"),
        ("line", COLOURS["wire"], "飞线 Flying wire, to remove"),
        ("line", COLOURS["wire_removed"], "飞线 已拆 Flying wire, removed"),
        ("line", COLOURS["trench"], LABELS["trenches"]),
        *(("line", colours[t], f"电缆 {t}") for t in colours if t in present_types),
        ("dot", COLOURS["box"], LABELS["meter_boxes"]),
        ("dot", COLOURS["supply"], LABELS["supply_points"]),
        ("dot", COLOURS["unserved"], LABELS["unserved"]),
    ]
    page = render(
        fmap,
        title=title,
        legend_html=legend(title, items, back_links),
        tiles=tiles,
        assets=assets,
    )
    return page, {o.key: o.count for o in overlays}
