"""Corridors → routing graph; points snapped onto it; an open-ground lattice as fallback.

The routing graph is an undirected :class:`networkx.Graph` in the corridors' metric CRS
(``graph.graph["crs"]``). Nodes are ints with attributes ``x`` and ``y`` (and
``road_crossing``, ``point_id`` or ``lattice`` where they apply). Every edge carries
``length_m``, ``weight`` (cost in CNY), ``surface``, ``corridor_id``, ``kind``,
``off_corridor``, ``road_crossings`` and a ``geometry`` oriented from the lower to the
higher node id.

Decisions worth knowing:

* **Noding.** Corridor ends within ``[network] node_tolerance_m`` of another corridor are
  extended onto it, then the lines are noded as :func:`shapely.node` does (crossings
  without a shared vertex included; lines split at the vertices where others meet
  them, only the rest noded by GEOS: :mod:`geoplan._noding`); node ids follow
  the sorted coordinates, rounded to 1 mm, so the graph does not depend on the order of
  the input rows. Corridors that
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

Points (meter boxes, supplies) are joined to the graph by :mod:`geoplan.attach`.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse, spatial
from scipy.sparse import csgraph

from ._checks import allowed_flags
from ._geometry import (
    _BAND_M,
    _GRID_M,
    OPEN_SURFACE,
    FloatArray,
    GeomArray,
    IntArray,
    _barrier_array,
    _Costs,
    _cut_lines,
    _distinct,
    _end_coords,
    _group_rank,
    _lexsort2,
    _lexsort_codes,
    _measured_within,
    _metric_crs,
    _node_index,
    _pairs_within,
    _point_groups,
)
from ._graph import GraphArrays, to_networkx
from ._noding import node_lines
from ._ragged import Ragged
from .attach import attach_arrays, attach_points
from .errors import LayerError, Problem
from .settings import Settings

logger = logging.getLogger(__name__)

#: From this many corridor lines, loose ends find the lines near them on a grid of
#: cells (compiled with numba) rather than in an STRtree.
_GRID_MIN_LINES = 20_000


__all__ = [
    "OPEN_SURFACE",
    "attach_arrays",
    "attach_points",
    "build_arrays",
    "build_graph",
    "path_geometry",
]

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
        A corridor's surface has no trench cost in the catalogue, or corridors overlap
        so nearly that GEOS cannot join them.
    """
    crs = _metric_crs(corridors.crs, "corridors")
    polygons = _barrier_array(barriers, crs)
    costs = _Costs.from_settings(settings)
    tolerance_m = float(settings.catalogue.value("network", "node_tolerance_m"))
    started = time.perf_counter()
    table, end_xy = _corridor_table(corridors, costs)
    if table.empty:
        logger.info("no usable corridors: the routing graph is empty")
        return _empty_arrays(crs)

    lines, kept = _snap_ends(table["geometry"].to_numpy(), end_xy, tolerance_m)
    if kept is not None:  # lines whose ends met shorter than a millimetre
        table = table.iloc[kept].reset_index(drop=True)
    try:
        pieces, source, inner_xy = node_lines(lines, polygons)
    except shapely.errors.GEOSException as error:
        raise LayerError(_unnodable(str(error), lines, table["corridor_id"])) from None
    per_m = table["cost_cny_per_m"].to_numpy(float)
    pieces, source = _split_parallels(pieces, source, per_m, inner_xy)
    noded = time.perf_counter()
    u, v, node_xy, geoms, length_m = _number_nodes(pieces)
    keep = np.flatnonzero(u != v)  # not rounding debris shorter than a millimetre
    u, v = u[keep], v[keep]
    used = np.zeros(len(node_xy), dtype=bool)
    used[u] = used[v] = True
    new_id = np.cumsum(used) - 1  # the nodes numbered afresh, in the same order
    u, v, node_xy = new_id[u], new_id[v], node_xy[used]
    order = _lexsort2(v, u)
    rows = keep[order]
    u, v, pieces, source, length_m = u[order], v[order], geoms[rows], source[rows], length_m[rows]

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


def _unnodable(message: str, lines: GeomArray, ids: pd.Series) -> list[Problem]:
    """Name the corridors where GEOS gave up noding (its message says near which point)."""
    near = re.search(r"near ([-+.\deE]+) ([-+.\deE]+)", message)
    rows = np.zeros(0, dtype=np.int64)
    if near:
        x, y = float(near.group(1)), float(near.group(2))
        # GEOS prints 6 significant digits: within a unit of the last one
        slack = max(10.0 ** (math.floor(math.log10(abs(v))) - 5) for v in (x, y, 1.0) if v)
        rows = np.sort(
            shapely.STRtree(lines).query(shapely.Point(x, y), predicate="dwithin", distance=slack)
        )
    fix = (
        "runs so nearly along another corridor that they cannot be joined "
        f"(GEOS: {message}); merge the overlapping corridors into one or move them apart"
    )
    if not rows.size:
        return [Problem(f"a corridor {fix}", layer="corridors")]
    return [
        Problem(f"corridor {fix}", layer="corridors", feature_id=str(ids.iloc[r]))
        for r in rows.tolist()
    ]


def _corridor_table(corridors: gpd.GeoDataFrame, costs: _Costs) -> tuple[pd.DataFrame, FloatArray]:
    """Usable corridor lines, exploded, with cost per metre, in a deterministic order.

    Also returns the lines' end coordinates: all first ones, then all last ones.
    """
    missing = [c for c in ("corridor_id", "surface") if c not in corridors.columns]
    if missing:
        msg = f"lacks the column(s) {', '.join(missing)}"
        raise LayerError(Problem(msg, layer="corridors"))
    geoms = np.asarray(corridors.geometry.to_numpy(), dtype=object)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if "allowed" in corridors.columns:
        usable &= allowed_flags(corridors["allowed"])
    kind = (
        corridors["kind"].to_numpy(object)[usable]
        if "kind" in corridors.columns
        else np.full(int(usable.sum()), None, dtype=object)
    )
    columns = {
        "corridor_id": corridors["corridor_id"].to_numpy(object)[usable],
        "surface": corridors["surface"].to_numpy(object)[usable],
        "kind": np.where(pd.isna(kind), None, kind),
    }
    columns["cost_cny_per_m"] = pd.Series(columns["surface"]).map(costs.per_m).to_numpy()
    unknown = np.flatnonzero(pd.isna(columns["cost_cny_per_m"]))
    if len(unknown):
        known = ", ".join(costs.per_m)
        raise LayerError(
            [
                Problem(
                    f"surface {s!r} has no trench cost; use one of {known}",
                    layer="corridors",
                    feature_id=str(i),
                )
                for i, s in zip(
                    columns["corridor_id"][unknown], columns["surface"][unknown], strict=True
                )
            ]
        )
    parts = geoms[usable]
    lines = shapely.get_type_id(parts) == 1
    if lines.all():  # all LineStrings: nothing to explode
        row = np.arange(len(parts))
    else:
        parts, row = shapely.get_parts(parts, return_index=True)
        lines = shapely.get_type_id(parts) == 1
    if not lines.all():
        logger.warning("ignoring %d corridor parts that are not lines", int((~lines).sum()))
    row, parts = row[lines], parts[lines]
    long_enough = shapely.length(parts) > _GRID_M
    row, parts = row[long_enough], parts[long_enough]
    columns = {k: v[row] for k, v in columns.items()} | {"geometry": parts}
    if not len(parts):
        return pd.DataFrame(columns), np.zeros((0, 2))
    start, end = _end_coords(parts)
    as_text = {k: pd.Series(columns[k]).astype(str) for k in ("corridor_id", "kind")}
    # sorted codes: the order of a stable sort_values by the keys, faster
    codes = [
        pd.factorize(columns["cost_cny_per_m"], sort=True)[0],
        _sorted_codes(as_text["corridor_id"]),
        _sorted_codes(pd.Series(columns["surface"])),
        _sorted_codes(as_text["kind"]),
    ]
    order = _lexsort_codes(codes, [*start.T, *end.T])
    table = pd.DataFrame({k: v[order] for k, v in columns.items()})
    return table, np.concatenate([start[order], end[order]])


def _sorted_codes(values: pd.Series) -> IntArray:
    """``pd.factorize(values, sort=True)[0]``, faster for many distinct strings.

    The distinct strings are ordered as numpy strings (by code point, as Python compares
    them) rather than by Python comparisons.
    """
    codes, distinct = pd.factorize(values)
    if pd.api.types.infer_dtype(distinct, skipna=False) != "string":
        return pd.factorize(values, sort=True)[0]
    try:
        text = np.asarray(distinct, dtype=np.dtypes.StringDType())
    except UnicodeEncodeError:  # a lone surrogate (no UTF-8 form): Python's own order
        return pd.factorize(values, sort=True)[0]
    order = np.argsort(text, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes]


def _snap_ends(
    lines: GeomArray, end_xy: FloatArray, tolerance_m: float
) -> tuple[GeomArray, IntArray | None]:
    """Join line ends that fall short of another line by at most the tolerance.

    Ends of different lines closer than the tolerance meet at one of them; an end that
    still falls short of another line, and meets no other line's end, is extended onto
    the nearest point of that line. ``end_xy`` holds the lines' first coordinates, then
    their last ones. Returns the lines, and which of them are left (``None``: all) when
    some were shortened to under a millimetre.
    """
    lines, end_xy, changed = _merge_close_ends(lines, end_xy, tolerance_m)
    kept = None
    short = changed[shapely.length(lines[changed]) <= _GRID_M]  # the others are longer
    if short.size:
        long_enough = np.ones(len(lines), dtype=bool)
        long_enough[short] = False
        kept = np.flatnonzero(long_enough)
        lines, end_xy = lines[long_enough], end_xy[np.tile(long_enough, 2)]
    n = len(lines)
    owner = np.tile(np.arange(n), 2)
    # An end shared with another line's end is a junction, not a gap: only loose ends
    # look for a line to reach.
    _, spot, count = _point_groups(end_xy)
    loose = np.flatnonzero(count[spot] == 1)
    loose_ends = shapely.points(end_xy[loose])
    if n < _GRID_MIN_LINES:
        qi, li, dist = _pairs_within(shapely.STRtree(lines), lines, loose_ends, tolerance_m)
    else:  # the lines' boxes in a grid: no tree of a million lines to build
        from ._grid import BoxGrid  # numba is imported only for a city

        reach = tolerance_m + _BAND_M
        near = BoxGrid.of(shapely.bounds(lines)).meeting(
            end_xy[loose] - reach, end_xy[loose] + reach
        )
        qi, li, dist = _measured_within(near, lines, loose_ends, tolerance_m)
    mine = li != owner[loose[qi]]
    qi, li, dist = qi[mine], li[mine], dist[mine]
    gap = dist > _GRID_M
    qi, li, dist = qi[gap], li[gap], dist[gap]
    if not qi.size:
        return lines, kept
    ei = loose[qi]
    order = np.lexsort((li, dist, ei))
    ei, qi, li = ei[order], qi[order], li[order]
    nearest = _group_rank(ei) == 0
    ei, qi, li = ei[nearest], qi[nearest], li[nearest]
    target = shapely.line_interpolate_point(
        lines[li], shapely.line_locate_point(lines[li], loose_ends[qi])
    )
    changed = _distinct(owner[ei])
    coords, vline = shapely.get_coordinates(lines[changed], return_index=True)
    position = np.arange(len(vline)) - np.searchsorted(vline, vline)
    xy = np.concatenate([coords, shapely.get_coordinates(target)])
    line_of = np.concatenate([vline, np.searchsorted(changed, owner[ei])])
    pos = np.concatenate([position, np.where(ei < n, -1, np.iinfo(np.int64).max)])
    order = np.lexsort((pos, line_of))
    out = lines.copy()
    out[changed] = shapely.linestrings(xy[order], indices=line_of[order])
    logger.debug("extended %d corridor ends onto a nearby corridor", len(ei))
    return out, kept


def _merge_close_ends(
    lines: GeomArray, end_xy: FloatArray, tolerance_m: float
) -> tuple[GeomArray, FloatArray, IntArray]:
    """Move ends of different lines lying within the tolerance of each other together.

    Ends within the tolerance of each other, transitively, meet at the first of them (by
    line rank). A KD-tree pairs the distinct end positions; two positions held only by
    the two ends of one line are not paired. ``end_xy`` are the lines' end coordinates
    (all first ones, then all last ones). Returns the lines, their end coordinates and
    the lines that changed.
    """
    n = len(lines)
    owner = np.tile(np.arange(n), 2)
    unchanged = np.zeros(0, dtype=np.int64)
    unique_xy, spot, _ = _point_groups(end_xy)
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
        return lines, end_xy, unchanged
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
    moved = np.flatnonzero(np.any(end_xy != target, axis=1))
    if not moved.size:
        return lines, end_xy, unchanged
    changed = _distinct(owner[moved])
    moving = Ragged.of(lines[changed])  # fresh coordinates, ours to move
    first, last = moving.first_last()
    line = np.searchsorted(changed, owner[moved])
    moving.coords[np.where(moved < n, first[line], last[line])] = target[moved]
    out = lines.copy()
    out[changed] = moving.geometries()
    logger.debug("joined %d corridor ends to a nearby end", len(moved))
    end_xy = end_xy.copy()
    end_xy[moved] = target[moved]
    return out, end_xy, changed


def _split_parallels(
    pieces: Ragged, source: IntArray, per_m: FloatArray, inner: FloatArray
) -> tuple[Ragged, IntArray]:
    """Split loops at their thirds and all but the cheapest of parallel edges at midpoints.

    ``inner`` holds the pieces' inner points (which break ties between them).
    """
    if not len(pieces):
        return pieces, source
    first, last = pieces.first_last()
    ids, _ = _node_index(pieces.coords[np.concatenate([first, last])])
    s, e = ids[: len(pieces)], ids[len(pieces) :]
    a, b = np.minimum(s, e), np.maximum(s, e)
    length = pieces.lengths()
    # Among pieces joining the same two nodes, all but the first by cost, length, source
    # and inner point repeat one: only those groups are ordered by all the keys.
    key = a * (int(ids.max(initial=0)) + 1) + b
    by_key = np.argsort(key, kind="stable")
    twin = key[by_key][1:] == key[by_key][:-1]
    shared = np.zeros(len(pieces), dtype=bool)
    shared[by_key[1:][twin]] = True
    shared[by_key[:-1][twin]] = True
    rows = np.flatnonzero(shared)
    order = rows[
        np.lexsort(
            (
                inner[rows, 1],
                inner[rows, 0],
                source[rows],
                length[rows],
                length[rows] * per_m[source[rows]],
                b[rows],
                a[rows],
            )
        )
    ]
    repeat = np.zeros(len(pieces), dtype=bool)
    repeat[order[1:]] = (a[order][1:] == a[order][:-1]) & (b[order][1:] == b[order][:-1])
    long_enough = length > 4 * _GRID_M  # shorter duplicates are rounding debris: dropped
    loop = (a == b) & long_enough
    to_cut = np.flatnonzero((repeat & long_enough) | loop)
    keep = np.flatnonzero((a != b) & ~repeat)
    if not to_cut.size:
        return pieces.subset(keep), source[keep]
    counts = np.where(loop[to_cut], 2, 1)
    cut_line = np.repeat(np.arange(len(to_cut)), counts)
    rank = _group_rank(cut_line) + 1
    cut_dist = rank / (counts[cut_line] + 1) * length[to_cut][cut_line]
    cut, cut_of, _ = _cut_lines(pieces.subset(to_cut).geometries(), cut_line, cut_dist)
    logger.debug("split %d parallel edges and loops", len(to_cut))
    return (
        Ragged.concat([pieces.subset(keep), Ragged.of(cut)]),
        np.concatenate([source[keep], source[to_cut][cut_of]]),
    )


def _number_nodes(
    pieces: Ragged,
) -> tuple[IntArray, IntArray, FloatArray, GeomArray, FloatArray]:
    """Give nodes ids by sorted coordinates; pin the pieces' ends to them, lower id first.

    Returns the lower and higher node of each piece, the nodes' coordinates, the pieces
    (made into geometries here) and their lengths.
    """
    coords, index = pieces.coords.copy(), pieces.index
    first, last = pieces.first_last()
    ids, node_xy = _node_index(np.concatenate([coords[first], coords[last]]))
    s, e = ids[: len(pieces)], ids[len(pieces) :]
    coords[first] = node_xy[s]
    coords[last] = node_xy[e]
    # pieces drawn from their lower node: a flipped piece's coordinates taken backwards
    take = np.arange(len(coords))
    flip = np.repeat(s > e, last - first + 1)
    take[flip] = (first + last)[index[flip]] - take[flip]
    drawn = Ragged(coords[take], index, len(pieces))
    return np.minimum(s, e), np.maximum(s, e), node_xy, drawn.geometries(), drawn.lengths()
