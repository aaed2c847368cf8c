"""attach_arrays' grid searches find what the tree searches find."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geoplan._geometry import (
    _containing,
    _Context,
    _crosses_interior,
    _k_nearest_within,
    _pairs_within,
    _segments,
)
from geoplan._grid import BoxGrid
from geoplan.attach import _blocked_connectors, _nearest_edges
from geoplan.settings import Settings

_EDGES = 3000
_POINTS = 800
_SIDE_M = 2000.0
_K = 4


def _city(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random short lines (some of them long), points among them, some on a line or far out."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, _SIDE_M, (_EDGES, 2)).round(1)
    step = rng.normal(0, 20, (_EDGES, 2)).round(1)
    step[:10] *= 40  # a few long lines reach many grid cells
    mid = start + step / 2 + rng.normal(0, 3, (_EDGES, 2)).round(1)
    lines = shapely.linestrings(np.stack([start, mid, start + step], axis=1))
    xy = rng.uniform(-100, _SIDE_M + 100, (_POINTS, 2)).round(1)
    xy[:50] = start[:50]  # on an edge's end: ties at distance 0
    xy[50:60] = (start[60:70] + start[70:80]) / 2
    xy[60:65] = [-5000, -5000]  # nothing in reach
    return lines, shapely.points(xy), xy


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reach_m", [5.0, 10.0, 60.0])
def test_nearest_edges_match_tree_search(seed: int, reach_m: float) -> None:
    lines, pts, xy = _city(seed)
    want = _k_nearest_within(shapely.STRtree(lines), lines, pts, reach_m, _K)
    got = _nearest_edges(lines, pts, xy, reach_m, _K)
    assert len(want[0]) > _POINTS // 8  # many points find edges
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_nearest_edges_break_ties_by_edge() -> None:
    # Five equal lines through the point: the four lowest rows are kept, nearest first.
    base = shapely.linestrings([[0, 0], [10, 0]])
    lines = np.array([shapely.linestrings([[0, 1], [10, 1]]), *[base] * 5], dtype=object)
    pts = shapely.points([[5.0, 0.0]])
    pi, ei, dist = _nearest_edges(lines, pts, np.array([[5.0, 0.0]]), 60.0, _K)
    assert pi.tolist() == [0] * _K
    assert ei.tolist() == [1, 2, 3, 4]
    assert dist.tolist() == [0.0] * _K


def test_blocked_connectors_match_crosses_interior() -> None:
    # Connectors through, into, beside and far from square barriers; some points inside.
    rng = np.random.default_rng(3)
    corner = rng.uniform(0, _SIDE_M, (200, 2))
    squares = shapely.box(corner[:, 0], corner[:, 1], corner[:, 0] + 15, corner[:, 1] + 15)
    ctx = _Context.make(np.zeros(0, dtype=object), squares, Settings())
    a = rng.uniform(0, _SIDE_M, (3000, 2))
    a[:100] = corner[:100] + 7.5  # inside a barrier: may leave it
    b = a + rng.normal(0, 25, a.shape)
    owners = np.arange(len(a))
    keys = _containing(shapely.points(a), ctx.polygons, ctx.tree)
    want = _crosses_interior(_segments(a, b), ctx.polygons, ctx.tree, (owners, keys))
    grid = BoxGrid.make(shapely.bounds(squares), ctx.reach_m)
    got = _blocked_connectors(ctx, grid, (a, b), (owners, keys))
    assert 0 < want.sum() < len(a)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("distance_m", [0.0, 7.5, 60.0])
def test_pairs_within_are_the_trees_dwithin(distance_m: float) -> None:
    """The shared test behind both searches, against GEOS's own: points exactly at the
    distance from a line and a hair either side of it included."""
    lines, pts, _ = _city(3)
    xy = np.array([[100.0, 100.0 + distance_m + e] for e in (-1e-7, 0.0, 1e-7, -1e-9, 1e-9)])
    line = shapely.linestrings([[[0.0, 100.0], [200.0, 100.0]]])
    lines = np.concatenate([lines, line])
    pts = np.concatenate([pts, shapely.points(xy)])
    gi, ii, dist = _pairs_within(shapely.STRtree(lines), lines, pts, distance_m)
    ti, tj = shapely.STRtree(lines).query(pts, predicate="dwithin", distance=distance_m)
    assert sorted(zip(gi.tolist(), ii.tolist(), strict=True)) == sorted(
        zip(ti.tolist(), tj.tolist(), strict=True)
    )
    np.testing.assert_array_equal(dist, shapely.distance(pts[gi], lines[ii]))
