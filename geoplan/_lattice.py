"""Open-ground lattices: where a point cannot reach a corridor, route over open ground.

Points left over after attaching to the corridors get one local 8-neighbour lattice per
cluster, sized to reach the points and corridor nodes around them within the LV supply
radius; only lattice parts linking at least two anchors are kept. The functions here only
compute the lattice nodes and edges (:class:`Patch`); :mod:`geoplan.network` adds them to
a networkx graph or to :class:`geoplan._graph.GraphArrays`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from ._geometry import (
    _LATTICE_NEAREST,
    FloatArray,
    GeomArray,
    IntArray,
    _containing,
    _Context,
    _crosses_interior,
    _k_nearest_within,
    _road_crossings,
    _segments,
)

logger = logging.getLogger("geoplan.network")

_PAD_M = 1.0  # boxes that pick candidates are widened by this much: a generous margin


@dataclass(frozen=True)
class Patch:
    """Lattice nodes (ids and coordinates) and open-ground edges ``a``-``b`` to add."""

    nodes: IntArray
    node_xy: FloatArray
    a: IntArray
    b: IntArray
    lines: GeomArray
    crossings: FloatArray


@dataclass(frozen=True)
class _BoxIndex:
    """Points sorted by x, to pick those in a box without building a tree of them all.

    A city has a million anchors and a handful of lattices: sorting the coordinates
    costs a fraction of making a million points and a tree of them.
    """

    xy: FloatArray
    order: IntArray
    sorted_x: FloatArray

    @classmethod
    def make(cls, xy: FloatArray) -> _BoxIndex:
        """Index the points ``xy`` (n, 2)."""
        order = np.argsort(xy[:, 0], kind="stable")
        return cls(xy=xy, order=order, sorted_x=xy[order, 0])

    def within(self, low: FloatArray, high: FloatArray) -> IntArray:
        """Return the indices (ascending) of the points in the closed box ``low``-``high``."""
        lo = np.searchsorted(self.sorted_x, low[0], side="left")
        hi = np.searchsorted(self.sorted_x, high[0], side="right")
        found = self.order[lo:hi]
        y = self.xy[found, 1]
        return np.sort(found[(y >= low[1]) & (y <= high[1])])

    def near(self, xy: FloatArray, distance_m: float) -> IntArray:
        """Return the indices (ascending) of the points that may be within ``distance_m`` of ``xy``.

        A superset: the points in the bounding box of ``xy`` widened by a little more.
        """
        pad = distance_m + _PAD_M
        return self.within(xy.min(axis=0) - pad, xy.max(axis=0) + pad)


def open_ground_patches(
    ctx: _Context,
    *,
    pts: GeomArray,
    todo: IntArray,
    point_nodes: IntArray,
    anchors: tuple[IntArray, FloatArray],
    next_id: int,
) -> tuple[list[Patch], int]:
    """Lattices for the points ``todo`` (their nodes ``point_nodes``); also next node id.

    Points within two lattice margins of each other form a cluster with one lattice. It
    spans the cluster and, for each member, the nearest corridor node or attached point
    within the LV supply radius (``[supply] radius_m`` of the default area class); when
    there is none, every other point within that radius (e.g. the supply). ``anchors``
    are the ids and coordinates of every node that is not a lattice node, the points'
    own nodes included.
    """
    xy = shapely.get_coordinates(pts)
    anchor_ids, anchor_xy = anchors
    fixed = ~np.isin(anchor_ids, point_nodes)
    anchor_index = _BoxIndex.make(anchor_xy)
    every_point = _BoxIndex.make(xy)

    link = 2 * ctx.margin_m
    a, b = shapely.STRtree(pts[todo]).query(pts[todo], predicate="dwithin", distance=link)
    adjacency = sparse.coo_array((np.ones(len(a)), (a, b)), shape=(len(todo), len(todo)))
    n_clusters, label = csgraph.connected_components(adjacency, directed=False)
    patches = []
    for cluster in range(n_clusters):  # labels follow the lowest member: deterministic
        members = todo[label == cluster]
        extent = [xy[members]]
        nearby = anchor_index.near(xy[members], ctx.radius_m)
        nearby = nearby[fixed[nearby]]  # the nearest corridor node or attached point, in reach
        nearest = _nearest_within(pts[members], anchor_xy[nearby], ctx.radius_m)
        extent.append(anchor_xy[nearby[nearest]])
        if not nearest.size:  # nothing to lean on: take in the other points around
            nearby = every_point.near(xy[members], ctx.radius_m)
            _, near = shapely.STRtree(pts[nearby]).query(
                pts[members], predicate="dwithin", distance=ctx.radius_m
            )
            extent.append(xy[nearby[near]])
        stacked = np.concatenate(extent)
        low, high = stacked.min(axis=0) - ctx.margin_m, stacked.max(axis=0) + ctx.margin_m
        logger.debug(
            "open-ground lattice for %d points over %.0f x %.0f m",
            len(members),
            *(high - low),
        )
        patch, next_id = _lattice(ctx, (low, high), (anchor_ids, anchor_index), next_id)
        if patch is not None:
            patches.append(patch)
    return patches, next_id


def _nearest_within(pts: GeomArray, xy: FloatArray, distance_m: float) -> IntArray:
    """Return the indices of the ``xy`` nearest to each point within ``distance_m``, ties too."""
    if not len(xy):
        return np.zeros(0, dtype=np.int64)
    _, nearest = shapely.STRtree(shapely.points(xy)).query_nearest(pts, max_distance=distance_m)
    return nearest


def _lattice(
    ctx: _Context,
    bounds: tuple[FloatArray, FloatArray],
    anchors: tuple[IntArray, _BoxIndex],
    next_id: int,
) -> tuple[Patch | None, int]:
    """Make an 8-neighbour lattice over ``bounds`` linking the anchor nodes inside it.

    Lattice nodes and edges avoid the barriers (merged locally, so a shared wall blocks);
    each anchor joins the lattice nodes within two steps, or failing that its nearest
    ones within ``max_connector_m``, by connectors that avoid the barriers too (except a
    barrier the anchor stands in). Only lattice parts joining two or more anchors stay.
    """
    step = ctx.spacing_m
    (x0, y0), (x1, y1) = bounds
    gx = np.arange(math.floor(x0 / step), math.ceil(x1 / step) + 1) * step
    gy = np.arange(math.floor(y0 / step), math.ceil(y1 / step) + 1) * step
    grid_x, grid_y = np.meshgrid(gx, gy, indexing="ij")
    lat_xy = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    lat_pts = shapely.points(lat_xy)
    frame = shapely.box(gx[0], gy[0], gx[-1], gy[-1])
    local = ctx.polygons[ctx.tree.query(frame, predicate="intersects")]
    if len(local) > 1:
        local = shapely.get_parts(shapely.union_all(local))
    tree = shapely.STRtree(local)
    valid = np.ones(len(lat_xy), dtype=bool)
    if len(local):
        inside, _ = tree.query(lat_pts, predicate="within")
        valid[inside] = False

    index = np.arange(len(lat_xy)).reshape(len(gx), len(gy))
    neighbours = (
        (index[:-1, :], index[1:, :]),
        (index[:, :-1], index[:, 1:]),
        (index[:-1, :-1], index[1:, 1:]),
        (index[:-1, 1:], index[1:, :-1]),
    )
    ea = np.concatenate([n[0].ravel() for n in neighbours])
    eb = np.concatenate([n[1].ravel() for n in neighbours])
    both = valid[ea] & valid[eb]
    ea, eb = ea[both], eb[both]
    lines = _segments(lat_xy[ea], lat_xy[eb])
    free = ~_crosses_interior(lines, local, tree)
    ea, eb, lines = ea[free], eb[free], lines[free]

    anchor_ids, anchor_index = anchors
    ai = anchor_index.within(np.array([gx[0], gy[0]]), np.array([gx[-1], gy[-1]]))  # in frame
    usable = np.flatnonzero(valid)
    if not ai.size or not usable.size:
        return None, next_id
    a_xy = anchor_index.xy[ai]
    a_pts = shapely.points(a_xy)
    node_tree = shapely.STRtree(lat_pts[usable])
    exempt_keys = _containing(a_pts, local, tree)
    pa, pl = node_tree.query(a_pts, predicate="dwithin", distance=2 * step)
    ok = ~_crosses_interior(
        _segments(a_xy[pa], lat_xy[usable[pl]]), local, tree, (pa.astype(np.int64), exempt_keys)
    )
    pa, pl = pa[ok], pl[ok]
    lonely = np.setdiff1d(np.arange(len(ai)), pa)
    if lonely.size:
        qa, ql, _ = _k_nearest_within(
            node_tree, lat_pts[usable], a_pts[lonely], ctx.reach_m, _LATTICE_NEAREST
        )
        qa = lonely[qa]
        ok = ~_crosses_interior(
            _segments(a_xy[qa], lat_xy[usable[ql]]), local, tree, (qa.astype(np.int64), exempt_keys)
        )
        pa, pl = np.concatenate([pa, qa[ok]]), np.concatenate([pl, ql[ok]])
    pl = usable[pl]

    n_lat, n_anchor = len(lat_xy), len(ai)
    rows, cols = np.concatenate([ea, n_lat + pa]), np.concatenate([eb, pl])
    adjacency = sparse.coo_array(
        (np.ones(len(rows)), (rows, cols)), shape=(n_lat + n_anchor, n_lat + n_anchor)
    )
    _, label = csgraph.connected_components(adjacency, directed=False)
    per_component = np.bincount(label[n_lat:], minlength=label.max() + 1)
    good = per_component >= 2
    kept = valid & good[label[:n_lat]]
    if not kept.any():
        return None, next_id
    new_id = np.full(n_lat, -1, dtype=np.int64)
    new_id[kept] = next_id + np.arange(int(kept.sum()))
    next_id += int(kept.sum())
    keep_edges = good[label[ea]]
    ea, eb, lines = ea[keep_edges], eb[keep_edges], lines[keep_edges]
    keep_links = good[label[pl]]
    pa, pl = pa[keep_links], pl[keep_links]
    links = _segments(a_xy[pa], lat_xy[pl])
    every = np.concatenate([lines, links])
    patch = Patch(
        nodes=new_id[kept],
        node_xy=lat_xy[kept],
        a=np.concatenate([new_id[ea], anchor_ids[ai[pa]]]).astype(np.int64),
        b=np.concatenate([new_id[eb], new_id[pl]]).astype(np.int64),
        lines=every,
        crossings=_road_crossings(every, ctx.road_tree),
    )
    return patch, next_id
