"""Supply assignment, cable paths and shared trenches on the routing graph.

Each meter box is fed by its own cable from one supply: a transformer, a branch box, a pole
or a tap on an existing feeder. The assignment is solved exactly as a small integer
programme (HiGHS through :func:`scipy.optimize.milp`), split into independent parts by the
low-voltage supply radius: serve as many boxes as possible, then at least cost, without
exceeding any supply's spare capacity or outgoing circuits. The cables of one supply then
share trenches along an approximate Steiner tree, so that each trench metre is dug once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from networkx.algorithms.approximation import steiner_tree
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, csgraph

from . import _fastroute
from ._graph import GraphArrays
from .network import path_geometry
from .settings import Settings

logger = logging.getLogger(__name__)

# Reasons a box is left unserved (the `unserved` layer's `reason`).
NO_PATH = "no_path"
BEYOND_RADIUS = "beyond_radius"
NO_CAPACITY = "no_capacity"
NO_CIRCUIT = "no_circuit"

_DETAILS = {
    NO_PATH: "supplies stand within the low-voltage supply radius but no trench route "
    "reaches them; add a corridor or check obstacles",
    BEYOND_RADIUS: "no supply is reached within the low-voltage supply radius; "
    "plan a new branch box or transformer nearby",
    NO_CAPACITY: "supplies in reach have no spare capacity left; upgrade a transformer",
    NO_CIRCUIT: "supplies in reach have no free outgoing circuit; add a branch box",
}
#: Every reason routing gives, sorted.
UNSERVED_REASONS = tuple(sorted(_DETAILS))


@dataclass(frozen=True)
class Routes:
    """What routing decided.

    Parameters
    ----------
    assignment
        One row per served box: box_id, supply_id, length_m, off_corridor_m,
        max_cables_in_trench, geometry (the cable route).
    trenches
        Trench sections: trench_id, supply_id, surface, off_corridor, road_crossings,
        n_cables, length_m, cost_cny, geometry.
    unserved
        box_id, reason, detail for each box that could not be served.
    trench_boxes
        trench_id, box_id: which boxes' cables each trench section carries.
    separate_trench_m
        Trench length if every cable were dug on its own (the sum of the routes).
    """

    assignment: gpd.GeoDataFrame
    trenches: gpd.GeoDataFrame
    unserved: pd.DataFrame
    trench_boxes: pd.DataFrame
    separate_trench_m: float


def supply_candidates(
    supplies: gpd.GeoDataFrame,
    feeders: gpd.GeoDataFrame,
    boxes: gpd.GeoDataFrame,
    *,
    settings: Settings,
) -> gpd.GeoDataFrame:
    """List the points new cables may start from, with what each can still carry.

    Supply points offer ``capacity × loading_limit − existing load``. An existing feeder with
    spare capacity offers one tap per compound, at the point of the feeder nearest the
    compound's boxes; a feeder's taps share its spare capacity and circuits (``group``).

    Returns
    -------
    geopandas.GeoDataFrame
        candidate_id, supply_id, kind, group, spare_kva, circuits, geometry (Point).
    """
    catalogue = settings.catalogue
    loading_limit = float(catalogue.value("supply", "loading_limit"))
    default_circuits = int(catalogue.value("supply", "default_max_circuits"))
    existing = supplies["load_kva"].fillna(0.0) if "load_kva" in supplies else 0.0
    circuits = (
        supplies["max_circuits"].fillna(default_circuits)
        if "max_circuits" in supplies
        else default_circuits
    )
    frame = gpd.GeoDataFrame(
        {
            "candidate_id": supplies["supply_id"].astype(str),
            "supply_id": supplies["supply_id"].astype(str),
            "kind": supplies["kind"].astype(str),
            "group": supplies["supply_id"].astype(str),
            "spare_kva": (supplies["capacity_kva"] * loading_limit - existing).clip(lower=0.0),
            "circuits": pd.Series(circuits, index=supplies.index).astype(int),
        },
        geometry=supplies.geometry.values,
        crs=supplies.crs,
    )
    taps = _feeder_taps(feeders, boxes, settings=settings)
    return pd.concat([frame, taps], ignore_index=True) if len(taps) else frame


def _feeder_taps(
    feeders: gpd.GeoDataFrame, boxes: gpd.GeoDataFrame, *, settings: Settings
) -> gpd.GeoDataFrame:
    columns = ["candidate_id", "supply_id", "kind", "group", "spare_kva", "circuits"]
    if not len(feeders) or not len(boxes) or "spare_kva" not in feeders:
        return gpd.GeoDataFrame(columns=[*columns, "geometry"], geometry="geometry", crs=boxes.crs)
    catalogue = settings.catalogue
    reach_m = max(catalogue.value("supply", "radius_m").values())
    circuits = int(catalogue.value("supply", "feeder_max_circuits"))
    usable = feeders[feeders["spare_kva"].fillna(0) > 0]
    centres = _centres(boxes)
    lines = usable.geometry.to_numpy()
    fi, ci = shapely.STRtree(centres.to_numpy()).query(lines, predicate="dwithin", distance=reach_m)
    if not fi.size:
        return gpd.GeoDataFrame(columns=[*columns, "geometry"], geometry="geometry", crs=boxes.crs)
    order = np.lexsort((ci, fi))
    fi, ci = fi[order], ci[order]
    at = shapely.line_locate_point(lines[fi], centres.to_numpy()[ci])
    feeder_ids = usable["feeder_id"].astype(str).to_numpy()[fi]
    names = pd.Series(feeder_ids) + "@" + centres.index.astype(str).to_numpy()[ci]
    return gpd.GeoDataFrame(
        {
            "candidate_id": names,
            "supply_id": names,
            "kind": "feeder_tap",
            "group": feeder_ids,
            "spare_kva": usable["spare_kva"].astype(float).to_numpy()[fi],
            "circuits": circuits,
        },
        geometry=shapely.line_interpolate_point(lines[fi], at),
        crs=boxes.crs,
    )


def _centres(boxes: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Return the centroid of each compound's distinct box points, by compound_id."""
    xy = shapely.get_coordinates(boxes.geometry.to_numpy())
    code, compound_ids = pd.factorize(boxes["compound_id"], sort=True)
    keyed = np.unique(np.column_stack([code, xy]), axis=0)
    points = shapely.multipoints(keyed[:, 1:], indices=keyed[:, 0].astype(np.int64))
    return gpd.GeoSeries(
        shapely.centroid(points), index=pd.Index(compound_ids, name="compound_id"), crs=boxes.crs
    )


def candidate_pairs(
    graph: nx.Graph,
    nodes: dict[str, int],
    boxes: pd.DataFrame,
    candidates: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[tuple[str, str], list[int]], dict[str, set[int]]]:
    """Find, for each supply, the cheapest route to every box within the supply radius.

    Parameters
    ----------
    graph
        The routing graph with boxes and candidates attached.
    nodes
        Node of each attached point: ``box:<box_id>`` and ``supply:<candidate_id>``.
    boxes
        box_id and radius_m (the supply radius that applies to the box).
    candidates
        candidate_id of each supply candidate.

    Returns
    -------
    pairs
        box_id, candidate_id, cost_cny (trench cost of the route), length_m, in_radius.
    paths
        The node path of each pair.
    balls
        For each candidate, the graph nodes within the largest radius (by length).
    """
    radius_by_box = dict(zip(boxes["box_id"], boxes["radius_m"], strict=True))
    box_by_node = {nodes[f"box:{b}"]: b for b in boxes["box_id"] if f"box:{b}" in nodes}
    reach_m = float(boxes["radius_m"].max()) if len(boxes) else 0.0
    rows = []
    paths: dict[tuple[str, str], list[int]] = {}
    balls: dict[str, set[int]] = {}
    for candidate_id in candidates["candidate_id"]:
        source = nodes.get(f"supply:{candidate_id}")
        if source is None:
            continue
        # Nodes within the radius by length; the cheapest route is searched inside them.
        lengths = nx.single_source_dijkstra_path_length(
            graph, source, cutoff=reach_m, weight="length_m"
        )
        ball = set(lengths)
        balls[candidate_id] = ball
        targets = [n for n in lengths if n in box_by_node]
        if not targets:
            continue
        costs, routes = nx.single_source_dijkstra(graph.subgraph(ball), source, weight="weight")
        for node in targets:
            if node not in routes:
                continue
            route = routes[node]
            length_m = sum(graph.edges[u, v]["length_m"] for u, v in nx.utils.pairwise(route))
            box_id = box_by_node[node]
            rows.append(
                {
                    "box_id": box_id,
                    "candidate_id": candidate_id,
                    "cost_cny": float(costs[node]),
                    "length_m": float(length_m),
                    "in_radius": length_m <= radius_by_box[box_id] + 1e-9,
                }
            )
            paths[box_id, candidate_id] = route
    pairs = pd.DataFrame(
        rows, columns=["box_id", "candidate_id", "cost_cny", "length_m", "in_radius"]
    )
    return pairs, paths, balls


def assign(
    pairs: pd.DataFrame,
    boxes: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    cable_cost_cny_per_m: float = 0.0,
    max_part_pairs: int | None = 4000,
    time_limit_s: float | None = None,
) -> pd.DataFrame:
    """Assign boxes to supplies: most boxes served, then least cost.

    The problem splits into independent parts (boxes linked through the supplies they
    can reach, which the LV supply radius keeps local). In a part where every box can
    take its cheapest supply without overloading one, that choice is optimal and taken
    as it is. Other parts are integer programmes solved exactly by HiGHS, one
    part per call. A part with more than ``max_part_pairs`` pairs (a city-wide web of
    overlapping supply areas) is split: only the overloaded supplies and the boxes and
    supplies around them, grown outwards until ``max_part_pairs``, are solved exactly,
    with the capacity the rest of the part leaves them; the other boxes keep their
    cheapest supply. That is exact unless an overload's effects reach farther.

    Parameters
    ----------
    pairs
        Feasible (in-radius) pairs: box_id, candidate_id, cost_cny, length_m.
    boxes
        box_id and demand_kva.
    candidates
        candidate_id, group, spare_kva, circuits. Candidates of one group share the
        group's spare capacity and circuits.
    cable_cost_cny_per_m
        Added to each pair's trench cost per metre of route, for the cable itself.
    max_part_pairs
        Largest part solved whole; ``None`` never splits a part.
    time_limit_s
        Time limit of each HiGHS call (the best solution found by then is taken).

    Returns
    -------
    pandas.DataFrame
        box_id, candidate_id for every served box, sorted by box_id.
    """
    if pairs.empty:
        return pd.DataFrame(columns=["box_id", "candidate_id"])
    group_of = dict(zip(candidates["candidate_id"], candidates["group"], strict=True))
    spare = candidates.groupby("group")["spare_kva"].first()
    circuits = candidates.groupby("group")["circuits"].first()
    demand = pd.Series(boxes["demand_kva"].to_numpy(float), index=boxes["box_id"])
    pairs = pairs.assign(group=pairs["candidate_id"].map(group_of))
    pairs = pairs.sort_values(["box_id", "candidate_id"], ignore_index=True)
    pairs["total"] = pairs["cost_cny"] + cable_cost_cny_per_m * pairs["length_m"]
    box_code, box_names = pd.factorize(pairs["box_id"], sort=True)
    group_code, group_names = pd.factorize(pairs["group"], sort=True)
    n_boxes, n_groups = len(box_names), len(group_names)
    link = coo_array(
        (np.ones(len(pairs)), (box_code, n_boxes + group_code)),
        shape=(n_boxes + n_groups, n_boxes + n_groups),
    )
    _, label = csgraph.connected_components(link, directed=False)
    part = label[box_code]

    # Each box's cheapest pair (the first of equals); where no supply is overloaded by
    # it, that is the part's optimum.
    order = np.lexsort((np.arange(len(pairs)), pairs["total"].to_numpy(), box_code))
    cheapest = order[np.r_[True, box_code[order][1:] != box_code[order][:-1]]]
    kva = pairs["box_id"].map(demand).to_numpy(float)
    pairs["kva"] = kva
    group_spare = spare.loc[group_names].to_numpy(float)
    group_circuits = circuits.loc[group_names].to_numpy(float)
    load = np.bincount(group_code[cheapest], weights=kva[cheapest], minlength=n_groups)
    used = np.bincount(group_code[cheapest], minlength=n_groups)
    over = (load > group_spare + 1e-9) | (used > group_circuits)
    bad_part = np.zeros(label.max() + 1, dtype=bool)
    bad_part[label[n_boxes + np.flatnonzero(over)]] = True
    keep = cheapest[~bad_part[part[cheapest]]]
    chosen = [pairs.loc[keep, ["box_id", "candidate_id"]]]

    bad = np.flatnonzero(bad_part[part])
    by_part = bad[np.argsort(part[bad], kind="stable")]  # parts in label order: deterministic
    starts = np.flatnonzero(np.r_[True, part[by_part][1:] != part[by_part][:-1]])
    with ThreadPoolExecutor(max_workers=2) as pool:  # HiGHS releases the GIL
        solve = _Solver(pairs, spare, circuits, time_limit_s, pool)
        pending: list[pd.DataFrame | Future[pd.DataFrame]] = []
        for rows in np.split(by_part, starts[1:]) if bad.size else []:
            if max_part_pairs is not None and len(rows) > max_part_pairs:
                pending.extend(
                    _solve_large_part(
                        pairs,
                        rows,
                        cheapest=cheapest,
                        over=over,
                        codes=(box_code, group_code),
                        solve=solve,
                        max_pairs=max_part_pairs,
                    )
                )
                continue
            # One part per call: how ties resolve must not depend on the other parts
            # (a partitioned run must give the same plan as a whole one).
            pending.append(solve(rows))
        chosen += [p if isinstance(p, pd.DataFrame) else p.result() for p in pending]
    logger.info(
        "assignment: %d parts, %d solved by the cheapest supply, %d as integer programmes",
        int(label[:n_boxes].max()) + 1 if n_boxes else 0,
        int((~bad_part).sum()),
        int(bad_part.sum()),
    )
    result = pd.concat(chosen, ignore_index=True)
    return result.sort_values("box_id", ignore_index=True)


@dataclass(frozen=True)
class _Solver:
    """Solves the assignment of some pairs' boxes exactly, with given capacities left.

    Each call builds its integer programme here and solves it on ``pool``; the answer is
    a future of the chosen pairs.
    """

    pairs: pd.DataFrame
    spare: pd.Series
    circuits: pd.Series
    time_limit_s: float | None
    pool: ThreadPoolExecutor

    def __call__(
        self,
        rows: np.ndarray,
        spare: pd.Series | None = None,
        circuits: pd.Series | None = None,
    ) -> Future[pd.DataFrame]:
        part_pairs = self.pairs.iloc[np.sort(rows)]
        programme = _PartProgramme.build(
            part_pairs,
            sorted(part_pairs["box_id"].unique()),
            spare=self.spare if spare is None else spare,
            circuits=self.circuits if circuits is None else circuits,
            time_limit_s=self.time_limit_s,
        )
        return self.pool.submit(programme.solve)


def _solve_large_part(
    pairs: pd.DataFrame,
    rows: np.ndarray,
    *,
    cheapest: np.ndarray,
    over: np.ndarray,
    codes: tuple[np.ndarray, np.ndarray],
    solve: _Solver,
    max_pairs: int,
) -> list[pd.DataFrame | Future[pd.DataFrame]]:
    """Solve a part too large to solve whole: exactly around its overloaded supplies.

    The boxes that can reach an overloaded supply are re-assigned exactly (over all their
    pairs), each cluster of them on its own, with the capacity the other boxes of the
    part leave; the other boxes keep their cheapest supply. Returns the chosen pairs:
    the kept ones, then the futures of the exact solutions.
    """
    box_code, group_code = codes
    in_part = np.zeros(len(pairs), dtype=bool)
    in_part[rows] = True
    region_boxes = np.zeros(box_code.max() + 1, dtype=bool)
    region_boxes[box_code[in_part & over[group_code]]] = True
    region_rows = np.flatnonzero(in_part & region_boxes[box_code])
    fixed = cheapest[in_part[cheapest] & ~region_boxes[box_code[cheapest]]]
    kva = pairs["kva"].iloc[fixed].to_numpy(float)
    fixed_groups = pairs["group"].iloc[fixed]
    spare = solve.spare.sub(pd.Series(kva).groupby(fixed_groups.to_numpy()).sum(), fill_value=0)
    circuits = solve.circuits.sub(fixed_groups.value_counts(), fill_value=0)
    spare, circuits = spare.clip(lower=0.0), circuits.clip(lower=0)
    n_box, n_group = box_code.max() + 1, group_code.max() + 1
    link = coo_array(
        (
            np.ones(len(region_rows)),
            (box_code[region_rows], n_box + group_code[region_rows]),
        ),
        shape=(n_box + n_group, n_box + n_group),
    )
    _, label = csgraph.connected_components(link, directed=False)
    cluster = label[box_code[region_rows]]
    order = np.argsort(cluster, kind="stable")
    starts = np.flatnonzero(np.r_[True, cluster[order][1:] != cluster[order][:-1]])
    solved: list[pd.DataFrame | Future[pd.DataFrame]] = [
        pairs.iloc[fixed][["box_id", "candidate_id"]]
    ]
    batch: list[np.ndarray] = []
    size = 0
    for members in np.split(region_rows[order], starts[1:]):
        batch.append(members)
        size += len(members)
        if size >= max_pairs:
            solved.append(solve(np.concatenate(batch), spare, circuits))
            batch, size = [], 0
    if batch:
        solved.append(solve(np.concatenate(batch), spare, circuits))
    logger.info(
        "a part of %d pairs: %d pairs in %d clusters around overloaded supplies solved exactly",
        len(rows),
        len(region_rows),
        len(starts),
    )
    return solved


@dataclass(frozen=True)
class _PartProgramme:
    """One part's integer programme: serve every box (or pay a penalty), least cost."""

    pairs: pd.DataFrame
    objective: np.ndarray
    constraints: list[LinearConstraint]
    options: dict[str, float]

    @classmethod
    def build(
        cls,
        pairs: pd.DataFrame,
        box_ids: list[str],
        *,
        spare: pd.Series,
        circuits: pd.Series,
        time_limit_s: float | None = None,
    ) -> _PartProgramme:
        """Set up the programme of ``pairs`` (box_id, candidate_id, group, total, kva)."""
        n_pairs, n_boxes = len(pairs), len(box_ids)
        box_index = {b: i for i, b in enumerate(box_ids)}
        groups = sorted(pairs["group"].unique())
        group_index = {g: i for i, g in enumerate(groups)}
        cost = pairs["total"].to_numpy()
        # Leaving a box unserved costs more than serving every box of the part.
        penalty = float(cost.sum()) + 1.0
        objective = np.concatenate([cost, np.full(n_boxes, penalty)])
        rows_box = pairs["box_id"].map(box_index).to_numpy()
        rows_group = pairs["group"].map(group_index).to_numpy()
        pair_cols = np.arange(n_pairs)
        # each box: sum of its pairs + unserved = 1
        one = coo_array(
            (
                np.ones(n_pairs + n_boxes),
                (
                    np.concatenate([rows_box, np.arange(n_boxes)]),
                    np.concatenate([pair_cols, n_pairs + np.arange(n_boxes)]),
                ),
            ),
            shape=(n_boxes, n_pairs + n_boxes),
        )
        kva = coo_array(
            (pairs["kva"].to_numpy(float), (rows_group, pair_cols)),
            shape=(len(groups), n_pairs + n_boxes),
        )
        count = coo_array(
            (np.ones(n_pairs), (rows_group, pair_cols)), shape=(len(groups), n_pairs + n_boxes)
        )
        constraints = [
            LinearConstraint(one.tocsr(), 1, 1),
            LinearConstraint(kva.tocsr(), -np.inf, spare.loc[groups].to_numpy()),
            LinearConstraint(count.tocsr(), -np.inf, circuits.loc[groups].to_numpy()),
        ]
        options = {} if time_limit_s is None else {"time_limit": time_limit_s}
        return cls(pairs, objective, constraints, options)

    def solve(self) -> pd.DataFrame:
        """Solve it with HiGHS; the chosen pairs (box_id, candidate_id)."""
        n_pairs = len(self.pairs)
        result = milp(
            self.objective,
            constraints=self.constraints,
            integrality=np.ones(len(self.objective)),
            bounds=Bounds(0, 1),
            options=self.options,
        )
        if result.x is None:  # pragma: no cover - the all-unserved solution is always feasible
            msg = f"the assignment solver failed: {result.message}"
            raise RuntimeError(msg)
        taken = np.round(result.x[:n_pairs]).astype(bool)
        return self.pairs.loc[taken, ["box_id", "candidate_id"]].reset_index(drop=True)


def explain_unserved(
    boxes: pd.DataFrame,
    pairs: pd.DataFrame,
    assigned: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    cut_off: set[str],
) -> pd.DataFrame:
    """Say why each unassigned box is unserved: no path, beyond radius, capacity, circuits.

    ``cut_off`` holds the boxes that no route joins to any of the supplies within their
    radius in a straight line (see :func:`_cut_off_boxes`).
    """
    used = assigned.merge(candidates[["candidate_id", "group"]], on="candidate_id")
    demand = pd.Series(boxes["demand_kva"].to_numpy(float), index=boxes["box_id"])
    used_kva = used["box_id"].map(demand).groupby(used["group"]).sum()
    groups = candidates.groupby("group")[["spare_kva", "circuits"]].first()
    left_kva = groups["spare_kva"] - used_kva.reindex(groups.index, fill_value=0.0)
    group_of = pd.Series(candidates["group"].to_numpy(), index=candidates["candidate_id"])

    box_ids = boxes["box_id"]
    todo = box_ids[~box_ids.isin(assigned["box_id"])]
    near = pairs.loc[pairs["in_radius"] & pairs["box_id"].isin(todo), ["box_id", "candidate_id"]]
    left = left_kva.reindex(near["candidate_id"].map(group_of)).to_numpy(float)
    fits = left >= near["box_id"].map(demand).to_numpy(float)
    in_radius = todo.isin(near["box_id"]).to_numpy()
    kva_ok = todo.isin(near["box_id"][fits]).to_numpy()
    reason = np.select(
        [todo.isin(cut_off).to_numpy(), ~in_radius, kva_ok],
        [NO_PATH, BEYOND_RADIUS, NO_CIRCUIT],
        default=NO_CAPACITY,
    )
    return pd.DataFrame(
        {"box_id": todo.to_numpy(), "reason": reason, "detail": [_DETAILS[r] for r in reason]},
        columns=["box_id", "reason", "detail"],
    )


def shared_trenches(
    graph: nx.Graph,
    nodes: dict[str, int],
    assigned: pd.DataFrame,
    *,
    paths: dict[tuple[str, str], list[int]],
    balls: dict[str, set[int]],
    radius_by_box: dict[str, float],
) -> dict[str, list[int]]:
    """Route the cables of each supply along one approximate Steiner tree.

    A cable whose route along the tree would exceed its supply radius keeps its own
    cheapest route instead.

    Returns
    -------
    dict
        The node route of each served box, from its supply to the box.
    """
    routes: dict[str, list[int]] = {}
    for candidate_id, group in assigned.groupby("candidate_id", sort=True):
        source = nodes[f"supply:{candidate_id}"]
        box_ids = sorted(group["box_id"])
        terminals = [source, *(nodes[f"box:{b}"] for b in box_ids)]
        if len(box_ids) == 1:
            routes[box_ids[0]] = paths[box_ids[0], candidate_id]
            continue
        tree = steiner_tree(
            graph.subgraph(balls[candidate_id]), terminals, weight="weight", method="mehlhorn"
        )
        for box_id in box_ids:
            route = nx.shortest_path(tree, source, nodes[f"box:{box_id}"])
            length_m = sum(graph.edges[u, v]["length_m"] for u, v in nx.utils.pairwise(route))
            if length_m > radius_by_box[box_id] + 1e-9:
                route = paths[box_id, candidate_id]
            routes[box_id] = route
    return routes


def trench_sections(
    graph: nx.Graph, routes: dict[str, list[int]], supply_of: dict[str, str]
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[tuple[int, int], int]]:
    """Merge the edges that cables run along into trench sections.

    Edges carrying the same cables on the same surface are merged into one section.

    Returns
    -------
    trenches
        trench_id, supply_id, surface, off_corridor, road_crossings, n_cables, length_m,
        cost_cny, geometry.
    trench_boxes
        trench_id, box_id: the boxes whose cables each section carries.
    n_cables
        The number of cables along each edge (keyed by sorted node pair).
    """
    cables_on: dict[tuple[int, int], list[str]] = defaultdict(list)
    for box_id in sorted(routes):
        for u, v in nx.utils.pairwise(routes[box_id]):
            cables_on[(min(u, v), max(u, v))].append(box_id)
    groups: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for edge in sorted(cables_on):
        data = graph.edges[edge]
        key = (tuple(cables_on[edge]), data["surface"], bool(data["off_corridor"]))
        groups[key].append(edge)
    rows = []
    for (cables, surface, off_corridor), edges in sorted(groups.items()):
        lines = [graph.edges[e]["geometry"] for e in edges]
        merged = shapely.line_merge(shapely.MultiLineString(lines))
        parts = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
        mids = shapely.line_interpolate_point(lines, 0.5, normalized=True)
        supplies = sorted({supply_of[c] for c in cables})
        for part in sorted(parts, key=lambda g: g.coords[0]):
            inside = shapely.dwithin(part, mids, 1e-6)
            part_edges = [e for e, keep in zip(edges, inside, strict=True) if keep]
            rows.append(
                {
                    "supply_id": ";".join(supplies),
                    "surface": surface,
                    "off_corridor": off_corridor,
                    "road_crossings": float(
                        sum(graph.edges[e].get("road_crossings", 0.0) for e in part_edges)
                    ),
                    "n_cables": len(cables),
                    "length_m": float(part.length),
                    "cost_cny": float(sum(graph.edges[e]["weight"] for e in part_edges)),
                    "geometry": part,
                    "boxes": cables,
                }
            )
    trenches = gpd.GeoDataFrame(
        rows,
        columns=[
            "supply_id",
            "surface",
            "off_corridor",
            "road_crossings",
            "n_cables",
            "length_m",
            "cost_cny",
            "geometry",
            "boxes",
        ],
        geometry="geometry",
        crs=graph.graph.get("crs"),
    )
    trenches = trenches.astype(
        {
            "off_corridor": bool,
            "road_crossings": "float64",
            "n_cables": "int64",
            "length_m": "float64",
            "cost_cny": "float64",
        }
    )
    trenches.insert(0, "trench_id", [f"TR{i:05d}" for i in range(1, len(trenches) + 1)])
    trench_boxes = (
        trenches[["trench_id", "boxes"]]
        .explode("boxes")
        .rename(columns={"boxes": "box_id"})
        .reset_index(drop=True)
    )
    trenches = trenches.drop(columns="boxes")
    return trenches, trench_boxes, {edge: len(c) for edge, c in cables_on.items()}


def _pair_rows(pairs: pd.DataFrame, assigned: pd.DataFrame) -> np.ndarray:
    """Return the row in ``pairs`` of each assigned (box_id, candidate_id), in order."""
    n = len(pairs)
    box, _ = pd.factorize(np.concatenate([pairs["box_id"], assigned["box_id"]]))
    supply, _ = pd.factorize(np.concatenate([pairs["candidate_id"], assigned["candidate_id"]]))
    key = box.astype(np.int64) * (int(supply.max(initial=0)) + 1) + supply
    index = pd.Index(key[:n])
    if not index.is_unique:
        msg = "a (box, supply) pair is among the candidate pairs more than once"
        raise ValueError(msg)
    rows = index.get_indexer(key[n:])
    if (rows < 0).any():
        msg = "a served box's (box, supply) pair is not among the candidate pairs"
        raise ValueError(msg)
    return rows.astype(np.int64)


def _separate_trench_m(pairs: pd.DataFrame, rows: np.ndarray) -> float:
    """Trench length if every served box's cable had a trench of its own.

    ``rows`` are the served pairs' rows in ``pairs`` (:func:`_pair_rows`), in box order.
    """
    return float(sum(pairs["length_m"].to_numpy()[rows].tolist()))  # added in box order


def _cut_off_boxes(
    part_of: Callable[[int], int],
    nodes: dict[str, int],
    boxes: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
) -> set[str]:
    """Return the boxes that no route joins to any supply within their radius.

    A box with supplies within its supply radius in a straight line, none of which shares
    a connected part of the graph with it, is cut off (``no_path``); a box with no supply
    that near is not (it is ``beyond_radius``). Only supplies that near count: those are
    the ones a planning area's halo holds, so a box has the same reason whether its area
    is planned alone or with the whole city. ``part_of`` gives a node's connected part.
    """
    names = pd.Index(list(nodes))
    attached = ("box:" + boxes["box_id"].astype(str)).isin(names).to_numpy()
    cand_at = np.flatnonzero(
        ("supply:" + candidates["candidate_id"].astype(str)).isin(names).to_numpy()
    )
    tree = shapely.STRtree(candidates.geometry.to_numpy()[cand_at])
    bi, cj = tree.query(
        boxes.geometry.to_numpy(),
        predicate="dwithin",
        distance=boxes["radius_m"].to_numpy(float),
    )
    box_ids = boxes["box_id"].to_numpy()
    box_part = np.array(
        [part_of(nodes[f"box:{b}"]) if a else -1 for b, a in zip(box_ids, attached, strict=True)],
        dtype=np.int64,
    )
    cand_ids = candidates["candidate_id"].to_numpy()[cand_at]
    cand_part = np.array([part_of(nodes[f"supply:{c}"]) for c in cand_ids], dtype=np.int64)
    joined = np.zeros(len(boxes), dtype=bool)
    joined[bi[box_part[bi] == cand_part[cj]]] = True
    near = np.zeros(len(boxes), dtype=bool)
    near[bi] = True
    return set(box_ids[near & ~joined].tolist())


def _parts(graph: nx.Graph) -> dict[int, int]:
    """Return the connected part of each node of the graph."""
    part: dict[int, int] = {}
    for i, nodes in enumerate(nx.connected_components(graph)):
        part.update(dict.fromkeys(nodes, i))
    return part


def route(
    graph: nx.Graph | GraphArrays,
    nodes: dict[str, int],
    boxes: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    settings: Settings,
    timings: dict[str, float] | None = None,
) -> Routes:
    """Assign every box to a supply and lay the cables and shared trenches.

    Parameters
    ----------
    graph
        The routing graph with boxes (``box:<box_id>``) and candidates
        (``supply:<candidate_id>``) attached; ``nodes`` maps those names to nodes. As
        :class:`~geoplan._graph.GraphArrays` it is routed by the compiled path
        (:mod:`geoplan._fastroute`), which gives the same routes for a city.
    nodes
        Node of each attached point.
    boxes
        box_id, compound_id, demand_kva, radius_m and point (geometry) of each box to
        serve.
    candidates
        Supply candidates from :func:`supply_candidates`.
    settings
        Run settings.
    timings
        When given, the seconds spent in each step are added to it.

    Returns
    -------
    Routes
        Served boxes with their cable routes, trench sections, and the unserved boxes.
    """
    if isinstance(graph, GraphArrays):
        return _route_arrays(graph, nodes, boxes, candidates, settings=settings, timings=timings)
    catalogue = settings.catalogue
    cheapest_cable = float(catalogue.table("cables", "types")["cost_cny_per_m"].min())
    pairs, paths, balls = candidate_pairs(graph, nodes, boxes, candidates)
    feasible = pairs[pairs["in_radius"]]
    assigned = assign(feasible, boxes, candidates, cable_cost_cny_per_m=cheapest_cable)
    cut_off = _cut_off_boxes(_parts(graph).__getitem__, nodes, boxes, candidates)
    unserved = explain_unserved(boxes, pairs, assigned, candidates, cut_off=cut_off)
    radius_by_box = dict(zip(boxes["box_id"], boxes["radius_m"], strict=True))
    routes = shared_trenches(
        graph, nodes, assigned, paths=paths, balls=balls, radius_by_box=radius_by_box
    )
    supply_of = dict(zip(assigned["box_id"], assigned["candidate_id"], strict=True))
    trenches, trench_boxes, n_cables = trench_sections(graph, routes, supply_of)
    separate_trench_m = _separate_trench_m(pairs, _pair_rows(pairs, assigned))
    rows = []
    for box_id in sorted(routes):
        route_nodes = routes[box_id]
        edges = [(min(u, v), max(u, v)) for u, v in nx.utils.pairwise(route_nodes)]
        rows.append(
            {
                "box_id": box_id,
                "supply_id": supply_of[box_id],
                "length_m": float(sum(graph.edges[e]["length_m"] for e in edges)),
                "off_corridor_m": float(
                    sum(graph.edges[e]["length_m"] for e in edges if graph.edges[e]["off_corridor"])
                ),
                "max_cables_in_trench": max((n_cables[e] for e in edges), default=1),
                "geometry": path_geometry(graph, route_nodes),
            }
        )
    assignment = gpd.GeoDataFrame(
        rows,
        columns=[
            "box_id",
            "supply_id",
            "length_m",
            "off_corridor_m",
            "max_cables_in_trench",
            "geometry",
        ],
        geometry="geometry",
        crs=graph.graph.get("crs"),
    ).astype({"length_m": "float64", "off_corridor_m": "float64", "max_cables_in_trench": "int64"})
    logger.info(
        "served %d of %d boxes; %d trench sections", len(assignment), len(boxes), len(trenches)
    )
    return Routes(assignment, trenches, unserved, trench_boxes, separate_trench_m)


class Clock:
    """Adds the seconds since its last call to ``timings[name]`` (when timings are kept).

    ``clock("snapping")`` books the time that just ended to snapping; :meth:`skip` drops
    time that a callee booked itself.
    """

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        """Book the seconds since the last call to stage ``name``."""
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now

    def skip(self) -> None:
        """Start counting afresh."""
        self.last = time.perf_counter()


def _route_arrays(
    graph: GraphArrays,
    nodes: dict[str, int],
    boxes: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    settings: Settings,
    timings: dict[str, float] | None,
) -> Routes:
    """:func:`route` on arrays, with scipy's csgraph (see :mod:`geoplan._fastroute`)."""
    clock = Clock(timings)
    catalogue = settings.catalogue
    cheapest_cable = float(catalogue.table("cables", "types")["cost_cny_per_m"].min())
    matrix = _fastroute.adjacency(graph)
    pairs, search, entries = _fastroute.candidate_pairs(graph, matrix, nodes, boxes, candidates)
    clock("candidate routes")
    feasible = pairs[pairs["in_radius"]]
    assigned = assign(feasible, boxes, candidates, cable_cost_cny_per_m=cheapest_cable)
    _, component = csgraph.connected_components(matrix, directed=False)
    cut_off = _cut_off_boxes(component.__getitem__, nodes, boxes, candidates)
    unserved = explain_unserved(boxes, pairs, assigned, candidates, cut_off=cut_off)
    clock("assignment")
    radius_by_box = dict(zip(boxes["box_id"], boxes["radius_m"], strict=True))
    served = _pair_rows(pairs, assigned)
    box_ids, route_of, route_nodes = _fastroute.steiner_routes(
        graph,
        search,
        assigned,
        end_entry=entries[served],
        radius_by_box=radius_by_box,
    )
    supply_of = dict(zip(assigned["box_id"], assigned["candidate_id"], strict=True))
    trenches, trench_boxes, step_rows, step_cables = _fastroute.trench_sections(
        graph, box_ids, route_of, route_nodes, supply_of
    )
    separate_trench_m = _separate_trench_m(pairs, served)
    n_routes = len(box_ids)
    same = route_of[1:] == route_of[:-1]
    step_route = route_of[1:][same]
    length = graph.length_m[step_rows]
    off = graph.off_corridor[step_rows]
    max_cables = np.ones(n_routes, dtype=np.int64)
    np.maximum.at(max_cables, step_route, step_cables)
    assignment = gpd.GeoDataFrame(
        {
            "box_id": box_ids,
            "supply_id": [supply_of[b] for b in box_ids],
            "length_m": np.bincount(step_route, weights=length, minlength=n_routes),
            "off_corridor_m": np.bincount(
                step_route, weights=np.where(off, length, 0.0), minlength=n_routes
            ),
            "max_cables_in_trench": max_cables,
        },
        geometry=_fastroute.route_geometry(graph, route_of, route_nodes, n_routes, step_rows),
        crs=graph.crs,
    ).astype({"length_m": "float64", "off_corridor_m": "float64", "max_cables_in_trench": "int64"})
    clock("trenches and cable routes")
    logger.info(
        "served %d of %d boxes; %d trench sections", len(assignment), len(boxes), len(trenches)
    )
    return Routes(assignment, trenches, unserved, trench_boxes, separate_trench_m)
