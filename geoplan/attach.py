"""Points → the routing graph: connectors to the nearest corridor edge, or open ground.

Meter boxes, supply points and feeder taps are joined to the graph that
:mod:`geoplan.network` builds, held as a networkx graph (:func:`attach_points`) or as
arrays (:func:`attach_arrays`, for cities); both make the same connectors, split edges
and lattices.

* **Attaching points.** A point joins the nearest point of the nearest corridor edge
  within ``max_connector_m`` (that edge is split there) by a straight open-ground
  connector; a connector through a barrier tries the next nearest edges. Each point gets
  its own node, so ``{id: node}`` is one-to-one.
* **Open ground.** Points left over get one local 8-neighbour lattice per cluster, sized
  to reach the points and corridor nodes around them within the LV supply radius; only
  lattice parts linking at least two anchors are kept.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely

from ._geometry import (
    _BAND_M,
    _CANDIDATE_EDGES,
    _GRID_M,
    _SHORT_REACH_M,
    OPEN_SURFACE,
    BoolArray,
    FloatArray,
    GeomArray,
    IntArray,
    _barrier_array,
    _containing,
    _Context,
    _crosses_interior,
    _cut_lines,
    _distinct,
    _EdgeRow,
    _end_coords,
    _group_rank,
    _in_threads,
    _lexsort2,
    _metric_crs,
    _road_crossings,
    _segments,
    _within_distance,
)
from ._graph import GraphArrays
from ._grid import BoxGrid
from ._lattice import open_ground_patches
from ._memory import collector_paused
from .errors import CRSError, LayerError, Problem
from .settings import Settings

logger = logging.getLogger("geoplan.network")

__all__ = ["attach_arrays", "attach_points"]


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


@dataclass
class _LowerFirst:
    """Edge lines turned, as they are needed, to run from their lower node (``oriented``)."""

    geoms: GeomArray
    oriented: BoolArray

    def take(
        self, edges: IntArray, *, ends: tuple[IntArray, IntArray], node_xy: FloatArray
    ) -> GeomArray:
        """Return the lines of ``edges`` drawn from their lower node, turning those not yet.

        An edge's line starts at the node nearer to its first coordinate.
        """
        eu, ev = ends
        new = _distinct(edges)
        new = new[~self.oriented[new]]
        if new.size:
            start, _ = _end_coords(self.geoms[new])
            to_lower = np.hypot(*(start - node_xy[eu[new]]).T)
            flip = new[np.hypot(*(start - node_xy[ev[new]]).T) < to_lower]
            self.geoms[flip] = shapely.reverse(self.geoms[flip])
            self.oriented[new] = True
        return self.geoms[edges]


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
    orientation), both sorted by ``ends``; ``geoms`` is the caller's to give up: lines
    are turned in it.
    """
    xy = shapely.get_coordinates(pts)
    pi, ei, dist = _nearest_edges(geoms, pts, xy, ctx.reach_m, _CANDIDATE_EDGES)
    if not pi.size:
        return None, next_id
    eu, ev = ends
    lines = _LowerFirst(geoms, np.zeros(len(geoms), dtype=bool))  # geoms are ours to turn
    along = np.full(len(pi), np.nan)
    proj_xy = np.full((len(pi), 2), np.nan)  # where each tested point meets its edge
    exempt_keys = _containing(pts, ctx.polygons, ctx.tree)
    barriers = (
        BoxGrid.make(shapely.bounds(ctx.polygons), ctx.reach_m) if len(ctx.polygons) else None
    )
    # A point takes its nearest edge whose connector is free; test rank by rank.
    rank = _group_rank(pi)
    chosen_at = np.full(len(pts), -1, dtype=np.int64)
    for r in range(_CANDIDATE_EDGES):
        test = np.flatnonzero((rank == r) & (chosen_at[pi] < 0))
        if not test.size:
            break
        edge_lines = lines.take(ei[test], ends=ends, node_xy=node_xy)
        along[test] = _in_threads(shapely.line_locate_point, edge_lines, pts[pi[test]])
        proj = _in_threads(shapely.line_interpolate_point, edge_lines, along[test])
        proj_xy[test] = shapely.get_coordinates(proj)
        tips = (xy[pi[test]], proj_xy[test])
        blocked = _blocked_connectors(ctx, barriers, tips, (pi[test], exempt_keys))
        free = test[~(blocked & (dist[test] > _GRID_M))]
        chosen_at[pi[free]] = free
    chosen = chosen_at[chosen_at >= 0]
    if not chosen.size:
        return None, next_id
    cp, ce, calong = pi[chosen], ei[chosen], along[chosen]
    geoms = lines.geoms  # the chosen edges are drawn from their lower node
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
        cut_at = proj_xy[chosen[inner][rep]]  # the same line and distance: the same point
        pieces, piece_line, cut_xy = _cut_lines(
            geoms[cut_edges], cut_line.ravel(), cut_dist, cut_at
        )
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


def _piece_ends(
    eu: IntArray, ev: IntArray, piece_line: IntArray, cut_nodes: IntArray
) -> tuple[IntArray, BoolArray, IntArray, IntArray]:
    """Each piece's rank along its split edge, whether it is the last, and its end nodes.

    ``eu``/``ev`` are the split edges' nodes, ``piece_line`` each piece's edge (pieces in
    order along their edge) and ``cut_nodes`` the cut points' nodes in the order of the
    cuts.
    """
    cuts_per_edge = np.bincount(piece_line) - 1
    cuts_before = np.concatenate(([0], np.cumsum(cuts_per_edge)[:-1]))
    rank = _group_rank(piece_line)
    last = rank == cuts_per_edge[piece_line]
    before = np.clip(cuts_before[piece_line] + rank - 1, 0, None)
    after = np.clip(cuts_before[piece_line] + rank, None, len(cut_nodes) - 1)
    start = np.where(rank == 0, eu[piece_line], cut_nodes[before])
    end = np.where(last, ev[piece_line], cut_nodes[after])
    return rank, last, start, end


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
    rank, last, start, end = _piece_ends(eu, ev, piece_line, cut_nodes)
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


@collector_paused()  # a city's attaching makes a million geometries
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
    if not ids:
        return arrays, {}
    rows = _corridor_rows(arrays)
    roads = arrays.geometry[rows][arrays.kind[rows] == "road"]
    ctx = _Context.make(roads, _barrier_array(barriers, crs), settings)
    pts = shapely.points(xy)
    node_xy, crossing = arrays.node_xy, arrays.road_crossing
    next_id = arrays.n_nodes
    keep = np.ones(arrays.n_edges, dtype=bool)  # the edges not split
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
            keep[split] = False
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
    first_new = arrays.n_nodes
    nodes = {value: name for name, value in point_id.items() if name >= first_new}
    edges = arrays.edges_where(keep)
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


def _corridor_rows(arrays: GraphArrays) -> IntArray:
    """Rows of the corridor edges (not open ground), sorted by their nodes ``u``, ``v``.

    The graph's edges usually come sorted already: then the sort is skipped.
    """
    rows = np.flatnonzero(~arrays.off_corridor)
    u, v = arrays.u[rows], arrays.v[rows]
    ascending = (u[1:] > u[:-1]) | ((u[1:] == u[:-1]) & (v[1:] >= v[:-1]))
    if ascending.all():
        return rows
    return rows[_lexsort2(v, u)]


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
    rank, last, start, end = _piece_ends(eu, ev, piece_line, cut_nodes)
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


# ------------------------------------------------------------- nearest edges, on a grid


def _nearest_edges(
    geoms: GeomArray, pts: GeomArray, xy: FloatArray, reach_m: float, k: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """``_k_nearest_within(shapely.STRtree(geoms), geoms, pts, reach_m, k)``, found faster.

    The same (point, edge, distance) rows, sorted by point, distance, edge: the edges
    whose boxes reach the point's box (``xy`` widened by the reach) are found on a grid
    of cells (no tree, no geometry per box), GEOS measures each such pair once (points
    first, as the tree's search does), and one compiled pass per point keeps its ``k``
    nearest within the short reach if it has that many there, else within the whole
    reach, as the two searches of :func:`geoplan._geometry._k_nearest_within` do.
    """
    box_m = reach_m + _BAND_M
    edges = BoxGrid.make(shapely.bounds(geoms), box_m)
    # A pair whose boxes are farther apart than the reach (plus a hair) is not within it.
    gi, ii = edges.meeting(xy + -box_m, xy + box_m, near=(xy, box_m + _BAND_M))
    dist = _in_threads(shapely.distance, pts[gi], geoms[ii])
    short = min(reach_m, _SHORT_REACH_M)
    near = _within_distance(dist, short, pts, geoms, (gi, ii))
    far = _within_distance(dist, reach_m, pts, geoms, (gi, ii)) if short < reach_m else near
    return _k_nearest_kernel()(gi, ii, dist, (near, far), k)


def _blocked_connectors(
    ctx: _Context,
    barriers: BoxGrid | None,
    ends: tuple[FloatArray, FloatArray],
    exempt: tuple[IntArray, IntArray],
) -> BoolArray:
    """:func:`_crosses_interior` of the connectors from ``ends[0]`` to ``ends[1]``.

    ``barriers`` are the boxes of ``ctx.polygons``; only connectors whose box meets one
    are made into lines and tested (a city has a few in a hundred). ``exempt`` = (each
    connector's point, the keys of :func:`_containing`).
    """
    a, b = ends
    blocked = np.zeros(len(a), dtype=bool)
    if barriers is None:
        return blocked
    meet, _ = barriers.meeting(np.minimum(a, b), np.maximum(a, b))
    some = _distinct(meet)
    if some.size:
        owners, keys = exempt
        lines = _segments(a[some], b[some])
        owned = (owners[some].astype(np.int64), keys)
        blocked[some] = _crosses_interior(lines, ctx.polygons, ctx.tree, owned)
    return blocked


@functools.cache
def _k_nearest_kernel() -> Any:
    """Compile :func:`_k_nearest` (numba is imported only here: a city's arrays need it)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_k_nearest)


def _k_nearest(
    gi: IntArray, ii: IntArray, dist: FloatArray, within: tuple[BoolArray, BoolArray], k: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Each point's ``k`` nearest items, by (distance, item), from ``near`` or ``far``.

    ``within`` = (near, far): a point with ``k`` pairs near takes them, another its far
    ones. Pairs ``gi``, ``ii`` are grouped by point (ascending).
    """
    near, far = within
    n = len(gi)
    out_p = np.empty(n, dtype=np.int64)
    out_i = np.empty(n, dtype=np.int64)
    out_d = np.empty(n, dtype=np.float64)
    best_i = np.empty(k, dtype=np.int64)
    best_d = np.empty(k, dtype=np.float64)
    m = 0
    g0 = 0
    while g0 < n:
        g1 = g0
        count = 0
        while g1 < n and gi[g1] == gi[g0]:
            count += near[g1]
            g1 += 1
        use = near if count >= k else far
        kept = 0
        for q in range(g0, g1):
            if not use[q]:
                continue
            d, i = dist[q], ii[q]
            at = kept
            while at > 0 and (best_d[at - 1] > d or (best_d[at - 1] == d and best_i[at - 1] > i)):
                at -= 1
            if at >= k:
                continue
            for s in range(min(kept, k - 1), at, -1):
                best_d[s], best_i[s] = best_d[s - 1], best_i[s - 1]
            best_d[at], best_i[at] = d, i
            kept = min(kept + 1, k)
        for s in range(kept):
            out_p[m], out_i[m], out_d[m] = gi[g0], best_i[s], best_d[s]
            m += 1
        g0 = g1
    return out_p[:m], out_i[:m], out_d[:m]
