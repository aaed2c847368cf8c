"""Compiled routing on :class:`~geoplan._graph.GraphArrays` with scipy's csgraph.

The same answers as the networkx functions of :mod:`geoplan.routing` (the reference; the
tests compare both on small graphs), without a Python loop per supply, box or edge:

* **Balls.** Every supply only looks as far as the LV supply radius. Each supply's
  ball (the nodes within that reach by length) and the cheapest route to each of its
  nodes inside the ball are searched by :func:`geoplan._localsearch.search_balls`, all
  supplies in one compiled loop, exactly as :func:`geoplan.routing.candidate_pairs` does
  supply by supply. The balls are kept as local copies of the graph, one block per
  supply, side by side (:class:`Copies`), so that scipy's csgraph can search all of them
  at once.
* **Shared trenches.** Mehlhorn's Steiner-tree approximation (the method networkx's
  ``steiner_tree`` uses) on the same copies, for all supplies at once: a multi-source
  Dijkstra from the terminals (compiled, block by block, on two threads, in
  :mod:`geoplan._steiner`; scipy's where ties make its order matter), the cheapest
  bridge between neighbouring Voronoi regions, a minimum spanning tree of those, their
  paths, a spanning tree of the paths, and the non-terminal leaves pruned. Where
  networkx joins two terminals by a fresh shortest path, this joins them through the
  bridge whose cost the spanning tree used; both are shortest paths unless there are
  ties.
* **Sections and geometry.** Route edges are grouped by the cables they carry and
  merged into trench sections (GEOS merges only the sections of several edges), and
  routes are drawn, with vectorised numpy and shapely.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from . import _geometry
from ._geometry import _KEY_LIMIT, _both, _distinct, _in_threads, _lexsort2
from ._graph import GraphArrays

logger = logging.getLogger("geoplan.routing")

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]

_TINY = np.nextafter(0.0, 1.0)  # a zero weight, as scipy's spanning tree keeps it


@dataclass(frozen=True)
class Copies:
    """Local copies of the graph, one block per source, side by side.

    Entry ``i`` is graph node ``node[i]`` in block ``block[i]``; ``first[b]`` is block
    ``b``'s first entry (entries are sorted by block, then node). ``ea``/``eb`` are the
    directed copy edges (as :func:`geoplan._localsearch.search_balls` writes them:
    sorted by ``ea``, then ``eb``) and ``row`` the graph edge each one copies.
    """

    node: IntArray
    block: IntArray
    first: IntArray
    source: IntArray
    ea: IntArray
    eb: IntArray
    row: IntArray

    @property
    def size(self) -> int:
        """Number of entries."""
        return len(self.node)

    def matrix(self, values: FloatArray) -> sparse.csr_array:
        """Return the copies' adjacency with ``values`` per graph edge."""
        data = values[self.row]
        return sparse.csr_array((data, (self.ea, self.eb)), shape=(self.size, self.size))

    def subset(self, blocks: IntArray) -> tuple[Copies, IntArray]:
        """Return the copies of some blocks only, and each old entry's new one (or -1).

        ``blocks`` ascend; a copy edge joins two entries of one block.
        """
        chosen = np.zeros(len(self.first) - 1, dtype=bool)
        chosen[blocks] = True
        mask = np.repeat(chosen, np.diff(self.first))
        new_index = np.where(mask, np.cumsum(mask) - 1, -1)
        edge_ok = mask[self.ea]
        renumber = np.full(len(self.first) - 1, -1, dtype=np.int64)
        renumber[blocks] = np.arange(len(blocks))
        block = renumber[self.block[mask]]
        first = np.searchsorted(block, np.arange(len(blocks) + 1))
        sub = Copies(
            node=self.node[mask],
            block=block,
            first=first,
            source=new_index[self.source[blocks]],
            ea=new_index[self.ea[edge_ok]],
            eb=new_index[self.eb[edge_ok]],
            row=self.row[edge_ok],
        )
        return sub, new_index


@dataclass(frozen=True)
class Regions:
    """Each entry's nearest terminal (``owner``), distance and predecessor entry.

    ``pred_edge`` is the copy edge from the predecessor (-1 at terminals and unreached
    entries), ``bridge`` the copy edges ``ea < eb`` whose ends lie in two regions, in
    edge order; unreached entries have ``dist`` inf and ``pred``, ``owner`` ``NO_PRED``.
    """

    dist: FloatArray
    pred: IntArray
    owner: IntArray
    pred_edge: IntArray
    bridge: IntArray


def adjacency(arrays: GraphArrays) -> sparse.csr_array:
    """Symmetric adjacency of the graph, data = edge row + 1; refuses parallel edges."""
    matrix = arrays.csr()
    if matrix.nnz != 2 * arrays.n_edges:
        msg = "the routing graph has parallel edges or loops"
        raise ValueError(msg)
    return matrix


def walk(pred: IntArray, starts: IntArray) -> tuple[IntArray, IntArray]:
    """Follow ``pred`` from each start to its root: (start index, entry), root first."""
    which, seq, at = [], [], []
    current = starts.astype(np.int64)
    alive = np.arange(len(starts))
    step = 0
    while alive.size:
        which.append(alive)
        at.append(current)
        seq.append(np.full(len(alive), step))
        nxt = pred[current]
        ok = nxt >= 0
        alive, current = alive[ok], nxt[ok].astype(np.int64)
        step += 1
    which_a, seq_a, at_a = np.concatenate(which), np.concatenate(seq), np.concatenate(at)
    order = _lexsort2(step - 1 - seq_a, which_a)
    return which_a[order], at_a[order]


# ------------------------------------------------------------------------ candidate pairs


@dataclass(frozen=True)
class Search:
    """What the candidate search found: the balls as copies, and cheapest-route trees."""

    copies: Copies
    pred: IntArray
    candidate_ids: list[str]


def candidate_pairs(
    arrays: GraphArrays,
    matrix: sparse.csr_array,
    nodes: dict[str, int],
    boxes: pd.DataFrame,
    candidates: pd.DataFrame,
) -> tuple[pd.DataFrame, Search, IntArray]:
    """Cheapest route from each supply to every box within its reach; see routing.

    Returns
    -------
    pairs
        box_id, candidate_id, cost_cny, length_m, in_radius (as the networkx version).
    search
        The copies and trees, for drawing routes and for the Steiner trees.
    entries
        The entry of each pair's box in its supply's copy (the route's end).
    """
    columns = ["box_id", "candidate_id", "cost_cny", "length_m", "in_radius"]
    reach_m = float(boxes["radius_m"].max()) if len(boxes) else 0.0
    ids = [c for c in candidates["candidate_id"] if f"supply:{c}" in nodes]
    sources = np.array([nodes[f"supply:{c}"] for c in ids], dtype=np.int64)
    from ._localsearch import search_balls  # numba is imported only when a city is routed

    balls = search_balls(matrix, arrays.length_m, arrays.weight, sources, reach_m)
    copies, cost, length = balls.copies, balls.cost, balls.length_m
    search = Search(copies, balls.pred, ids)
    del balls
    if not ids:
        return pd.DataFrame(columns=columns), search, np.zeros(0, dtype=np.int64)
    reached = np.isfinite(cost)

    box_ids = boxes["box_id"].astype(str).to_numpy()
    box_of_node = np.full(arrays.n_nodes, -1, dtype=np.int64)
    for i, b in enumerate(box_ids):
        node = nodes.get(f"box:{b}")
        if node is not None:
            box_of_node[node] = i
    box = box_of_node[copies.node]
    found = np.flatnonzero((box >= 0) & reached)
    radius = boxes["radius_m"].to_numpy(float)
    pairs = pd.DataFrame(
        {
            "box_id": box_ids[box[found]],
            "candidate_id": np.asarray(ids, dtype=object)[copies.block[found]],
            "cost_cny": cost[found],
            "length_m": length[found],
            "in_radius": length[found] <= radius[box[found]] + 1e-9,
        },
        columns=columns,
    )
    return pairs, search, found


# ------------------------------------------------------------------------ shared trenches


def steiner_routes(
    arrays: GraphArrays,
    search: Search,
    assigned: pd.DataFrame,
    *,
    end_entry: IntArray,
    radius_by_box: dict[str, float],
) -> tuple[list[str], IntArray, IntArray]:
    """Route each supply's cables along one Steiner tree; see routing.shared_trenches.

    ``end_entry`` is the entry of each assigned box (row of ``assigned``) in its supply's
    search (:func:`candidate_pairs`' entries).

    Returns
    -------
    box_ids
        The served boxes, sorted.
    route_of, route_nodes
        Flat routes: graph node ``route_nodes[k]`` is on the route of ``box_ids[route_of[k]]``,
        from the supply to the box.
    """
    copies = search.copies
    block_of = {c: i for i, c in enumerate(search.candidate_ids)}
    by_box = np.argsort(assigned["box_id"].to_numpy(object), kind="stable")
    assigned = assigned.iloc[by_box].reset_index(drop=True)
    box_ids = assigned["box_id"].astype(str).tolist()
    cand = assigned["candidate_id"].astype(str).to_numpy()
    end_entry = np.asarray(end_entry, dtype=np.int64)[by_box]
    counts = pd.Series(cand).value_counts()
    shared = np.array(sorted(block_of[c] for c in counts.index[counts >= 2]), dtype=np.int64)
    start = np.zeros(len(box_ids), dtype=np.int64)  # entry of the route's end in the tree
    use_tree = np.zeros(len(box_ids), dtype=bool)
    tree_pred = np.zeros(0, dtype=np.int64)
    tree_len = np.zeros(0)
    sub = None
    if shared.size:
        sub, old_to_new = copies.subset(shared)
        terminal = np.zeros(sub.size, dtype=bool)
        terminal[sub.source] = True
        in_shared = old_to_new[end_entry] >= 0  # -1: outside the shared blocks
        terminal[old_to_new[end_entry[in_shared]]] = True
        tree_pred, tree_len = _mehlhorn(arrays, sub, terminal)
        start[in_shared] = old_to_new[end_entry[in_shared]]
        use_tree[in_shared] = True

    route_of_parts, node_parts = [], []
    lengths = np.zeros(len(box_ids))
    if use_tree.any() and sub is not None:
        idx = np.flatnonzero(use_tree)
        lengths[idx] = tree_len[start[idx]]
        radius = np.array([radius_by_box[b] for b in box_ids])
        use_tree &= lengths <= radius + 1e-9
    for flag, pred, source_nodes in ((True, tree_pred, sub), (False, search.pred, copies)):
        idx = np.flatnonzero(use_tree == flag)
        if not idx.size or source_nodes is None:
            continue
        starts = start[idx] if flag else end_entry[idx]
        which, entry = walk(pred, starts)
        route_of_parts.append(idx[which])
        node_parts.append(source_nodes.node[entry])
    if not route_of_parts:
        return box_ids, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    route_of = np.concatenate(route_of_parts)
    route_nodes = np.concatenate(node_parts)
    order = np.argsort(route_of, kind="stable")
    return box_ids, route_of[order], route_nodes[order]


def _mehlhorn(
    arrays: GraphArrays, copies: Copies, terminal: BoolArray
) -> tuple[IntArray, FloatArray]:
    """Find Steiner trees (Mehlhorn) in every block at once.

    Returns each tree as predecessors towards its block's source (-9999 at the sources
    and off the trees), and each entry's length from the source along its tree.
    """
    from ._steiner import regions, tree_walk  # numba is imported only when a city is routed

    weight = arrays.weight
    found = regions(copies, weight, terminal)
    if found is None:
        found = _regions_by_scipy(copies, weight, terminal)
    dist, pred, owner = found.dist, found.pred, found.owner
    bridge = found.bridge
    ea, eb, row = copies.ea[bridge], copies.eb[bridge], copies.row[bridge]
    oa, ob = owner[ea], owner[eb]
    through = dist[ea] + weight[row] + dist[eb]
    lo, hi = np.minimum(oa, ob), np.maximum(oa, ob)
    order = np.lexsort((through, hi, lo))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    best = order[first]
    n = copies.size
    terminal_graph = sparse.csr_array(
        (np.maximum(through[best], _TINY), (lo[best], hi[best])), shape=(n, n)
    )
    mst = sparse.coo_array(csgraph.minimum_spanning_tree(terminal_graph))
    chosen = np.zeros(0, dtype=np.int64)
    if mst.nnz:
        mr, mc = mst.row.astype(np.int64), mst.col.astype(np.int64)
        want = np.minimum(mr, mc) * n + np.maximum(mr, mc)
        chosen = best[np.searchsorted(lo[best] * n + hi[best], want)]
    # The paths behind the chosen bridges: each end back to its terminal, and the bridge.
    a_side, b_side = ea[chosen], eb[chosen]
    _, walked = walk(pred, np.concatenate([a_side, b_side]))
    walked = walked[pred[walked] >= 0]
    pair, pair_row = _edge_set(
        np.concatenate([a_side, walked]),
        np.concatenate([b_side, pred[walked]]),
        np.concatenate([row[chosen], copies.row[found.pred_edge[walked]]]),
        n,
    )
    union = sparse.csr_array(
        (np.maximum(weight[pair_row], _TINY), (pair // n, pair % n)), shape=(n, n)
    )
    tree = sparse.coo_array(csgraph.minimum_spanning_tree(union))
    tu, tv = tree.row.astype(np.int64), tree.col.astype(np.int64)
    tree_row = pair_row[np.searchsorted(pair, np.minimum(tu, tv) * n + np.maximum(tu, tv))]
    # Prune leaves that are not terminals.
    while tu.size:
        degree = np.bincount(np.concatenate([tu, tv]), minlength=n)
        leaf = (degree == 1) & ~terminal
        keep = ~(leaf[tu] | leaf[tv])
        if keep.all():
            break
        tu, tv, tree_row = tu[keep], tv[keep], tree_row[keep]
    return tree_walk(n, tu, tv, step=arrays.length_m[tree_row], sources=copies.source)


def _edge_set(ua: IntArray, ub: IntArray, row: IntArray, n: int) -> tuple[IntArray, IntArray]:
    """Return the distinct undirected pairs ``(ua, ub)`` as sorted keys ``lo * n + hi``, rows."""
    key = np.minimum(ua, ub) * n + np.maximum(ua, ub)
    order, new = _runs(key)
    first = order[new]
    return key[first], row[first]


def _regions_by_scipy(copies: Copies, weight: FloatArray, terminal: BoolArray) -> Regions:
    """:func:`geoplan._steiner.regions` by scipy's multi-source Dijkstra (the reference)."""
    dist, pred, owner = csgraph.dijkstra(
        copies.matrix(weight),
        indices=np.flatnonzero(terminal),
        min_only=True,
        return_predecessors=True,
    )
    pred, owner = pred.astype(np.int64), owner.astype(np.int64)
    ea, eb = copies.ea, copies.eb
    oa, ob = owner[ea], owner[eb]
    bridge = np.flatnonzero((ea < eb) & (oa != ob) & (oa >= 0) & (ob >= 0))
    pred_edge = np.full(copies.size, -1, dtype=np.int64)
    has = np.flatnonzero(pred >= 0)
    keys = ea * copies.size + eb
    order = np.argsort(keys, kind="stable")
    pred_edge[has] = order[np.searchsorted(keys, pred[has] * copies.size + has, sorter=order)]
    return Regions(dist, pred, owner, pred_edge, bridge)


# ------------------------------------------------------------------------ trench sections


def edge_rows(arrays: GraphArrays, a: IntArray, b: IntArray) -> IntArray:
    """Row of the edge joining ``a`` and ``b`` (each pair must be an edge)."""
    n = arrays.n_nodes
    keys = arrays.u * n + arrays.v
    order = np.argsort(keys)
    want = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)
    asked = np.argsort(want)  # searched in order: faster than at random
    at = np.empty(len(want), dtype=np.int64)
    at[asked] = order[np.searchsorted(keys[order], want[asked]).clip(0, len(keys) - 1)]
    if len(want) and not np.array_equal(keys[at], want):
        msg = "a route steps between nodes that no edge joins"
        raise ValueError(msg)
    return at


def trench_sections(
    arrays: GraphArrays,
    box_ids: list[str],
    route_of: IntArray,
    route_nodes: IntArray,
    supply_of: dict[str, str],
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, IntArray, IntArray]:
    """Merge the edges cables run along into trench sections; see routing.trench_sections.

    Returns the trenches, trench_boxes, and for every route step (consecutive nodes) its
    edge row and the number of cables on that edge.
    """
    same = route_of[1:] == route_of[:-1]
    step_route = route_of[1:][same]
    a, b = route_nodes[:-1][same], route_nodes[1:][same]
    rows = edge_rows(arrays, a, b)
    # Cables on each edge, in box order (box_ids are sorted).
    order = _lexsort2(step_route, rows)
    e_sorted, r_sorted = rows[order], step_route[order]
    start = np.flatnonzero(np.r_[True, e_sorted[1:] != e_sorted[:-1]])
    used = e_sorted[start]
    count = np.diff(np.r_[start, len(e_sorted)])
    n_on_edge = np.zeros(arrays.n_edges, dtype=np.int64)
    n_on_edge[used] = count
    surface, off = arrays.surface[used], arrays.off_corridor[used]
    group, rep = _cable_groups(r_sorted, start, count, surface, off)

    # Sections: edges of one group joined at nodes where exactly two of them meet.
    order = np.lexsort((arrays.v[used], arrays.u[used], group))
    used, group = used[order], group[order]
    m = len(used)
    ends = np.concatenate([arrays.u[used], arrays.v[used]])
    end_group = np.concatenate([group, group])
    end_edge = np.tile(np.arange(m), 2)
    key = end_group * arrays.n_nodes + ends
    korder = _lexsort2(end_edge, key)
    k_sorted = key[korder]
    run_start = np.r_[True, k_sorted[1:] != k_sorted[:-1]]
    run_id = np.cumsum(run_start) - 1
    run_len = np.bincount(run_id)
    two = run_len[run_id] == 2
    pa = end_edge[korder][two & run_start]
    pb = end_edge[korder][np.flatnonzero(two & run_start) + 1]
    link = sparse.coo_array((np.ones(len(pa)), (pa, pb)), shape=(m, m))
    n_parts, part = csgraph.connected_components(link, directed=False)
    merged, first_xy = _merge_parts(arrays.geometry[used], part, n_parts)
    part_group = np.zeros(n_parts, dtype=np.int64)
    part_group[part] = group
    sort = np.lexsort((first_xy[:, 1], first_xy[:, 0], part_group))
    rank = np.empty(n_parts, dtype=np.int64)
    rank[sort] = np.arange(n_parts)
    section = rank[part]
    road = np.bincount(section, weights=arrays.road_crossings[used], minlength=n_parts)
    cost = np.bincount(section, weights=arrays.weight[used], minlength=n_parts)
    edge_of = rep[part_group[sort]]  # the edge standing for each trench's group
    sizes = count[edge_of]
    members = r_sorted[_ranges(start[edge_of], sizes)]  # each trench's cables, in order
    supplies = _supply_names(box_ids, supply_of, members, sizes)
    trench_ids = [f"TR{i:05d}" for i in range(1, n_parts + 1)]
    trenches = gpd.GeoDataFrame(
        {
            "trench_id": trench_ids,
            "supply_id": supplies,
            "surface": surface[edge_of],
            "off_corridor": off[edge_of].astype(bool),
            "road_crossings": road.astype("float64"),
            "n_cables": sizes.astype(np.int64),
            "length_m": shapely.length(merged[sort]).astype("float64"),
            "cost_cny": cost.astype("float64"),
        },
        geometry=merged[sort],
        crs=arrays.crs,
    )
    trench_boxes = pd.DataFrame(
        {
            "trench_id": np.repeat(np.asarray(trench_ids, dtype=object), sizes),
            "box_id": np.asarray(box_ids, dtype=object)[members],
        }
    )
    return trenches, trench_boxes, rows, n_on_edge[rows]


def _merge_parts(lines: np.ndarray, part: IntArray, n_parts: int) -> tuple[np.ndarray, FloatArray]:
    """``line_merge`` the lines of each part (in line order); return them and first points.

    A part of one plain line (:func:`_plain`) is that line: GEOS's line merger keeps its
    points and its direction (a test pins this), so only the other parts are merged.
    """
    size = np.bincount(part, minlength=n_parts)
    alone = np.flatnonzero(size[part] == 1)
    plain, first_xy = _plain(lines[alone])
    alone = alone[plain]
    merged = np.empty(n_parts, dtype=object)
    merged[part[alone]] = lines[alone]
    xy = np.empty((n_parts, 2))
    xy[part[alone]] = first_xy[plain]
    single = np.zeros(len(lines), dtype=bool)
    single[alone] = True
    rest = np.flatnonzero(~single)
    if rest.size:
        rest = rest[np.argsort(part[rest], kind="stable")]
        rest_part = part[rest]
        new = np.ones(len(rest), dtype=bool)
        new[1:] = rest_part[1:] != rest_part[:-1]
        parts = rest_part[new]
        joined = _in_threads(shapely.line_merge, _multilines(lines[rest], np.cumsum(new) - 1))
        merged[parts] = joined
        xy[parts] = shapely.get_coordinates(_in_threads(shapely.get_point, joined, 0))
    return merged, xy


def _plain(lines: np.ndarray) -> tuple[BoolArray, FloatArray]:
    """Which lines are plain (2D, open, finite, no point repeated in turn); first points."""
    coords, line = shapely.get_coordinates(lines, return_index=True)
    n_coords = np.bincount(line, minlength=len(lines))
    first = np.cumsum(n_coords) - n_coords
    plain = (n_coords >= 2) & ~shapely.has_z(lines)
    has = np.flatnonzero(plain)
    last = first[has] + n_coords[has] - 1
    plain[has] &= np.any(coords[first[has]] != coords[last], axis=1)
    repeated = (line[1:] == line[:-1]) & np.all(coords[1:] == coords[:-1], axis=1)
    plain[line[1:][repeated]] = False
    plain[line[~np.isfinite(coords).all(axis=1)]] = False
    return plain, coords[first.clip(0, max(len(coords) - 1, 0))]


def _multilines(lines: np.ndarray, part: IntArray) -> np.ndarray:
    """Join ``lines`` into one multi-line per ``part`` (sorted, every part from 0 on).

    Large inputs are joined in two halves on two threads.
    """
    if len(lines) < _geometry._THREADED_MIN:  # read here: the tests lower it
        return shapely.multilinestrings(lines, indices=part)
    half = int(part[-1] + 1) // 2
    cut = int(np.searchsorted(part, half))
    first, second = _both(
        lambda: shapely.multilinestrings(lines[:cut], indices=part[:cut]),
        lambda: shapely.multilinestrings(lines[cut:], indices=part[cut:] - half),
    )
    return np.concatenate([first, second])


def _cable_groups(
    cables: IntArray, start: IntArray, count: IntArray, surface: np.ndarray, off: BoolArray
) -> tuple[IntArray, IntArray]:
    """Group the edges by their (cables, surface, off corridor), groups in sorted order.

    Edge ``i`` carries ``cables[start[i] : start[i] + count[i]]`` (ascending). The groups
    are numbered in the order Python sorts the keys ``(tuple(cables), surface, off)``, as
    the networkx version does: the cable tuples are ranked position by position (a
    shorter tuple before any it begins), then surface and off corridor break ties.
    Returns each edge's group and each group's first edge.
    """
    n = len(start)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rank = np.zeros(n, dtype=np.int64)
    span = int(cables.max()) + 2
    width = int(count.max())
    per_pass = _columns_per_pass(n, span)  # positions ranked together, in one key
    for j in range(0, width, per_pass):
        key = rank
        for position in range(j, min(j + per_pass, width)):
            longer = count > position
            value = np.zeros(n, dtype=np.int64)  # 0: the tuple has ended
            value[longer] = cables[start[longer] + position] + 1
            key = key * span + value
        rank = _dense_rank(key)[0]
    surface_code, surface_names = pd.factorize(surface, sort=True)  # np.unique's codes
    key = (rank * len(surface_names) + surface_code) * 2 + off.astype(np.int64)
    group, order, new = _dense_rank(key)
    return group, order[new]


def _columns_per_pass(n: int, span: int) -> int:
    """How many values below ``span`` fit after a rank below ``n`` in one int64 key."""
    per_pass = 1
    while n * span ** (per_pass + 1) < _KEY_LIMIT:
        per_pass += 1
    return per_pass


def _dense_rank(key: IntArray) -> tuple[IntArray, IntArray, BoolArray]:
    """Rank ``key`` densely (equal keys, equal ranks).

    Also returns the key's stable order and which places of that order start a new key.
    """
    order, new = _runs(key)
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank, order, new


def _runs(key: IntArray) -> tuple[IntArray, BoolArray]:
    """Return the stable order of ``key`` and which places of that order start a new key."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    new = np.ones(len(key), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    return order, new


def _ranges(first: IntArray, length: IntArray) -> IntArray:
    """Return the indices ``first[k] .. first[k] + length[k] - 1`` for each k, in turn."""
    total = int(length.sum())
    offset = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
    return np.repeat(first, length) + offset


def _supply_names(
    box_ids: list[str], supply_of: dict[str, str], members: IntArray, sizes: IntArray
) -> list[str]:
    """Each trench's supplies, sorted and joined by ``;`` (its cables: ``members``)."""
    code, names = pd.factorize(  # np.unique's codes, faster on strings
        np.array([supply_of[b] for b in box_ids], dtype=object), sort=True
    )
    names = np.asarray(names, dtype=object)
    if not len(sizes):
        return []
    first = np.cumsum(sizes) - sizes
    codes = code[members]
    low = np.minimum.reduceat(codes, first)
    high = np.maximum.reduceat(codes, first)
    out = names[low].tolist()
    shared = np.flatnonzero(low != high)  # cables of several supplies share the trench
    if not shared.size:
        return out
    which = np.repeat(shared, sizes[shared])
    code_of = codes[_ranges(first[shared], sizes[shared])]
    order = _lexsort2(code_of, which)
    which, code_of = which[order], code_of[order]
    new = np.ones(len(which), dtype=bool)
    new[1:] = (which[1:] != which[:-1]) | (code_of[1:] != code_of[:-1])
    which, texts = which[new], names[code_of[new]].tolist()
    bounds = np.flatnonzero(np.r_[True, which[1:] != which[:-1], True]).tolist()
    for k, lo, hi in zip(shared.tolist(), bounds[:-1], bounds[1:], strict=True):
        out[k] = ";".join(texts[lo:hi])
    return out


def route_geometry(
    arrays: GraphArrays,
    route_of: IntArray,
    route_nodes: IntArray,
    n_routes: int,
    rows: IntArray,
) -> np.ndarray:
    """Draw every route (as network.path_geometry draws it), all at once.

    ``rows`` are the steps' edge rows, as :func:`trench_sections` returns them.
    """
    same = route_of[1:] == route_of[:-1]
    a = route_nodes[:-1][same]
    step_route = route_of[1:][same]
    coords, step = shapely.get_coordinates(arrays.geometry[rows], return_index=True)
    size = np.bincount(step, minlength=len(rows))
    first = np.cumsum(size) - size
    position = np.arange(len(step)) - first[step]
    flip = (a != arrays.u[rows])[step]
    order = first[step] + np.where(flip, size[step] - 1 - position, position)  # flipped: reversed
    coords, owner = coords[order], step_route[step[order]]
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = (owner[1:] != owner[:-1]) | np.any(coords[1:] != coords[:-1], axis=1)
    coords, owner = coords[keep], owner[keep]
    single = np.flatnonzero(np.bincount(owner, minlength=n_routes) == 1)
    if single.size:
        coords = np.concatenate([coords, coords[np.searchsorted(owner, single)]])
        owner = np.concatenate([owner, single])
        order = np.argsort(owner, kind="stable")
        coords, owner = coords[order], owner[order]
    out = np.array([shapely.LineString()] * n_routes, dtype=object)
    has = _distinct(owner)
    if has.size:
        out[has] = shapely.linestrings(coords, indices=np.searchsorted(has, owner))
    return out
