"""Tests for geoplan._ragged: lines held as coordinates give what their geometries give."""

from __future__ import annotations

import numpy as np
import shapely

from geoplan._ragged import Ragged

ORIGIN = np.array([500_000.0, 4_300_000.0])


def _random_lines(n: int, seed: int) -> np.ndarray:
    """Lines of 2 to 6 vertices at city coordinates, some with repeated vertices."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 7, n)
    xy = ORIGIN + rng.uniform(0, 5_000, (counts.sum(), 2))
    repeat = np.flatnonzero(rng.random(len(xy)) < 0.05)
    xy[repeat[repeat > 0]] = xy[repeat[repeat > 0] - 1]  # zero-length segments
    lines = shapely.linestrings(xy, indices=np.repeat(np.arange(n), counts))
    return lines[shapely.length(lines) > 0]


def test_lengths_are_shapelys_to_the_bit() -> None:
    """The routing graph's lengths must not move by an ulp when made from coordinates."""
    lines = _random_lines(20_000, seed=1)
    np.testing.assert_array_equal(Ragged.of(lines).lengths(), shapely.length(lines))


def test_geometries_subset_and_concat_keep_every_coordinate() -> None:
    lines = _random_lines(500, seed=2)
    ragged = Ragged.of(lines)
    assert shapely.equals_exact(ragged.geometries(), lines, tolerance=0).all()
    rows = np.array([0, 3, 4, 200, len(lines) - 1])
    assert shapely.equals_exact(ragged.subset(rows).geometries(), lines[rows], tolerance=0).all()
    joined = Ragged.concat([ragged.subset(rows), Ragged.of(lines[:0]), ragged.subset(rows[:2])])
    expected = np.concatenate([lines[rows], lines[rows[:2]]])
    assert shapely.equals_exact(joined.geometries(), expected, tolerance=0).all()
    first, last = joined.first_last()
    np.testing.assert_array_equal(
        joined.coords[first], shapely.get_coordinates(shapely.get_point(expected, 0))
    )
    np.testing.assert_array_equal(
        joined.coords[last], shapely.get_coordinates(shapely.get_point(expected, -1))
    )


def test_inner_points_lie_inside_the_first_segment_of_some_length() -> None:
    line = shapely.LineString(ORIGIN + np.array([(0.0, 0.0), (0.0, 0.0), (0.0, 10.0), (5, 10)]))
    (inner,) = Ragged.of(np.array([line])).inner_points()
    np.testing.assert_array_equal(inner, ORIGIN + np.array([0.0, 5.0]))
    lines = _random_lines(2_000, seed=3)
    points = shapely.points(Ragged.of(lines).inner_points())
    assert shapely.dwithin(lines, points, 1e-6).all()
    assert not shapely.intersects(shapely.boundary(lines), points).any()


def test_no_lines() -> None:
    empty = Ragged.of(np.zeros(0, dtype=object))
    assert len(empty) == 0
    assert len(empty.geometries()) == 0
    assert len(empty.lengths()) == 0
    assert len(empty.inner_points()) == 0
