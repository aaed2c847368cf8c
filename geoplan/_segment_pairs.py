"""Which segments of different lines meet, and how, for noding by contacts (numba).

:func:`geoplan._noding._vertex_contacts` needs the pairs of segments whose boxes
overlap (a million segments of a city give about two million such pairs):
:func:`overlapping` finds them on a grid of cells, without making a geometry per box
for a tree; :func:`classify` then sorts them in one compiled pass, where numpy made a
dozen passes over arrays of that length.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]

CLEAR = 0  # one shared point, and clear of each other elsewhere: split at the point
APART = 1  # no shared point: whether they pass near each other is for GEOS to tell
BAD = 2  # anything else: both lines go to GEOS

_CELL_SPAN = 2.0  # a grid cell is this many times the median box's longer side


def overlapping(lo: FloatArray, hi: FloatArray) -> tuple[IntArray, IntArray]:
    """Every pair of boxes that overlap or touch, once each, as (i, j) with i < j.

    Box ``k`` spans ``lo[k]`` to ``hi[k]`` (x, y); the pairs are those a tree query of
    the boxes against themselves finds (closed intervals), without the box itself and
    the reversed pairs, in no particular order. The boxes are binned on a grid of cells
    (:data:`_CELL_SPAN`); a pair is tested in every cell both boxes reach and kept in
    the one holding the lower-left corner of their overlap. The cells are worked in two
    halves on two threads.
    """
    from ._geometry import _both

    n = len(lo)
    if n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    side = np.max(hi - lo, axis=1)
    cell_m = _CELL_SPAN * float(np.median(side)) or 1.0
    origin = lo.min(axis=0)
    first = np.floor((lo - origin) / cell_m).astype(np.int64)
    last = np.floor((hi - origin) / cell_m).astype(np.int64)
    rows = int(last[:, 1].max()) + 1
    cell, box = _cell_entries(first, last, rows)
    order = np.argsort(cell, kind="stable")
    cell, box = cell[order], box[order]
    run = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1], True])
    half = int(np.searchsorted(run, len(cell) // 2))
    entries, boxes, grid = (cell, box), (lo, hi), (origin, cell_m, rows)
    (i1, j1), (i2, j2) = _both(
        lambda: _pairs_in_cells(run[: half + 1], entries, boxes, grid),
        lambda: _pairs_in_cells(run[half:], entries, boxes, grid),
    )
    return np.concatenate([i1, i2]), np.concatenate([j1, j2])


@numba.njit(cache=True, nogil=True)
def _cell_entries(first: IntArray, last: IntArray, rows: int) -> tuple[IntArray, IntArray]:
    """Each box in each cell it reaches: the cell's number (column * rows + row), the box."""
    n = len(first)
    size = 0
    for k in range(n):
        size += (last[k, 0] - first[k, 0] + 1) * (last[k, 1] - first[k, 1] + 1)
    cell = np.empty(size, dtype=np.int64)
    box = np.empty(size, dtype=np.int64)
    m = 0
    for k in range(n):
        for cx in range(first[k, 0], last[k, 0] + 1):
            for cy in range(first[k, 1], last[k, 1] + 1):
                cell[m], box[m] = cx * rows + cy, k
                m += 1
    return cell, box


@numba.njit(cache=True, nogil=True)
def _pairs_in_cells(
    run: IntArray,
    entries: tuple[IntArray, IntArray],
    boxes: tuple[FloatArray, FloatArray],
    grid: tuple[FloatArray, float, int],
) -> tuple[IntArray, IntArray]:
    """Find the overlapping pairs kept in the cells whose entries start at ``run[:-1]``.

    ``entries`` are (cell, box) sorted by cell, ``boxes`` (lo, hi), ``grid`` the origin,
    cell size and rows of :func:`overlapping`'s grid. Counts the pairs, then fills them.
    """
    cell, box = entries
    lo, hi = boxes
    origin, cell_m, rows = grid
    out_i = np.empty(0, dtype=np.int64)
    out_j = np.empty(0, dtype=np.int64)
    for fill in (False, True):
        m = 0
        for r in range(len(run) - 1):
            start, stop = run[r], run[r + 1]
            for p in range(start, stop):
                a = box[p]
                for q in range(p + 1, stop):
                    b = box[q]
                    if lo[a, 0] > hi[b, 0] or lo[b, 0] > hi[a, 0]:
                        continue
                    if lo[a, 1] > hi[b, 1] or lo[b, 1] > hi[a, 1]:
                        continue
                    # kept in the cell of the overlap's lower-left corner only
                    cx = math.floor((max(lo[a, 0], lo[b, 0]) - origin[0]) / cell_m)
                    cy = math.floor((max(lo[a, 1], lo[b, 1]) - origin[1]) / cell_m)
                    if cx * rows + cy != cell[start]:
                        continue
                    if fill:
                        out_i[m], out_j[m] = min(a, b), max(a, b)
                    m += 1
        if not fill:
            out_i = np.empty(m, dtype=np.int64)
            out_j = np.empty(m, dtype=np.int64)
    return out_i, out_j


@numba.njit(cache=True, nogil=True)
def classify(
    pairs: tuple[IntArray, IntArray],
    segment: tuple[IntArray, IntArray],
    coords: FloatArray,
    clear_m: float,
) -> tuple[IntArray, IntArray, np.ndarray, IntArray, IntArray]:
    """Sort the segment pairs ``pairs`` = (i, j) by how they meet.

    Segment ``k`` runs from ``coords[segment[0][k]]`` to the next coordinate and belongs
    to line ``segment[1][k]``. Pairs are kept once (i < j) and only between different
    lines. Returns the kept pairs (i, j), their kind (:data:`CLEAR`, :data:`APART`,
    :data:`BAD`) and, for pairs sharing one point, that point's position in ``coords``
    on each segment. Two segments from a shared point are clear of each other when,
    beyond half the shorter one's length (more than ``clear_m``), they are more than
    ``clear_m`` apart: they point away from each other or the angle is wide enough.
    """
    i, j = pairs
    start, line = segment
    n = len(i)
    out_i = np.empty(n, dtype=np.int64)
    out_j = np.empty(n, dtype=np.int64)
    kind = np.empty(n, dtype=np.int8)
    i_at = np.zeros(n, dtype=np.int64)
    j_at = np.zeros(n, dtype=np.int64)
    m = 0
    for k in range(n):
        si, sj = i[k], j[k]
        if si >= sj or line[si] == line[sj]:
            continue
        p, q = start[si], start[sj]
        aa = coords[p, 0] == coords[q, 0] and coords[p, 1] == coords[q, 1]
        ab = coords[p, 0] == coords[q + 1, 0] and coords[p, 1] == coords[q + 1, 1]
        ba = coords[p + 1, 0] == coords[q, 0] and coords[p + 1, 1] == coords[q, 1]
        bb = coords[p + 1, 0] == coords[q + 1, 0] and coords[p + 1, 1] == coords[q + 1, 1]
        shared = int(aa) + int(ab) + int(ba) + int(bb)
        out_i[m], out_j[m] = si, sj
        if shared == 0:
            kind[m] = APART
        elif shared == 1:
            at_i = p if (aa or ab) else p + 1
            at_j = q if (aa or ba) else q + 1
            far_i = p + 1 if at_i == p else p
            far_j = q + 1 if at_j == q else q
            ux, uy = coords[far_i, 0] - coords[at_i, 0], coords[far_i, 1] - coords[at_i, 1]
            vx, vy = coords[far_j, 0] - coords[at_j, 0], coords[far_j, 1] - coords[at_j, 1]
            lu, lv = math.hypot(ux, uy), math.hypot(vx, vy)
            reach = min(lu, lv) / 2
            clear = reach > clear_m and (
                ux * vx + uy * vy < 0 or abs(ux * vy - uy * vx) / (lu * lv) * reach > clear_m
            )
            kind[m] = CLEAR if clear else BAD
            i_at[m], j_at[m] = at_i, at_j
        else:
            kind[m] = BAD
        m += 1
    return out_i[:m], out_j[:m], kind[:m], i_at[:m], j_at[:m]
