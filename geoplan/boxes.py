"""Meter boxes: how many per storage block, where on the block, and what size.

A storage block is a row of rooms. It gets one collective meter box per section of the row
no longer than ``meter_boxes.max_service_length_m`` and with no more rooms than the largest
box; each box stands on the section's edge nearest the corridor network, ``setback_m``
outside the wall. Positions are the smallest catalogue size that holds the section's
rooms: applicants use positions now, the rest are reserved for later applicants.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._checks import allowed_flags
from ._geometry import _in_threads, _query_in_threads
from .costs import box_cost_cny
from .electrical import box_phases, design_load_kw
from .settings import Settings

logger = logging.getLogger(__name__)

_EDGE_TOLERANCE_M = 0.05  # a section's outline within this of its block's outline is outer
_NEAR_TARGET_M = 30.0  # the corridor a box faces is first looked for this close (speed only)

PLANNED_STATUSES = ("surveyed", "applied", "planned", "under_construction")


def box_size(rooms: int, sizes: tuple[int, ...] | list[int]) -> int:
    """Return the smallest catalogue size with at least ``rooms`` positions."""
    for size in sorted(sizes):
        if size >= rooms:
            return int(size)
    msg = f"{rooms} rooms exceed the largest meter box ({max(sizes)} positions)"
    raise ValueError(msg)


def site_boxes(
    blocks: gpd.GeoDataFrame,
    *,
    corridors: gpd.GeoDataFrame,
    supplies: gpd.GeoDataFrame,
    settings: Settings,
) -> gpd.GeoDataFrame:
    """Site and size the meter boxes of every storage block still to be planned.

    Parameters
    ----------
    blocks
        Storage blocks (``block_id``, ``compound_id``, ``units``, optional ``applicants``
        and ``status``). Energized blocks are already served and get no box.
    corridors
        Where cables may be trenched; boxes face the nearest one (the nearest supply
        when there are no corridors).
    supplies
        Supply points, faced when no corridor is given.
    settings
        Run settings and catalogue.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per box: box_id, block_id, compound_id, rooms, positions, used, reserved,
        phases, model, design_load_kw, status, cost_cny, and its Point.
    """
    catalogue = settings.catalogue
    sizes = tuple(catalogue.value("meter_boxes", "single_phase_positions"))
    max_length_m = float(catalogue.value("meter_boxes", "max_service_length_m"))
    setback_m = float(catalogue.value("meter_boxes", "setback_m"))
    status = blocks["status"] if "status" in blocks else pd.Series("surveyed", index=blocks.index)
    todo = blocks[status.fillna("surveyed").isin(PLANNED_STATUSES)]
    applicants = todo["applicants"].fillna(todo["units"]) if "applicants" in todo else todo["units"]
    allowed = corridors
    if "allowed" in corridors:
        allowed = corridors[allowed_flags(corridors["allowed"])]
    targets = allowed.geometry if len(allowed) else supplies.geometry
    target_array = np.asarray(targets.array, dtype=object)
    tree = shapely.STRtree(target_array) if len(targets) else None

    geoms = np.asarray(todo.geometry.array, dtype=object)
    rooms = todo["units"].to_numpy().astype(np.int64)
    applied = np.asarray(applicants, dtype=float).astype(np.int64)
    corners = _rectangle_corners(geoms)
    sides = np.roll(corners, -1, axis=1) - corners
    side_m = np.hypot(sides[..., 0], sides[..., 1])
    length_m = side_m.max(axis=1) if len(geoms) else np.zeros(0)
    parts = np.maximum(
        np.maximum(np.ceil(length_m / max_length_m), np.ceil(rooms / max(sizes))), 1
    ).astype(np.int64)
    parts = np.minimum(parts, np.maximum(rooms, 1))
    block_of = np.repeat(np.arange(len(geoms)), parts)
    first = np.repeat(np.cumsum(parts) - parts, parts)
    rank = np.arange(len(block_of)) - first  # section number within its block, from 0
    sections = _sections_of(geoms, (corners, sides), parts, block_of=block_of, rank=rank)
    site = sections
    if tree is not None and len(sections):
        chosen = np.full(len(sections), None, dtype=object)
        # most sections have a corridor close by: a bounded search first is much faster
        inputs, nearest = _query_in_threads(
            tree, sections, nearest=True, all_matches=False, max_distance=_NEAR_TARGET_M
        )
        chosen[inputs] = target_array[nearest]
        rest = np.flatnonzero(pd.isna(chosen))  # none that close: search everywhere
        if rest.size:
            inputs, nearest = _query_in_threads(
                tree, sections[rest], nearest=True, all_matches=False
            )
            chosen[rest[inputs]] = target_array[nearest]
        site = _sites(
            sections, chosen, setback_m, blocks=geoms, block_of=block_of, cut=parts[block_of] > 1
        )
    else:
        site = shapely.centroid(sections)
    section_rooms = _split(rooms[block_of], parts[block_of], rank)
    section_used = _split(applied[block_of], parts[block_of], rank)
    sorted_sizes = np.sort(np.asarray(sizes, dtype=np.int64))
    need = np.maximum(section_rooms, 1)
    if len(need) and need.max() > sorted_sizes[-1]:
        box_size(int(need.max()), sizes)  # raises with the message
    block_ids = todo["block_id"].to_numpy(object)
    rows = {
        "box_id": [
            f"{b}-M{n + 1}" for b, n in zip(block_ids[block_of], rank.tolist(), strict=True)
        ],
        "block_id": block_ids[block_of],
        "compound_id": todo["compound_id"].to_numpy(object)[block_of],
        "rooms": section_rooms,
        "positions": sorted_sizes[np.searchsorted(sorted_sizes, need)],
        "used": section_used,
        "status": status.loc[todo.index].fillna("surveyed").to_numpy(object)[block_of],
    }
    boxes = (
        gpd.GeoDataFrame(rows, geometry=site, crs=blocks.crs)
        if len(block_of)
        else _no_boxes(blocks)
    )
    boxes["reserved"] = boxes["positions"] - boxes["used"]
    basis = boxes["used"] if settings.load_basis == "applicants" else boxes["rooms"]
    boxes["design_load_kw"] = design_load_kw(basis.to_numpy(), catalogue=catalogue)
    min_positions = int(catalogue.value("meter_boxes", "three_phase_min_positions"))
    boxes["phases"] = np.where(
        boxes["positions"].to_numpy() >= min_positions,
        3,
        box_phases(boxes["design_load_kw"].to_numpy(), catalogue=catalogue),
    ).astype("int64")
    boxes["model"] = [
        f"DXB-{p}{'-3P' if ph == 3 else ''}"
        for p, ph in zip(boxes["positions"], boxes["phases"], strict=True)
    ]
    boxes["cost_cny"] = box_cost_cny(boxes["positions"].to_numpy(), catalogue=catalogue)
    logger.info("sited %d meter boxes on %d storage blocks", len(boxes), len(todo))
    return boxes


def _no_boxes(blocks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    columns = ["box_id", "block_id", "compound_id", "rooms", "positions", "used", "status"]
    return gpd.GeoDataFrame(
        {
            c: pd.Series(dtype="int64" if c in {"rooms", "positions", "used"} else "object")
            for c in columns
        },
        geometry=gpd.GeoSeries([], crs=blocks.crs),
    )


def _rectangle_corners(geoms: np.ndarray) -> np.ndarray:
    """Return the first four corners of each polygon's minimum rotated rectangle, (n, 4, 2)."""
    if not len(geoms):
        return np.zeros((0, 4, 2))
    rectangles = _in_threads(shapely.minimum_rotated_rectangle, geoms)
    rings = shapely.get_exterior_ring(rectangles)
    coords, index = shapely.get_coordinates(rings, return_index=True)
    start = np.searchsorted(index, np.arange(len(geoms)))
    return coords[start[:, None] + np.arange(4)]


def _split(total: np.ndarray, parts: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Split ``total`` into ``parts`` whole numbers differing by one at most; part ``rank``."""
    base, extra = np.divmod(total, parts)
    return (base + (rank < extra)).astype(np.int64)


def _sections_of(
    geoms: np.ndarray,
    rectangles: tuple[np.ndarray, np.ndarray],
    parts: np.ndarray,
    *,
    block_of: np.ndarray,
    rank: np.ndarray,
) -> np.ndarray:
    """Cut blocks into ``parts`` equal slices across the long axis of their rectangle.

    ``rectangles`` are each block's minimum rotated rectangle's corners and sides; one
    slice is returned per (``block_of``, ``rank``). A slice that is not one polygon is
    replaced by its convex hull.
    """
    corners, sides = rectangles
    out = geoms[block_of].copy()
    cut = np.flatnonzero(parts[block_of] > 1)
    if not cut.size:
        return out
    b = block_of[cut]
    long_side = np.argmax(np.hypot(sides[..., 0], sides[..., 1]), axis=1)[b]
    origin = corners[b, long_side]
    along = sides[b, long_side]
    across = sides[b, (long_side + 1) % 4]
    i = rank[cut][:, None]
    n = parts[b][:, None]
    start = origin + along * i / n
    end = origin + along * (i + 1) / n
    ring = np.stack([start, end, end + across, start + across, start], axis=1)
    strips = _in_threads(shapely.buffer, shapely.polygons(ring), 0.01, quad_segs=16)
    pieces = _in_threads(shapely.intersection, geoms[b], strips)
    polygon = shapely.get_type_id(pieces) == 3
    pieces[~polygon] = shapely.convex_hull(pieces[~polygon])
    out[cut] = pieces
    return out


def _outer_edges(
    rings: np.ndarray, blocks: np.ndarray, *, block_of: np.ndarray, cut: np.ndarray
) -> np.ndarray:
    """Return the part of each section's outline ``rings`` that is also its block's outline.

    A section that is its whole block (``cut`` false) is all outline: its ring. A slice
    keeps what lies within ``_EDGE_TOLERANCE_M`` of its block's ring (buffered once per
    block), or its whole ring when none does.
    """
    outer = rings.copy()
    sliced = np.flatnonzero(cut)
    if not sliced.size:
        return outer
    cut_blocks, block_index = np.unique(block_of[sliced], return_inverse=True)
    edges = _in_threads(
        shapely.buffer, shapely.get_exterior_ring(blocks[cut_blocks]), _EDGE_TOLERANCE_M
    )
    kept = _in_threads(shapely.intersection, rings[sliced], edges[block_index])
    outer[sliced] = np.where(shapely.is_empty(kept), rings[sliced], kept)
    return outer


def _sites(
    sections: np.ndarray,
    targets: np.ndarray,
    setback_m: float,
    *,
    blocks: np.ndarray,
    block_of: np.ndarray,
    cut: np.ndarray,
) -> np.ndarray:
    """Place a box on each section's outer edge nearest its target, ``setback_m`` outside it.

    Section ``i`` is a slice of block ``blocks[block_of[i]]`` when ``cut[i]``, else the
    whole block. Only the part of a section's outline that is also the outline of its
    block counts, so a box never stands on the cut between two sections, inside the
    block. A section without a target (``None`` or empty) gets its box at its centroid.
    """
    centroid = shapely.centroid(sections)
    out = centroid.copy()
    has = np.flatnonzero(~shapely.is_missing(targets) & ~shapely.is_empty(targets))
    if not has.size:
        return out
    rings = shapely.get_exterior_ring(sections[has])
    outer = _outer_edges(rings, blocks, block_of=block_of[has], cut=cut[has])
    lines = _in_threads(shapely.shortest_line, outer, targets[has])
    on_edge = shapely.get_coordinates(shapely.get_point(lines, 0))
    direction = on_edge - shapely.get_coordinates(centroid[has])
    norm = np.hypot(direction[:, 0], direction[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = direction / norm[:, None] * setback_m
    xy = np.where((norm == 0)[:, None], on_edge, on_edge + offset)
    out[has] = shapely.points(xy)
    return out
