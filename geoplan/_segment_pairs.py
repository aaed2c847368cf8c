"""How two segments of different lines meet, for noding by contacts (compiled with numba).

:func:`geoplan._noding._vertex_contacts` finds the pairs of segments whose boxes
overlap (:func:`geoplan._grid.overlapping`: about three million for the million
segments of a city); this sorts them in one compiled pass, where numpy made a dozen
passes over arrays of that length.
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
