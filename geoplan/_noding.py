"""Noding the corridor lines: split them wherever they meet, as :func:`shapely.node` does.

:func:`shapely.node` (GEOS's iterated noder) passes over every segment more than once:
about 8 CPU seconds for the million lines of a city. Yet street lines mostly meet only
where one of them has a vertex:

* at an end point they share, where nothing is split;
* at a vertex of one that is an end or a vertex of the other (a T junction, two lines
  through one vertex), where a line is split at its own vertex: no new coordinates.

A bounding-box query of the segments and exact comparisons of coordinates find these
contacts, and the lines are split at those vertices with numpy. Only the lines that meet
another in any other way go through shapely.node: crossings and touches inside a
segment, overlaps, segments sharing a point at an angle so sharp that they pass within
:data:`_CLEAR_M` of each other, near misses within :data:`_CLEAR_M`, self-intersections,
zero-length segments, closed lines, and lines entering a barrier or near its outline.
A line's pieces depend only on the lines it meets, so these are the pieces of noding
everything at once, coordinate for coordinate (the tests compare both on random lines
with every kind of contact).

Fewer than :data:`_CONTACT_MIN_LINES` lines are noded at once. When more than
:data:`_STRIP_LINES` lines need shapely.node, all lines are noded in vertical strips on
two threads (shapely releases the GIL), each strip with every line that reaches into
it, keeping the pieces of the lines it owns (the way before contacts were searched:
where lines meet within rounding of a line's end, GEOS may place that node a hair
differently in a strip than in one noding of all).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from . import _geometry, _grid
from ._geometry import (
    _GRID_M,
    _INTERIOR,
    BoolArray,
    FloatArray,
    GeomArray,
    IntArray,
    _both,
    _distinct,
    _in_threads,
    _query_in_threads,
    _segments,
)
from ._ragged import Ragged

logger = logging.getLogger(__name__)

_STRIP_LINES = 100_000  # more lines than this to node with GEOS: in strips, in parallel
_STRIP_MARGIN_M = 1.0  # a strip takes in the lines within this of its owned lines' extent
_CONTACT_MIN_LINES = 20_000  # fewer lines than this: all noded by GEOS, no contact search
_CLEAR_M = 10 * _GRID_M  # lines meeting only at vertices keep at least this apart elsewhere

Pieces = tuple[Ragged, IntArray, FloatArray]  # pieces, source line, a point inside each


def node_lines(lines: GeomArray, polygons: GeomArray) -> Pieces:
    """Node the lines; drop parts inside barriers; the pieces, their source, inner points.

    A piece's source is the lowest-ranked line it lies on (the cheaper of overlapping
    corridors); its inner point is :meth:`~geoplan._ragged.Ragged.inner_points`'s. The
    pieces come as coordinates: most are never made into geometries here.
    """
    tree = shapely.STRtree(polygons)
    outlines = np.zeros(0, dtype=object)
    entering = np.zeros(0, dtype=np.int64)
    if len(polygons):
        li, pj = _query_in_threads(tree, lines, predicate="intersects")
        hit = _in_threads(shapely.relate_pattern, lines[li], polygons[pj], _INTERIOR)
        cut_by = _distinct(pj[hit])
        entering = li[hit]
        if cut_by.size:  # their outlines cut the corridors where they enter a barrier
            outlines = shapely.get_parts(shapely.boundary(polygons[cut_by]))
    if len(lines) < _CONTACT_MIN_LINES:
        everything = np.arange(len(lines))
        split: Pieces = (Ragged.of(lines[:0]), everything[:0], np.zeros((0, 2)))
        noded = _node_strip(lines, outlines, everything, everything >= 0)
    else:
        split, noded = _node_where_needed(lines, outlines, entering)
    pieces, source, inner_xy = noded
    keep = np.ones(len(pieces), dtype=bool)
    if len(polygons):  # (split lines do not enter barriers)
        inside, _ = _query_in_threads(tree, shapely.points(inner_xy), predicate="within")
        keep[inside] = False
    logger.debug(
        "noded %d corridor lines into %d pieces (%d inside barriers)",
        len(lines),
        len(split[0]) + int(keep.sum()),
        int((~keep).sum()),
    )
    return (
        Ragged.concat([split[0], pieces if keep.all() else pieces.subset(np.flatnonzero(keep))]),
        np.concatenate([split[1], source[keep]]),
        np.concatenate([split[2], inner_xy[keep]]),
    )


def _node_where_needed(
    lines: GeomArray, outlines: GeomArray, entering: IntArray
) -> tuple[Pieces, Pieces]:
    """Split lines at the vertices where others meet them; node the rest with GEOS.

    ``entering`` are the lines whose interior meets a barrier's (cut by ``outlines``).
    Returns the pieces of the lines split at vertices, then those noded by GEOS.
    """
    coords, index = shapely.get_coordinates(lines, return_index=True)
    needs, split_at = _vertex_contacts(lines, coords, index)
    needs[entering] = True
    tree = shapely.STRtree(lines)
    if len(outlines):  # lines the outlines touch or pass close to
        needs[tree.query(outlines, predicate="dwithin", distance=_CLEAR_M)[1]] = True
    if int(needs.sum()) > _STRIP_LINES:
        nothing: Pieces = (Ragged(coords[:0], index[:0], 0), index[:0], coords[:0])
        return nothing, _node_in_strips(lines, outlines, 2 * -(-len(lines) // (2 * _STRIP_LINES)))
    parts, part_line = _split_at(coords, index, len(lines), split_at)
    easy = ~needs[part_line]
    split = parts.subset(np.flatnonzero(easy))
    hard = parts.subset(np.flatnonzero(~easy)).geometries()
    noded = Ragged.of(_geos_pieces_apart(np.concatenate([hard, outlines])))
    noded_xy = noded.inner_points()
    first = _lowest_line_at(tree, noded_xy, len(lines))
    found = np.flatnonzero(first < len(lines))
    return (split, part_line[easy], split.inner_points()), (
        noded.subset(found),
        first[found],
        noded_xy[found],
    )


def _vertex_contacts(
    lines: GeomArray, coords: FloatArray, index: IntArray
) -> tuple[BoolArray, IntArray]:
    """Find the lines that need GEOS, and the vertices where the others are split.

    Returns which lines meet another other than at vertices (see the module docstring),
    and the positions in ``coords`` of the inner vertices where another line meets them.
    """
    n = len(lines)
    count = np.bincount(index, minlength=n)
    first = np.cumsum(count) - count
    last = first + count - 1
    seg = np.flatnonzero(index[1:] == index[:-1])  # segment k: coords[seg[k]], [seg[k] + 1]
    line = index[seg]
    a, b = coords[seg], coords[seg + 1]
    needs = count < 2
    needs[line[np.all(a == b, axis=1)]] = True  # zero-length segments
    needs[np.all(coords[first] == coords[last], axis=1)] = True  # closed lines
    curved = np.flatnonzero(count > 2)
    needs[curved[~_in_threads(shapely.is_simple, lines[curved])]] = True

    from . import _segment_pairs  # numba is imported only for a city

    # the segments whose boxes, grown by _CLEAR_M, overlap
    found = _grid.overlapping(np.minimum(a, b) - _CLEAR_M, np.maximum(a, b) + _CLEAR_M)
    i, j, kind, i_at, j_at = _segment_pairs.classify(found, (seg, line), coords, _CLEAR_M)
    del found
    ends = np.zeros(len(coords), dtype=bool)
    ends[first] = True
    ends[last] = True
    bad = kind == _segment_pairs.BAD
    apart = np.flatnonzero(kind == _segment_pairs.APART)
    if apart.size:  # segments that share no point: near misses go to GEOS
        bad[apart] = _in_threads(
            shapely.dwithin,
            _segments(a[i[apart]], b[i[apart]]),
            _segments(a[j[apart]], b[j[apart]]),
            _CLEAR_M,
        )
    needs[line[i[bad]]] = True
    needs[line[j[bad]]] = True
    one = kind == _segment_pairs.CLEAR
    split_at = np.concatenate([i_at[one][~ends[i_at[one]]], j_at[one][~ends[j_at[one]]]])
    return needs, _distinct(split_at)


def _split_at(
    coords: FloatArray, index: IntArray, n_lines: int, split_at: IntArray
) -> tuple[Ragged, IntArray]:
    """Split the lines (``coords`` by line ``index``) at the vertices ``split_at``.

    Returns the parts, in line order, and the line of each.
    """
    twice = np.zeros(len(coords), dtype=np.int64)
    twice[split_at] = 1  # a split vertex ends one part and starts the next
    take = np.repeat(np.arange(len(coords)), 1 + twice)
    at = np.cumsum(1 + twice) - (1 + twice)  # where each vertex's first copy went
    count = np.bincount(index, minlength=n_lines)
    starts = np.zeros(len(take), dtype=bool)
    starts[at[(np.cumsum(count) - count)[count > 0]]] = True
    starts[at[split_at] + 1] = True
    part = np.cumsum(starts) - 1
    return Ragged(coords[take], part, int(part[-1]) + 1 if len(part) else 0), index[take[starts]]


def _lowest_line_at(tree: shapely.STRtree, xy: FloatArray, n_lines: int) -> IntArray:
    """Return the lowest-ranked line of ``tree`` within 1 mm of each point (or ``n_lines``)."""
    pi, li = tree.query(shapely.points(xy), predicate="dwithin", distance=_GRID_M)
    first = np.full(len(xy), n_lines, dtype=np.int64)
    np.minimum.at(first, pi, li)
    return first


def _geos_pieces(lines: GeomArray) -> GeomArray:
    """Node ``lines`` with :func:`shapely.node`; the pieces, but those of no length.

    A line that doubles a vertex where it overlaps another leaves a piece of one point
    repeated: nothing to route along, and no segment to place an inner point on.
    """
    noded = shapely.node(shapely.multilinestrings(lines))
    pieces = shapely.get_parts(noded)
    del noded  # a copy of every piece: hundreds of MB for a city
    return pieces[shapely.length(pieces) > 0]


def _geos_pieces_apart(lines: GeomArray) -> GeomArray:
    """:func:`_geos_pieces` of groups of lines that cannot meet, on two threads.

    Lines whose boxes (grown by :data:`_CLEAR_M`) touch are in one group; groups share no
    point, so noding them apart gives the pieces of noding them together.
    """
    n = len(lines)
    if n < _geometry._THREADED_MIN:  # read here: the tests lower it
        return _geos_pieces(lines)
    bounds = shapely.bounds(lines)
    i, j = _grid.overlapping(bounds[:, :2] - _CLEAR_M, bounds[:, 2:] + _CLEAR_M)
    _, group = csgraph.connected_components(
        sparse.coo_array((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False
    )
    size = np.bincount(group, weights=shapely.get_num_coordinates(lines))
    by_size = np.argsort(-size, kind="stable")
    first_half = np.zeros(len(size), dtype=bool)
    first_half[by_size[np.cumsum(size[by_size]) - size[by_size] < size.sum() / 2]] = True
    half = first_half[group]
    first, second = _both(lambda: _geos_pieces(lines[half]), lambda: _geos_pieces(lines[~half]))
    return np.concatenate([first, second])


def _node_strip(
    lines: GeomArray, outlines: GeomArray, member: IntArray, owned: BoolArray
) -> Pieces:
    """Node ``lines`` with ``outlines``: the owned lines' pieces, sources, inner points.

    ``lines`` are those reaching into a strip, ``member`` their indices among all lines
    (ascending); those not ``owned`` only cut. Pieces whose source is not owned are left
    out.
    """
    pieces = Ragged.of(_geos_pieces(np.concatenate([lines, outlines])))
    inner_xy = pieces.inner_points()
    first = _lowest_line_at(shapely.STRtree(lines), inner_xy, len(lines))
    keep = first < len(lines)
    keep[keep] = owned[first[keep]]
    return pieces.subset(np.flatnonzero(keep)), member[first[keep]], inner_xy[keep]


def _node_in_strips(lines: GeomArray, outlines: GeomArray, n_strips: int) -> Pieces:
    """Node the lines in ``n_strips`` vertical strips of equal line counts, on two threads.

    Returns what :func:`_node_strip` returns, for all strips.
    """
    bounds = shapely.bounds(lines)
    outline_bounds = shapely.bounds(outlines) if len(outlines) else np.zeros((0, 4))
    centre = (bounds[:, 0] + bounds[:, 2]) / 2
    by_x = np.argsort(centre, kind="stable")
    jobs = []
    for chunk in np.array_split(by_x, min(n_strips, len(lines))):
        low = bounds[chunk, 0].min() - _STRIP_MARGIN_M
        high = bounds[chunk, 2].max() + _STRIP_MARGIN_M
        member = np.flatnonzero((bounds[:, 2] >= low) & (bounds[:, 0] <= high))
        cutting = (outline_bounds[:, 2] >= low) & (outline_bounds[:, 0] <= high)
        jobs.append((lines[member], outlines[cutting], member, np.isin(member, chunk)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda job: _node_strip(*job), jobs))
    return (
        Ragged.concat([d[0] for d in done]),
        np.concatenate([d[1] for d in done]),
        np.concatenate([d[2] for d in done]),
    )
