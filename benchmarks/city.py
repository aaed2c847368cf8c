"""Street-like synthetic cities for the benchmarks, generated in memory.

A city is a jittered grid of streets ``spacing_m`` apart: some grid streets are missing,
some cells have a diagonal footpath (a few have both diagonals, which cross without a
shared vertex), every sixth row and column is a road drawn as long polylines through
several junctions (so side streets end on a road's interior vertex), and a few short
paths cut across a street without a vertex there. Walkways have mixed surfaces. Storage
blocks, buildings and compounds fill the cells; supply points stand beside junctions.

Proportions follow the issue (#7): about one supply per 40 corridor edges (one every
3 km of street) and one storage block per 10 edges. Compounds are of area class ``C``
(a 400 m supply radius) or ``B`` (250 m), so most blocks are within a supply's reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

CRS = "EPSG:32648"
X0, Y0 = 500_000.0, 4_370_000.0
ROAD_EVERY = 6
WALK_SURFACES = np.array(["paving", "concrete", "soil", "lawn"], dtype=object)
WALK_SHARE = [0.5, 0.2, 0.15, 0.15]


@dataclass(frozen=True)
class CitySpec:
    """How big a city to make.

    Parameters
    ----------
    edges
        Target number of corridor edges (grid streets, before noding).
    spacing_m
        Grid street spacing.
    edges_per_supply, edges_per_block
        Proportions of supply points and storage blocks.
    seed
        Random seed; the same spec gives the same city.
    """

    edges: int
    spacing_m: float = 75.0
    edges_per_supply: float = 40.0
    edges_per_block: float = 10.0
    seed: int = 7


def _side(edges: int) -> int:
    # A grid of n x n junctions has about 2 n^2 streets; ~8 % are missing, ~5 % of
    # cells get a diagonal.
    return max(4, round(math.sqrt(edges / 1.89)))


def make_city(spec: CitySpec) -> dict[str, gpd.GeoDataFrame]:
    """Return the layers of a synthetic city (in EPSG:32648 metres), keyed by layer name."""
    rng = np.random.default_rng(spec.seed)
    n = _side(spec.edges)
    s = spec.spacing_m
    jitter = rng.uniform(-6.0, 6.0, size=(n, n, 2))
    gx, gy = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    node_xy = np.stack([X0 + gx * s, Y0 + gy * s], axis=-1) + jitter
    road_row = np.arange(n) % ROAD_EVERY == 0

    lines: list[np.ndarray] = []  # (k, m, 2) arrays of m-point lines
    surfaces: list[np.ndarray] = []
    kinds: list[np.ndarray] = []

    # Side streets: one line per grid edge, between junctions, except along road lines.
    for axis in (0, 1):
        i, j = np.meshgrid(np.arange(n - 1), np.arange(n), indexing="ij")
        i, j = i.ravel(), j.ravel()
        a = (i, j) if axis == 0 else (j, i)
        b = (i + 1, j) if axis == 0 else (j, i + 1)
        on_road = road_row[j]
        keep = ~on_road & (rng.random(len(i)) > 0.08)
        seg = np.stack([node_xy[a][keep], node_xy[b][keep]], axis=1)
        lines.append(seg)
        surfaces.append(rng.choice(WALK_SURFACES, size=len(seg), p=WALK_SHARE))
        kinds.append(np.full(len(seg), "walkway", dtype=object))

    # Roads: polylines through ROAD_EVERY junctions along every sixth row and column.
    for axis in (0, 1):
        for j in np.flatnonzero(road_row):
            for start in range(0, n - 1, ROAD_EVERY):
                stop = min(start + ROAD_EVERY, n - 1)
                idx = np.arange(start, stop + 1)
                pts = node_xy[idx, j] if axis == 0 else node_xy[j, idx]
                lines.append(pts[None, :, :])
                surfaces.append(np.array(["asphalt"], dtype=object))
                kinds.append(np.array(["road"], dtype=object))

    # Diagonal footpaths; ~1 in 5 of those cells gets the crossing diagonal too.
    ci, cj = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    ci, cj = ci.ravel(), cj.ravel()
    diag = rng.random(len(ci)) < 0.05
    both = diag & (rng.random(len(ci)) < 0.2)
    d1 = np.stack([node_xy[ci[diag], cj[diag]], node_xy[ci[diag] + 1, cj[diag] + 1]], axis=1)
    d2 = np.stack([node_xy[ci[both] + 1, cj[both]], node_xy[ci[both], cj[both] + 1]], axis=1)
    for seg in (d1, d2):
        lines.append(seg)
        surfaces.append(rng.choice(WALK_SURFACES, size=len(seg), p=WALK_SHARE))
        kinds.append(np.full(len(seg), "walkway", dtype=object))

    # Short paths across a street with no vertex where they cross it.
    cross = rng.random(len(ci)) < 0.01
    base = np.stack([X0 + ci[cross] * s, Y0 + cj[cross] * s], axis=1)
    mid = base + np.array([0.5 * s, 0.0])
    seg = np.stack([mid + np.array([3.0, -20.0]), mid + np.array([-3.0, 20.0])], axis=1)
    lines.append(seg)
    surfaces.append(rng.choice(WALK_SURFACES, size=len(seg), p=WALK_SHARE))
    kinds.append(np.full(len(seg), "walkway", dtype=object))

    geoms = np.concatenate([_linestrings(x) for x in lines])
    corridors = gpd.GeoDataFrame(
        {
            "corridor_id": [f"K{i:07d}" for i in range(len(geoms))],
            "surface": np.concatenate(surfaces),
            "kind": np.concatenate(kinds),
            "allowed": True,
        },
        geometry=geoms,
        crs=CRS,
    )

    # Storage blocks: one per chosen cell, ~12 m north of the cell's south street.
    n_blocks = min(len(ci), max(4, round(spec.edges / spec.edges_per_block)))
    cells = np.sort(rng.choice(len(ci), size=n_blocks, replace=False))
    bx, by = ci[cells], cj[cells]
    left = X0 + bx * s + 0.5 * s - 11.0
    bottom = Y0 + by * s + 13.0
    units = rng.integers(4, 25, size=n_blocks)
    length = np.minimum(3.0 * units, 0.8 * s)
    compound_side = 3
    compound_of = (bx // compound_side) * 10_000 + by // compound_side
    compound_ids = np.array([f"C{c:08d}" for c in compound_of], dtype=object)
    status = rng.choice(
        np.array(["surveyed", "applied", "planned", "energized"], dtype=object),
        size=n_blocks,
        p=[0.3, 0.55, 0.1, 0.05],
    )
    blocks = gpd.GeoDataFrame(
        {
            "block_id": [f"B{i:07d}" for i in range(n_blocks)],
            "compound_id": compound_ids,
            "units": units,
            "applicants": np.floor(units * rng.uniform(0.2, 1.0, n_blocks)).astype(int),
            "status": status,
        },
        geometry=shapely.box(left, bottom, left + length, bottom + 6.0),
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"H{i:07d}" for i in range(n_blocks)],
            "compound_id": compound_ids,
            "households": rng.integers(12, 60, size=n_blocks),
        },
        geometry=shapely.box(left - 8.0, bottom + 28.0, left + 30.0, bottom + 40.0),
        crs=CRS,
    )
    used = np.unique(compound_of)
    ux, uy = used // 10_000, used % 10_000
    compounds = gpd.GeoDataFrame(
        {
            "compound_id": [f"C{c:08d}" for c in used],
            "name": [f"Compound {c}" for c in used],
            "households": 0,
            "area_class": np.where(rng.random(len(used)) < 0.7, "C", "B"),
        },
        geometry=shapely.box(
            X0 + ux * compound_side * s + 8.0,
            Y0 + uy * compound_side * s + 8.0,
            X0 + (ux + 1) * compound_side * s - 8.0,
            Y0 + (uy + 1) * compound_side * s - 8.0,
        ),
        crs=CRS,
    )
    per_compound = buildings.groupby("compound_id")["households"].sum()
    compounds["households"] = compounds["compound_id"].map(per_compound).fillna(0).astype(int)

    # Supply points beside junctions, not on a road line.
    n_supplies = max(2, round(spec.edges / spec.edges_per_supply))
    pick = rng.choice(n * n, size=n_supplies, replace=False)
    si, sj = np.unravel_index(np.sort(pick), (n, n))
    transformer = rng.random(n_supplies) < 0.7
    capacity = np.where(transformer, rng.choice([400.0, 630.0], n_supplies), 200.0)
    supplies = gpd.GeoDataFrame(
        {
            "supply_id": [f"S{i:06d}" for i in range(n_supplies)],
            "kind": np.where(transformer, "transformer", "branch_box"),
            "capacity_kva": capacity,
            "load_kva": np.round(capacity * rng.uniform(0.3, 0.6, n_supplies), 1),
            "max_circuits": np.where(transformer, 8, 6),
        },
        geometry=shapely.points(node_xy[si, sj] + [6.0, 9.0]),
        crs=CRS,
    )

    # A few overhead feeders with spare capacity, 4 m beside a street.
    n_feeders = max(1, round(spec.edges / 4000))
    fi = rng.integers(0, max(1, n - 8), n_feeders)
    fj = rng.integers(1, n - 1, n_feeders)
    start = np.stack([X0 + fi * s, Y0 + fj * s + 4.0], axis=1)
    feeders = gpd.GeoDataFrame(
        {
            "feeder_id": [f"F{i:05d}" for i in range(n_feeders)],
            "kind": "overhead",
            "spare_kva": np.round(rng.uniform(40.0, 150.0, n_feeders), 1),
        },
        geometry=shapely.linestrings(np.stack([start, start + np.array([6 * s, 0.0])], axis=1)),
        crs=CRS,
    )

    # Flying wires from the building to the block, one for every other block.
    wired = np.flatnonzero(rng.random(n_blocks) < 0.5)
    b_xy = shapely.get_coordinates(shapely.centroid(buildings.geometry.array[wired]))
    k_xy = shapely.get_coordinates(shapely.centroid(blocks.geometry.array[wired]))
    wires = gpd.GeoDataFrame(
        {
            "wire_id": [f"W{i:07d}" for i in range(len(wired))],
            "compound_id": compound_ids[wired],
            "from_building_id": buildings["building_id"].to_numpy()[wired],
            "to_block_id": blocks["block_id"].to_numpy()[wired],
            "households": rng.integers(1, 6, len(wired)),
            "height_m": np.round(rng.uniform(2.0, 5.0, len(wired)), 1),
            "status": "present",
        },
        geometry=shapely.linestrings(np.stack([b_xy, k_xy], axis=1)),
        crs=CRS,
    )

    # Obstacles: a few small walled plots in cell corners.
    n_obstacles = max(1, round(spec.edges / 1000))
    oc = rng.choice(len(ci), size=n_obstacles, replace=False)
    ox, oy = X0 + ci[oc] * s + 0.5 * s + 12.0, Y0 + cj[oc] * s + 0.5 * s + 2.0
    obstacles = gpd.GeoDataFrame(
        {"obstacle_id": [f"O{i:05d}" for i in range(n_obstacles)], "kind": "wall"},
        geometry=shapely.box(ox, oy, ox + 15.0, oy + 10.0),
        crs=CRS,
    )
    return {
        "compounds": compounds,
        "buildings": buildings,
        "storage_blocks": blocks,
        "supply_points": supplies,
        "feeders": feeders,
        "corridors": corridors,
        "flying_wires": wires,
        "obstacles": obstacles,
    }


def _linestrings(coords: np.ndarray) -> np.ndarray:
    k, m, _ = coords.shape
    return shapely.linestrings(coords.reshape(k * m, 2), indices=np.repeat(np.arange(k), m))


def write_city(layers: dict[str, gpd.GeoDataFrame], path: str) -> None:
    """Write a city's layers into one GeoPackage (one layer each)."""
    for name, frame in layers.items():
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")


def describe(layers: dict[str, gpd.GeoDataFrame]) -> dict[str, int]:
    """Counts of the city's features, for the benchmark report."""
    return {name: len(frame) for name, frame in layers.items()} | {
        "corridor_km": int(pd.Series(layers["corridors"].length).sum() / 1000)
    }
