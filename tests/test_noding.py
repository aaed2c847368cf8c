"""Noding by vertex contacts (geoplan._noding) gives the pieces of noding everything at once.

Lines on a coarse grid of points share end points, meet at each other's vertices, cross
inside segments, overlap, double back, close on themselves and run along or into
barriers: every way of meeting that the contact search must either split at a vertex
itself or hand to GEOS. Whatever the lines, the pieces, their sources and inner points
must be exactly (coordinate for coordinate) those of one :func:`shapely.node` of all.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geoplan import _geometry, _noding
from geoplan._noding import node_lines
from geoplan._ragged import Ragged

CELL_M = 10.0
ORIGIN = np.array([500_000.0, 4_300_000.0])


def _canonical(pieces: tuple[Ragged, np.ndarray, np.ndarray]) -> list[tuple]:
    """The pieces as sorted (source, inner x, inner y, WKB) rows: order-free, exact."""
    geoms, source, inner = pieces
    wkb = shapely.to_wkb(geoms.geometries())
    return sorted(
        zip(source.tolist(), inner[:, 0].tolist(), inner[:, 1].tolist(), wkb.tolist(), strict=True)
    )


def _everything_at_once(
    lines: np.ndarray, polygons: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> list[tuple]:
    with monkeypatch.context() as patch:
        patch.setattr(_noding, "_CONTACT_MIN_LINES", 10**9)
        return _canonical(node_lines(lines, polygons))


def _by_contacts(
    lines: np.ndarray, polygons: np.ndarray, monkeypatch: pytest.MonkeyPatch, strip_lines: int
) -> list[tuple]:
    with monkeypatch.context() as patch:
        patch.setattr(_noding, "_CONTACT_MIN_LINES", 0)
        patch.setattr(_noding, "_STRIP_LINES", strip_lines)
        patch.setattr(_geometry, "_THREADED_MIN", 2)  # groups apart noded on two threads
        return _canonical(node_lines(lines, polygons))


def _grid_xy(points: list[tuple[int, int]]) -> np.ndarray:
    return ORIGIN + CELL_M * np.asarray(points, dtype=float)


corner = st.tuples(st.integers(0, 5), st.integers(0, 5))
polyline = st.lists(corner, min_size=2, max_size=4)
jitter = st.sampled_from([0.0, 0.0, 0.0, 0.004, -0.02, 1e-7])  # on, near, or off a vertex


@st.composite
def district(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Lines between grid points (some ends nudged), and a few barrier boxes."""
    lines = []
    for points in draw(st.lists(polyline, min_size=2, max_size=14)):
        xy = _grid_xy(points)
        xy[-1] += draw(jitter)
        line = shapely.LineString(xy)
        if shapely.is_valid(line):  # as the layer checks require
            lines.append(line)
    boxes = []
    for x, y in draw(st.lists(corner, max_size=3)):
        low = _grid_xy([(x, y)])[0] + draw(st.sampled_from([0.0, 2.5, 5.0]))
        boxes.append(shapely.box(*low, *(low + CELL_M / 2)))
    return np.array(lines, dtype=object), np.array(boxes, dtype=object)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(district())
def test_contacts_give_the_pieces_of_noding_everything(
    lines_and_barriers: tuple[np.ndarray, np.ndarray],
) -> None:
    lines, polygons = lines_and_barriers
    with pytest.MonkeyPatch.context() as monkeypatch:
        try:
            want = _everything_at_once(lines, polygons, monkeypatch)
        except shapely.errors.GEOSException:  # GEOS cannot node some near-overlaps at all
            assume(False)
        assert _by_contacts(lines, polygons, monkeypatch, strip_lines=10**9) == want


def _street_grid(n: int) -> list[shapely.LineString]:
    """Straight two-point streets between the points of an n x n grid."""
    streets = []
    for i in range(n):
        for j in range(n - 1):
            streets.append(shapely.LineString(_grid_xy([(i, j), (i, j + 1)])))
            streets.append(shapely.LineString(_grid_xy([(j, i), (j + 1, i)])))
    return streets


def test_each_kind_of_contact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streets meeting at ends are left whole; every other contact is split as GEOS does."""
    streets = _street_grid(8)
    p = _grid_xy
    odd = [
        shapely.LineString(p([(0.5, 0.5), (2.5, 2.5)])),  # crosses streets inside segments
        shapely.LineString(p([(3, 3), (3, 3.5), (4.2, 3.5)])),  # T onto a street's middle
        shapely.LineString(p([(5, 0), (5.5, 1), (5, 2)])),  # bends through no vertex
        shapely.LineString(p([(6, 6), (7, 6)])),  # duplicates a street
        shapely.LineString(p([(1, 6), (1, 6.5)])),  # overlaps half a street
        shapely.LineString(p([(2, 7), (2.4, 7.000001)])),  # leaves a street at a hair's angle
        shapely.LineString(p([(6, 1), (6.0004, 1.5)])),  # within 5 mm of a street's middle
        shapely.LineString(p([(4, 4), (4, 4), (5, 5)])),  # a zero-length segment
        shapely.LineString(p([(6, 3), (6.5, 3.5), (7, 3), (6, 3)])),  # closed
        shapely.LineString(p([(0, 4), (1, 5), (1, 4), (0, 5)])),  # crosses itself
        shapely.LineString(p([(7, 7), (7 + 1e-8, 7 + 1e-8)])),  # a stub off a street's end
        shapely.LineString(p([(3, 6), (3.5, 6.5), (4, 6)])),  # bends between two corners
        shapely.LineString(p([(3.5, 6.5), (3.5, 6.9)])),  # ... and a T at its vertex
    ]
    lines = np.array(streets + odd, dtype=object)
    barriers = np.array(
        [
            shapely.box(*p([(4.2, 0.8)])[0], *p([(4.8, 1.2)])[0]),  # a street runs through
            shapely.box(*p([(2, 2)])[0], *p([(2.5, 2.5)])[0]),  # streets along two sides
        ],
        dtype=object,
    )
    want = _everything_at_once(lines, barriers, monkeypatch)
    assert _by_contacts(lines, barriers, monkeypatch, strip_lines=10**9) == want
    # the streets whose ends only meet others' ends are left whole, not handed to GEOS
    coords, index = shapely.get_coordinates(lines, return_index=True)
    needs, split_at = _noding._vertex_contacts(lines, coords, index)
    assert needs[: len(streets)].sum() < len(streets) / 4
    assert needs[len(streets) : -2].all()
    assert not needs[-2:].any()  # the bend and its T: split at the bend's vertex
    split_lines = index[split_at]
    assert split_lines[~needs[split_lines]].tolist() == [len(lines) - 2]


@pytest.mark.parametrize("contact_min_lines", [0, 10**9])
def test_a_doubled_vertex_on_an_overlap_leaves_no_empty_piece(
    monkeypatch: pytest.MonkeyPatch, contact_min_lines: int
) -> None:
    """A line repeating its first vertex over another line: GEOS leaves a one-point piece.

    It used to shift every inner point after it by one (an IndexError for the user).
    """
    monkeypatch.setattr(_noding, "_CONTACT_MIN_LINES", contact_min_lines)
    doubled = shapely.LineString(_grid_xy([(0, 0), (0, 0), (0, 1)]))
    plain = shapely.LineString(_grid_xy([(0, 0), (0, 1)]))
    pieces, source, inner = node_lines(np.array([doubled, plain]), np.array([], dtype=object))
    assert (shapely.length(pieces.geometries()) > 0).all()
    assert source.tolist() == [0]  # the overlap is one piece, of the lower-ranked line
    np.testing.assert_array_equal(inner, [ORIGIN + np.array([0.0, CELL_M / 2])])


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 12), st.integers(0, 12)),
        min_size=0,
        max_size=80,
    )
)
def test_overlapping_boxes_are_those_a_tree_finds(boxes: list[tuple[int, ...]]) -> None:
    """The grid's pairs are exactly a tree query's (touching counts; one long box spans
    many cells; equal boxes pair), once each."""
    from geoplan._grid import overlapping

    corner = np.array([b[:2] for b in boxes], dtype=float).reshape(-1, 2) * 2.5 + ORIGIN
    lo = corner
    hi = corner + np.array([b[2:] for b in boxes], dtype=float).reshape(-1, 2) * 2.5
    hi[::7, 0] += 200.0  # some boxes far longer than the median: many cells each
    i, j = overlapping(lo, hi)
    tree = shapely.STRtree(shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]))
    ti, tj = tree.query(shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(
        (a, b) for a, b in zip(ti.tolist(), tj.tolist(), strict=True) if a < b
    )
