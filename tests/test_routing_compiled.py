"""The compiled routing path (arrays + scipy csgraph) against the networkx reference."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from networkx.algorithms.approximation import steiner_tree
from scipy import sparse
from scipy.sparse import csgraph
from shapely import LineString, Point, box

from benchmarks.city import CitySpec, make_city, write_city
from geoplan import _fastroute, _geometry, _localsearch, _noding, _steiner, load_settings
from geoplan import routing as reference
from geoplan._fastroute import (
    Copies,
    Search,
    adjacency,
    candidate_pairs,
    steiner_routes,
    trench_sections,
)
from geoplan._graph import GraphArrays, from_networkx, to_networkx
from geoplan.layers import read_layers
from geoplan.network import attach_arrays, attach_points, build_arrays, build_graph
from geoplan.plan import Plan, plan

CRS = "EPSG:32648"
SETTINGS = load_settings()
NO_BARRIERS = gpd.GeoSeries([], crs=CRS)


def _random_graph(seed: int, n: int = 14, drop: float = 0.1) -> nx.Graph:
    """A jittered grid with random weights (no ties), nodes 0..n*n-1, in EPSG:32648."""
    rng = np.random.default_rng(seed)
    graph = nx.Graph(crs=CRS)
    xy = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    xy = xy * 30.0 + rng.uniform(-5, 5, size=xy.shape) + [600_000.0, 4_390_000.0]
    for i, (x, y) in enumerate(xy):
        graph.add_node(i, x=float(x), y=float(y), road_crossing=False)
    for i in range(n * n):
        for j in (i + 1, i + n):
            if (j == i + 1 and j % n == 0) or j >= n * n or rng.random() < drop:
                continue
            line = LineString([xy[i], xy[j]])
            graph.add_edge(
                i,
                j,
                length_m=line.length,
                weight=line.length * rng.uniform(100, 400),
                surface="paving",
                corridor_id=f"K{i}-{j}",
                kind="walkway",
                off_corridor=bool(rng.random() < 0.1),
                road_crossings=0.0,
                geometry=line,
            )
    return graph


def _terminals(graph: nx.Graph, seed: int) -> tuple[dict[str, int], pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed + 100)
    picked = rng.choice(graph.number_of_nodes(), size=40, replace=False)
    supplies, box_nodes = picked[:4], picked[4:]
    nodes = {f"supply:S{i}": int(n) for i, n in enumerate(supplies)}
    nodes |= {f"box:B{i:02d}": int(n) for i, n in enumerate(box_nodes)}
    boxes = pd.DataFrame(
        {
            "box_id": [f"B{i:02d}" for i in range(len(box_nodes))],
            "radius_m": rng.choice([150.0, 250.0], size=len(box_nodes)),
            "demand_kva": rng.uniform(3, 20, size=len(box_nodes)),
        }
    )
    candidates = pd.DataFrame(
        {
            "candidate_id": [f"S{i}" for i in range(4)],
            "group": [f"S{i}" for i in range(4)],
            "spare_kva": [60.0, 200.0, 30.0, 200.0],
            "circuits": [3, 8, 2, 8],
        }
    )
    return nodes, boxes, candidates


@pytest.mark.parametrize("seed", range(6))
def test_candidate_routes_and_costs_match_networkx(seed: int) -> None:
    graph = _random_graph(seed)
    nodes, boxes, candidates = _terminals(graph, seed)
    want, paths, _ = reference.candidate_pairs(graph, nodes, boxes, candidates)
    arrays = from_networkx(graph)
    got, search, entries = candidate_pairs(arrays, adjacency(arrays), nodes, boxes, candidates)
    key = ["box_id", "candidate_id"]
    want = want.sort_values(key, ignore_index=True)
    order = got.sort_values(key).index
    got, entries = got.loc[order].reset_index(drop=True), entries[order]
    assert len(want) > 20
    pd.testing.assert_frame_equal(got[key], want[key])
    np.testing.assert_array_equal(got["cost_cny"], want["cost_cny"])
    np.testing.assert_allclose(got["length_m"], want["length_m"], rtol=0, atol=1e-9)
    assert (got["in_radius"] == want["in_radius"]).all()
    for (b, c), entry in zip(
        zip(got["box_id"], got["candidate_id"], strict=False), entries, strict=True
    ):
        route = [int(entry)]
        while search.pred[route[-1]] >= 0:
            route.append(int(search.pred[route[-1]]))
        assert search.copies.node[route[::-1]].tolist() == paths[b, c]


@pytest.mark.parametrize("seed", range(6))
def test_steiner_trenches_match_networkx(seed: int) -> None:
    graph = _random_graph(seed)
    nodes, boxes, candidates = _terminals(graph, seed)
    pairs, paths, balls = reference.candidate_pairs(graph, nodes, boxes, candidates)
    assigned = reference.assign(pairs[pairs["in_radius"]], boxes, candidates)
    radius = dict(zip(boxes["box_id"], boxes["radius_m"], strict=True))
    want = reference.shared_trenches(
        graph, nodes, assigned, paths=paths, balls=balls, radius_by_box=radius
    )
    arrays = from_networkx(graph)
    got_pairs, search, entries = candidate_pairs(
        arrays, adjacency(arrays), nodes, boxes, candidates
    )
    end_entry = entries[reference._pair_rows(got_pairs, assigned)]
    box_ids, route_of, route_nodes = steiner_routes(
        arrays, search, assigned, end_entry=end_entry, radius_by_box=radius
    )
    got = {b: route_nodes[route_of == i].tolist() for i, b in enumerate(box_ids)}
    assert got == want
    assert any(len(g) > 1 for g in assigned.groupby("candidate_id").groups.values())

    supply_of = dict(zip(assigned["box_id"], assigned["candidate_id"], strict=True))
    want_trenches, want_boxes, _ = reference.trench_sections(graph, want, supply_of)
    got_trenches, got_boxes, _, _ = trench_sections(
        arrays, box_ids, route_of, route_nodes, supply_of
    )
    columns = ["trench_id", "supply_id", "surface", "off_corridor", "n_cables"]
    pd.testing.assert_frame_equal(got_trenches[columns], want_trenches[columns])
    np.testing.assert_allclose(got_trenches["length_m"], want_trenches["length_m"], atol=1e-9)
    np.testing.assert_allclose(got_trenches["cost_cny"], want_trenches["cost_cny"], atol=1e-6)
    assert shapely.equals(got_trenches.geometry.array, want_trenches.geometry.array).all()
    pd.testing.assert_frame_equal(
        got_boxes.reset_index(drop=True), want_boxes.astype({"box_id": object})
    )


def test_mehlhorn_tree_matches_networkx_steiner_tree() -> None:
    for seed in range(10):
        graph = _random_graph(seed, n=10, drop=0.0)
        rng = np.random.default_rng(seed)
        terminals = [int(t) for t in rng.choice(100, size=8, replace=False)]
        tree = steiner_tree(graph, terminals, weight="weight", method="mehlhorn")
        want = sum(graph.edges[e]["weight"] for e in tree.edges)
        nodes = {"supply:S": terminals[0]} | {f"box:B{i}": t for i, t in enumerate(terminals[1:])}
        boxes = pd.DataFrame({"box_id": [f"B{i}" for i in range(7)], "radius_m": 1e6})
        arrays = from_networkx(graph)
        pairs, search, entries = candidate_pairs(
            arrays, adjacency(arrays), nodes, boxes, pd.DataFrame({"candidate_id": ["S"]})
        )
        assigned = pd.DataFrame({"box_id": pairs["box_id"], "candidate_id": "S"})
        _, route_of, route_nodes = steiner_routes(
            arrays,
            search,
            assigned,
            end_entry=entries,
            radius_by_box=dict.fromkeys(boxes["box_id"], 1e6),
        )
        same = route_of[1:] == route_of[:-1]
        edges = {
            (min(a, b), max(a, b))
            for a, b in zip(route_nodes[:-1][same], route_nodes[1:][same], strict=True)
        }
        got = sum(graph.edges[e]["weight"] for e in edges)
        assert got == pytest.approx(want, rel=1e-12), seed
        assert isinstance(search, Search)


def test_arrays_round_trip_through_networkx() -> None:
    graph = _random_graph(1, n=6)
    back = to_networkx(from_networkx(graph))
    assert sorted(back.edges) == sorted(graph.edges)
    for a, b, data in graph.edges(data=True):
        assert back.edges[a, b]["weight"] == data["weight"]
        assert back.edges[a, b]["geometry"].equals(data["geometry"])


def test_build_graph_is_the_arrays_as_networkx() -> None:
    corridors = gpd.GeoDataFrame(
        {"corridor_id": ["A", "B"], "surface": ["paving", "soil"]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(50, -50), (50, 50)])],
        crs=CRS,
    )
    arrays = build_arrays(corridors, barriers=NO_BARRIERS, settings=SETTINGS)
    graph = build_graph(corridors, barriers=NO_BARRIERS, settings=SETTINGS)
    assert isinstance(arrays, GraphArrays)
    assert arrays.n_edges == graph.number_of_edges() == 4
    assert list(graph.edges) == list(zip(arrays.u.tolist(), arrays.v.tolist(), strict=True))


@pytest.mark.parametrize("with_corridors", [True, False])
def test_attach_arrays_matches_attach_points(with_corridors: bool) -> None:
    corridors = gpd.GeoDataFrame(
        {"corridor_id": ["A", "B"], "surface": ["paving", "asphalt"], "kind": [None, "road"]},
        geometry=[LineString([(0, 0), (200, 0)]), LineString([(100, -80), (100, 80)])],
        crs=CRS,
    )
    if not with_corridors:
        corridors = corridors.iloc[:0]
    barriers = gpd.GeoSeries([box(30, 10, 60, 25)], crs=CRS)
    points = gpd.GeoDataFrame(
        {"id": ["a", "b", "c", "d", "e"]},
        geometry=[Point(45, 30), Point(150, 12), Point(100.0, 0.0), Point(10, -20), Point(75, 40)],
        crs=CRS,
    )
    arrays = build_arrays(corridors, barriers=barriers, settings=SETTINGS)
    graph, want = attach_points(to_networkx(arrays), points, barriers=barriers, settings=SETTINGS)
    got_arrays, got = attach_arrays(arrays, points, barriers=barriers, settings=SETTINGS)
    assert got == want
    edges = {
        (min(a, b), max(a, b)): (d["length_m"], d["weight"], d["surface"])
        for a, b, d in graph.edges(data=True)
    }
    got_edges = {
        (int(a), int(b)): (length, weight, surface)
        for a, b, length, weight, surface in zip(
            got_arrays.u,
            got_arrays.v,
            got_arrays.length_m,
            got_arrays.weight,
            got_arrays.surface,
            strict=True,
        )
    }
    assert got_edges.keys() == edges.keys()
    for key, (length, weight, surface) in edges.items():
        assert got_edges[key] == (pytest.approx(length), pytest.approx(weight), surface)


def _plans(path: Path) -> tuple[Plan, Plan]:
    layers = read_layers(path)
    return plan(layers, engine="networkx"), plan(layers, engine="csgraph")


def _assert_same_plan(a: Plan, b: Plan) -> None:
    assert a.stats == pytest.approx(b.stats, rel=1e-12)
    pd.testing.assert_frame_equal(
        a.cables.drop(columns="geometry"), b.cables.drop(columns="geometry"), rtol=1e-12
    )
    assert shapely.equals(a.cables.geometry.array, b.cables.geometry.array).all()
    pd.testing.assert_frame_equal(
        a.trenches.drop(columns="geometry"), b.trenches.drop(columns="geometry"), rtol=1e-12
    )
    pd.testing.assert_frame_equal(a.unserved, b.unserved)
    pd.testing.assert_frame_equal(a.summary, b.summary, rtol=1e-12)


def test_sample_district_plans_the_same_with_both_engines() -> None:
    _assert_same_plan(*_plans(Path("layers/haibowan")))


def test_synthetic_city_plans_the_same_with_both_engines(tmp_path: Path) -> None:
    path = tmp_path / "city.gpkg"
    write_city(make_city(CitySpec(2500, seed=3)), str(path))
    networkx_plan, csgraph_plan = _plans(path)
    assert networkx_plan.stats["served_boxes"] > 50
    _assert_same_plan(networkx_plan, csgraph_plan)


def _chain_instance(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Boxes along a street, each reaching the 2-3 supplies around it: one long part."""
    rng = np.random.default_rng(seed)
    n_supplies, n_boxes = 24, 220
    supply_x = np.arange(n_supplies) * 100.0
    box_x = rng.uniform(0, supply_x[-1], n_boxes)
    rows = []
    for b, x in enumerate(box_x):
        for s in np.flatnonzero(np.abs(supply_x - x) <= 150.0):
            length = abs(supply_x[s] - x) + rng.uniform(0, 20)
            rows.append((f"B{b:03d}", f"S{s:02d}", length * 200.0, length))
    pairs = pd.DataFrame(rows, columns=["box_id", "candidate_id", "cost_cny", "length_m"])
    boxes = pd.DataFrame(
        {"box_id": [f"B{b:03d}" for b in range(n_boxes)], "demand_kva": rng.uniform(4, 12, n_boxes)}
    )
    # Most supplies have room to spare; a few, far apart, are short of it.
    spare = np.where(np.isin(np.arange(n_supplies), [3, 12, 20]), 25.0, 400.0)
    candidates = pd.DataFrame(
        {
            "candidate_id": [f"S{s:02d}" for s in range(n_supplies)],
            "group": [f"S{s:02d}" for s in range(n_supplies)],
            "spare_kva": spare,
            "circuits": 12,
        }
    )
    return pairs, boxes, candidates


def _objective(chosen: pd.DataFrame, pairs: pd.DataFrame) -> tuple[int, float]:
    cost = pairs.set_index(["box_id", "candidate_id"])["cost_cny"]
    return len(chosen), float(
        cost.loc[list(zip(chosen["box_id"], chosen["candidate_id"], strict=False))].sum()
    )


def _feasible(answer: pd.DataFrame, boxes: pd.DataFrame, candidates: pd.DataFrame) -> bool:
    load = answer.merge(boxes, on="box_id").groupby("candidate_id")["demand_kva"].sum()
    count = answer.groupby("candidate_id").size()
    table = candidates.set_index("candidate_id")
    return bool(
        (load <= table["spare_kva"].loc[load.index] + 1e-9).all()
        and (count <= table["circuits"].loc[count.index]).all()
    )


@pytest.mark.parametrize("seed", range(6))
def test_partitioned_assignment_agrees_with_one_integer_programme(seed: int) -> None:
    pairs, boxes, candidates = _chain_instance(seed)
    whole = reference._PartProgramme.build(
        pairs.assign(
            group=pairs["candidate_id"],
            total=pairs["cost_cny"],
            kva=pairs["box_id"].map(boxes.set_index("box_id")["demand_kva"]),
        ),
        sorted(pairs["box_id"].unique()),
        spare=candidates.set_index("group")["spare_kva"],
        circuits=candidates.set_index("group")["circuits"],
    ).solve()
    served, cost = _objective(whole, pairs)
    # Split into parts (and the cheapest supply where nothing is overloaded): exact.
    parts = reference.assign(pairs, boxes, candidates, max_part_pairs=None)
    assert _objective(parts, pairs) == (served, pytest.approx(cost, rel=1e-6))
    assert _feasible(parts, boxes, candidates)
    # A part too large is solved exactly only around its overloaded supplies: feasible,
    # as many served, and (on these cases) within 0.5 % of the optimum.
    split = reference.assign(pairs, boxes, candidates, max_part_pairs=60)
    split_served, split_cost = _objective(split, pairs)
    assert _feasible(split, boxes, candidates)
    assert split_served == served
    assert cost - 1e-6 <= split_cost <= cost * 1.005


def test_assignment_takes_the_cheapest_supply_where_nothing_is_overloaded() -> None:
    pairs, boxes, candidates = _chain_instance(0)
    roomy = candidates.assign(spare_kva=1e6, circuits=1000)
    chosen = reference.assign(pairs, boxes, roomy)
    cheapest = pairs.loc[pairs.groupby("box_id")["cost_cny"].idxmin(), ["box_id", "candidate_id"]]
    pd.testing.assert_frame_equal(chosen, cheapest.sort_values("box_id", ignore_index=True))


@pytest.mark.parametrize("noding", ["by contacts", "in strips"])
def test_city_scale_batching_gives_the_same_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noding: str
) -> None:
    """Noding by contacts or in strips, and work on two threads, change nothing.

    At city scale lines are split at the vertices where others meet them and only the
    rest noded by GEOS (or, when many lines need GEOS, all of them in vertical strips),
    and large element-wise shapely calls, tree queries and the supplies' searches run in
    two halves on two threads; a small city made to take those paths must give exactly
    the plan of one pass.
    """
    path = tmp_path / "city.gpkg"
    write_city(make_city(CitySpec(2500, seed=5)), str(path))
    layers = read_layers(path)
    whole = plan(layers, engine="csgraph")
    monkeypatch.setattr(_noding, "_CONTACT_MIN_LINES", 0)
    if noding == "in strips":
        monkeypatch.setattr(_noding, "_STRIP_LINES", 100)
    monkeypatch.setattr(_localsearch, "_SPLIT_MIN", 2)
    monkeypatch.setattr(_steiner, "_SPLIT_MIN", 2)
    monkeypatch.setattr(_geometry, "_THREADED_MIN", 2)
    batched = plan(layers, engine="csgraph")
    assert len(whole.layers["corridors"]) > 8 * 100  # several strips
    assert whole.stats == batched.stats
    for name in ("meter_boxes", "cables", "trenches", "unserved"):
        a, b = getattr(whole, name), getattr(batched, name)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert list(shapely.to_wkb(a.geometry.array)) == list(shapely.to_wkb(b.geometry.array))


@pytest.mark.parametrize("scale", [1, 10**6])  # 10**6: positions ranked in several passes
@pytest.mark.parametrize("seed", range(4))
def test_cable_groups_number_keys_in_python_sort_order(seed: int, scale: int) -> None:
    """Edges' (cables, surface, off corridor) keys: grouped and ordered as sorted() orders
    them, prefixes (a cable tuple that begins a longer one) and repeats included."""
    rng = np.random.default_rng(seed)
    n = 400
    stems = [sorted(rng.choice(30, size=rng.integers(1, 6), replace=False)) for _ in range(40)]
    cable_sets = []
    for _ in range(n):
        stem = stems[rng.integers(len(stems))]
        cut = int(rng.integers(1, len(stem) + 1))  # often a prefix of another edge's set
        cable_sets.append(tuple(int(c) * scale for c in stem[:cut]))
    surface = rng.choice(np.array(["soil", "asphalt", "open"], dtype=object), size=n)
    off = rng.random(n) < 0.2
    count = np.array([len(c) for c in cable_sets])
    start = np.cumsum(count) - count
    cables = np.concatenate([np.array(c) for c in cable_sets])

    group, rep = _fastroute._cable_groups(cables, start, count, surface, off)

    keys = list(zip(cable_sets, surface.tolist(), off.tolist(), strict=True))
    want = {k: i for i, k in enumerate(sorted(set(keys)))}
    assert group.tolist() == [want[k] for k in keys]
    assert [keys[e] for e in rep] == sorted(set(keys))


def _balls(seed: int) -> tuple[Copies, np.ndarray, np.ndarray]:
    """Copies of a random graph's balls around 12 supplies; weights; random terminals."""
    graph = _random_graph(seed, n=20)
    arrays = from_networkx(graph)
    rng = np.random.default_rng(seed)
    sources = rng.choice(arrays.n_nodes, size=12, replace=False)
    balls = _localsearch.search_balls(
        adjacency(arrays), arrays.length_m, arrays.weight, sources, 200.0
    )
    copies = balls.copies
    terminal = rng.random(copies.size) < 0.1
    terminal[copies.source] = True
    return copies, arrays.weight, terminal


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_voronoi_regions_match_scipy(
    monkeypatch: pytest.MonkeyPatch, seed: int, *, split: bool
) -> None:
    """The compiled regions (one block after another, two halves on two threads) are
    scipy's multi-source Dijkstra's, bridges and predecessor edges included."""
    if split:
        monkeypatch.setattr(_steiner, "_SPLIT_MIN", 2)
    copies, weight, terminal = _balls(seed)
    got = _steiner.regions(copies, weight, terminal)
    want = _fastroute._regions_by_scipy(copies, weight, terminal)
    assert got is not None
    assert len(got.bridge) > 20
    for name in ("dist", "pred", "owner", "pred_edge", "bridge"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def _one_block(edges: list[tuple[int, int, float]], n: int, terminals: list[int]) -> tuple:
    """Copies of one block of ``n`` entries with ``edges`` (a, b, weight); terminal mask."""
    a = np.array([e[0] for e in edges] + [e[1] for e in edges])
    b = np.array([e[1] for e in edges] + [e[0] for e in edges])
    row = np.tile(np.arange(len(edges)), 2)
    order = np.lexsort((b, a))
    copies = Copies(
        node=np.arange(n),
        block=np.zeros(n, dtype=np.int64),
        first=np.array([0, n]),
        source=np.array([terminals[0]]),
        ea=a[order],
        eb=b[order],
        row=row[order],
    )
    terminal = np.isin(np.arange(n), terminals)
    return copies, np.array([e[2] for e in edges]), terminal


def test_voronoi_regions_decline_ties_only_where_the_order_decides() -> None:
    # 3 is as far from 0 through 1 (1 + 2) as through 2 (2 + 1): 1 is settled first,
    # in any order of the heap, so its predecessor is 1, as scipy's.
    copies, weight, terminal = _one_block(
        [(0, 1, 1.0), (0, 2, 2.0), (1, 3, 2.0), (2, 3, 1.0)], 4, [0]
    )
    got = _steiner.regions(copies, weight, terminal)
    want = _fastroute._regions_by_scipy(copies, weight, terminal)
    assert got is not None
    assert got.pred.tolist() == want.pred.tolist() == [-9999, 0, 0, 1]
    # Through 1 and through 2 alike (both 1 from 0): the heap's order would decide.
    copies, weight, terminal = _one_block(
        [(0, 1, 1.0), (0, 2, 1.0), (1, 3, 1.0), (2, 3, 1.0)], 4, [0]
    )
    assert _steiner.regions(copies, weight, terminal) is None
    # Two terminals equally far from 1: whose region it joins is the heap's order too.
    copies, weight, terminal = _one_block([(0, 1, 1.0), (1, 2, 1.0)], 3, [0, 2])
    assert _steiner.regions(copies, weight, terminal) is None


def test_tree_walk_matches_scipy_and_sums_from_the_root() -> None:
    rng = np.random.default_rng(7)
    n = 300
    block = np.arange(n)[:, None] // 100 == np.arange(n)[None, :] // 100  # three blocks
    dense = rng.uniform(1, 2, size=(n, n)) * (rng.random((n, n)) < 0.05) * block
    tree = sparse.coo_array(csgraph.minimum_spanning_tree(sparse.csr_array(dense)))
    tu, tv = tree.row.astype(np.int64), tree.col.astype(np.int64)
    length = rng.uniform(1, 50, size=len(tu))
    sources = np.array([0, 117])  # one per tree; the third block's trees have none
    parent, total = _steiner.tree_walk(n, tu, tv, step=length, sources=sources)
    graph = sparse.csr_array((np.ones(len(tu)), (tu, tv)), shape=(n, n))
    want = csgraph.dijkstra(
        graph, directed=False, indices=sources, min_only=True, return_predecessors=True
    )[1]
    assert parent.tolist() == want.tolist()
    step = {(min(a, b), max(a, b)): x for a, b, x in zip(tu, tv, length, strict=True)}
    for v in rng.choice(n, size=40, replace=False):
        path = [int(v)]
        while parent[path[-1]] >= 0:
            path.append(int(parent[path[-1]]))
        expected = 0.0
        for a, b in zip(path[::-1], path[-2::-1], strict=False):
            expected += step[min(a, b), max(a, b)]
        assert total[v] == expected


def test_merging_parts_is_line_merge_of_each_part() -> None:
    """Parts of one plain line are kept as they are: as GEOS merges them (its direction
    kept even where the end sorts first); others, and odd lines, are merged by GEOS."""
    rng = np.random.default_rng(3)
    lines, part = [], []
    for k in range(30):  # chains of 1-4 pieces of a random walk, pieces shuffled
        walk_xy = np.cumsum(rng.uniform(-10, 10, size=(int(rng.integers(1, 5)) * 2 + 1, 2)), 0)
        pieces = [walk_xy[i : i + 3] for i in range(0, len(walk_xy) - 2, 2)]
        lines += [LineString(pieces[i]) for i in rng.permutation(len(pieces))]
        part += [k] * len(pieces)
    lines += [
        LineString([(5, 5), (3, 4), (1, 0)]),  # ends before it begins, by coordinates
        LineString([(0, 0), (0, 0), (1, 1)]),  # a point repeated
        LineString([(0, 0), (1, 1), (1, 0), (0, 0)]),  # closed
        LineString([(0, 0, 1), (1, 1, 2)]),  # 3D
        LineString([(2, 2), (3, 3)]),
        LineString([(3, 3), (4, 2)]),  # joins the one before
    ]
    part += [30, 31, 32, 33, 34, 34]
    order = rng.permutation(len(lines))
    lines, part = np.array(lines, dtype=object)[order], np.array(part)[order]
    n_parts = int(part.max()) + 1
    merged, first_xy = _fastroute._merge_parts(lines, part, n_parts)
    order = np.argsort(part, kind="stable")
    want = shapely.line_merge(shapely.multilinestrings(lines[order], indices=part[order]))
    assert list(shapely.to_wkb(merged)) == list(shapely.to_wkb(want))
    np.testing.assert_array_equal(first_xy, shapely.get_coordinates(shapely.get_point(want, 0)))


@pytest.mark.parametrize("high", [50, 2**31])  # 2**31: the widest keys one int64 holds
def test_lexsort2_is_numpys_lexsort(high: int) -> None:
    rng = np.random.default_rng(high)
    minor = rng.integers(0, high, size=2000)
    minor[1] = high - 1
    widest = _geometry._KEY_LIMIT // high - 1  # the largest major sorted by one key
    major = rng.integers(0, 40, size=2000) * (widest // 40)
    major[1] = widest
    minor[::7] = minor[2]  # ties, kept in order
    major[::7] = major[2]
    want = np.lexsort((minor, major))
    np.testing.assert_array_equal(_geometry._lexsort2(minor, major), want)


def test_the_served_pairs_rows_are_found_in_the_assigned_order_or_refused() -> None:
    """Each route starts from its pair's search entry: a wrong row is a wrong route."""
    pairs = pd.DataFrame(
        {"box_id": ["B1", "B1", "B2", "B3", "B2"], "candidate_id": ["S1", "S2", "S1", "S2", "S2"]}
    )
    assigned = pd.DataFrame({"box_id": ["B1", "B2", "B3"], "candidate_id": ["S2", "S1", "S2"]})
    assert reference._pair_rows(pairs, assigned).tolist() == [1, 2, 3]
    assert reference._pair_rows(pairs, assigned.iloc[:0]).tolist() == []
    with pytest.raises(ValueError, match="not among the candidate pairs"):
        reference._pair_rows(pairs, pd.DataFrame({"box_id": ["B3"], "candidate_id": ["S1"]}))
    with pytest.raises(ValueError, match="more than once"):
        reference._pair_rows(pd.concat([pairs, pairs.iloc[:1]]), assigned)
