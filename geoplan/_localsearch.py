"""Every supply's bounded search of the graph, compiled with numba.

What :func:`geoplan.routing.candidate_pairs` does supply by supply with networkx (the
reference) — the nodes within the reach by length, then the cheapest route to each of
them inside that ball — done for all supplies in one compiled loop over the graph's CSR
arrays, on two threads (the loop releases the GIL).

scipy's csgraph has no such search: ``dijkstra(indices=sources, limit=r)`` fills a
sources × nodes matrix (25,000 × 1M for a city), and one multi-source call keeps only
the nearest source per node. The earlier way round — a copy of each supply's disc of
the graph, side by side in one block-diagonal matrix — built and searched five million
copied nodes for a city of a million edges; this searches the same balls without
copying the graph.

The balls come as :class:`geoplan._fastroute.Copies`: one block of entries per source
(its ball, sorted by node) and the copy edges between entries of a block; with, per
entry, its predecessor entry on the cheapest route, cost and length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from scipy import sparse

from ._fastroute import Copies
from ._geometry import _both, _on_two_threads

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]

_Heap = tuple[FloatArray, IntArray, IntArray]  # key, push order (breaks ties), item

NO_PRED = -9999  # as scipy marks roots and unreached nodes
_SPLIT_MIN = 1_000  # fewer sources than this are searched on one thread
_START = 1024  # first room of a heap or an output buffer; they grow as needed


@dataclass(frozen=True)
class Balls:
    """Each source's ball (nodes within the reach by length) and its cheapest routes.

    ``copies`` holds the balls, one block per source (entries sorted by block, then node,
    the copy edges between entries of a block). ``pred`` is each entry's predecessor
    entry on the cheapest route from its source (``NO_PRED`` at the source), ``cost`` and
    ``length_m`` that route's sums.
    """

    copies: Copies
    pred: IntArray
    cost: FloatArray
    length_m: FloatArray


def search_balls(
    matrix: sparse.csr_array,
    length_m: FloatArray,
    weight: FloatArray,
    sources: IntArray,
    reach_m: float,
) -> Balls:
    """Search every source's ball: see the module docstring.

    Parameters
    ----------
    matrix
        The graph's symmetric adjacency, sorted indices, data = edge row + 1
        (:func:`geoplan._fastroute.adjacency`).
    length_m, weight
        Each edge's length and cost.
    sources
        The source nodes (one block each, in this order).
    reach_m
        How far each source looks, by length along the graph.
    """
    graph = (
        np.ascontiguousarray(matrix.indptr, dtype=np.int64),
        np.ascontiguousarray(matrix.indices, dtype=np.int64),
        np.ascontiguousarray(matrix.data, dtype=np.int64) - 1,
        np.ascontiguousarray(length_m, dtype=np.float64),
        np.ascontiguousarray(weight, dtype=np.float64),
    )
    sources = np.ascontiguousarray(sources, dtype=np.int64)
    if len(sources) < _SPLIT_MIN:
        return _joined([_search(graph, sources, float(reach_m))])
    first, second, _ = _on_two_threads(
        len(sources), lambda lo, hi: _search(graph, sources[lo:hi], float(reach_m))
    )
    return _joined([first, second])


def _joined(parts: list[tuple[np.ndarray, ...]]) -> Balls:
    """Join the halves' results, renumbering the second half's entries and blocks.

    Each array of the result is made once and each half written into its part of it (a
    city's balls are millions of entries and copy edges: no intermediate arrays); the
    entries' arrays and the edges' are written on two threads (numpy lets go of the GIL
    while it copies, and first writes to fresh pages are most of the time).
    """
    n = sum(len(part[0]) for part in parts)
    m = sum(len(part[6]) for part in parts)
    node, pred = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    cost, length = np.empty(n), np.empty(n)
    ea, eb, row = (np.empty(m, dtype=np.int64) for _ in range(3))
    at = np.cumsum([0] + [len(part[0]) for part in parts])
    edge_at = np.cumsum([0] + [len(part[6]) for part in parts])

    def entries() -> None:
        for (p_node, _, _, p_pred, p_cost, p_len, *_), lo in zip(parts, at, strict=False):
            here = slice(lo, lo + len(p_node))
            node[here], cost[here], length[here] = p_node, p_cost, p_len
            np.add(p_pred, lo, out=pred[here])
            pred[here][p_pred < 0] = NO_PRED

    def edges() -> None:
        for (*_, p_ea, p_eb, p_row), lo, e_lo in zip(parts, at, edge_at, strict=False):
            here = slice(e_lo, e_lo + len(p_ea))
            row[here] = p_row
            np.add(p_ea, lo, out=ea[here])
            np.add(p_eb, lo, out=eb[here])

    _both(entries, edges)
    count = np.concatenate([part[1] for part in parts])
    copies = Copies(
        node=node,
        block=np.repeat(np.arange(len(count)), count),
        first=np.concatenate([[0], np.cumsum(count)]).astype(np.int64),
        source=np.concatenate([part[2] + lo for part, lo in zip(parts, at, strict=False)]),
        ea=ea,
        eb=eb,
        row=row,
    )
    return Balls(copies, pred, cost, length)


# ----------------------------------------------------------------------- compiled parts


@numba.njit(cache=True, nogil=True)
def _grow(values: np.ndarray, need: int) -> np.ndarray:
    """Return ``values`` with room for at least ``need`` items (contents kept)."""
    if need <= len(values):
        return values
    out = np.empty(max(need, 2 * len(values)), dtype=values.dtype)
    out[: len(values)] = values
    return out


@numba.njit(cache=True, nogil=True)
def _new_heap() -> _Heap:
    """Return an empty heap (key, push order, item) with room for :data:`_START` items."""
    return np.empty(_START), np.empty(_START, dtype=np.int64), np.empty(_START, dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _push(heap: _Heap, size: int, k: float, o: int, v: int) -> _Heap:
    """Push (k, o, v) on the binary min-heap of ``size`` items; return the heap (grown)."""
    key, order, item = heap
    if size + 1 > len(key):
        key, order, item = _grow(key, size + 1), _grow(order, size + 1), _grow(item, size + 1)
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if key[parent] < k or (key[parent] == k and order[parent] < o):
            break
        key[i], order[i], item[i] = key[parent], order[parent], item[parent]
        i = parent
    key[i], order[i], item[i] = k, o, v
    return key, order, item


@numba.njit(cache=True, nogil=True)
def _pop(heap: _Heap, size: int) -> tuple[float, int]:
    """Remove the smallest item of the heap of ``size`` items; return its key and item."""
    key, order, item = heap
    top_key, top_item = key[0], item[0]
    size -= 1
    k, o, v = key[size], order[size], item[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        right = child + 1
        if right < size and (
            key[right] < key[child] or (key[right] == key[child] and order[right] < order[child])
        ):
            child = right
        if key[child] > k or (key[child] == k and order[child] > o):
            break
        key[i], order[i], item[i] = key[child], order[child], item[child]
        i = child
    key[i], order[i], item[i] = k, o, v
    return top_key, top_item


@numba.njit(cache=True, nogil=True)
def _search(
    graph: tuple[IntArray, IntArray, IntArray, FloatArray, FloatArray],
    sources: IntArray,
    reach_m: float,
) -> tuple[
    IntArray, IntArray, IntArray, IntArray, FloatArray, FloatArray, IntArray, IntArray, IntArray
]:
    """Search the sources' balls one after another; entries numbered from 0.

    ``graph`` is (indptr, indices, edge row of each index, length_m, weight).
    """
    indptr, indices, edge_row, length_m, weight = graph
    n = len(indptr) - 1
    seen = np.full(n, -1, dtype=np.int64)  # source index whose search reached the node
    done = np.full(n, -1, dtype=np.int64)  # ... that settled it
    best = np.zeros(n)
    local = np.zeros(n, dtype=np.int64)
    heap = _new_heap()
    ball = np.empty(_START, dtype=np.int64)
    lpred = np.empty(_START, dtype=np.int64)
    lcost = np.empty(_START)
    llen = np.empty(_START)

    cap = _START
    out_node = np.empty(cap, dtype=np.int64)
    out_pred = np.empty(cap, dtype=np.int64)
    out_cost = np.empty(cap)
    out_len = np.empty(cap)
    ecap = 4 * _START
    out_ea = np.empty(ecap, dtype=np.int64)
    out_eb = np.empty(ecap, dtype=np.int64)
    out_row = np.empty(ecap, dtype=np.int64)
    count = np.zeros(len(sources), dtype=np.int64)
    source_entry = np.zeros(len(sources), dtype=np.int64)
    n_out = 0
    n_edges = 0

    for s in range(len(sources)):
        root = sources[s]
        # 1. The ball: nodes within reach_m by length (networkx's cutoff: dist <= reach).
        n_ball = 0
        seen[root] = s
        best[root] = 0.0
        heap = _push(heap, 0, 0.0, 0, root)
        size = pushes = 1
        while size:
            d, v = _pop(heap, size)
            size -= 1
            if done[v] == s:
                continue
            done[v] = s
            ball = _grow(ball, n_ball + 1)
            ball[n_ball] = v
            n_ball += 1
            for k in range(indptr[v], indptr[v + 1]):
                u = indices[k]
                if done[u] == s:
                    continue
                du = d + length_m[edge_row[k]]
                if du > reach_m:
                    continue
                if seen[u] != s or du < best[u]:
                    seen[u] = s
                    best[u] = du
                    heap = _push(heap, size, du, pushes, u)
                    size += 1
                    pushes += 1
        ball[:n_ball].sort()
        for i in range(n_ball):
            local[ball[i]] = i
        # 2. The cheapest route to each node of the ball, inside the ball.
        lpred = _grow(lpred, n_ball)
        lcost = _grow(lcost, n_ball)
        llen = _grow(llen, n_ball)
        lpred[:n_ball] = -1
        lcost[:n_ball] = np.inf
        llen[:n_ball] = 0.0
        r = local[root]
        lcost[r] = 0.0
        heap = _push(heap, 0, 0.0, 0, r)
        size = pushes = 1
        while size:
            d, i = _pop(heap, size)
            size -= 1
            if d > lcost[i]:
                continue  # a stale entry
            v = ball[i]
            for k in range(indptr[v], indptr[v + 1]):
                u = indices[k]
                if done[u] != s:  # not in the ball
                    continue
                j = local[u]
                row = edge_row[k]
                du = d + weight[row]
                if du < lcost[j]:
                    lcost[j] = du
                    lpred[j] = i
                    llen[j] = llen[i] + length_m[row]
                    heap = _push(heap, size, du, pushes, j)
                    size += 1
                    pushes += 1
        # 3. Write the block: entries, then the copy edges between them.
        need = n_out + n_ball
        if need > len(out_node):
            out_node = _grow(out_node, need)
            out_pred = _grow(out_pred, need)
            out_cost = _grow(out_cost, need)
            out_len = _grow(out_len, need)
        for i in range(n_ball):
            v = ball[i]
            out_node[n_out + i] = v
            out_pred[n_out + i] = n_out + lpred[i] if lpred[i] >= 0 else NO_PRED
            out_cost[n_out + i] = lcost[i]
            out_len[n_out + i] = llen[i]
            for k in range(indptr[v], indptr[v + 1]):
                u = indices[k]
                if done[u] != s:  # not in the ball
                    continue
                if n_edges + 1 > len(out_ea):
                    out_ea = _grow(out_ea, n_edges + 1)
                    out_eb = _grow(out_eb, n_edges + 1)
                    out_row = _grow(out_row, n_edges + 1)
                out_ea[n_edges] = n_out + i
                out_eb[n_edges] = n_out + local[u]
                out_row[n_edges] = edge_row[k]
                n_edges += 1
        source_entry[s] = n_out + r
        count[s] = n_ball
        n_out += n_ball
    return (  # views of the grown buffers: _joined copies them once, into the result
        out_node[:n_out],
        count,
        source_entry,
        out_pred[:n_out],
        out_cost[:n_out],
        out_len[:n_out],
        out_ea[:n_edges],
        out_eb[:n_edges],
        out_row[:n_edges],
    )
