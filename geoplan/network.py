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
import time
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse, spatial
from scipy.sparse import csgraph

from ._geometry import (
    _CANDIDATE_EDGES,
    _GRID_M,
    _INTERIOR,
    _SHORT_REACH_M,
    OPEN_SURFACE,
    BoolArray,
    FloatArray,
    GeomArray,
    IntArray,
    _barrier_array,
    _containing,
    _Context,
    _Costs,
    _crosses_interior,
    _cut_lines,
    _end_coords,
    _group_rank,
    _inner_points,
    _metric_crs,
    _node_index,
    _road_crossings,
    _segments,
)
from ._graph import GraphArrays, to_networkx
from ._lattice import open_ground_patches
from .errors import CRSError, LayerError, Problem
from .settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "OPEN_SURFACE",
    "attach_arrays",
    "attach_points",
    "build_arrays",
    "build_graph",
    "path_geometry",
]

_EdgeRow = tuple[int, int, dict[str, Any]]


# --------------------------------------------------------------------------- public API


def build_graph(
    corridors: gpd.GeoDataFrame, *, barriers: gpd.GeoSeries, settings: Settings
) -> nx.Graph:
    """Build the routing graph of the usable trench corridors as a networkx graph.

    The rules, parameters and errors are those of :func:`build_arrays`.

    Returns
    -------
    graph
        The routing graph; empty (with ``graph.graph["crs"]`` set) when no corridor is
        usable.
    """
    return to_networkx(build_arrays(corridors, barriers=barriers, settings=settings))


def _empty_arrays(crs: pyproj.CRS) -> GraphArrays:
    no_float, no_obj = np.zeros(0), np.zeros(0, dtype=object)
    return GraphArrays(
        crs=crs,
        node_xy=np.zeros((0, 2)),
        road_crossing=np.zeros(0, dtype=bool),
        lattice=np.zeros(0, dtype=bool),
        u=np.zeros(0, dtype=np.int64),
        v=np.zeros(0, dtype=np.int64),
        length_m=no_float,
        weight=no_float,
        surface=no_obj,
        corridor_id=no_obj,
        kind=no_obj,
        off_corridor=np.zeros(0, dtype=bool),
        road_crossings=no_float,
        geometry=no_obj,
    )


def build_arrays(
    corridors: gpd.GeoDataFrame,
    *,
    barriers: gpd.GeoSeries,
    settings: Settings,
    timings: dict[str, float] | None = None,
) -> GraphArrays:
    """Build the routing graph of the usable trench corridors, as arrays.

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
    timings
        When given, the seconds spent noding and building are added to it.

    Returns
    -------
    arrays
        The routing graph's nodes and edges (:func:`build_graph` gives it as a networkx
        graph); no nodes when no corridor is usable.

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
    table = _corridor_table(corridors, costs)
    if table.empty:
        logger.info("no usable corridors: the routing graph is empty")
        return _empty_arrays(crs)

    started = time.perf_counter()
    lines = _snap_ends(table["geometry"].to_numpy(), tolerance_m)
    pieces, source = _node_lines(lines, polygons)
    per_m = table["cost_cny_per_m"].to_numpy(float)
    pieces, source = _split_parallels(pieces, source, per_m)
    noded = time.perf_counter()
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

    arrays = GraphArrays(
        crs=crs,
        node_xy=node_xy,
        road_crossing=crossing_node,
        lattice=np.zeros(len(node_xy), dtype=bool),
        u=u,
        v=v,
        length_m=length_m,
        weight=weight,
        surface=table["surface"].to_numpy(object)[source],
        corridor_id=table["corridor_id"].to_numpy(object)[source],
        kind=kind,
        off_corridor=np.zeros(len(u), dtype=bool),
        road_crossings=crossings,
        geometry=pieces,
    )
    if timings is not None:
        timings["noding"] = timings.get("noding", 0.0) + noded - started
        timings["graph build"] = timings.get("graph build", 0.0) + time.perf_counter() - noded
    logger.info(
        "routing graph: %d nodes, %d edges from %d corridors (%d road-crossing nodes)",
        arrays.n_nodes,
        arrays.n_edges,
        len(table),
        int(crossing_node.sum()),
    )
    return arrays


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
    roads = [d["geometry"] for _, _, d in rows if d.get("kind") == "road"]
    ctx = _Context.make(np.array(roads, dtype=object), _barrier_array(barriers, crs), settings)
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


def _allowed(values: pd.Series) -> BoolArray:
    def usable(value: object) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return True
        if isinstance(value, str):
            return value.strip().lower() not in {"false", "0", "no", "n", "f"}
        return bool(value)

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(bool)
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
    )[usable].copy()
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
    # np.lexsort on sorted codes: the order of a stable sort_values by the keys, faster
    codes = [
        pd.factorize(frame[k], sort=True)[0] if frame[k].dtype == object else frame[k].to_numpy()
        for k in keys
    ]
    frame = frame.iloc[np.lexsort(codes[::-1])].reset_index(drop=True)
    return frame.drop(columns=[k for k in keys if k.startswith("_")])


def _snap_ends(lines: GeomArray, tolerance_m: float) -> GeomArray:
    """Join line ends that fall short of another line by at most the tolerance.

    Ends of different lines closer than the tolerance meet at one of them; an end that
    still falls short of another line, and meets no other line's end, is extended onto
    the nearest point of that line.
    """
    lines = _merge_close_ends(lines, tolerance_m)
    lines = lines[shapely.length(lines) > _GRID_M]
    n = len(lines)
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    owner = np.tile(np.arange(n), 2)
    # An end shared with another line's end is a junction, not a gap: only loose ends
    # look for a line to reach.
    _, spot, count = np.unique(
        shapely.get_coordinates(ends), axis=0, return_inverse=True, return_counts=True
    )
    loose = np.flatnonzero(count[spot.ravel()] == 1)
    ei, li = shapely.STRtree(lines).query(ends[loose], predicate="dwithin", distance=tolerance_m)
    ei = loose[ei]
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
    """Move ends of different lines lying within the tolerance of each other together.

    Ends within the tolerance of each other, transitively, meet at the first of them (by
    line rank). A KD-tree pairs the distinct end positions; two positions held only by
    the two ends of one line are not paired.
    """
    n = len(lines)
    coords, vline = shapely.get_coordinates(lines, return_index=True)
    first = np.searchsorted(vline, np.arange(n))
    where = np.concatenate([first, np.concatenate([first[1:], [len(coords)]]) - 1])
    owner = np.tile(np.arange(n), 2)
    end_xy = coords[where]
    unique_xy, spot = np.unique(end_xy, axis=0, return_inverse=True)
    spot = spot.ravel()
    pairs = spatial.cKDTree(unique_xy).query_pairs(tolerance_m, output_type="ndarray")
    if len(pairs):  # a spot held by ends of one line only: that line, else -1
        lo = np.full(len(unique_xy), n)
        hi = np.full(len(unique_xy), -1)
        np.minimum.at(lo, spot, owner)
        np.maximum.at(hi, spot, owner)
        single = np.where(lo == hi, lo, -1)
        a, b = single[pairs[:, 0]], single[pairs[:, 1]]
        pairs = pairs[(a < 0) | (a != b)]
    if not len(pairs):
        return lines
    # ends in one spot are one component with their spot; spots join by the pairs
    rows = np.concatenate([np.arange(2 * n), 2 * n + pairs[:, 0]])
    cols = np.concatenate([2 * n + spot, 2 * n + pairs[:, 1]])
    size = 2 * n + len(unique_xy)
    adjacency = sparse.coo_array((np.ones(len(rows)), (rows, cols)), shape=(size, size))
    _, label = csgraph.connected_components(adjacency, directed=False)
    label = label[: 2 * n]
    representative = np.full(label.max() + 1, 2 * n)
    np.minimum.at(representative, label, np.arange(2 * n))  # the first end, by line rank
    target = end_xy[representative[label]]
    moved = np.any(end_xy != target, axis=1)
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


def _k_nearest_within(
    tree: shapely.STRtree, items: GeomArray, pts: GeomArray, reach_m: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Find the ``_CANDIDATE_EDGES`` nearest items within ``reach_m`` of each point.

    Returns (point, item, distance) sorted by point, distance, item. Points with that
    many items within ``_SHORT_REACH_M`` are answered from them (the nearest are among
    them); only the others search the whole reach.
    """
    k = _CANDIDATE_EDGES
    short = min(reach_m, _SHORT_REACH_M)
    pi, ei = tree.query(pts, predicate="dwithin", distance=short)
    if short < reach_m:
        count = np.bincount(pi, minlength=len(pts))
        again = np.flatnonzero(count < k)
        if again.size:
            qi, qe = tree.query(pts[again], predicate="dwithin", distance=reach_m)
            keep = count[pi] >= k
            pi, ei = np.concatenate([pi[keep], again[qi]]), np.concatenate([ei[keep], qe])
    dist = shapely.distance(pts[pi], items[ei])
    order = np.lexsort((ei, dist, pi))
    pi, ei, dist = pi[order], ei[order], dist[order]
    few = _group_rank(pi) < k
    return pi[few], ei[few], dist[few]


@dataclass(frozen=True)
class _Links:
    """Where points meet the corridor edges: the computed part of attaching them.

    ``points`` (indices) join nodes ``at``; edges ``cut_edges`` (indices into the edge
    rows) are split into ``pieces`` (``piece_line`` tells whose) at new nodes
    ``cut_nodes`` placed at ``cut_xy``.
    """

    points: IntArray
    at: IntArray
    cut_edges: IntArray
    pieces: GeomArray
    piece_line: IntArray
    cut_nodes: IntArray
    cut_xy: FloatArray


def _corridor_links(
    ctx: _Context,
    *,
    ends: tuple[IntArray, IntArray],
    geoms: GeomArray,
    node_xy: FloatArray,
    pts: GeomArray,
    next_id: int,
) -> tuple[_Links | None, int]:
    """Find for each point the nearest corridor edge it may join and where; next node id.

    ``ends`` are the lower and higher node of each edge, ``geoms`` their lines (any
    orientation), both sorted by ``ends``.
    """
    eu, ev = ends
    pi, ei, dist = _k_nearest_within(shapely.STRtree(geoms), geoms, pts, ctx.reach_m)
    if not pi.size:
        return None, next_id
    geoms = geoms.copy()  # the candidate edges drawn from their lower node
    near = np.unique(ei)
    start, _ = _end_coords(geoms[near])
    flip = near[np.hypot(*(start - node_xy[ev[near]]).T) < np.hypot(*(start - node_xy[eu[near]]).T)]
    geoms[flip] = shapely.reverse(geoms[flip])
    along = shapely.line_locate_point(geoms[ei], pts[pi])
    xy = shapely.get_coordinates(pts)
    exempt_keys = _containing(pts, ctx.polygons, ctx.tree)
    # A point takes its nearest edge whose connector is free; test rank by rank.
    rank = _group_rank(pi)
    chosen_at = np.full(len(pts), -1, dtype=np.int64)
    for r in range(_CANDIDATE_EDGES):
        test = np.flatnonzero((rank == r) & (chosen_at[pi] < 0))
        if not test.size:
            break
        proj = shapely.get_coordinates(shapely.line_interpolate_point(geoms[ei[test]], along[test]))
        connectors = _segments(xy[pi[test]], proj)
        exempt = (pi[test].astype(np.int64), exempt_keys)
        blocked = _crosses_interior(connectors, ctx.polygons, ctx.tree, exempt)
        free = test[~(blocked & (dist[test] > _GRID_M))]
        chosen_at[pi[free]] = free
    chosen = chosen_at[chosen_at >= 0]
    if not chosen.size:
        return None, next_id
    cp, ce, calong = pi[chosen], ei[chosen], along[chosen]
    length = shapely.length(geoms[ce])
    at = np.where(calong <= _GRID_M, eu[ce], np.where(calong >= length - _GRID_M, ev[ce], -1))

    inner = np.flatnonzero(at < 0)
    no_int = np.zeros(0, dtype=np.int64)
    links = _Links(cp, at, no_int, np.zeros(0, dtype=object), no_int, no_int, np.zeros((0, 2)))
    if inner.size:
        bucket = np.stack([ce[inner], np.round(calong[inner] / _GRID_M).astype(np.int64)], 1)
        uniq, rep, inverse = np.unique(bucket, axis=0, return_index=True, return_inverse=True)
        cut_edges, cut_line = np.unique(uniq[:, 0], return_inverse=True)
        cut_dist = calong[inner][rep]
        pieces, piece_line, cut_xy = _cut_lines(geoms[cut_edges], cut_line.ravel(), cut_dist)
        cut_nodes = next_id + np.arange(len(uniq))
        next_id += len(uniq)
        at[inner] = cut_nodes[inverse.ravel()]
        links = _Links(cp, at, cut_edges, pieces, piece_line, cut_nodes, cut_xy)
    return links, next_id


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
    links, next_id = _corridor_links(
        ctx, ends=(eu, ev), geoms=geoms, node_xy=_node_coords(graph), pts=pts, next_id=next_id
    )
    if links is None:
        return attached, next_id
    cp, at = links.points, links.at
    if links.cut_nodes.size:
        graph.add_nodes_from(
            (int(n), {"x": float(x), "y": float(y), "road_crossing": False})
            for n, (x, y) in zip(links.cut_nodes, links.cut_xy, strict=True)
        )
        old = [data[i] for i in links.cut_edges.tolist()]
        _replace_split_edges(
            graph,
            ctx,
            edges=(eu[links.cut_edges], ev[links.cut_edges], old),
            pieces=links.pieces,
            piece_line=links.piece_line,
            cut_nodes=links.cut_nodes,
        )

    point_nodes = next_id + np.arange(len(cp))
    next_id += len(cp)
    xy = shapely.get_coordinates(pts)
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

    See :func:`geoplan._lattice.open_ground_patches`. Points that end up with no link to
    the lattice are removed again.
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
    patches, next_id = open_ground_patches(
        ctx,
        pts=pts,
        todo=todo,
        point_nodes=point_nodes,
        anchors=(anchor_ids, anchor_xy),
        next_id=next_id,
    )
    for patch in patches:
        graph.add_nodes_from(
            (int(n), {"x": float(x), "y": float(y), "lattice": True})
            for n, (x, y) in zip(patch.nodes.tolist(), patch.node_xy.tolist(), strict=True)
        )
        graph.add_edges_from(
            (int(a), int(b), ctx.open_edge(line, rc))
            for a, b, line, rc in zip(
                patch.a.tolist(),
                patch.b.tolist(),
                patch.lines,
                patch.crossings.tolist(),
                strict=True,
            )
        )
    for i, node in zip(todo.tolist(), point_nodes.tolist(), strict=True):
        if graph.degree(node):
            nodes[ids[i]] = node
        else:
            graph.remove_node(node)
    return next_id


# ------------------------------------------------------------------ attaching, as arrays


def attach_arrays(
    arrays: GraphArrays, points: gpd.GeoDataFrame, *, barriers: gpd.GeoSeries, settings: Settings
) -> tuple[GraphArrays, dict[str, int]]:
    """Connect points to the routing graph held as arrays; see :func:`attach_points`.

    The same connectors, split edges and lattices as :func:`attach_points` makes on a
    networkx graph, computed on arrays without a graph (nor a copy of one): what a city
    of a million edges needs. Edge rows come out in another order; node ids are the same.

    Returns
    -------
    arrays
        New arrays with the points, connectors, split edges and lattice added.
    nodes
        The node of each connected point, by id.
    """
    crs = _metric_crs(arrays.crs, "routing graph")
    if points.crs is None or not crs.equals(pyproj.CRS.from_user_input(points.crs)):
        msg = f"points are in {points.crs}, the routing graph in {crs.name}; reproject them"
        raise CRSError(Problem(msg, layer="points"))
    ids, xy = _point_table(points)
    nodes: dict[str, int] = {}
    if not ids:
        return arrays, nodes
    rows = np.flatnonzero(~arrays.off_corridor)
    rows = rows[np.lexsort((arrays.v[rows], arrays.u[rows]))]
    roads = arrays.geometry[rows][arrays.kind[rows] == "road"]
    ctx = _Context.make(roads, _barrier_array(barriers, crs), settings)
    pts = shapely.points(xy)
    node_xy, crossing = arrays.node_xy, arrays.road_crossing
    next_id = arrays.n_nodes
    edges = arrays.edges_where(np.arange(arrays.n_edges))
    new_edges: list[dict[str, np.ndarray]] = []
    point_id = dict(arrays.point_id)
    new_xy: list[FloatArray] = [node_xy]
    attached = np.zeros(len(ids), dtype=bool)
    links = None
    if rows.size:
        links, next_id = _corridor_links(
            ctx,
            ends=(arrays.u[rows], arrays.v[rows]),
            geoms=arrays.geometry[rows],
            node_xy=node_xy,
            pts=pts,
            next_id=next_id,
        )
    if links is not None:
        if links.cut_nodes.size:
            new_xy.append(links.cut_xy)
            crossing = np.concatenate([crossing, np.zeros(len(links.cut_nodes), dtype=bool)])
            split = rows[links.cut_edges]
            new_edges.append(_split_edge_rows(arrays, ctx, split, links, crossing))
            keep = np.ones(arrays.n_edges, dtype=bool)
            keep[split] = False
            edges = arrays.edges_where(keep)
        cp, at = links.points, links.at
        point_nodes = next_id + np.arange(len(cp))
        next_id += len(cp)
        all_xy = np.concatenate(new_xy)
        lines = _segments(all_xy[at], xy[cp])
        new_edges.append(_open_edge_rows(ctx, at, point_nodes, lines))
        new_xy.append(xy[cp])
        point_id.update(zip(point_nodes.tolist(), (ids[p] for p in cp.tolist()), strict=True))
        attached[cp] = True
    todo = np.flatnonzero(~attached)
    lattice_xy: list[FloatArray] = []
    first_lattice = next_id
    if todo.size:
        point_nodes = next_id + np.arange(len(todo))
        next_id += len(todo)
        first_lattice = next_id
        new_xy.append(xy[todo])
        anchor_xy = np.concatenate(new_xy)
        patches, next_id = open_ground_patches(
            ctx,
            pts=pts,
            todo=todo,
            point_nodes=point_nodes,
            anchors=(np.arange(len(anchor_xy)), anchor_xy),
            next_id=next_id,
        )
        linked: set[int] = set()
        for patch in patches:
            lattice_xy.append(patch.node_xy)
            new_edges.append(_open_edge_rows(ctx, patch.a, patch.b, patch.lines, patch.crossings))
            linked.update(patch.a.tolist())
            linked.update(patch.b.tolist())
        for i, node in zip(todo.tolist(), point_nodes.tolist(), strict=True):
            if node in linked:
                point_id[node] = ids[i]
    node_xy = np.concatenate([*new_xy, *lattice_xy])
    added = len(node_xy) - arrays.n_nodes
    crossing = np.concatenate([arrays.road_crossing, np.zeros(added, dtype=bool)])
    lattice = np.concatenate([arrays.lattice, np.zeros(added, dtype=bool)])
    lattice[first_lattice:] = True
    for name, value in point_id.items():
        if name >= arrays.n_nodes:
            nodes[value] = name
    merged = {name: np.concatenate([edges[name], *(e[name] for e in new_edges)]) for name in edges}
    out = replace(
        arrays,
        node_xy=node_xy,
        road_crossing=crossing,
        lattice=lattice,
        point_id=point_id,
        **merged,
    )
    logger.info(
        "attached %d points: %d to corridors, %d over open ground, %d not connected",
        len(ids),
        int(attached.sum()),
        len(nodes) - int(attached.sum()),
        len(ids) - len(nodes),
    )
    return out, dict(sorted(nodes.items()))


def _open_edge_rows(
    ctx: _Context,
    a: IntArray,
    b: IntArray,
    lines: GeomArray,
    crossings: FloatArray | None = None,
) -> dict[str, np.ndarray]:
    """Edge arrays of open-ground edges ``a``-``b`` along ``lines`` (drawn from a to b)."""
    if crossings is None:
        crossings = _road_crossings(lines, ctx.road_tree)
    length = shapely.length(lines)
    flip = a > b
    lines = lines.copy()
    lines[flip] = shapely.reverse(lines[flip])
    n = len(a)
    return {
        "u": np.minimum(a, b).astype(np.int64),
        "v": np.maximum(a, b).astype(np.int64),
        "length_m": length,
        "weight": length * ctx.costs.open_per_m + crossings * ctx.costs.crossing_cny,
        "surface": np.full(n, OPEN_SURFACE, dtype=object),
        "corridor_id": np.full(n, None, dtype=object),
        "kind": np.full(n, None, dtype=object),
        "off_corridor": np.ones(n, dtype=bool),
        "road_crossings": crossings.astype(float),
        "geometry": lines,
    }


def _split_edge_rows(
    arrays: GraphArrays, ctx: _Context, split: IntArray, links: _Links, crossing: BoolArray
) -> dict[str, np.ndarray]:
    """Edge arrays of the pieces of split edges (rows ``split``); see _replace_split_edges."""
    piece_line, cut_nodes, pieces = links.piece_line, links.cut_nodes, links.pieces
    eu, ev = arrays.u[split], arrays.v[split]
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
    cny = ctx.costs.crossing_cny
    old_rc = arrays.road_crossings[split][piece_line]
    share = np.where(
        old_rc > 0,
        0.5 * (((rank == 0) & crossing[start]).astype(float) + (last & crossing[end])),
        0.0,
    )
    base = arrays.weight[split][piece_line] - old_rc * cny
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(total[piece_line] > 0, piece_length / total[piece_line], 0.0)
    geometry = pieces.copy()
    flip = start > end
    geometry[flip] = shapely.reverse(geometry[flip])
    source = split[piece_line]
    return {
        "u": np.minimum(start, end).astype(np.int64),
        "v": np.maximum(start, end).astype(np.int64),
        "length_m": piece_length,
        "weight": base * fraction + share * cny,
        "surface": arrays.surface[source],
        "corridor_id": arrays.corridor_id[source],
        "kind": arrays.kind[source],
        "off_corridor": arrays.off_corridor[source],
        "road_crossings": share,
        "geometry": geometry,
    }
