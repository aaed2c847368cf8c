"""Meter boxes: how many per storage block, where on the block, and what size.

A storage block is a row of rooms. It gets one collective meter box per section of the row
no longer than ``meter_boxes.max_service_length_m`` and with no more rooms than the largest
box; each box stands on the section's edge nearest the corridor network, ``setback_m``
outside the wall. Positions are the smallest catalogue size that holds the section's
rooms: applicants use positions now, the rest are reserved for later applicants.
"""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .costs import box_cost_cny
from .electrical import box_phases, design_load_kw
from .settings import Settings

logger = logging.getLogger(__name__)

PLANNED_STATUSES = ("surveyed", "applied", "planned", "under_construction")


def _split_counts(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` whole numbers that differ by at most one."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def box_size(rooms: int, sizes: tuple[int, ...] | list[int]) -> int:
    """Return the smallest catalogue size with at least ``rooms`` positions."""
    for size in sorted(sizes):
        if size >= rooms:
            return int(size)
    msg = f"{rooms} rooms exceed the largest meter box ({max(sizes)} positions)"
    raise ValueError(msg)


def _sections(block: shapely.Polygon, parts: int) -> list[shapely.Polygon]:
    """Cut a block into ``parts`` equal slices across its long axis."""
    if parts == 1:
        return [block]
    rectangle = shapely.minimum_rotated_rectangle(block)
    corners = np.asarray(rectangle.exterior.coords)[:4]
    sides = np.roll(corners, -1, axis=0) - corners
    long_side = int(np.argmax(np.hypot(sides[:, 0], sides[:, 1])))
    origin = corners[long_side]
    along = sides[long_side]
    across = sides[(long_side + 1) % 4]
    slices = []
    for i in range(parts):
        start = origin + along * i / parts
        end = origin + along * (i + 1) / parts
        strip = shapely.Polygon([start, end, end + across, start + across]).buffer(0.01)
        piece = block.intersection(strip)
        slices.append(piece if piece.geom_type == "Polygon" else piece.convex_hull)
    return slices


def _site(
    section: shapely.Polygon, target: shapely.Geometry | None, setback_m: float
) -> shapely.Point:
    """Place a box on the section's edge nearest ``target``, ``setback_m`` outside it."""
    centroid = section.centroid
    if target is None or target.is_empty:
        return centroid
    on_edge = shapely.shortest_line(section.exterior, target).coords[0]
    direction = np.subtract(on_edge, (centroid.x, centroid.y))
    norm = float(np.hypot(*direction))
    if norm == 0:
        return shapely.Point(on_edge)
    offset = direction / norm * setback_m
    return shapely.Point(on_edge[0] + offset[0], on_edge[1] + offset[1])


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
        allowed = corridors[corridors["allowed"].fillna(True).astype(bool)]
    targets = allowed.geometry if len(allowed) else supplies.geometry
    tree = shapely.STRtree(np.asarray(targets.array)) if len(targets) else None

    rows = []
    for block, block_applicants, block_status in zip(
        todo.itertuples(index=False),
        applicants,
        status.loc[todo.index].fillna("surveyed"),
        strict=True,
    ):
        rooms = int(block.units)
        length_m = _long_side_m(block.geometry)
        parts = max(math.ceil(length_m / max_length_m), math.ceil(rooms / max(sizes)), 1)
        parts = min(parts, max(rooms, 1))
        for n, (section, section_rooms, used) in enumerate(
            zip(
                _sections(block.geometry, parts),
                _split_counts(rooms, parts),
                _split_counts(int(block_applicants), parts),
                strict=True,
            ),
            start=1,
        ):
            target = None
            if tree is not None:
                nearest = tree.query_nearest(section, all_matches=False)
                target = targets.iloc[int(nearest[0])] if len(nearest) else None
            rows.append(
                {
                    "box_id": f"{block.block_id}-M{n}",
                    "block_id": block.block_id,
                    "compound_id": block.compound_id,
                    "rooms": section_rooms,
                    "positions": box_size(max(section_rooms, 1), sizes),
                    "used": used,
                    "status": block_status,
                    "geometry": _site(section, target, setback_m),
                }
            )
    boxes = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=blocks.crs) if rows else _no_boxes(blocks)
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


def _long_side_m(polygon: shapely.Polygon) -> float:
    rectangle = shapely.minimum_rotated_rectangle(polygon)
    corners = np.asarray(rectangle.exterior.coords)[:4]
    sides = np.roll(corners, -1, axis=0) - corners
    return float(np.hypot(sides[:, 0], sides[:, 1]).max())


def _no_boxes(blocks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    columns = ["box_id", "block_id", "compound_id", "rooms", "positions", "used", "status"]
    return gpd.GeoDataFrame(
        {
            c: pd.Series(dtype="int64" if c in {"rooms", "positions", "used"} else "object")
            for c in columns
        },
        geometry=gpd.GeoSeries([], crs=blocks.crs),
    )
