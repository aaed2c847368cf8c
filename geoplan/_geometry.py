"""Geometry helpers shared by the routing-graph modules (vectorised shapely and numpy)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from .errors import CRSError, Problem
from .settings import Settings

logger = logging.getLogger("geoplan.network")

OPEN_SURFACE = "open"
"""The ``surface`` of connectors and lattice edges dug across open ground."""

# Numerical settings, not engineering figures: coordinates closer than _GRID_M are one
# node; a point tries this many nearest edges before the lattice; a point that has no
# lattice node within two steps tries this many nearest ones. A line that enters a
# barrier by less than _EDGE_M runs along its edge (node coordinates are rounded to
# _GRID_M, so a corridor cut at a barrier's outline has its node up to a hair inside).
_GRID_M = 1e-3
_EDGE_M = 5 * _GRID_M
_CANDIDATE_EDGES = 4
_SHORT_REACH_M = 10.0  # the nearest edges are first looked for this close
_BAND_M = 1e-6  # distances this close to a limit are tested as GEOS tests them
_LATTICE_NEAREST = 8
_INTERIOR = "T********"  # DE-9IM: the interiors meet
_R = TypeVar("_R")
_S = TypeVar("_S")
_KEY_LIMIT = 2**62  # keys combined from two ints stay below this
_THREADED_MIN = 50_000  # from this many geometries an element-wise call runs on two threads

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
GeomArray = np.ndarray[Any, np.dtype[np.object_]]
_EdgeRow = tuple[int, int, dict[str, Any]]

# ------------------------------------------------------------------------ shared helpers


@dataclass(frozen=True)
class _Costs:
    """Trench costs by surface, off the corridors, and per road crossing."""

    per_m: Mapping[str, float]
    open_per_m: float
    crossing_cny: float

    @classmethod
    def from_settings(cls, settings: Settings) -> _Costs:
        catalogue = settings.catalogue
        per_m = catalogue.value("trench", "cost_cny_per_m")
        return cls(
            per_m={str(k): float(v) for k, v in per_m.items()},
            open_per_m=float(catalogue.value("trench", "open_ground_cost_cny_per_m")),
            crossing_cny=float(catalogue.value("trench", "road_crossing_cny")),
        )


def _edge(
    length_m: float,
    weight: float,
    *,
    surface: str,
    corridor_id: object,
    kind: object,
    off_corridor: bool,
    road_crossings: float,
    geometry: shapely.LineString,
) -> dict[str, Any]:
    return {
        "length_m": length_m,
        "weight": weight,
        "surface": surface,
        "corridor_id": corridor_id,
        "kind": kind,
        "off_corridor": off_corridor,
        "road_crossings": road_crossings,
        "geometry": geometry,
    }


def _metric_crs(crs: object, what: str) -> pyproj.CRS:
    if crs is None:
        msg = "has no CRS; declare one, e.g. with set_crs()"
        raise CRSError(Problem(msg, layer=what))
    crs = pyproj.CRS.from_user_input(crs)
    if not crs.is_projected:
        msg = f"is in {crs.name}, not a projected metric CRS; reproject it (e.g. to UTM)"
        raise CRSError(Problem(msg, layer=what))
    return crs


def _barrier_array(barriers: gpd.GeoSeries, crs: pyproj.CRS) -> GeomArray:
    geoms = np.asarray(barriers.geometry.to_numpy(), dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if not polygonal.all():
        logger.warning("ignoring %d barriers that are not polygons", int((~polygonal).sum()))
        geoms = geoms[polygonal]
    if len(geoms) and (barriers.crs is None or not crs.equals(barriers.crs)):
        msg = f"are in {barriers.crs}, the corridors in {crs.name}; reproject them"
        raise CRSError(Problem(msg, layer="barriers"))
    return geoms


def _keys(xy: FloatArray) -> IntArray:
    return np.round(xy / _GRID_M).astype(np.int64)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Return the distinct values, sorted: ``np.unique(values)`` by a sort.

    numpy 2's hash-based ``np.unique`` takes about 1 s for two million ints, a sort 0.03 s.
    """
    ordered = np.sort(values, kind="stable")
    if not len(ordered):
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _point_groups(xy: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Group equal points of ``xy`` (n, 2): distinct points, each row's group, group sizes.

    Points are compared exactly, as complex numbers (sorting them is far faster than
    ``np.unique(axis=0)``).
    """
    z = np.empty(len(xy), dtype=np.complex128)
    z.real, z.imag = xy[:, 0], xy[:, 1]
    distinct, group, count = np.unique(z, return_inverse=True, return_counts=True)
    return np.column_stack([distinct.real, distinct.imag]), group.ravel(), count


def _node_index(xy: FloatArray) -> tuple[IntArray, FloatArray]:
    """Give coordinates node ids in the order of their 1 mm keys (x, then y); also node xy."""
    keys = _keys(xy)
    low = keys.min(axis=0)
    keys -= low
    span = int(keys[:, 1].max()) + 1
    if int(keys[:, 0].max()) < np.iinfo(np.int64).max // span:
        flat, inverse = np.unique(keys[:, 0] * span + keys[:, 1], return_inverse=True)
        unique = np.column_stack([flat // span, flat % span])
    else:  # pragma: no cover - an area thousands of kilometres across
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    return inverse.ravel(), (unique + low) * _GRID_M


def _end_coords(lines: GeomArray) -> tuple[FloatArray, FloatArray]:
    """First and last coordinates of non-empty lines."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    first = np.searchsorted(index, np.arange(len(lines)))
    last = np.concatenate([first[1:], [len(coords)]]) - 1
    return coords[first], coords[last]


def _lexsort2(minor: IntArray, major: IntArray) -> IntArray:
    """Return ``np.lexsort((minor, major))`` of non-negative ints.

    By one stable sort of ``major * span + minor`` where that fits in an int64.
    """
    if not len(major):
        return np.zeros(0, dtype=np.int64)
    span = int(minor.max()) + 1
    if int(major.max()) >= _KEY_LIMIT // span:
        return np.lexsort((minor, major))
    return np.argsort(major.astype(np.int64) * span + minor, kind="stable")


def _lexsort_codes(codes: list[IntArray], rest: list[np.ndarray]) -> IntArray:
    """``np.lexsort`` by the keys ``codes`` then ``rest``, the first key sorting first.

    ``codes`` are dense codes (0, 1, ... k - 1); folded into one integer and sorted
    stably, they order most rows, and only the rows tied on all of them are sorted by
    ``rest`` (np.lexsort takes a sort per key over all rows: 1.4 s for eight keys of a
    million rows).
    """
    n = len(codes[0])
    combined = np.zeros(n, dtype=np.int64)
    span = 1
    for code in codes:
        k = int(code.max(initial=0)) + 1
        span *= k
        if span > np.iinfo(np.int64).max:  # pragma: no cover - billions of distinct keys
            return np.lexsort([*rest[::-1], *codes[::-1]])
        combined = combined * k + code
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    tied = np.zeros(n, dtype=bool)
    same = ordered[1:] == ordered[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    slots = np.flatnonzero(tied)
    if slots.size:
        rows = order[slots]  # ascending within each run: the stable order of ties
        order[slots] = rows[np.lexsort([*(key[rows] for key in rest[::-1]), combined[rows]])]
    return order


def _group_rank(groups: IntArray) -> IntArray:
    """Position of each row within its run of equal values of ``groups`` (sorted)."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = np.ones(len(groups), dtype=bool)
    starts[1:] = groups[1:] != groups[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(groups)), 0))
    return np.arange(len(groups)) - first


def _crosses_interior(
    lines: GeomArray,
    polygons: GeomArray,
    tree: shapely.STRtree,
    exempt: tuple[IntArray, IntArray] | None = None,
) -> BoolArray:
    """Which lines cross a polygon's interior deeper than ``_EDGE_M``.

    ``exempt`` = (each line's owner, owner's keys from :func:`_containing`): an owner
    standing inside a polygon may leave it.
    """
    out = np.zeros(len(lines), dtype=bool)
    if not len(lines) or not len(polygons):
        return out
    li, pj = tree.query(lines, predicate="intersects")
    if not li.size:
        return out
    hit = shapely.relate_pattern(lines[li], polygons[pj], _INTERIOR)
    if exempt is not None:
        owner, allowed = exempt
        hit &= ~np.isin(owner[li] * len(polygons) + pj, allowed)
    li, pj = li[hit], pj[hit]
    core = shapely.buffer(polygons[pj], -_EDGE_M, join_style="mitre")
    deep = shapely.relate_pattern(lines[li], core, _INTERIOR)
    out[li[deep]] = True
    return out


def _containing(points: GeomArray, polygons: GeomArray, tree: shapely.STRtree) -> IntArray:
    """Keys ``point * n_polygons + polygon`` of the polygons a point stands inside.

    A point within ``_EDGE_M`` of the outline stands on it, not inside.
    """
    if not len(points) or not len(polygons):
        return np.zeros(0, dtype=np.int64)
    pi, pj = tree.query(points, predicate="within")
    inside = shapely.distance(points[pi], shapely.boundary(polygons[pj])) > _EDGE_M
    return pi[inside].astype(np.int64) * len(polygons) + pj[inside]


def _k_nearest_within(
    tree: shapely.STRtree, items: GeomArray, pts: GeomArray, reach_m: float, k: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Find the ``k`` nearest items (of ``tree``) within ``reach_m`` of each point.

    Returns (point, item, distance) sorted by point, distance, item. Points with that
    many items within ``_SHORT_REACH_M`` are answered from them (the nearest are among
    them); only the others search the whole reach.
    """
    short = min(reach_m, _SHORT_REACH_M)
    pi, ei, dist = _pairs_within(tree, items, pts, short)
    if short < reach_m:
        count = np.bincount(pi, minlength=len(pts))
        again = np.flatnonzero(count < k)
        if again.size:
            qi, qe, qd = _pairs_within(tree, items, pts[again], reach_m)
            keep = count[pi] >= k
            pi = np.concatenate([pi[keep], again[qi]])
            ei = np.concatenate([ei[keep], qe])
            dist = np.concatenate([dist[keep], qd])
    order = np.lexsort((ei, dist, pi))
    pi, ei, dist = pi[order], ei[order], dist[order]
    few = _group_rank(pi) < k
    return pi[few], ei[few], dist[few]


def _pairs_within(
    tree: shapely.STRtree, items: GeomArray, geoms: GeomArray, distance_m: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Return ``tree.query(geoms, predicate="dwithin", distance=distance_m)`` and distances.

    The same (geometry, item) pairs, grouped by geometry, and their distances, found
    faster: the items whose envelopes are in reach, the distances of those, and the
    tree's own test (a prepared geometry's distance-within) only for the rare pair whose
    distance is within ``_BAND_M`` of the limit, where rounding could tell them apart.
    """
    reach = distance_m + _BAND_M
    corners = shapely.bounds(geoms).reshape(-1, 2, 2) + np.array([[-reach], [reach]])
    gi, ii = _query_in_threads(tree, shapely.linestrings(corners))  # diagonals: cheaper than boxes
    return _measured_within((gi, ii), items, geoms, distance_m)


def _measured_within(
    pairs: tuple[IntArray, IntArray], items: GeomArray, geoms: GeomArray, distance_m: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Keep the pairs ``(geoms[gi], items[ii])`` within ``distance_m``; with distances.

    ``pairs`` must hold every pair whose envelopes, one widened by the distance plus
    ``_BAND_M``, meet (as :func:`_pairs_within` finds them).
    """
    gi, ii = pairs
    dist = _in_threads(shapely.distance, geoms[gi], items[ii])
    within = _within_distance(dist, distance_m, geoms, items, (gi, ii))
    return gi[within], ii[within], dist[within]


def _within_distance(
    dist: FloatArray,
    distance_m: float,
    geoms: GeomArray,
    items: GeomArray,
    pairs: tuple[IntArray, IntArray],
) -> BoolArray:
    """Which pairs ``(geoms[gi], items[ii])`` at distances ``dist`` are within ``distance_m``.

    As ``shapely.dwithin`` of a prepared geometry tells: by the distance, and by that
    test itself for the rare pair within ``_BAND_M`` of the limit.
    """
    gi, ii = pairs
    within = dist <= distance_m - _BAND_M
    band = np.flatnonzero(~within & (dist <= distance_m + _BAND_M))
    if band.size:
        copies = shapely.from_wkb(shapely.to_wkb(geoms[gi[band]]))  # prepared, not the caller's
        shapely.prepare(copies)
        within[band] = shapely.dwithin(copies, items[ii[band]], distance_m)
    return within


def _road_crossings(lines: GeomArray, road_tree: shapely.STRtree | None) -> FloatArray:
    if road_tree is None or not len(lines):
        return np.zeros(len(lines))
    li, _ = _query_in_threads(road_tree, lines, predicate="crosses")
    return np.bincount(li, minlength=len(lines)).astype(float)


def _segments(a: FloatArray, b: FloatArray) -> GeomArray:
    return shapely.linestrings(np.stack([a, b], axis=1))


def _cut_lines(
    lines: GeomArray,
    cut_line: IntArray,
    cut_dist: FloatArray,
    cut_xy: FloatArray | None = None,
) -> tuple[GeomArray, IntArray, FloatArray]:
    """Cut lines at distances along them, all at once.

    ``cut_line``/``cut_dist`` must be sorted by line then distance, distinct, and strictly
    inside each line. ``cut_xy``, if given, are the cut points as
    ``shapely.line_interpolate_point`` puts them (a caller that has them already saves
    making them again). Returns the pieces ordered by line then position, each piece's
    line, and the cut points' coordinates (in the order of the cuts).
    """
    n = len(lines)
    if cut_xy is None:
        cut_xy = shapely.get_coordinates(
            _in_threads(shapely.line_interpolate_point, lines[cut_line], cut_dist)
        )
    coords, vline = shapely.get_coordinates(lines, return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    step[vline[1:] != vline[:-1]] = 0.0
    cumulative = np.concatenate(([0.0], np.cumsum(step)))
    first = np.searchsorted(vline, np.arange(n))
    vdist = cumulative - cumulative[first][vline]

    n_cut = len(cut_line)
    line_ev = np.concatenate([vline, cut_line, cut_line])
    dist_ev = np.concatenate([vdist, cut_dist, cut_dist])
    kind_ev = np.concatenate([np.zeros(len(vline)), np.ones(n_cut), np.full(n_cut, 2.0)])
    xy_ev = np.concatenate([coords, cut_xy, cut_xy])
    order = np.lexsort((kind_ev, dist_ev, line_ev))
    line_ev, kind_ev, xy_ev = line_ev[order], kind_ev[order], xy_ev[order]

    cuts_per_line = np.bincount(cut_line, minlength=n)
    cuts_before = np.concatenate(([0], np.cumsum(cuts_per_line)[:-1]))
    local = np.cumsum(kind_ev == 2) - cuts_before[line_ev]
    piece = np.arange(n)[line_ev] + cuts_before[line_ev] + local
    # A vertex within a hair of a cut point gives way to the cut point.
    close = np.zeros(len(piece), dtype=bool)
    close[1:] = (piece[1:] == piece[:-1]) & (np.hypot(*np.diff(xy_ev, axis=0).T) < _GRID_M / 100)
    drop = np.zeros(len(piece), dtype=bool)
    later_vertex = close & (kind_ev == 0)
    drop |= later_vertex
    earlier = np.flatnonzero(close & (kind_ev != 0)) - 1
    drop[earlier[kind_ev[earlier] == 0]] = True
    pieces = shapely.linestrings(xy_ev[~drop], indices=piece[~drop])
    return pieces, np.repeat(np.arange(n), cuts_per_line + 1), cut_xy


# ----------------------------------------------------------------------- building steps
# ---------------------------------------------------------------------- attaching steps


@dataclass(frozen=True)
class _Context:
    """Barriers, road lines and figures shared by the attaching steps."""

    polygons: GeomArray
    tree: shapely.STRtree
    road_tree: shapely.STRtree | None
    costs: _Costs
    reach_m: float
    spacing_m: float
    margin_m: float
    radius_m: float

    @classmethod
    def make(cls, roads: GeomArray, polygons: GeomArray, settings: Settings) -> _Context:
        """Make the context for attaching points; ``roads`` are the road edges' lines."""
        catalogue = settings.catalogue
        radius = catalogue.value("supply", "radius_m")[catalogue.value("supply", "area_class")]
        return cls(
            polygons=polygons,
            tree=shapely.STRtree(polygons),
            road_tree=shapely.STRtree(np.asarray(roads, dtype=object)) if len(roads) else None,
            costs=_Costs.from_settings(settings),
            reach_m=float(catalogue.value("network", "max_connector_m")),
            spacing_m=float(catalogue.value("network", "lattice_spacing_m")),
            margin_m=float(catalogue.value("network", "lattice_margin_m")),
            radius_m=float(radius),
        )

    def open_edge(self, geometry: shapely.LineString, crossings: float) -> dict[str, Any]:
        length = float(shapely.length(geometry))
        weight = length * self.costs.open_per_m + crossings * self.costs.crossing_cny
        return _edge(
            length,
            weight,
            surface=OPEN_SURFACE,
            corridor_id=None,
            kind=None,
            off_corridor=True,
            road_crossings=crossings,
            geometry=geometry,
        )


def _on_two_threads(n: int, call: Callable[[int, int], _R]) -> tuple[_R, _R, int]:
    """Run ``call(lo, hi)`` for both halves of ``range(n)`` at once; return both and the cut.

    Shapely releases the GIL in its element-wise functions and tree queries, so on two
    cores a large call takes about half the time.
    """
    half = n // 2
    first, second = _both(lambda: call(0, half), lambda: call(half, n))
    return first, second, half


def _both(first: Callable[[], _R], second: Callable[[], _S]) -> tuple[_R, _S]:
    """Run two calls at once (the first on a helper thread); return both results.

    For calls that release the GIL (shapely, GEOS, numba's ``nogil`` kernels).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(first)
        other = second()
        return started.result(), other


def _in_threads(func: Callable[..., np.ndarray], *args: Any, **kwargs: Any) -> np.ndarray:
    """Call an element-wise shapely function on two threads, half the elements each.

    The result is the same as one call's. Arguments that are arrays as long as the first
    are split; others (scalars) are passed to both halves. Fewer than
    :data:`_THREADED_MIN` elements: one call.
    """
    n = len(args[0])
    if n < _THREADED_MIN:
        return func(*args, **kwargs)

    def part(lo: int, hi: int) -> np.ndarray:
        cut = [a[lo:hi] if isinstance(a, np.ndarray) and len(a) == n else a for a in args]
        return func(*cut, **kwargs)

    first, second, _ = _on_two_threads(n, part)
    return np.concatenate([first, second])


def _query_in_threads(
    tree: shapely.STRtree, geoms: GeomArray, *, nearest: bool = False, **kwargs: Any
) -> tuple[IntArray, IntArray]:
    """``tree.query(geoms, **kwargs)`` on two threads, half the geometries each.

    The same (input, tree) index pairs in the same order as one query (grouped by input).
    With ``nearest``: ``tree.query_nearest`` (each geometry's nearest found on its own).
    """
    method = tree.query_nearest if nearest else tree.query
    if len(geoms) < _THREADED_MIN:
        found = method(geoms, **kwargs)
        return found[0], found[1]
    first, second, half = _on_two_threads(len(geoms), lambda lo, hi: method(geoms[lo:hi], **kwargs))
    return np.concatenate([first[0], second[0] + half]), np.concatenate([first[1], second[1]])
