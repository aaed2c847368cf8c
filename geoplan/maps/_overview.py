"""City overview pages: one marker per compound and a hazard heatmap, never every line.

At city scale (tens of thousands of compounds, a million trench sections) drawing every
feature makes pages of hundreds of megabytes that no browser opens. The overview draws
one CircleMarker per compound (sized by its meter boxes, coloured by priority or hazard,
a popup with its figures from ``plan.summary`` and a link to its page), a ring where
blocks stay unserved and a heatmap of flying-wire hazard summed on a coarse grid.

The figures travel as one compact JSON table read by a small script of geoplan's own
(no per-feature GeoJSON), and every text in it is escaped in Python first, as on the
other pages. The page grows with the number of compounds, not with cables or trenches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._dashboard import STATUS_LABELS
from ._heatmap import (
    HEAT_BLUR_PX,
    HEAT_MAX_ZOOM,
    HEAT_MIN_OPACITY,
    HEAT_RADIUS_PX,
    HEAT_SWATCH,
    INDEX_CLASSES,
    _classes,
    hazard_after,
    wire_hazards,
)
from ._page import (
    Overlay,
    ScriptLayer,
    add_overlays,
    esc,
    legend,
    lonlat,
    new_map,
    render,
    script_json,
)
from ._planmap import COLOURS, _bounds, by_compound, column, number, wire_scores

if TYPE_CHECKING:
    from geoplan.plan import Plan

OVERVIEW_DECIMALS = 5  # about 1 m: plenty to place a compound, and small
HEAT_CELL_M = 10.0  # flying-wire hazard is summed on a grid this fine
HEAT_MAX_QUANTILE = 0.95  # cells at or above this quantile of hazard glow fully
MARKER_RADIUS_PX = (3.0, 1.5, 14.0)  # radius = min(max, base + step * sqrt(boxes))
MARKER_SHRINK = (16, 0.3)  # full size from this zoom; halved every 2 levels out, to this floor
RING_FROM_ZOOM = 13  # rings round compounds with unserved blocks: drawn from this zoom
PRIORITY_CLASSES = ("#00441b", "#1b7837", "#5aae61", "#a6dba0", "#e7f5e4")  # first → last
PRIORITY_NAMES = ("前 20% top fifth", "20–40%", "40–60%", "60–80%", "后 20% last fifth")
NO_CLASS = "#bdbdbd"  # compounds without a rank (nothing to build)

Focus = Literal["plan", "hazard"]

# The overview's own script: builds the markers from the JSON table, popups on demand.
OVERVIEW_JS = """
window.geoplanOverview = (function () {
  function num(v, d) {
    if (v === null || v === undefined) return '';
    return v.toLocaleString('en-US', {minimumFractionDigits: d, maximumFractionDigits: d});
  }
  function table(rows) {
    return '<div class="gp-pop"><table>' + rows.map(function (r) {
      return '<tr><th>' + r[0] + '</th><td>' + r[1] + '</td></tr>';
    }).join('') + '</table></div>';
  }
  function reader(data) {
    var c = {};
    data.columns.forEach(function (k, i) { c[k] = i; });
    return function (row, k) { return row[c[k]]; };
  }
  function popup(data, get, row) {
    var L_ = data.labels, href = get(row, 'href');
    var status = get(row, 'status');
    return table([
      [L_.name, get(row, 'name')],
      [L_.id, get(row, 'id')],
      [L_.status, status === null ? '' : data.statuses[status]],
      [L_.households, num(get(row, 'households'), 0)],
      [L_.applicants, num(get(row, 'applicants'), 0)],
      [L_.boxes, num(get(row, 'boxes'), 0)],
      [L_.positions, num(get(row, 'used'), 0) + ' / ' + num(get(row, 'reserved'), 0)],
      [L_.cable, num(get(row, 'cable_m'), 0) + ' m'],
      [L_.trench, num(get(row, 'trench_m'), 0) + ' m'],
      [L_.cost, num(get(row, 'cost_cny'), 0)],
      [L_.hazard, num(get(row, 'hazard_before'), 1) + ' → ' + num(get(row, 'hazard_after'), 1)],
      [L_.rank, num(get(row, 'priority_rank'), 0)],
      [L_.unserved, num(get(row, 'unserved_blocks'), 0)],
      [L_.map, href === null ? '' :
        '<a href="' + data.href[0] + href + data.href[1] + '">' + L_.open + '</a>']
    ]);
  }
  function tooltip(data, get, row) {
    return table([[data.labels.name, get(row, 'name')], [data.labels.id, get(row, 'id')]]);
  }
  function group(data, markers) {
    var get = reader(data), layer = L.featureGroup(markers);
    layer.bindTooltip(function (m) { return tooltip(data, get, m.row); }, {sticky: true});
    layer.bindPopup(function (m) { return popup(data, get, m.row); }, {maxWidth: 600});
    return layer;
  }
  var renderer = null;
  function canvas() { return renderer || (renderer = L.canvas({padding: 0.5})); }
  function zoomed(layer, o) {
    // Markers shrink when zoomed out (down to o.shrink[1] of their size), so a city stays
    // legible; below zoom o.from (if given) they are not drawn.
    var map = null, size = null, visible = true;
    function resize() {
      var z = map.getZoom(), show = !(o.from && z < o.from);
      var f = Math.max(o.shrink[1], Math.min(1, Math.pow(2, (z - o.shrink[0]) / 2)));
      if (show !== visible) {
        visible = show;
        layer.eachLayer(function (m) {
          m.options.interactive = show;  // the canvas renderer reads it on every event
          m.setStyle({opacity: show ? m.options.on : 0});
        });
      }
      if (f !== size) {
        size = f;
        layer.eachLayer(function (m) { m.setRadius(m.base * f); });
      }
    }
    layer.on('add', function () { map = layer._map; map.on('zoomend', resize); resize(); });
    layer.on('remove', function () { if (map) map.off('zoomend', resize); });
    return layer;
  }
  return {
    dots: function (data, o) {
      var get = reader(data), markers = [];
      data.rows.forEach(function (row) {
        var boxes = get(row, 'boxes') || 0;
        var r = Math.min(o.radius[2], o.radius[0] + o.radius[1] * Math.sqrt(boxes));
        var style = Object.assign({renderer: canvas(), radius: r}, o.styles[get(row, o.by)]);
        var m = L.circleMarker([get(row, 'lat'), get(row, 'lon')], style);
        m.row = row;
        m.base = r;
        markers.push(m);
      });
      return zoomed(group(data, markers), o);
    },
    rings: function (data, o) {
      var get = reader(data), markers = [];
      data.rows.forEach(function (row) {
        var n = get(row, 'unserved_blocks') || 0;
        if (n <= 0) return;
        var r = Math.min(o.radius[2] + 4, o.radius[0] + 3 + o.radius[1] * Math.sqrt(n));
        var m = L.circleMarker([get(row, 'lat'), get(row, 'lon')],
          Object.assign({renderer: canvas(), radius: r, on: o.style.opacity}, o.style));
        m.row = row;
        m.base = r;
        markers.push(m);
      });
      return zoomed(group(data, markers), o);
    }
  };
})();
"""

COLUMNS = (
    "lat",
    "lon",
    "priority_class",
    "hazard_class",
    "name",
    "id",
    "status",
    "households",
    "applicants",
    "boxes",
    "used",
    "reserved",
    "cable_m",
    "trench_m",
    "cost_cny",
    "hazard_before",
    "hazard_after",
    "priority_rank",
    "unserved_blocks",
    "href",
)
LABELS = {
    "name": "小区 compound",
    "id": "编号 id",
    "status": "状态 status",
    "households": "户数 households",
    "applicants": "申请 applicants",
    "boxes": "表箱 meter boxes",
    "positions": "表位 used / reserved",
    "cable": "电缆 cable",
    "trench": "电缆沟 trench",
    "cost": "费用 cost, CNY",
    "hazard": "隐患 hazard before → after",
    "rank": "优先 priority rank",
    "unserved": "未供电凉房 unserved blocks",
    "map": "地图 map",
    "open": "打开小区地图 open the compound map",
}


def _numbers(values: Sequence[object], digits: int) -> list[float | int | None]:
    """Round numbers for the table: ints when ``digits`` is 0, None when missing."""
    out: list[float | int | None] = []
    for value in pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce"):
        if pd.isna(value):
            out.append(None)
        elif digits == 0:
            out.append(round(float(value)))
        else:
            out.append(round(float(value), digits))
    return out


def _priority_classes(ranks: pd.Series) -> list[int]:
    """Class 0-4 by rank quintile (0 = built first); 5 when a compound has no rank."""
    ranked = ranks.dropna()
    if ranked.empty:
        return [len(PRIORITY_CLASSES)] * len(ranks)
    order = ranked.rank(method="first").astype(int) - 1
    fifth = (order * len(PRIORITY_CLASSES) // len(ranked)).reindex(ranks.index)
    return [int(c) if pd.notna(c) else len(PRIORITY_CLASSES) for c in fifth]


def _href_parts(links: Mapping[str, str]) -> tuple[str, str]:
    """Return the prefix and suffix every compound link shares (written once)."""
    hrefs = list(links.values())
    if not hrefs:
        return "", ""
    prefix = hrefs[0].rsplit("/", 1)[0] + "/" if "/" in hrefs[0] else ""
    if not all(h.startswith(prefix) for h in hrefs):
        prefix = ""
    suffix = ".html" if all(h.endswith(".html") for h in hrefs) else ""
    return prefix, suffix


def compound_table(plan: Plan, links: Mapping[str, str]) -> tuple[dict[str, object], list[float]]:
    """Return the overview's table of compounds (escaped) and its hazard class limits.

    One row per compound with a geometry, in the compounds layer's order, at a point
    inside the compound, with its figures from ``plan.summary``; columns :data:`COLUMNS`.
    """
    compounds = plan.layers["compounds"]
    compounds = compounds[~(compounds.geometry.isna() | compounds.geometry.is_empty)]
    ids = [str(c) for c in column(compounds, "compound_id")]
    info = by_compound(plan.summary, ids)
    inside = shapely.point_on_surface(compounds.geometry.to_numpy())  # representative_point
    xy = np.round(shapely.get_coordinates(lonlat(inside, compounds.crs)), OVERVIEW_DECIMALS)
    hazard = pd.to_numeric(pd.Series(info("hazard_before")), errors="coerce")
    hazard_class, limits = _classes(hazard.fillna(0.0))
    ranks = pd.to_numeric(pd.Series(info("priority_rank")), errors="coerce")
    priority_class = _priority_classes(ranks)

    statuses: list[str] = []
    status_index: list[int | None] = []
    for status in column(compounds, "status"):
        if not isinstance(status, str) or not status:
            status_index.append(None)
            continue
        label = esc(STATUS_LABELS.get(status, status))
        if label not in statuses:
            statuses.append(label)
        status_index.append(statuses.index(label))

    prefix, suffix = _href_parts(links)
    stems = [
        esc(links[c][len(prefix) : len(links[c]) - len(suffix)]) if c in links else None
        for c in ids
    ]
    names = [
        esc(n if isinstance(n, str) and n else s)
        for n, s in zip(column(compounds, "name"), info("name"), strict=True)
    ]
    figures = {
        name: _numbers(info(name), digits)
        for name, digits in (
            ("households", 0),
            ("applicants", 0),
            ("boxes", 0),
            ("used", 0),
            ("reserved", 0),
            ("cable_m", 0),
            ("trench_m", 0),
            ("cost_cny", 0),
            ("hazard_before", 1),
            ("hazard_after", 1),
            ("priority_rank", 0),
            ("unserved_blocks", 0),
        )
    }
    values: dict[str, Sequence[object]] = {
        "lat": [float(v) for v in xy[:, 1]],
        "lon": [float(v) for v in xy[:, 0]],
        "priority_class": priority_class,
        "hazard_class": hazard_class,
        "name": names,
        "id": [esc(c) for c in ids],
        "status": status_index,
        **figures,
        "href": stems,
    }
    rows: list[list[object]] = [
        list(row) for row in zip(*(values[c] for c in COLUMNS), strict=True)
    ]
    table = {
        "columns": list(COLUMNS),
        "rows": rows,
        "labels": {k: esc(v) for k, v in LABELS.items()},
        "statuses": statuses,
        "href": [esc(prefix), esc(suffix)],
    }
    return table, limits


def heat_cells(wires: gpd.GeoDataFrame, scores: Sequence[float]) -> list[list[float]]:
    """Return ``[lat, lon, hazard]`` per grid cell: wire midpoints summed by cell.

    Cells are :data:`HEAT_CELL_M` squares in the plan's metric CRS; each is shown at its
    centre. Wires scoring zero (removed) add nothing.
    """
    weights = np.asarray(scores, dtype="float64")
    lines = np.asarray(wires.geometry.array, dtype=object)
    keep = (weights > 0) & ~(shapely.is_missing(lines) | shapely.is_empty(lines))
    if not keep.any():
        return []
    middle = shapely.line_interpolate_point(lines[keep], 0.5, normalized=True)
    xy = shapely.get_coordinates(middle)
    cells = pd.DataFrame(
        {
            "i": np.floor(xy[:, 0] / HEAT_CELL_M).astype(np.int64),
            "j": np.floor(xy[:, 1] / HEAT_CELL_M).astype(np.int64),
            "w": weights[keep],
        }
    )
    summed = cells.groupby(["i", "j"], sort=True)["w"].sum().reset_index()
    centres = shapely.points(
        (summed["i"].to_numpy() + 0.5) * HEAT_CELL_M, (summed["j"].to_numpy() + 0.5) * HEAT_CELL_M
    )
    out = np.round(shapely.get_coordinates(lonlat(centres, wires.crs)), OVERVIEW_DECIMALS)
    return [
        [float(lat), float(lon), round(float(w), 1)]
        for (lon, lat), w in zip(out, summed["w"], strict=True)
    ]


def _heat_layer(points: list[list[float]], label: str, *, show: bool) -> ScriptLayer:
    top = float(np.quantile([p[2] for p in points], HEAT_MAX_QUANTILE)) if points else 1.0
    options = {
        "minOpacity": HEAT_MIN_OPACITY,
        "maxZoom": HEAT_MAX_ZOOM,
        "radius": HEAT_RADIUS_PX,
        "blur": HEAT_BLUR_PX,
        "max": round(max(top, 1.0), 1),
    }
    return ScriptLayer(
        f"L.heatLayer({script_json(points)}, {script_json(options)})", name=label, show=show
    )


def _marker_styles(colours: Sequence[str]) -> list[dict[str, object]]:
    return [
        {"color": COLOURS["compound"], "weight": 0.8, "fillColor": c, "fillOpacity": 0.9}
        for c in (*colours, NO_CLASS)
    ]


def overview_page(
    plan: Plan,
    *,
    title: str,
    links: Mapping[str, str],
    back_links: Sequence[tuple[str, str]],
    tiles: str | None,
    focus: Focus = "plan",
    scores: Mapping[str, tuple[float, str]] | None = None,
) -> tuple[str, dict[str, int]]:
    """Render a city overview page: compound markers and the hazard heatmap.

    Parameters
    ----------
    plan
        The plan to show.
    title
        Page title (escaped here).
    links
        ``{compound_id: relative link}`` to each compound's page (marker popups).
    back_links
        (href, text) links shown in the legend.
    tiles
        None for a plain offline background, else a folium tiles name or URL.
    focus
        ``"plan"`` (the district overview: markers coloured by priority, rings where
        blocks stay unserved, hazard now) or ``"hazard"`` (the heatmap overview: markers
        coloured by hazard index, hazard now and after the plan).
    scores
        The plan's :func:`~geoplan.maps._planmap.wire_scores` when the caller has them
        already (:class:`~geoplan.maps._index.PlanIndex`); None works them out here.

    Returns
    -------
    html
        The page.
    counts
        Features drawn per overlay key (``heat`` counts grid cells).
    """
    table, limits = compound_table(plan, links)
    rows: list[list[object]] = table["rows"]  # type: ignore[assignment]
    wires = plan.layers["flying_wires"]
    now = wire_hazards(wires, wire_scores(plan) if scores is None else scores)
    fmap = new_map(
        _bounds({"compounds": plan.layers["compounds"], "wires": wires}, plan.crs), tiles=tiles
    )

    overlays: list[Overlay] = []
    heat_now = heat_cells(wires, now)
    if heat_now:
        label = "隐患热力 Hazard now"
        layer = _heat_layer(heat_now, label, show=True)
        overlays.append(Overlay("heat", label, layer, len(heat_now)))
    if focus == "hazard":
        heat_after = heat_cells(wires, hazard_after(wires, now, plan.removals))
        if heat_after:
            label = "方案后残余 Hazard left after the plan"
            layer = _heat_layer(heat_after, label, show=False)
            overlays.append(Overlay("heat_after", label, layer, len(heat_after)))
    radius = list(MARKER_RADIUS_PX)
    by, colours = ("priority_class", PRIORITY_CLASSES)
    if focus == "hazard":
        by, colours = "hazard_class", INDEX_CLASSES
    shrink = list(MARKER_SHRINK)
    dots = {"by": by, "styles": _marker_styles(colours), "radius": radius, "shrink": shrink}
    label = "小区 Compounds (大小 = 表箱数 size = meter boxes)"
    overlays.append(
        Overlay(
            "compounds",
            label,
            ScriptLayer(f"geoplanOverview.dots(geoplanData, {script_json(dots)})", name=label),
            len(rows),
        )
    )
    at = COLUMNS.index("unserved_blocks")  # a whole number, or None where missing
    with_unserved = sum(1 for row in rows if row[at])
    if focus == "plan" and with_unserved:
        ring = {"color": COLOURS["unserved"], "weight": 1.5, "fill": False, "opacity": 0.9}
        label = "未供电 Compounds with unserved blocks"
        rings = ScriptLayer(
            "geoplanOverview.rings(geoplanData, "
            + script_json(
                {"style": ring, "radius": radius, "shrink": shrink, "from": RING_FROM_ZOOM}
            )
            + ")",
            name=label,
        )
        overlays.append(Overlay("unserved", label, rings, with_unserved))
    add_overlays(fmap, overlays)

    if focus == "hazard":
        edges = [0.0, *limits]
        items = [
            ("dot", colour, f"指数 index ≥ {number(edge, 1)}")
            for colour, edge in zip(INDEX_CLASSES, edges, strict=False)
        ]
    else:
        items = [
            ("dot", colour, f"优先 priority {name}")
            for colour, name in zip(PRIORITY_CLASSES, PRIORITY_NAMES, strict=True)
        ]
        items.append(
            ("dot", COLOURS["unserved"], f"未供电 unserved blocks (ring, zoom ≥ {RING_FROM_ZOOM})")
        )
    items.append(("box", HEAT_SWATCH, "热力 heat: 飞线隐患 flying-wire hazard"))
    page = render(
        fmap,
        title=title,
        legend_html=legend(title, items, back_links, notes=_totals(plan, len(rows))),
        heat=bool(heat_now),
        tiles=tiles,
        scripts=[OVERVIEW_JS, f"var geoplanData = {script_json(table)};"],
    )
    return page, {o.key: o.count for o in overlays}


def _totals(plan: Plan, n_compounds: int) -> list[str]:
    """Legend notes: the city's totals and how to get to the detail."""
    cable_m = pd.to_numeric(pd.Series(column(plan.cables, "length_m")), errors="coerce")
    return [
        f"城市概览 City overview: {n_compounds:,} 小区 compounds",
        f"{len(plan.meter_boxes):,} 表箱 meter boxes · {cable_m.sum() / 1000:,.1f} km 电缆 cable",
        f"{len(plan.unserved):,} 未供电凉房 unserved blocks",
        "点击小区打开详图 Click a compound for its plan map",
    ]
