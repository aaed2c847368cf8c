"""Split a layer set into planning areas that can be planned apart, each with its halo.

Planning is local: a box is fed from a supply within the low-voltage supply radius ``R``
(of its compound's area class), along a route no longer than ``R``. Two compounds whose
storage blocks lie more than ``2 R`` apart (plus a slack for connectors and open-ground
lattices) can therefore share neither a supply nor a trench, and their plans do not
depend on each other. The planning areas are the connected components of "within that
distance", of "both may tap the same existing feeder" and of "a flying wire runs from
one to the other".

A component larger than ``max_blocks`` storage blocks (a contiguous city) is cut along a
fixed grid of ``tile_m`` tiles. Its parts do interact across the cuts; each supply's
capacity then goes to exactly one partition (the one holding the nearest storage block),
the others see the supply with no spare capacity and no free circuit, and the supplies
seen from more than one partition are listed as border supplies.

Each partition holds its core compounds with their storage blocks, buildings and flying
wires, plus every corridor, obstacle, building, supply and feeder within its halo
(``2 R`` and the slack); the storage blocks of other compounds in the halo become
obstacles, since they are barriers to trenches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .layers import Layers
from .settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MAX_BLOCKS = 2000
"""Components with more storage blocks than this are cut into tiles."""
DEFAULT_TILE_M = 3000.0
"""Side of the tiles that cut a large component, metres."""

# Layers that belong to one compound and go wholly to its partition.
_COMPOUND_LAYERS = ("storage_blocks", "flying_wires")
# Layers taken wherever they come within the halo.
_HALO_LAYERS = ("buildings", "corridors", "obstacles", "supply_points", "feeders")


@dataclass(frozen=True)
class Partition:
    """One planning area: its core compounds and the layer features in its halo.

    Parameters
    ----------
    partition_id
        ``P0001``, ``P0002`` ... in the order of the partitions' smallest compound id.
    compound_ids
        The core compounds, whose boxes, cables and removals this partition plans.
    frames
        The partition's layers (a plain dict, so that it pickles), in ``crs``.
    crs
        The working CRS of the layer set.
    sources
        The file each layer of the whole set was read from.
    storage_blocks
        Storage blocks of the core compounds (a size for scheduling and reports).
    """

    partition_id: str
    compound_ids: tuple[str, ...]
    frames: Mapping[str, gpd.GeoDataFrame]
    crs: pyproj.CRS
    sources: Mapping[str, str]
    storage_blocks: int

    def layers(self) -> Layers:
        """Return the partition's layers as a :class:`~geoplan.layers.Layers` to plan."""
        return Layers(
            frames=MappingProxyType(dict(self.frames)),
            crs=self.crs,
            sources=MappingProxyType(dict(self.sources)),
        )


@dataclass(frozen=True)
class Partitioning:
    """A layer set cut into partitions.

    Parameters
    ----------
    partitions
        The planning areas, in id order.
    compounds
        compound_id, partition_id of every compound.
    border_supplies
        One row per supply (or existing feeder) within reach of more than one partition:
        supply_id, kind (``supply_point`` or ``feeder``), owner_partition (which gets its
        capacity), partitions (every partition that reaches it, ``;``-separated) and
        blocks_elsewhere (storage blocks of the other partitions within reach). Empty
        when the partitions do not interact.
    reach_m
        How far from a storage block a supply may serve it (radius and slack).
    halo_m
        How far around its core compounds a partition takes in features.
    """

    partitions: tuple[Partition, ...]
    compounds: pd.DataFrame
    border_supplies: pd.DataFrame
    reach_m: float
    halo_m: float

    @property
    def interacting(self) -> bool:
        """True when some supply is within reach of more than one partition."""
        return not self.border_supplies.empty


def supply_reach_m(layers: Layers, *, settings: Settings) -> tuple[float, float]:
    """Return how far a supply and an existing feeder may be from a block they serve.

    The largest low-voltage supply radius among the compounds' area classes (the largest
    in the catalogue for a feeder, as taps are placed by it), plus the longest
    open-ground connector and the lattice margin.
    """
    catalogue = settings.catalogue
    radius_m = {str(k): float(v) for k, v in catalogue.value("supply", "radius_m").items()}
    default = str(catalogue.value("supply", "area_class"))
    compounds = layers["compounds"]
    classes = (
        compounds["area_class"].fillna(default).astype(str)
        if "area_class" in compounds
        else pd.Series([default])
    )
    largest = max(radius_m.values())
    radius = max((radius_m.get(c, largest) for c in set(classes)), default=radius_m[default])
    slack_m = float(catalogue.value("network", "max_connector_m")) + float(
        catalogue.value("network", "lattice_margin_m")
    )
    return radius + slack_m, largest + slack_m


def _footprints(layers: Layers) -> gpd.GeoSeries:
    """Each compound's convex hull of its storage blocks (its polygon when it has none)."""
    compounds = layers["compounds"]
    blocks = layers["storage_blocks"]
    ids = compounds["compound_id"].astype(str)
    hulls = (
        blocks.geometry.groupby(blocks["compound_id"].astype(str))
        .agg(lambda g: shapely.convex_hull(shapely.union_all(g.to_numpy())))
        .reindex(ids)
    )
    own = pd.Series(compounds.geometry.to_numpy(), index=ids)
    return gpd.GeoSeries(hulls.fillna(own).to_numpy(), index=ids, crs=layers.crs)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label the connected components of ``n`` nodes joined by the pairs ``(a, b)``."""
    graph = sparse.coo_array((np.ones(len(a)), (a, b)), shape=(n, n))
    return csgraph.connected_components(graph, directed=False)[1]


def _links(
    layers: Layers, footprints: gpd.GeoSeries, reach_m: float, feeder_reach_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of compounds (positions in ``footprints``) whose plans may interact.

    Returns the pairs close enough to share a supply or a trench, and the pairs that
    must stay together whatever the tiles (a flying wire from one to the other).
    """
    geoms = np.asarray(footprints.array)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="dwithin", distance=2 * reach_m)
    pairs = [np.column_stack([a, b])]
    feeders = layers["feeders"]
    if len(feeders):
        f, c = tree.query(
            np.asarray(feeders.geometry.array), predicate="dwithin", distance=feeder_reach_m
        )
        order = np.argsort(f, kind="stable")
        f, c = f[order], c[order]
        first = np.searchsorted(f, f)  # chain each feeder's compounds to the first one
        pairs.append(np.column_stack([c[first], c]))
    position = pd.Series(np.arange(len(footprints)), index=footprints.index)
    blocks = layers["storage_blocks"]
    compound_of_block = pd.Series(
        blocks["compound_id"].astype(str).to_numpy(), index=blocks["block_id"].astype(str)
    )
    wires = layers["flying_wires"]
    tied = np.zeros((0, 2), dtype=np.int64)
    if len(wires) and "to_block_id" in wires:
        to = wires["to_block_id"].astype("string").map(compound_of_block)
        ok = to.notna().to_numpy()
        frm = wires["compound_id"].astype(str).to_numpy()[ok]
        tied = np.column_stack(
            [position.loc[frm].to_numpy(), position.loc[to[ok].astype(str)].to_numpy()]
        )
    return np.concatenate(pairs), tied


def _tiles(footprints: gpd.GeoSeries, tile_m: float) -> np.ndarray:
    """Return a tile number for each compound, on a fixed grid anchored at the CRS origin."""
    xy = shapely.get_coordinates(shapely.point_on_surface(np.asarray(footprints.array)))
    cell = np.floor(xy / tile_m).astype(np.int64)
    return np.unique(cell, axis=0, return_inverse=True)[1].ravel()


def _by_partition(pairs_partition: np.ndarray, rows: np.ndarray, n: int) -> list[np.ndarray]:
    """Group row positions by partition (each group sorted and without repeats)."""
    order = np.lexsort([rows, pairs_partition])
    part, rows = pairs_partition[order], rows[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (part[1:] != part[:-1]) | (rows[1:] != rows[:-1])
    part, rows = part[keep], rows[keep]
    return np.split(rows, np.searchsorted(part, np.arange(1, n)))


def _owners(
    features: gpd.GeoSeries,
    footprints: gpd.GeoSeries,
    label: np.ndarray,
    reach_m: float,
) -> tuple[np.ndarray, list[list[int]]]:
    """Owner partition of each supply (nearest footprint) and the partitions in reach."""
    geoms = np.asarray(footprints.array)
    tree = shapely.STRtree(geoms)
    points = np.asarray(features.array)
    owner = np.zeros(len(points), dtype=np.int64)
    if len(points):
        f, c = tree.query_nearest(points, all_matches=True)
        best = pd.Series(label[c]).groupby(f).min()
        owner[best.index.to_numpy()] = best.to_numpy()
    f, c = tree.query(points, predicate="dwithin", distance=reach_m)
    seen: list[set[int]] = [set() for _ in range(len(points))]
    for i, j in zip(f.tolist(), label[c].tolist(), strict=True):
        seen[i].add(j)
    return owner, [sorted(s) for s in seen]


def partition_layers(
    layers: Layers,
    *,
    settings: Settings | None = None,
    max_blocks: int | None = DEFAULT_MAX_BLOCKS,
    tile_m: float = DEFAULT_TILE_M,
) -> Partitioning:
    """Cut a layer set into planning areas, each with the features of its halo.

    Parameters
    ----------
    layers
        Validated layers from :func:`geoplan.layers.read_layers`.
    settings
        Run settings (supply radius, connector and lattice figures); defaults if omitted.
    max_blocks
        A set of interacting compounds with more storage blocks than this is cut along a
        grid of ``tile_m`` tiles; None never cuts (partitions then never interact).
    tile_m
        Side of the cutting tiles, metres.

    Returns
    -------
    Partitioning
        The partitions, which compound went where, and the border supplies (empty when
        the partitions do not interact).
    """
    settings = settings or Settings()
    reach_m, feeder_reach_m = supply_reach_m(layers, settings=settings)
    halo_m = 2 * reach_m
    footprints = _footprints(layers)
    n = len(footprints)
    blocks = layers["storage_blocks"]
    block_counts = (
        blocks["compound_id"].astype(str).value_counts().reindex(footprints.index, fill_value=0)
    ).to_numpy()

    near, tied = _links(layers, footprints, reach_m, feeder_reach_m)
    label = _components(n, *np.concatenate([near, tied]).T)
    if max_blocks is not None:
        size = np.bincount(label, weights=block_counts, minlength=n)
        tile = _tiles(footprints, tile_m)
        a, b = near.T
        keep = (size[label[a]] <= max_blocks) | (tile[a] == tile[b])
        label = _components(n, *np.concatenate([near[keep], tied]).T)
    # Number the partitions by their smallest compound id.
    ids = footprints.index.to_numpy()
    first = pd.Series(ids).groupby(label).min().sort_values()
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[first.index.to_numpy()] = np.arange(len(first))
    label = renumber[label]
    n_parts = len(first)
    names = [f"P{i + 1:04d}" for i in range(n_parts)]

    compound_part = pd.Series(label, index=footprints.index)
    rows: dict[str, list[np.ndarray]] = {}
    for name in _COMPOUND_LAYERS:
        frame = layers[name]
        part = compound_part.loc[frame["compound_id"].astype(str)].to_numpy()
        rows[name] = _by_partition(part, np.arange(len(frame)), n_parts)
    geoms = np.asarray(footprints.array)
    for name in (*_HALO_LAYERS, "storage_blocks_halo"):
        frame = layers["storage_blocks" if name == "storage_blocks_halo" else name]
        tree = shapely.STRtree(np.asarray(frame.geometry.array))
        f, r = tree.query(geoms, predicate="dwithin", distance=halo_m)
        rows[name] = _by_partition(label[f], r, n_parts)

    supply_owner, supply_seen = _owners(
        layers["supply_points"].geometry, footprints, label, reach_m
    )
    feeder_owner, feeder_seen = _owners(
        layers["feeders"].geometry, footprints, label, feeder_reach_m
    )
    border = _border_report(
        layers,
        names=names,
        label=compound_part,
        owners={"supply_point": supply_owner, "feeder": feeder_owner},
        seen={"supply_point": supply_seen, "feeder": feeder_seen},
        reach={"supply_point": reach_m, "feeder": feeder_reach_m},
    )

    partitions = []
    for p, name in enumerate(names):
        core = tuple(sorted(ids[label == p]))
        frames = _partition_frames(
            layers,
            rows={k: v[p] for k, v in rows.items()},
            supply_owned=supply_owner == p,
            feeder_owned=feeder_owner == p,
            core=set(core),
            settings=settings,
        )
        partitions.append(
            Partition(
                partition_id=name,
                compound_ids=core,
                frames=frames,
                crs=layers.crs,
                sources=dict(layers.sources),
                storage_blocks=len(frames["storage_blocks"]),
            )
        )
    logger.info("%d compounds in %d partitions; %d border supplies", n, n_parts, len(border))
    return Partitioning(
        partitions=tuple(partitions),
        compounds=pd.DataFrame(
            {"compound_id": footprints.index.to_numpy(), "partition_id": np.array(names)[label]}
        ),
        border_supplies=border,
        reach_m=reach_m,
        halo_m=halo_m,
    )


def _partition_frames(
    layers: Layers,
    *,
    rows: Mapping[str, np.ndarray],
    supply_owned: np.ndarray,
    feeder_owned: np.ndarray,
    core: set[str],
    settings: Settings,
) -> dict[str, gpd.GeoDataFrame]:
    """Return the layers of one partition; supplies it does not own lose spare capacity."""
    frames: dict[str, gpd.GeoDataFrame] = {}
    compounds = layers["compounds"]
    frames["compounds"] = compounds[compounds["compound_id"].astype(str).isin(core)]
    for name in (*_COMPOUND_LAYERS, *_HALO_LAYERS):
        frames[name] = layers[name].iloc[rows[name]]

    supplies = frames["supply_points"].copy()
    lent = ~supply_owned[rows["supply_points"]]
    if lent.any():
        limit = max(1.0, float(settings.catalogue.value("supply", "loading_limit")))
        supplies["load_kva"] = supplies.get("load_kva", pd.Series(0.0, index=supplies.index))
        supplies.loc[lent, "load_kva"] = supplies.loc[lent, "capacity_kva"] * limit
        circuits = supplies.get("max_circuits", pd.Series(pd.NA, index=supplies.index))
        supplies["max_circuits"] = circuits.astype("Int64").mask(lent, 0)
    frames["supply_points"] = supplies
    feeders = frames["feeders"].copy()
    lent = ~feeder_owned[rows["feeders"]]
    if lent.any() and "spare_kva" in feeders:
        feeders.loc[lent, "spare_kva"] = 0.0
    frames["feeders"] = feeders

    # Storage blocks of other compounds are barriers here, like obstacles.
    blocks = layers["storage_blocks"].iloc[rows["storage_blocks_halo"]]
    others = blocks[~blocks["compound_id"].astype(str).isin(core)]
    if len(others):
        barriers = gpd.GeoDataFrame(
            {"obstacle_id": "storage_blocks:" + others["block_id"].astype(str)},
            geometry=others.geometry.to_numpy(),
            crs=layers.crs,
        )
        frames["obstacles"] = pd.concat([frames["obstacles"], barriers], ignore_index=True)
    return {k: v.reset_index(drop=True) for k, v in frames.items()}


def _border_report(
    layers: Layers,
    *,
    names: list[str],
    label: pd.Series,
    owners: Mapping[str, np.ndarray],
    seen: Mapping[str, list[list[int]]],
    reach: Mapping[str, float],
) -> pd.DataFrame:
    """List the supplies within reach of more than one partition."""
    columns = ["supply_id", "kind", "owner_partition", "partitions", "blocks_elsewhere"]
    blocks = layers["storage_blocks"]
    block_part = label.loc[blocks["compound_id"].astype(str)].to_numpy()
    block_tree = shapely.STRtree(np.asarray(blocks.geometry.array))
    records = []
    for kind, layer, id_column in (
        ("supply_point", "supply_points", "supply_id"),
        ("feeder", "feeders", "feeder_id"),
    ):
        frame = layers[layer]
        for i in [i for i, s in enumerate(seen[kind]) if len(s) > 1]:
            owner = int(owners[kind][i])
            near = block_tree.query(
                frame.geometry.iloc[i], predicate="dwithin", distance=reach[kind]
            )
            records.append(
                {
                    "supply_id": str(frame[id_column].iloc[i]),
                    "kind": kind,
                    "owner_partition": names[owner],
                    "partitions": ";".join(names[j] for j in seen[kind][i]),
                    "blocks_elsewhere": int((block_part[near] != owner).sum()),
                }
            )
    return pd.DataFrame(records, columns=columns)
