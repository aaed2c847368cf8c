"""Corridors → routing graph; points snapped onto it; an open-ground lattice as fallback.

The routing graph is an undirected :class:`networkx.Graph` in the corridors' metric CRS
(``graph.graph["crs"]``). Nodes are ints with attributes ``x`` and ``y`` (and
``road_crossing``, ``point_id`` or ``lattice`` where they apply). Every edge carries
``length_m``, ``weight`` (cost in CNY), ``surface``, ``corridor_id``, ``kind``,
``off_corridor``, ``road_crossings`` and a ``geometry`` oriented from the lower to the
higher node id.

Decisions worth knowing:

* **Noding.** Corridor ends within ``[network] node_tolerance_m`` of another corridor are
  extended onto it, then all lines are noded at once with :func:`shapely.node` (crossings
  without a shared vertex included); node ids follow the sorted coordinates, rounded to
  1 mm, so the graph does not depend on the order of the input rows. Corridors that
  overlap are dissolved and the overlap keeps the cheaper surface.
* **Parallel edges.** When several edges join the same two nodes, the cheapest stays
  intact and every other one is split at its midpoint (a closed loop at its thirds), so
  no corridor is lost and a point near the dearer one can still attach to it.
* **Road crossings.** A node where a road passes through (two or more road edge ends)
  and a non-road corridor passes through too (two or more non-road ends) is a crossing:
  each non-road edge there is charged half a crossing, so going across the road via two
  of them pays one ``road_crossing_cny``. A walkway that only ends at a road (a T) is not
  charged: a cable turning into the road's trench need not cross it. Open-ground
  connectors and lattice edges pay a full crossing for each road edge they cross.
* **Attaching points.** A point joins the nearest point of the nearest corridor edge
  within ``max_connector_m`` (that edge is split there) by a straight open-ground
  connector; a connector through a barrier tries the next nearest edges. Each point gets
  its own node, so ``{id: node}`` is one-to-one.
* **Open ground.** Points left over get one local 8-neighbour lattice per cluster, sized
  to reach the points and corridor nodes around them within the LV supply radius; only
  lattice parts linking at least two anchors are kept.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .errors import CRSError, LayerError, Problem
from .settings import Settings

logger = logging.getLogger(__name__)

OPEN_SURFACE = "open"
"""The ``surface`` of connectors and lattice edges dug across open ground."""

# Numerical settings, not engineering figures: coordinates closer than _GRID_M are one
# node; a point tries this many nearest edges before the lattice; a point that has no
# lattice node within two steps tries this many nearest ones.
_GRID_M = 1e-3
_CANDIDATE_EDGES = 4
_LATTICE_NEAREST = 8
_INTERIOR = "T********"  # DE-9IM: the interiors meet

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
GeomArray = np.ndarray[Any, np.dtype[np.object_]]
_EdgeRow = tuple[int, int, dict[str, Any]]


# --------------------------------------------------------------------------- public API


def build_graph(
    corridors: gpd.GeoDataFrame, *, barriers: gpd.GeoSeries, settings: Settings
) -> nx.Graph:
    """Build the routing graph of the usable trench corridors.

    Corridors with ``allowed`` False are dropped; lines are joined where they cross or
    touch and where an end falls short of another line by at most
    ``[network] node_tolerance_m``; parts inside a barrier are cut out.

    Parameters
    ----------
    corridors
        Lines with ``corridor_id``, ``surface`` and optionally ``kind`` and ``allowed``,
        in a projected metric CRS.
    barriers
        Polygons no trench may cross (buildings, storage blocks, obstacles), same CRS.
    settings
        Run settings; ``[trench]`` costs and ``[network] node_tolerance_m`` are used.

    Returns
    -------
    graph
        The routing graph; empty (with ``graph.graph["crs"]`` set) when no corridor is
        usable.

    Raises
    ------
    CRSError
        The corridors have no projected CRS or the barriers another CRS.
    LayerError
        A corridor's surface has no trench cost in the catalogue.
    """
    crs = _metric_crs(corridors.crs, "corridors")
    polygons = _barrier_array(barriers, crs)
    costs = _Costs.from_settings(settings)
    tolerance_m = float(settings.catalogue.value("network", "node_tolerance_m"))
    graph = nx.Graph(crs=crs)
    table = _corridor_table(corridors, costs)
    if table.empty:
        logger.info("no usable corridors: the routing graph is empty")
        return graph

    lines = _snap_ends(table["geometry"].to_numpy(), tolerance_m)
    pieces, source = _node_lines(lines, polygons)
    per_m = table["cost_cny_per_m"].to_numpy(float)
    pieces, source = _split_parallels(pieces, source, per_m)
    u, v, node_xy, pieces = _number_nodes(pieces)
    keep = u != v  # rounding debris shorter than a millimetre
    u, v, pieces, source = u[keep], v[keep], pieces[keep], source[keep]
    used = np.unique(np.concatenate([u, v]))
    u, v, node_xy = np.searchsorted(used, u), np.searchsorted(used, v), node_xy[used]
    order = np.lexsort((v, u))
    u, v, pieces, source = u[order], v[order], pieces[order], source[order]

    kind = table["kind"].to_numpy(object)[source]
    is_road = kind == "road"
    road_ends = np.bincount(u[is_road], minlength=len(node_xy)) + np.bincount(
        v[is_road], minlength=len(node_xy)
    )
    other_ends = np.bincount(u[~is_road], minlength=len(node_xy)) + np.bincount(
        v[~is_road], minlength=len(node_xy)
    )
    crossing_node = (road_ends >= 2) & (other_ends >= 2)
    crossings = np.where(is_road, 0.0, 0.5 * (crossing_node[u] + crossing_node[v]))
    length_m = shapely.length(pieces)
    weight = length_m * per_m[source] + crossings * costs.crossing_cny

    graph.add_nodes_from(
        (i, {"x": x, "y": y, "road_crossing": c})
        for i, (x, y, c) in enumerate(
            zip(node_xy[:, 0].tolist(), node_xy[:, 1].tolist(), crossing_node.tolist(), strict=True)
        )
    )
    columns = zip(
        u.tolist(),
        v.tolist(),
        length_m.tolist(),
        weight.tolist(),
        table["surface"].to_numpy(object)[source].tolist(),
        table["corridor_id"].to_numpy(object)[source].tolist(),
        kind.tolist(),
        crossings.tolist(),
        pieces.tolist(),
        strict=True,
    )
    graph.add_edges_from(
        (
            a,
            b,
            _edge(
                length,
                cost,
                surface=surface,
                corridor_id=corridor_id,
                kind=k,
                off_corridor=False,
                road_crossings=rc,
                geometry=geometry,
            ),
        )
        for a, b, length, cost, surface, corridor_id, k, rc, geometry in columns
    )
    logger.info(
        "routing graph: %d nodes, %d edges from %d corridors (%d road-crossing nodes)",
        graph.number_of_nodes(),
        graph.number_of_edges(),
        len(table),
        int(crossing_node.sum()),
    )
    return graph


def attach_points(
    graph: nx.Graph, points: gpd.GeoDataFrame, *, barriers: gpd.GeoSeries, settings: Settings
) -> tuple[nx.Graph, dict[str, int]]:
    """Connect points (meter boxes, supply points, feeder taps) to the routing graph.

    Each point is joined by a straight open-ground connector to the nearest point of the
    nearest corridor edge within ``[network] max_connector_m``; that edge is split
    there. A connector may not cross a barrier's interior, except the barrier the point
    itself stands in. Points that cannot attach so are routed over a local open-ground
    lattice (``lattice_spacing_m``, ``lattice_margin_m``) that avoids the barriers.

    Parameters
    ----------
    graph
        A routing graph from :func:`build_graph`; it is not modified.
    points
        Points with a unique string ``id`` column, in the graph's CRS.
    barriers
        Polygons no trench may cross, in the graph's CRS.
    settings
        Run settings; ``[network]``, ``[trench]`` and ``[supply]`` figures are used.

    Returns
    -------
    graph
        A new graph with the points, connectors, split edges and lattice added.
    nodes
        The node of each connected point, by id; points that could not be connected
        (e.g. enclosed by barriers) are absent.

    Raises
    ------
    CRSError
        The points or barriers are not in the graph's CRS.
    LayerError
        An id is missing or repeated, or a geometry is not a point.
    """
    crs = _metric_crs(graph.graph.get("crs"), "routing graph")
    if points.crs is None or not crs.equals(pyproj.CRS.from_user_input(points.crs)):
        msg = f"points are in {points.crs}, the routing graph in {crs.name}; reproject them"
        raise CRSError(Problem(msg, layer="points"))
    ids, xy = _point_table(points)
    out = graph.copy()
    nodes: dict[str, int] = {}
    if not ids:
        return out, nodes
    rows = [(a, b, d) for a, b, d in out.edges(data=True) if not d.get("off_corridor", False)]
    ctx = _Context.make(rows, _barrier_array(barriers, crs), settings)
    pts = shapely.points(xy)
    next_id = max(out.nodes) + 1 if out.number_of_nodes() else 0
    attached, next_id = _attach_to_corridors(
        out, ctx, rows=rows, ids=ids, pts=pts, nodes=nodes, next_id=next_id
    )
    todo = np.flatnonzero(~attached)
    if todo.size:
        _attach_over_open_ground(
            out, ctx, ids=ids, pts=pts, todo=todo, nodes=nodes, next_id=next_id
        )
    missing = [i for i in ids if i not in nodes]
    logger.info(
        "attached %d points: %d to corridors, %d over open ground, %d not connected",
        len(ids),
        int(attached.sum()),
        len(ids) - int(attached.sum()) - len(missing),
        len(missing),
    )
    if missing:
        logger.warning("no connection for %d points: %s", len(missing), ", ".join(missing[:20]))
    return out, dict(sorted(nodes.items()))


def path_geometry(graph: nx.Graph, nodes: list[int]) -> shapely.LineString:
    """Return the line along a path of nodes.

    Parameters
    ----------
    graph
        The routing graph.
    nodes
        Consecutive nodes of a path.

    Returns
    -------
    line
        The edges' geometries oriented along the path and joined without repeated
        vertices; an empty line for fewer than two nodes.

    Raises
    ------
    ValueError
        Two consecutive nodes are not joined by an edge.
    """
    if len(nodes) < 2:
        return shapely.LineString()
    parts = []
    for a, b in itertools.pairwise(nodes):
        data = graph.get_edge_data(a, b)
        if data is None:
            msg = f"nodes {a} and {b} are not joined by an edge"
            raise ValueError(msg)
        coords = shapely.get_coordinates(data["geometry"])
        start = np.array([graph.nodes[a]["x"], graph.nodes[a]["y"]])
        if np.hypot(*(coords[-1] - start)) < np.hypot(*(coords[0] - start)):
            coords = coords[::-1]
        parts.append(coords)
    xy = np.concatenate(parts)
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.any(xy[1:] != xy[:-1], axis=1)
    xy = xy[keep]
    return shapely.LineString(xy if len(xy) > 1 else np.vstack([xy, xy]))


# ------------------------------------------------------------------------ shared helpers


@dataclass(frozen=True)
class _Costs:
    """Trench costs by surface, off the corridors, and per road crossing."""

    per_m: Mapping[str, float]
    open_per_m: float
    crossing_cny: float

    @classmethod
    def from_settings(cls, settings: Settings) -> _Costs:
        catalogue = settings.catalogue
        per_m = catalogue.value("trench", "cost_cny_per_m")
        return cls(
            per_m={str(k): float(v) for k, v in per_m.items()},
            open_per_m=float(catalogue.value("trench", "open_ground_cost_cny_per_m")),
            crossing_cny=float(catalogue.value("trench", "road_crossing_cny")),
        )


def _edge(
    length_m: float,
    weight: float,
    *,
    surface: str,
    corridor_id: object,
    kind: object,
    off_corridor: bool,
    road_crossings: float,
    geometry: shapely.LineString,
) -> dict[str, Any]:
    return {
        "length_m": length_m,
        "weight": weight,
        "surface": surface,
        "corridor_id": corridor_id,
        "kind": kind,
        "off_corridor": off_corridor,
        "road_crossings": road_crossings,
        "geometry": geometry,
    }


def _metric_crs(crs: object, what: str) -> pyproj.CRS:
    if crs is None:
        msg = "has no CRS; declare one, e.g. with set_crs()"
        raise CRSError(Problem(msg, layer=what))
    crs = pyproj.CRS.from_user_input(crs)
    if not crs.is_projected:
        msg = f"is in {crs.name}, not a projected metric CRS; reproject it (e.g. to UTM)"
        raise CRSError(Problem(msg, layer=what))
    return crs


def _barrier_array(barriers: gpd.GeoSeries, crs: pyproj.CRS) -> GeomArray:
    geoms = np.asarray(barriers.geometry.to_numpy(), dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if not polygonal.all():
        logger.warning("ignoring %d barriers that are not polygons", int((~polygonal).sum()))
        geoms = geoms[polygonal]
    if len(geoms) and (barriers.crs is None or not crs.equals(barriers.crs)):
        msg = f"are in {barriers.crs}, the corridors in {crs.name}; reproject them"
        raise CRSError(Problem(msg, layer="barriers"))
    return geoms


def _keys(xy: FloatArray) -> IntArray:
    return np.round(xy / _GRID_M).astype(np.int64)


def _node_index(xy: FloatArray) -> tuple[IntArray, FloatArray]:
    """Give coordinates node ids in the order of their 1 mm keys (x, then y); also node xy."""
    keys = _keys(xy)
    low = keys.min(axis=0)
    keys -= low
    span = int(keys[:, 1].max()) + 1
    if int(keys[:, 0].max()) < np.iinfo(np.int64).max // span:
        flat, inverse = np.unique(keys[:, 0] * span + keys[:, 1], return_inverse=True)
        unique = np.column_stack([flat // span, flat % span])
    else:  # pragma: no cover - an area thousands of kilometres across
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    return inverse.ravel(), (unique + low) * _GRID_M


def _end_coords(lines: GeomArray) -> tuple[FloatArray, FloatArray]:
    """First and last coordinates of non-empty lines."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    first = np.searchsorted(index, np.arange(len(lines)))
    last = np.concatenate([first[1:], [len(coords)]]) - 1
    return coords[first], coords[last]


def _inner_points(lines: GeomArray) -> FloatArray:
    """Return a point inside each line: the middle of its first segment of non-zero length."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    step = np.diff(coords, axis=0)
    usable = (index[1:] == index[:-1]) & np.any(step != 0, axis=1)
    at = np.flatnonzero(usable)
    _, first = np.unique(index[at], return_index=True)
    at = at[first]
    return coords[at] + step[at] / 2


def _group_rank(groups: IntArray) -> IntArray:
    """Position of each row within its run of equal values of ``groups`` (sorted)."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = np.ones(len(groups), dtype=bool)
    starts[1:] = groups[1:] != groups[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(groups)), 0))
    return np.arange(len(groups)) - first


def _crosses_interior(
    lines: GeomArray,
    polygons: GeomArray,
    tree: shapely.STRtree,
    exempt: tuple[IntArray, IntArray] | None = None,
) -> BoolArray:
    """Which lines cross a polygon's interior; ``exempt`` = (line's owner, owner's keys)."""
    out = np.zeros(len(lines), dtype=bool)
    if not len(lines) or not len(polygons):
        return out
    li, pj = tree.query(lines, predicate="intersects")
    if not li.size:
        return out
    hit = shapely.relate_pattern(lines[li], polygons[pj], _INTERIOR)
    if exempt is not None:
        owner, allowed = exempt
        hit &= ~np.isin(owner[li] * len(polygons) + pj, allowed)
    out[li[hit]] = True
    return out


def _containing(points: GeomArray, polygons: GeomArray, tree: shapely.STRtree) -> IntArray:
    """Keys ``point * n_polygons + polygon`` of the polygons whose interior holds a point."""
    if not len(points) or not len(polygons):
        return np.zeros(0, dtype=np.int64)
    pi, pj = tree.query(points, predicate="within")
    return pi.astype(np.int64) * len(polygons) + pj


def _road_crossings(lines: GeomArray, road_tree: shapely.STRtree | None) -> FloatArray:
    if road_tree is None or not len(lines):
        return np.zeros(len(lines))
    li, _ = road_tree.query(lines, predicate="crosses")
    return np.bincount(li, minlength=len(lines)).astype(float)


def _segments(a: FloatArray, b: FloatArray) -> GeomArray:
    return shapely.linestrings(np.stack([a, b], axis=1))


def _cut_lines(
    lines: GeomArray, cut_line: IntArray, cut_dist: FloatArray
) -> tuple[GeomArray, IntArray, FloatArray]:
    """Cut lines at distances along them, all at once.

    ``cut_line``/``cut_dist`` must be sorted by line then distance, distinct, and strictly
    inside each line. Returns the pieces ordered by line then position, each piece's
    line, and the cut points' coordinates (in the order of the cuts).
    """
    n = len(lines)
    cut_xy = shapely.get_coordinates(shapely.line_interpolate_point(lines[cut_line], cut_dist))
    coords, vline = shapely.get_coordinates(lines, return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    step[vline[1:] != vline[:-1]] = 0.0
    cumulative = np.concatenate(([0.0], np.cumsum(step)))
    first = np.searchsorted(vline, np.arange(n))
    vdist = cumulative - cumulative[first][vline]

    n_cut = len(cut_line)
    line_ev = np.concatenate([vline, cut_line, cut_line])
    dist_ev = np.concatenate([vdist, cut_dist, cut_dist])
    kind_ev = np.concatenate([np.zeros(len(vline)), np.ones(n_cut), np.full(n_cut, 2.0)])
    xy_ev = np.concatenate([coords, cut_xy, cut_xy])
    order = np.lexsort((kind_ev, dist_ev, line_ev))
    line_ev, kind_ev, xy_ev = line_ev[order], kind_ev[order], xy_ev[order]

    cuts_per_line = np.bincount(cut_line, minlength=n)
    cuts_before = np.concatenate(([0], np.cumsum(cuts_per_line)[:-1]))
    local = np.cumsum(kind_ev == 2) - cuts_before[line_ev]
    piece = np.arange(n)[line_ev] + cuts_before[line_ev] + local
    # A vertex within a hair of a cut point gives way to the cut point.
    close = np.zeros(len(piece), dtype=bool)
    close[1:] = (piece[1:] == piece[:-1]) & (np.hypot(*np.diff(xy_ev, axis=0).T) < _GRID_M / 100)
    drop = np.zeros(len(piece), dtype=bool)
    later_vertex = close & (kind_ev == 0)
    drop |= later_vertex
    earlier = np.flatnonzero(close & (kind_ev != 0)) - 1
    drop[earlier[kind_ev[earlier] == 0]] = True
    pieces = shapely.linestrings(xy_ev[~drop], indices=piece[~drop])
    return pieces, np.repeat(np.arange(n), cuts_per_line + 1), cut_xy


# ----------------------------------------------------------------------- building steps


def _allowed(values: pd.Series) -> BoolArray:
    def usable(value: object) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return True
        if isinstance(value, str):
            return value.strip().lower() not in {"false", "0", "no", "n", "f"}
        return bool(value)

    return np.fromiter((usable(v) for v in values), dtype=bool, count=len(values))


def _corridor_table(corridors: gpd.GeoDataFrame, costs: _Costs) -> pd.DataFrame:
    """Usable corridor lines, exploded, with cost per metre, in a deterministic order."""
    missing = [c for c in ("corridor_id", "surface") if c not in corridors.columns]
    if missing:
        msg = f"lacks the column(s) {', '.join(missing)}"
        raise LayerError(Problem(msg, layer="corridors"))
    geoms = np.asarray(corridors.geometry.to_numpy(), dtype=object)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if "allowed" in corridors.columns:
        usable &= _allowed(corridors["allowed"])
    frame = pd.DataFrame(
        {
            "corridor_id": corridors["corridor_id"].to_numpy(object),
            "surface": corridors["surface"].to_numpy(object),
            "kind": (
                corridors["kind"].to_numpy(object)
                if "kind" in corridors.columns
                else np.full(len(corridors), None, dtype=object)
            ),
        }
    )[usable]
    frame["kind"] = frame["kind"].where(frame["kind"].notna(), None)
    frame["cost_cny_per_m"] = frame["surface"].map(costs.per_m)
    unknown = frame[frame["cost_cny_per_m"].isna()]
    if len(unknown):
        known = ", ".join(costs.per_m)
        raise LayerError(
            [
                Problem(
                    f"surface {s!r} has no trench cost; use one of {known}",
                    layer="corridors",
                    feature_id=str(i),
                )
                for i, s in zip(unknown["corridor_id"], unknown["surface"], strict=True)
            ]
        )
    parts, row = shapely.get_parts(geoms[usable], return_index=True)
    lines = shapely.get_type_id(parts) == 1
    if not lines.all():
        logger.warning("ignoring %d corridor parts that are not lines", int((~lines).sum()))
    frame = frame.iloc[row[lines]].reset_index(drop=True)
    frame["geometry"] = parts[lines]
    frame = frame[shapely.length(parts[lines]) > _GRID_M]
    if frame.empty:
        return frame
    start, end = _end_coords(frame["geometry"].to_numpy())
    frame = frame.assign(
        _id=frame["corridor_id"].astype(str),
        _kind=frame["kind"].astype(str),
        _x0=start[:, 0],
        _y0=start[:, 1],
        _x1=end[:, 0],
        _y1=end[:, 1],
    )
    keys = ["cost_cny_per_m", "_id", "surface", "_kind", "_x0", "_y0", "_x1", "_y1"]
    frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    return frame.drop(columns=[k for k in keys if k.startswith("_")])


def _snap_ends(lines: GeomArray, tolerance_m: float) -> GeomArray:
    """Join line ends that fall short of another line by at most the tolerance.

    Ends of different lines closer than the tolerance meet at one of them; an end that
    still falls short of another line is extended onto the nearest point of that line.
    """
    lines = _merge_close_ends(lines, tolerance_m)
    lines = lines[shapely.length(lines) > _GRID_M]
    n = len(lines)
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    owner = np.tile(np.arange(n), 2)
    ei, li = shapely.STRtree(lines).query(ends, predicate="dwithin", distance=tolerance_m)
    mine = li != owner[ei]
    ei, li = ei[mine], li[mine]
    dist = shapely.distance(ends[ei], lines[li])
    gap = dist > _GRID_M
    ei, li, dist = ei[gap], li[gap], dist[gap]
    if not ei.size:
        return lines
    order = np.lexsort((li, dist, ei))
    ei, li = ei[order], li[order]
    nearest = _group_rank(ei) == 0
    ei, li = ei[nearest], li[nearest]
    target = shapely.line_interpolate_point(
        lines[li], shapely.line_locate_point(lines[li], ends[ei])
    )
    changed = np.unique(owner[ei])
    coords, vline = shapely.get_coordinates(lines[changed], return_index=True)
    position = np.arange(len(vline)) - np.searchsorted(vline, vline)
    xy = np.concatenate([coords, shapely.get_coordinates(target)])
    line_of = np.concatenate([vline, np.searchsorted(changed, owner[ei])])
    pos = np.concatenate([position, np.where(ei < n, -1, np.iinfo(np.int64).max)])
    order = np.lexsort((pos, line_of))
    out = lines.copy()
    out[changed] = shapely.linestrings(xy[order], indices=line_of[order])
    logger.debug("extended %d corridor ends onto a nearby corridor", len(ei))
    return out


def _merge_close_ends(lines: GeomArray, tolerance_m: float) -> GeomArray:
    """Move ends of different lines lying within the tolerance of each other together."""
    n = len(lines)
    coords, vline = shapely.get_coordinates(lines, return_index=True)
    first = np.searchsorted(vline, np.arange(n))
    where = np.concatenate([first, np.concatenate([first[1:], [len(coords)]]) - 1])
    owner = np.tile(np.arange(n), 2)
    end_pts = shapely.points(coords[where])
    i, j = shapely.STRtree(end_pts).query(end_pts, predicate="dwithin", distance=tolerance_m)
    pair = (i < j) & (owner[i] != owner[j])
    i, j = i[pair], j[pair]
    if not i.size:
        return lines
    adjacency = sparse.coo_array((np.ones(len(i)), (i, j)), shape=(2 * n, 2 * n))
    _, label = csgraph.connected_components(adjacency, directed=False)
    representative = np.full(label.max() + 1, 2 * n)
    np.minimum.at(representative, label, np.arange(2 * n))  # the first end, by line rank
    target = coords[where[representative[label]]]
    moved = np.any(coords[where] != target, axis=1)
    if not moved.any():
        return lines
    coords[where[moved]] = target[moved]
    changed = np.unique(owner[moved])
    mask = np.isin(vline, changed)
    out = lines.copy()
    out[changed] = shapely.linestrings(coords[mask], indices=np.searchsorted(changed, vline[mask]))
    logger.debug("joined %d corridor ends to a nearby end", int(moved.sum()))
    return out


def _node_lines(lines: GeomArray, polygons: GeomArray) -> tuple[GeomArray, IntArray]:
    """Node the lines; drop parts inside barriers; return pieces and their source line."""
    extra: list[GeomArray] = []
    tree = shapely.STRtree(polygons)
    if len(polygons):
        li, pj = tree.query(lines, predicate="intersects")
        hit = shapely.relate_pattern(lines[li], polygons[pj], _INTERIOR)
        cut_by = np.unique(pj[hit])
        if cut_by.size:  # their outlines cut the corridors where they enter a barrier
            extra.append(shapely.get_parts(shapely.boundary(polygons[cut_by])))
    noded = shapely.node(shapely.multilinestrings(np.concatenate([lines, *extra])))
    pieces = shapely.get_parts(noded)
    inner = shapely.points(_inner_points(pieces))
    pi, li = shapely.STRtree(lines).query(inner, predicate="dwithin", distance=_GRID_M)
    source = np.full(len(pieces), len(lines), dtype=np.int64)
    np.minimum.at(source, pi, li)  # overlapping corridors: the cheaper (lower rank) wins
    keep = source < len(lines)
    if len(polygons):
        inside, _ = tree.query(inner, predicate="within")
        keep[inside] = False
    logger.debug(
        "noded %d corridor lines into %d pieces (%d inside barriers)",
        len(lines),
        int(keep.sum()),
        int((source < len(lines)).sum() - keep.sum()),
    )
    return pieces[keep], source[keep]


def _split_parallels(
    pieces: GeomArray, source: IntArray, per_m: FloatArray
) -> tuple[GeomArray, IntArray]:
    """Split loops at their thirds and all but the cheapest of parallel edges at midpoints."""
    if not len(pieces):
        return pieces, source
    start, end = _end_coords(pieces)
    ids, _ = _node_index(np.concatenate([start, end]))
    s, e = ids[: len(pieces)], ids[len(pieces) :]
    a, b = np.minimum(s, e), np.maximum(s, e)
    length = shapely.length(pieces)
    inner = _inner_points(pieces)
    order = np.lexsort((inner[:, 1], inner[:, 0], source, length, length * per_m[source], b, a))
    repeat = np.zeros(len(pieces), dtype=bool)
    repeat[order[1:]] = (a[order][1:] == a[order][:-1]) & (b[order][1:] == b[order][:-1])
    long_enough = length > 4 * _GRID_M  # shorter duplicates are rounding debris: dropped
    loop = (a == b) & long_enough
    to_cut = np.flatnonzero((repeat & long_enough) | loop)
    keep = (a != b) & ~repeat
    if not to_cut.size:
        return pieces[keep], source[keep]
    counts = np.where(loop[to_cut], 2, 1)
    cut_line = np.repeat(np.arange(len(to_cut)), counts)
    rank = _group_rank(cut_line) + 1
    cut_dist = rank / (counts[cut_line] + 1) * length[to_cut][cut_line]
    cut, cut_of, _ = _cut_lines(pieces[to_cut], cut_line, cut_dist)
    logger.debug("split %d parallel edges and loops", len(to_cut))
    return (
        np.concatenate([pieces[keep], cut]),
        np.concatenate([source[keep], source[to_cut][cut_of]]),
    )


def _number_nodes(pieces: GeomArray) -> tuple[IntArray, IntArray, FloatArray, GeomArray]:
    """Give nodes ids by sorted coordinates; pin the pieces' ends to them, lower id first.

    Returns the lower and higher node of each piece, the nodes' coordinates and the pieces.
    """
    coords, index = shapely.get_coordinates(pieces, return_index=True)
    first = np.searchsorted(index, np.arange(len(pieces)))
    last = np.concatenate([first[1:], [len(coords)]]) - 1
    ids, node_xy = _node_index(np.concatenate([coords[first], coords[last]]))
    s, e = ids[: len(pieces)], ids[len(pieces) :]
    coords[first] = node_xy[s]
    coords[last] = node_xy[e]
    pieces = shapely.linestrings(coords, indices=index)
    flip = s > e
    pieces[flip] = shapely.reverse(pieces[flip])
    return np.minimum(s, e), np.maximum(s, e), node_xy, pieces


# ---------------------------------------------------------------------- attaching steps


@dataclass(frozen=True)
class _Context:
    """Barriers, road lines and figures shared by the attaching steps."""

    polygons: GeomArray
    tree: shapely.STRtree
    road_tree: shapely.STRtree | None
    costs: _Costs
    reach_m: float
    spacing_m: float
    margin_m: float
    radius_m: float

    @classmethod
    def make(cls, rows: list[_EdgeRow], polygons: GeomArray, settings: Settings) -> _Context:
        catalogue = settings.catalogue
        roads = [d["geometry"] for _, _, d in rows if d.get("kind") == "road"]
        radius = catalogue.value("supply", "radius_m")[catalogue.value("supply", "area_class")]
        return cls(
            polygons=polygons,
            tree=shapely.STRtree(polygons),
            road_tree=shapely.STRtree(np.array(roads, dtype=object)) if roads else None,
            costs=_Costs.from_settings(settings),
            reach_m=float(catalogue.value("network", "max_connector_m")),
            spacing_m=float(catalogue.value("network", "lattice_spacing_m")),
            margin_m=float(catalogue.value("network", "lattice_margin_m")),
            radius_m=float(radius),
        )

    def open_edge(self, geometry: shapely.LineString, crossings: float) -> dict[str, Any]:
        length = float(shapely.length(geometry))
        weight = length * self.costs.open_per_m + crossings * self.costs.crossing_cny
        return _edge(
            length,
            weight,
            surface=OPEN_SURFACE,
            corridor_id=None,
            kind=None,
            off_corridor=True,
            road_crossings=crossings,
            geometry=geometry,
        )


def _node_coords(graph: nx.Graph) -> FloatArray:
    """Coordinates of the graph's nodes, indexed by node id (ids are small ints)."""
    node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes())
    xy = np.full((int(node_ids.max()) + 1, 2), np.nan)
    xy[node_ids, 0] = [d for _, d in graph.nodes(data="x")]
    xy[node_ids, 1] = [d for _, d in graph.nodes(data="y")]
    return xy


def _point_table(points: gpd.GeoDataFrame) -> tuple[list[str], FloatArray]:
    """Ids (sorted) and coordinates of the points, checked."""
    if "id" not in points.columns:
        raise LayerError(Problem("lacks the column id", layer="points"))
    ids = points["id"].astype(str).to_numpy()
    geoms = np.asarray(points.geometry.to_numpy(), dtype=object)
    problems = [
        Problem("is not a point", layer="points", feature_id=i)
        for i, bad in zip(ids, shapely.get_type_id(geoms) != 0, strict=True)
        if bad
    ]
    problems += [
        Problem("is empty", layer="points", feature_id=i)
        for i, bad in zip(ids, shapely.is_empty(geoms), strict=True)
        if bad
    ]
    repeated = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
    problems += [Problem("id is repeated", layer="points", feature_id=i) for i in repeated]
    if problems:
        raise LayerError(problems)
    order = np.argsort(ids, kind="stable")
    return ids[order].tolist(), shapely.get_coordinates(geoms[order])


def _attach_to_corridors(
    graph: nx.Graph,
    ctx: _Context,
    *,
    rows: list[_EdgeRow],
    ids: list[str],
    pts: GeomArray,
    nodes: dict[str, int],
    next_id: int,
) -> tuple[BoolArray, int]:
    """Attach points to their nearest corridor edge (``rows``); return which attached.

    Also returns the next free node id.
    """
    attached = np.zeros(len(ids), dtype=bool)
    if not rows:
        return attached, next_id
    ends = np.array([(a, b) for a, b, _ in rows], dtype=np.int64)
    eu, ev = ends.min(axis=1), ends.max(axis=1)
    order = np.lexsort((ev, eu))
    eu, ev = eu[order], ev[order]
    data = [rows[i][2] for i in order.tolist()]
    geoms = np.array([d["geometry"] for d in data], dtype=object)
    node_xy = _node_coords(graph)
    start, _ = _end_coords(geoms)
    flip = np.hypot(*(start - node_xy[ev]).T) < np.hypot(*(start - node_xy[eu]).T)
    geoms[flip] = shapely.reverse(geoms[flip])

    pi, ei = shapely.STRtree(geoms).query(pts, predicate="dwithin", distance=ctx.reach_m)
    if not pi.size:
        return attached, next_id
    dist = shapely.distance(pts[pi], geoms[ei])
    order = np.lexsort((ei, dist, pi))
    pi, ei, dist = pi[order], ei[order], dist[order]
    few = _group_rank(pi) < _CANDIDATE_EDGES
    pi, ei, dist = pi[few], ei[few], dist[few]
    along = shapely.line_locate_point(geoms[ei], pts[pi])
    proj = shapely.get_coordinates(shapely.line_interpolate_point(geoms[ei], along))
    xy = shapely.get_coordinates(pts)
    connectors = _segments(xy[pi], proj)
    exempt = (pi.astype(np.int64), _containing(pts, ctx.polygons, ctx.tree))
    blocked = _crosses_interior(connectors, ctx.polygons, ctx.tree, exempt) & (dist > _GRID_M)
    free = np.flatnonzero(~blocked)
    _, first = np.unique(pi[free], return_index=True)
    chosen = free[first]
    if not chosen.size:
        return attached, next_id
    cp, ce, calong = pi[chosen], ei[chosen], along[chosen]
    length = shapely.length(geoms[ce])
    at = np.where(calong <= _GRID_M, eu[ce], np.where(calong >= length - _GRID_M, ev[ce], -1))

    inner = np.flatnonzero(at < 0)
    if inner.size:
        bucket = np.stack([ce[inner], np.round(calong[inner] / _GRID_M).astype(np.int64)], 1)
        uniq, rep, inverse = np.unique(bucket, axis=0, return_index=True, return_inverse=True)
        cut_edges, cut_line = np.unique(uniq[:, 0], return_inverse=True)
        cut_dist = calong[inner][rep]
        pieces, piece_line, cut_xy = _cut_lines(geoms[cut_edges], cut_line.ravel(), cut_dist)
        cut_nodes = next_id + np.arange(len(uniq))
        next_id += len(uniq)
        at[inner] = cut_nodes[inverse.ravel()]
        graph.add_nodes_from(
            (int(n), {"x": float(x), "y": float(y), "road_crossing": False})
            for n, (x, y) in zip(cut_nodes, cut_xy, strict=True)
        )
        old = [data[i] for i in cut_edges.tolist()]
        _replace_split_edges(
            graph,
            ctx,
            edges=(eu[cut_edges], ev[cut_edges], old),
            pieces=pieces,
            piece_line=piece_line,
            cut_nodes=cut_nodes,
        )

    point_nodes = next_id + np.arange(len(cp))
    next_id += len(cp)
    # Connectors end exactly on their node (projections within 1 mm share a node).
    cproj = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in at.tolist()])
    lines = _segments(cproj, xy[cp])
    crossings = _road_crossings(lines, ctx.road_tree)
    for k, (p, node) in enumerate(zip(cp.tolist(), point_nodes.tolist(), strict=True)):
        graph.add_node(node, x=float(xy[p, 0]), y=float(xy[p, 1]), point_id=ids[p])
        graph.add_edge(int(at[k]), node, **ctx.open_edge(lines[k], float(crossings[k])))
        nodes[ids[p]] = node
    attached[cp] = True
    return attached, next_id


def _replace_split_edges(
    graph: nx.Graph,
    ctx: _Context,
    *,
    edges: tuple[IntArray, IntArray, list[dict[str, Any]]],
    pieces: GeomArray,
    piece_line: IntArray,
    cut_nodes: IntArray,
) -> None:
    """Put the pieces of split edges in place of the edges, their cost shared by length.

    ``pieces`` come from :func:`_cut_lines` on the edges' geometries oriented from ``u`` to
    ``v``; ``cut_nodes`` are the cut points' nodes in the order of the cuts.
    """
    eu, ev, old = edges
    cuts_per_edge = np.bincount(piece_line) - 1
    cuts_before = np.concatenate(([0], np.cumsum(cuts_per_edge)[:-1]))
    rank = _group_rank(piece_line)
    last = rank == cuts_per_edge[piece_line]
    before = np.clip(cuts_before[piece_line] + rank - 1, 0, None)
    after = np.clip(cuts_before[piece_line] + rank, None, len(cut_nodes) - 1)
    start = np.where(rank == 0, eu[piece_line], cut_nodes[before])
    end = np.where(last, ev[piece_line], cut_nodes[after])
    piece_length = shapely.length(pieces)
    total = np.bincount(piece_line, weights=piece_length)
    graph.remove_edges_from(zip(eu.tolist(), ev.tolist(), strict=True))
    crossing = nx.get_node_attributes(graph, "road_crossing")
    cny = ctx.costs.crossing_cny
    for k, (s, e, i) in enumerate(
        zip(start.tolist(), end.tolist(), piece_line.tolist(), strict=True)
    ):
        data = old[i]
        share = 0.0
        if data.get("road_crossings", 0.0) > 0:
            share = 0.5 * (
                (rank[k] == 0 and crossing.get(s, False)) + (last[k] and crossing.get(e, False))
            )
        base = data["weight"] - data.get("road_crossings", 0.0) * cny
        fraction = piece_length[k] / total[i] if total[i] > 0 else 0.0
        edge = {
            **data,
            "length_m": float(piece_length[k]),
            "weight": float(base * fraction + share * cny),
            "road_crossings": float(share),
            "geometry": pieces[k] if s < e else shapely.reverse(pieces[k]),
        }
        graph.add_edge(s, e, **edge)


def _attach_over_open_ground(
    graph: nx.Graph,
    ctx: _Context,
    *,
    ids: list[str],
    pts: GeomArray,
    todo: IntArray,
    nodes: dict[str, int],
    next_id: int,
) -> int:
    """Route the points in ``todo`` over local open-ground lattices; return next node id.

    Points within two lattice margins of each other form a cluster with one lattice. It
    spans the cluster and, for each member, the nearest corridor node or attached point
    within the LV supply radius (``[supply] radius_m`` of the default area class); when
    there is none, every other point within that radius (e.g. the supply). Points that
    end up with no link to the lattice are removed again.
    """
    xy = shapely.get_coordinates(pts)
    point_nodes = next_id + np.arange(len(todo))
    next_id += len(todo)
    graph.add_nodes_from(
        (node, {"x": float(xy[i, 0]), "y": float(xy[i, 1]), "point_id": ids[i]})
        for i, node in zip(todo.tolist(), point_nodes.tolist(), strict=True)
    )
    anchor_ids = np.array([n for n, d in graph.nodes(data=True) if not d.get("lattice")])
    anchor_xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in anchor_ids.tolist()])
    anchor_pts = shapely.points(anchor_xy)
    anchors = (anchor_ids, anchor_pts, shapely.STRtree(anchor_pts))
    fixed = np.flatnonzero(~np.isin(anchor_ids, point_nodes))
    fixed_tree = shapely.STRtree(anchor_pts[fixed]) if fixed.size else None
    every_point = shapely.STRtree(pts)

    link = 2 * ctx.margin_m
    a, b = shapely.STRtree(pts[todo]).query(pts[todo], predicate="dwithin", distance=link)
    adjacency = sparse.coo_array((np.ones(len(a)), (a, b)), shape=(len(todo), len(todo)))
    n_clusters, label = csgraph.connected_components(adjacency, directed=False)
    for cluster in range(n_clusters):  # labels follow the lowest member: deterministic
        members = todo[label == cluster]
        extent = [xy[members]]
        nearest = np.zeros(0, dtype=np.int64)
        if fixed_tree is not None:  # the nearest corridor node or attached point, in reach
            _, nearest = fixed_tree.query_nearest(pts[members], max_distance=ctx.radius_m)
            extent.append(anchor_xy[fixed[nearest]])
        if not nearest.size:  # nothing to lean on: take in the other points around
            _, near = every_point.query(pts[members], predicate="dwithin", distance=ctx.radius_m)
            extent.append(xy[near])
        stacked = np.concatenate(extent)
        low, high = stacked.min(axis=0) - ctx.margin_m, stacked.max(axis=0) + ctx.margin_m
        logger.debug(
            "open-ground lattice for %d points over %.0f x %.0f m",
            len(members),
            *(high - low),
        )
        next_id = _lattice(graph, ctx, (low, high), anchors, next_id)

    for i, node in zip(todo.tolist(), point_nodes.tolist(), strict=True):
        if graph.degree(node):
            nodes[ids[i]] = node
        else:
            graph.remove_node(node)
    return next_id


def _lattice(
    graph: nx.Graph,
    ctx: _Context,
    bounds: tuple[FloatArray, FloatArray],
    anchors: tuple[IntArray, GeomArray, shapely.STRtree],
    next_id: int,
) -> int:
    """Add an 8-neighbour lattice over ``bounds`` linking the anchor nodes inside it.

    Lattice nodes and edges avoid the barriers (merged locally, so a shared wall blocks);
    each anchor joins the lattice nodes within two steps, or failing that its nearest
    ones within ``max_connector_m``, by connectors that avoid the barriers too (except a
    barrier the anchor stands in). Only lattice parts joining two or more anchors stay.
    """
    step = ctx.spacing_m
    (x0, y0), (x1, y1) = bounds
    gx = np.arange(math.floor(x0 / step), math.ceil(x1 / step) + 1) * step
    gy = np.arange(math.floor(y0 / step), math.ceil(y1 / step) + 1) * step
    grid_x, grid_y = np.meshgrid(gx, gy, indexing="ij")
    lat_xy = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    lat_pts = shapely.points(lat_xy)
    frame = shapely.box(gx[0], gy[0], gx[-1], gy[-1])
    local = ctx.polygons[ctx.tree.query(frame, predicate="intersects")]
    if len(local) > 1:
        local = shapely.get_parts(shapely.union_all(local))
    tree = shapely.STRtree(local)
    valid = np.ones(len(lat_xy), dtype=bool)
    if len(local):
        inside, _ = tree.query(lat_pts, predicate="within")
        valid[inside] = False

    index = np.arange(len(lat_xy)).reshape(len(gx), len(gy))
    neighbours = (
        (index[:-1, :], index[1:, :]),
        (index[:, :-1], index[:, 1:]),
        (index[:-1, :-1], index[1:, 1:]),
        (index[:-1, 1:], index[1:, :-1]),
    )
    ea = np.concatenate([n[0].ravel() for n in neighbours])
    eb = np.concatenate([n[1].ravel() for n in neighbours])
    both = valid[ea] & valid[eb]
    ea, eb = ea[both], eb[both]
    lines = _segments(lat_xy[ea], lat_xy[eb])
    free = ~_crosses_interior(lines, local, tree)
    ea, eb, lines = ea[free], eb[free], lines[free]

    anchor_ids, anchor_pts, anchor_tree = anchors
    ai = np.sort(anchor_tree.query(frame, predicate="intersects"))
    usable = np.flatnonzero(valid)
    if not ai.size or not usable.size:
        return next_id
    a_pts = anchor_pts[ai]
    a_xy = shapely.get_coordinates(a_pts)
    node_tree = shapely.STRtree(lat_pts[usable])
    exempt_keys = _containing(a_pts, local, tree)
    pa, pl = node_tree.query(a_pts, predicate="dwithin", distance=2 * step)
    ok = ~_crosses_interior(
        _segments(a_xy[pa], lat_xy[usable[pl]]), local, tree, (pa.astype(np.int64), exempt_keys)
    )
    pa, pl = pa[ok], pl[ok]
    lonely = np.setdiff1d(np.arange(len(ai)), pa)
    if lonely.size:
        qa, ql = node_tree.query(a_pts[lonely], predicate="dwithin", distance=ctx.reach_m)
        dist = shapely.distance(a_pts[lonely][qa], lat_pts[usable[ql]])
        order = np.lexsort((ql, dist, qa))
        qa, ql = qa[order], ql[order]
        few = _group_rank(qa) < _LATTICE_NEAREST
        qa, ql = lonely[qa[few]], ql[few]
        ok = ~_crosses_interior(
            _segments(a_xy[qa], lat_xy[usable[ql]]), local, tree, (qa.astype(np.int64), exempt_keys)
        )
        pa, pl = np.concatenate([pa, qa[ok]]), np.concatenate([pl, ql[ok]])
    pl = usable[pl]

    n_lat, n_anchor = len(lat_xy), len(ai)
    rows, cols = np.concatenate([ea, n_lat + pa]), np.concatenate([eb, pl])
    adjacency = sparse.coo_array(
        (np.ones(len(rows)), (rows, cols)), shape=(n_lat + n_anchor, n_lat + n_anchor)
    )
    _, label = csgraph.connected_components(adjacency, directed=False)
    per_component = np.bincount(label[n_lat:], minlength=label.max() + 1)
    good = per_component >= 2
    kept = valid & good[label[:n_lat]]
    if not kept.any():
        return next_id
    new_id = np.full(n_lat, -1, dtype=np.int64)
    new_id[kept] = next_id + np.arange(int(kept.sum()))
    next_id += int(kept.sum())
    graph.add_nodes_from(
        (int(new_id[i]), {"x": float(lat_xy[i, 0]), "y": float(lat_xy[i, 1]), "lattice": True})
        for i in np.flatnonzero(kept).tolist()
    )
    keep_edges = good[label[ea]]
    ea, eb, lines = ea[keep_edges], eb[keep_edges], lines[keep_edges]
    crossings = _road_crossings(lines, ctx.road_tree)
    graph.add_edges_from(
        (int(new_id[a]), int(new_id[b]), ctx.open_edge(line, rc))
        for a, b, line, rc in zip(ea, eb, lines, crossings.tolist(), strict=True)
    )
    keep_links = good[label[pl]]
    pa, pl = pa[keep_links], pl[keep_links]
    links = _segments(a_xy[pa], lat_xy[pl])
    crossings = _road_crossings(links, ctx.road_tree)
    graph.add_edges_from(
        (int(anchor_ids[ai[a]]), int(new_id[b]), ctx.open_edge(line, rc))
        for a, b, line, rc in zip(pa, pl, links, crossings.tolist(), strict=True)
    )
    return next_id
