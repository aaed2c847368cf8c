"""Mehlhorn's Voronoi regions and the trees' walks, compiled with numba.

:func:`geoplan._fastroute._mehlhorn` needs, in every block of the copies (one per
supply), each entry's nearest terminal by cost, its distance and its predecessor on
that route: scipy's ``csgraph.dijkstra(min_only=True)`` over the block-diagonal matrix
of all blocks answers that in one call, holding the GIL. The blocks share no edge, so
:func:`regions` searches them one after another in a compiled loop over the copies' own
arrays (no matrix), the two halves of the blocks on two threads.

**Ties.** scipy relaxes a node only when a route is strictly cheaper, so a node's
predecessor is the first neighbour to be settled among those its cheapest route may
come from (same cost). Settling follows distance, so that neighbour is the one nearest
its terminal, and any Dijkstra finds the same one, unless two of them are equally far:
then the order in which scipy's heap hands out equal keys decides, and that depends on
all blocks at once. :func:`regions` notices such ties and then declines (returns
``None``), and the caller asks scipy.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ._fastroute import Copies, Regions
from ._geometry import _both
from ._localsearch import NO_PRED, _grow, _new_heap, _pop, _push

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]

_BRIDGES_START = 1024  # the bridges' buffer's first room; it grows as needed
_SPLIT_MIN = 10_000  # fewer entries than this are searched on one thread


def regions(copies: Copies, weight: FloatArray, terminal: BoolArray) -> Regions | None:
    """Search every block's Voronoi regions of ``terminal`` by ``weight`` (per graph edge).

    Returns ``None`` where the answer could differ from scipy's (see the module
    docstring): equally far candidates for a predecessor, an edge weight that is not
    positive, or copy edges that are not sorted by their first entry.
    """
    n = copies.size
    ea = copies.ea
    edge_weight = np.ascontiguousarray(weight[copies.row], dtype=np.float64)
    if len(ea) and (np.any(ea[1:] < ea[:-1]) or not np.all(edge_weight > 0)):
        return None
    indptr = np.searchsorted(ea, np.arange(n + 1)).astype(np.int64)
    arrays = (
        indptr,
        np.ascontiguousarray(copies.eb, dtype=np.int64),
        edge_weight,
        np.ascontiguousarray(terminal, dtype=np.bool_),
        np.ascontiguousarray(copies.first, dtype=np.int64),
    )
    out = (
        np.full(n, np.inf),
        np.full(n, NO_PRED, dtype=np.int64),
        np.full(n, NO_PRED, dtype=np.int64),
        np.full(n, -1, dtype=np.int64),
    )
    n_blocks = len(copies.first) - 1
    if n < _SPLIT_MIN:
        parts = [_search_blocks(arrays, 0, n_blocks, out)]
    else:
        cut = int(np.searchsorted(copies.first, n // 2))
        parts = list(
            _both(
                lambda: _search_blocks(arrays, 0, cut, out),
                lambda: _search_blocks(arrays, cut, n_blocks, out),
            )
        )
    if any(ambiguous for _, ambiguous in parts):
        return None
    bridge = np.concatenate([found for found, _ in parts])
    return Regions(*out, bridge=bridge)


def tree_walk(
    n: int, tu: IntArray, tv: IntArray, *, step: FloatArray, sources: IntArray
) -> tuple[IntArray, FloatArray]:
    """Walk a forest of entries from its roots: each entry's parent and length from the root.

    The forest's edges join ``tu`` and ``tv``, ``step`` long; no tree holds two sources
    (as no block of the copies does), so the parents are the forest's own, as any search
    from the sources finds them. Entries not reached from a source have parent
    ``NO_PRED`` and length 0; lengths are summed from the root down, in the order a walk
    adds them.
    """
    return _walk_forest(
        n,
        np.ascontiguousarray(tu, dtype=np.int64),
        np.ascontiguousarray(tv, dtype=np.int64),
        np.ascontiguousarray(step, dtype=np.float64),
        np.ascontiguousarray(sources, dtype=np.int64),
    )


# ----------------------------------------------------------------------- compiled parts


@numba.njit(cache=True, nogil=True)
def _search_blocks(
    arrays: tuple[IntArray, IntArray, FloatArray, BoolArray, IntArray],
    lo: int,
    hi: int,
    out: tuple[FloatArray, IntArray, IntArray, IntArray],
) -> tuple[IntArray, bool]:
    """Search blocks ``lo .. hi - 1`` into ``out`` (dist, pred, owner, pred_edge).

    ``arrays`` is (indptr, eb, weight, terminal, first) of the copies, a weight per copy
    edge. Returns the
    bridges found and whether a tie made the predecessors depend on the search order.
    """
    indptr, eb, weight, terminal, first = arrays
    dist, pred, owner, pred_edge = out
    heap = _new_heap()
    done = np.zeros(first[hi] - first[lo], dtype=np.bool_)
    base = first[lo]
    bridges = np.empty(_BRIDGES_START, dtype=np.int64)
    n_bridges = 0
    ambiguous = False
    for b in range(lo, hi):
        size = pushes = 0
        for v in range(first[b], first[b + 1]):
            if terminal[v]:
                dist[v] = 0.0
                owner[v] = v
                heap = _push(heap, size, 0.0, pushes, v)
                size += 1
                pushes += 1
        while size:
            d, v = _pop(heap, size)
            size -= 1
            if done[v - base]:
                continue
            done[v - base] = True
            for k in range(indptr[v], indptr[v + 1]):
                x = eb[k]
                if done[x - base] or terminal[x]:
                    continue
                nd = d + weight[k]
                if nd < dist[x]:
                    dist[x] = nd
                    pred[x] = v
                    owner[x] = owner[v]
                    pred_edge[x] = k
                    heap = _push(heap, size, nd, pushes, x)
                    size += 1
                    pushes += 1
                elif nd == dist[x] and dist[pred[x]] == d:
                    ambiguous = True
        for v in range(first[b], first[b + 1]):
            for k in range(indptr[v], indptr[v + 1]):
                x = eb[k]
                if v < x and owner[v] != owner[x] and owner[v] >= 0 and owner[x] >= 0:
                    bridges = _grow(bridges, n_bridges + 1)
                    bridges[n_bridges] = k
                    n_bridges += 1
    return bridges[:n_bridges].copy(), ambiguous


@numba.njit(cache=True, nogil=True)
def _walk_forest(
    n: int, tu: IntArray, tv: IntArray, step: FloatArray, sources: IntArray
) -> tuple[IntArray, FloatArray]:
    """:func:`tree_walk` on arrays; ``step`` is each edge's length."""
    degree = np.zeros(n + 1, dtype=np.int64)
    for i in range(len(tu)):
        degree[tu[i] + 1] += 1
        degree[tv[i] + 1] += 1
    start = np.cumsum(degree)
    fill = start[:-1].copy()
    other = np.empty(2 * len(tu), dtype=np.int64)
    edge = np.empty(2 * len(tu), dtype=np.int64)
    for i in range(len(tu)):
        a, b = tu[i], tv[i]
        other[fill[a]], edge[fill[a]] = b, i
        fill[a] += 1
        other[fill[b]], edge[fill[b]] = a, i
        fill[b] += 1
    parent = np.full(n, NO_PRED, dtype=np.int64)
    total = np.zeros(n)
    seen = np.zeros(n, dtype=np.bool_)
    queue = np.empty(n, dtype=np.int64)
    for s in sources:
        if seen[s]:
            continue
        seen[s] = True
        queue[0] = s
        head, tail = 0, 1
        while head < tail:
            v = queue[head]
            head += 1
            for j in range(start[v], start[v + 1]):
                x = other[j]
                if seen[x]:
                    continue
                seen[x] = True
                parent[x] = v
                total[x] = total[v] + step[edge[j]]
                queue[tail] = x
                tail += 1
    return parent, total
