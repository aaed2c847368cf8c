"""Boxes put in a grid of square cells, to find the boxes that meet (compiled with numba).

What an STRtree query of envelopes answers, without a geometry per box: the corridor
segments that may touch (noding, :func:`overlapping`), the corridor edges near a point
and the barriers near a connector (snapping, :mod:`geoplan.attach`). A box is listed in
every cell it reaches; a query box tests the boxes of the cells it reaches, each once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._geometry import FloatArray, IntArray, _both

_CELL_REACHES = 2.0  # a grid cell is this many reaches wide
_MAX_CELLS = 1 << 22  # cells are widened so that the grid has at most this many
_FIRST_CAPACITY = 1 << 16  # pairs a search's buffer holds before it grows
_ABOVE_HALF_WORK = 1 - 0.5**0.5  # queries 0..n*this hold half the sum of (n - q)


def overlapping(lo: FloatArray, hi: FloatArray) -> tuple[IntArray, IntArray]:
    """Every pair of boxes ``lo``-``hi`` that overlap or touch, once each, as (i, j), i < j.

    The grid's cells are two median boxes wide (:meth:`BoxGrid.of`).
    """
    if len(lo) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return BoxGrid.of(np.column_stack([lo, hi])).pairs()


@dataclass(frozen=True)
class BoxGrid:
    """Boxes ``lo``-``hi`` put in square cells, to find those meeting other boxes.

    Cells are ``cell_m`` wide from ``origin``, ``cols`` by ``rows``; cell ``c`` holds
    boxes ``members[start[c]:start[c + 1]]``.
    """

    lo: FloatArray
    hi: FloatArray
    origin: FloatArray
    cell_m: float
    cols: int
    rows: int
    start: IntArray
    members: IntArray

    @classmethod
    def make(cls, bounds: FloatArray, reach_m: float) -> BoxGrid:
        """Put boxes (``shapely.bounds``) in cells about two reaches wide."""
        lo, hi = np.ascontiguousarray(bounds[:, :2]), np.ascontiguousarray(bounds[:, 2:])
        origin = lo.min(axis=0) if len(lo) else np.zeros(2)
        span = hi.max(axis=0) - origin if len(lo) else np.zeros(2)
        cell_m = max(_CELL_REACHES * reach_m, float(np.prod(span) / _MAX_CELLS) ** 0.5)
        cols, rows = (np.floor(span / cell_m).astype(np.int64) + 1).tolist()
        first = np.floor((lo - origin) / cell_m).astype(np.int64)
        last = np.floor((hi - origin) / cell_m).astype(np.int64)
        start, members = _kernels().cell_members(first, last, rows, cols * rows)
        return cls(lo, hi, origin, cell_m, cols, rows, start, members)

    @classmethod
    def of(cls, bounds: FloatArray) -> BoxGrid:
        """Put boxes in cells two median boxes wide (reach: the median box's longer side)."""
        side_m = float(np.median(np.max(bounds[:, 2:] - bounds[:, :2], axis=1))) or 1.0
        return cls.make(bounds, side_m)

    def pairs(self) -> tuple[IntArray, IntArray]:
        """Return every pair (i, j), i < j, of the grid's own boxes that meet, once each.

        What a tree query of the boxes against themselves finds, without each box itself
        and the reversed pairs; grouped by ``i`` (ascending).
        """
        return self.meeting(self.lo, self.hi, above=True)

    def meeting(
        self,
        lo: FloatArray,
        hi: FloatArray,
        near: tuple[FloatArray, float] | None = None,
        *,
        above: bool = False,
    ) -> tuple[IntArray, IntArray]:
        """Return the pairs (query, box) of the closed boxes ``lo``-``hi`` and the grid's.

        Grouped by query box (ascending), as a tree query finds them; on two threads.
        ``near`` = (a point per query, distance): only boxes that near their point.
        ``above``: only boxes numbered above their query's (for :meth:`pairs`).
        """
        boxes = (self.lo, self.hi)
        cells = (self.start, self.members, self.origin, self.cell_m, self.cols, self.rows)
        centre, limit = near if near is not None else (lo, np.inf)
        query = (np.ascontiguousarray(lo), np.ascontiguousarray(hi), centre, limit)

        def search(q0: int, q1: int) -> tuple[IntArray, IntArray]:
            seen = np.full(len(self.lo), -1, dtype=np.int64)
            return _kernels().box_pairs(query, (q0, q1, above), boxes, cells, seen)

        n = len(lo)
        # With ``above`` a query tests fewer boxes the higher it is numbered (about
        # n - q): the first ~29 % of the queries are half the work.
        cut = int(n * _ABOVE_HALF_WORK) if above else n // 2
        (q1, b1), (q2, b2) = _both(lambda: search(0, cut), lambda: search(cut, n))
        return np.concatenate([q1, q2]), np.concatenate([b1, b2])


@dataclass(frozen=True)
class _Kernels:
    """The compiled kernels of the grid."""

    cell_members: Any
    box_pairs: Any


@functools.cache
def _kernels() -> _Kernels:
    """Compile the grid's kernels (numba is imported only here: a city's arrays need it)."""
    import numba

    jit = numba.njit(cache=True, nogil=True)
    return _Kernels(jit(_cell_members), jit(_box_pairs))


def _cell_members(
    first: IntArray, last: IntArray, rows: int, n_cells: int
) -> tuple[IntArray, IntArray]:
    """Put the boxes in cells: cell ``c`` holds ``members[start[c]:start[c + 1]]``."""
    start = np.zeros(n_cells + 1, dtype=np.int64)
    for b in range(len(first)):
        for cx in range(first[b, 0], last[b, 0] + 1):
            for cy in range(first[b, 1], last[b, 1] + 1):
                start[cx * rows + cy + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    members = np.empty(start[-1], dtype=np.int64)
    for b in range(len(first)):
        for cx in range(first[b, 0], last[b, 0] + 1):
            for cy in range(first[b, 1], last[b, 1] + 1):
                members[fill[cx * rows + cy]] = b
                fill[cx * rows + cy] += 1
    return start, members


def _box_pairs(
    query: tuple[FloatArray, FloatArray, FloatArray, float],
    span: tuple[int, int, bool],
    boxes: tuple[FloatArray, FloatArray],
    cells: tuple[IntArray, IntArray, FloatArray, float, int, int],
    seen: IntArray,
) -> tuple[IntArray, IntArray]:
    """Find the pairs (query box, box) of query boxes ``span`` that meet, grouped by query.

    Boxes ``query`` = (lo, hi, point, limit) and ``boxes`` = (lo, hi) are closed; boxes
    farther than ``limit`` from the query's point are left out. ``cells`` are the grid of
    :class:`BoxGrid`. ``seen`` (one per box, all negative) marks the boxes a query box
    has tested.
    """
    qlo, qhi, centre, limit = query
    first, stop, above = span
    limit2 = limit * limit
    lo, hi = boxes
    start, members, origin, cell_m, cols, rows = cells
    out_q = np.empty(_FIRST_CAPACITY, dtype=np.int64)
    out_b = np.empty(_FIRST_CAPACITY, dtype=np.int64)
    m = 0
    for q in range(first, stop):
        x0, y0, x1, y1 = qlo[q, 0], qlo[q, 1], qhi[q, 0], qhi[q, 1]
        c0 = max(math.floor((x0 - origin[0]) / cell_m), 0)
        c1 = min(math.floor((x1 - origin[0]) / cell_m), cols - 1)
        r0 = max(math.floor((y0 - origin[1]) / cell_m), 0)
        r1 = min(math.floor((y1 - origin[1]) / cell_m), rows - 1)
        for cx in range(c0, c1 + 1):
            for cy in range(r0, r1 + 1):
                c = cx * rows + cy
                for at in range(start[c], start[c + 1]):
                    b = members[at]
                    if seen[b] == q or (above and b <= q):
                        continue
                    seen[b] = q
                    if lo[b, 0] > x1 or hi[b, 0] < x0 or lo[b, 1] > y1 or hi[b, 1] < y0:
                        continue
                    dx = max(lo[b, 0] - centre[q, 0], centre[q, 0] - hi[b, 0], 0.0)
                    dy = max(lo[b, 1] - centre[q, 1], centre[q, 1] - hi[b, 1], 0.0)
                    if dx * dx + dy * dy > limit2:
                        continue
                    if m == len(out_q):
                        out_q = np.concatenate((out_q, np.empty(len(out_q), dtype=np.int64)))
                        out_b = np.concatenate((out_b, np.empty(len(out_b), dtype=np.int64)))
                    out_q[m], out_b[m] = q, b
                    m += 1
    return out_q[:m], out_b[:m]
