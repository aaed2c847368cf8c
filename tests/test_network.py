"""Tests for geoplan.network: noding, costs, road crossings, snapping, open ground."""

from __future__ import annotations

import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely import LineString, Point, box

from geoplan import load_settings
from geoplan.errors import CRSError, LayerError
from geoplan.network import attach_points, build_graph, path_geometry

CRS = "EPSG:32648"
X, Y = 600_000.0, 4_390_000.0
SETTINGS = load_settings()
SOIL = SETTINGS.catalogue.value("trench", "cost_cny_per_m")["soil"]
OPEN = SETTINGS.catalogue.value("trench", "open_ground_cost_cny_per_m")
CROSSING = SETTINGS.catalogue.value("trench", "road_crossing_cny")


def line(*xy: tuple[float, float]) -> LineString:
    return LineString([(X + x, Y + y) for x, y in xy])


def corridors(*rows: dict[str, object]) -> gpd.GeoDataFrame:
    records = [
        {"corridor_id": f"c{i}", "surface": "soil", "kind": "walkway", **row}
        for i, row in enumerate(rows)
    ]
    geometry = [r.pop("geometry") for r in records]
    return gpd.GeoDataFrame(records, geometry=geometry, crs=CRS)


def barriers(*polygons: shapely.Polygon) -> gpd.GeoSeries:
    return gpd.GeoSeries(list(polygons), crs=CRS)


def points(**xy: tuple[float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": list(xy)}, geometry=[Point(X + x, Y + y) for x, y in xy.values()], crs=CRS
    )


def rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return box(X + x0, Y + y0, X + x1, Y + y1)


def node_at(graph: nx.Graph, x: float, y: float) -> int:
    found = [
        n for n, d in graph.nodes(data=True) if math.hypot(d["x"] - X - x, d["y"] - Y - y) < 1e-6
    ]
    assert len(found) == 1, f"expected one node at ({x}, {y}), found {found}"
    return found[0]


def route(graph: nx.Graph, a: int, b: int) -> tuple[list[int], float]:
    path = nx.shortest_path(graph, a, b, weight="weight")
    return path, sum(graph.edges[e]["length_m"] for e in nx.utils.pairwise(path))


NONE = barriers()


# ------------------------------------------------------------------------------- noding


def test_x_crossing_without_shared_vertex_is_noded() -> None:
    layer = corridors(
        {"geometry": line((0, 0), (100, 100))}, {"geometry": line((0, 100), (100, 0))}
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    assert graph.number_of_nodes() == 5
    assert graph.number_of_edges() == 4
    middle = node_at(graph, 50, 50)
    assert graph.degree(middle) == 4
    path, length = route(graph, node_at(graph, 0, 0), node_at(graph, 0, 100))
    assert path[1] == middle
    assert length == pytest.approx(2 * math.hypot(50, 50))


def test_near_miss_t_is_joined_but_a_wide_gap_is_not() -> None:
    through = {"geometry": line((0, 0), (100, 0))}
    near = build_graph(
        corridors(through, {"geometry": line((50, 0.3), (50, 50))}),
        barriers=NONE,
        settings=SETTINGS,
    )
    _, length = route(near, node_at(near, 50, 50), node_at(near, 100, 0))
    assert length == pytest.approx(49.7 + 0.3 + 50)  # the stem and its 0.3 m extension
    assert near.degree(node_at(near, 50, 0)) == 3

    far = build_graph(
        corridors(through, {"geometry": line((50, 5), (50, 50))}), barriers=NONE, settings=SETTINGS
    )
    assert not nx.has_path(far, node_at(far, 50, 50), node_at(far, 100, 0))


def test_ends_short_of_each_other_are_joined() -> None:
    layer = corridors({"geometry": line((0, 0), (50, 0))}, {"geometry": line((50.4, 0), (100, 0))})
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    assert nx.is_connected(graph)
    _, length = route(graph, node_at(graph, 0, 0), node_at(graph, 100, 0))
    assert length == pytest.approx(100, abs=0.5)


def test_a_line_whose_ends_are_joined_into_one_point_takes_no_other_lines_attributes() -> None:
    # c1 is shorter than the tolerance and both its ends join c0's end: it vanishes. Its
    # lawn sorts before c0's asphalt, so a dropped row would shift c0 onto c1's attributes.
    layer = corridors(
        {"geometry": line((0, 0), (10, 0)), "surface": "asphalt"},
        {"geometry": line((10.1, 0), (10.2, 0)), "surface": "lawn"},
        {"geometry": line((10, 0), (10, 10))},
        {"geometry": line((10, 10), (20, 10))},
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    asphalt = SETTINGS.catalogue.value("trench", "cost_cny_per_m")["asphalt"]
    edges = {d["corridor_id"]: d for *_, d in graph.edges(data=True)}
    assert sorted(edges) == ["c0", "c2", "c3"]
    assert edges["c0"]["surface"] == "asphalt"
    assert edges["c0"]["weight"] == pytest.approx(10 * asphalt)
    assert edges["c0"]["length_m"] == pytest.approx(10)


def test_parallel_edges_are_kept_by_splitting_the_dearer_one() -> None:
    layer = corridors(
        {"geometry": line((0, 0), (100, 0)), "surface": "asphalt"},
        {"geometry": line((0, 0), (50, 20), (100, 0)), "surface": "soil"},
        {"geometry": line((200, 0), (220, 0), (220, 20), (200, 0))},  # a closed loop
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    total = sum(layer.length)
    assert sum(d["length_m"] for *_, d in graph.edges(data=True)) == pytest.approx(total)
    a, b = node_at(graph, 0, 0), node_at(graph, 100, 0)
    cheap = graph.edges[a, b]  # soil is cheaper than asphalt: it keeps the direct edge
    assert cheap["surface"] == "soil"
    assert cheap["length_m"] == pytest.approx(2 * math.hypot(50, 20))
    assert node_at(graph, 50, 0) in graph
    loop = [e for e in graph.edges(data=True) if e[2]["corridor_id"] == "c2"]
    assert len(loop) == 3


def test_edges_are_oriented_from_lower_to_higher_node() -> None:
    layer = corridors(
        {"geometry": line((100, 100), (0, 0))}, {"geometry": line((0, 100), (100, 0))}
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    for u, v, data in graph.edges(data=True):
        assert u < v
        start, end = data["geometry"].coords[0], data["geometry"].coords[-1]
        assert start == (graph.nodes[u]["x"], graph.nodes[u]["y"])
        assert end == (graph.nodes[v]["x"], graph.nodes[v]["y"])


# -------------------------------------------------------------------------------- costs


def test_edge_weight_is_length_times_the_catalogue_surface_cost() -> None:
    layer = corridors({"geometry": line((0, 0), (100, 0))})
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    (_, _, data), *_ = graph.edges(data=True)
    assert data["weight"] == pytest.approx(100 * SOIL)
    assert (data["surface"], data["corridor_id"], data["off_corridor"]) == ("soil", "c0", False)

    dearer = load_settings(overrides={"trench": {"cost_cny_per_m": {"soil": SOIL * 3}}})
    graph = build_graph(layer, barriers=NONE, settings=dearer)
    (_, _, data), *_ = graph.edges(data=True)
    assert data["weight"] == pytest.approx(300 * SOIL)


def test_unknown_surface_is_refused() -> None:
    layer = corridors({"geometry": line((0, 0), (100, 0)), "surface": "gravel"})
    with pytest.raises(LayerError, match="gravel"):
        build_graph(layer, barriers=NONE, settings=SETTINGS)


def test_road_crossing_via_walkways_pays_one_crossing() -> None:
    layer = corridors(
        {"geometry": line((50, -50), (50, 50)), "kind": "road", "surface": "asphalt"},
        {"geometry": line((0, 0), (100, 0))},
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    path = nx.shortest_path(graph, node_at(graph, 0, 0), node_at(graph, 100, 0), weight="weight")
    edges = [graph.edges[e] for e in nx.utils.pairwise(path)]
    assert sum(e["road_crossings"] for e in edges) == pytest.approx(1.0)
    assert sum(e["weight"] for e in edges) == pytest.approx(100 * SOIL + CROSSING)
    along = nx.shortest_path(graph, node_at(graph, 50, -50), node_at(graph, 50, 50))
    assert sum(graph.edges[e]["road_crossings"] for e in nx.utils.pairwise(along)) == 0

    # Splitting a walkway next to the crossing keeps the charge on the half at the road.
    out, nodes = attach_points(
        graph, points(a=(20, 3), b=(80, -3)), barriers=NONE, settings=SETTINGS
    )
    path = nx.shortest_path(out, nodes["a"], nodes["b"], weight="weight")
    edges = [out.edges[e] for e in nx.utils.pairwise(path)]
    assert sum(e["road_crossings"] for e in edges) == pytest.approx(1.0)
    assert sum(e["weight"] for e in edges) == pytest.approx(60 * SOIL + 6 * OPEN + CROSSING)


def test_walkway_ending_at_a_road_pays_no_crossing() -> None:
    layer = corridors(
        {"geometry": line((50, -50), (50, 50)), "kind": "road", "surface": "asphalt"},
        {"geometry": line((0, 0), (50, 0))},
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    assert all(d["road_crossings"] == 0 for *_, d in graph.edges(data=True))


# ----------------------------------------------------------------------------- barriers


def test_obstacle_across_a_corridor_removes_passage() -> None:
    layer = corridors({"geometry": line((0, 0), (100, 0))})
    graph = build_graph(layer, barriers=barriers(rect(40, -5, 60, 5)), settings=SETTINGS)
    assert not nx.has_path(graph, node_at(graph, 0, 0), node_at(graph, 100, 0))
    assert sorted(d["length_m"] for *_, d in graph.edges(data=True)) == pytest.approx([40, 40])


def test_disallowed_corridor_is_not_used() -> None:
    layer = corridors(
        {"geometry": line((0, 0), (100, 0)), "allowed": False},
        {"geometry": line((0, 0), (0, 30), (100, 30), (100, 0)), "allowed": True},
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    _, length = route(graph, node_at(graph, 0, 0), node_at(graph, 100, 0))
    assert length == pytest.approx(160)
    assert {d["corridor_id"] for *_, d in graph.edges(data=True)} == {"c1"}


def test_empty_corridors_give_an_empty_graph_with_a_crs() -> None:
    empty = gpd.GeoDataFrame({"corridor_id": [], "surface": []}, geometry=[], crs=CRS)
    graph = build_graph(empty, barriers=NONE, settings=SETTINGS)
    assert graph.number_of_nodes() == 0
    assert graph.graph["crs"].equals(CRS)


def test_layers_without_a_projected_crs_are_refused() -> None:
    layer = corridors({"geometry": line((0, 0), (100, 0))}).set_crs(None, allow_override=True)
    with pytest.raises(CRSError):
        build_graph(layer, barriers=NONE, settings=SETTINGS)
    graph = build_graph(
        corridors({"geometry": line((0, 0), (100, 0))}), barriers=NONE, settings=SETTINGS
    )
    with pytest.raises(CRSError):
        attach_points(graph, points(a=(1, 1)).to_crs(4326), barriers=NONE, settings=SETTINGS)


# ------------------------------------------------------------------------ attach points


def test_attach_splits_the_nearest_edge_at_the_projected_point() -> None:
    graph = build_graph(
        corridors({"geometry": line((0, 0), (100, 0))}), barriers=NONE, settings=SETTINGS
    )
    before = nx.to_dict_of_dicts(graph)
    layer = points(a=(30, 10), b=(70, -5), c=(70, 8), d=(105, 0))
    out, nodes = attach_points(graph, layer, barriers=NONE, settings=SETTINGS)
    assert nx.to_dict_of_dicts(graph) == before  # the input graph is untouched
    assert set(nodes) == {"a", "b", "c", "d"}
    assert len(set(nodes.values())) == 4
    (beyond_the_end,) = out[nodes["d"]]  # projects onto the end node: nothing to split
    assert beyond_the_end == node_at(out, 100, 0)
    assert out.edges[nodes["d"], beyond_the_end]["length_m"] == pytest.approx(5)
    corridor = [d for *_, d in out.edges(data=True) if not d["off_corridor"]]
    assert len(corridor) == 3  # split at x = 30 and x = 70 (b and c share that cut)
    assert sum(d["length_m"] for d in corridor) == pytest.approx(100)
    assert sum(d["weight"] for d in corridor) == pytest.approx(100 * SOIL)
    cut = node_at(out, 30, 0)
    assert cut not in graph
    for name, distance in (("a", 10), ("b", 5), ("c", 8)):
        (neighbour,) = out[nodes[name]]
        connector = out.edges[nodes[name], neighbour]
        assert connector["length_m"] == pytest.approx(distance)
        assert connector["weight"] == pytest.approx(distance * OPEN)
        assert connector["off_corridor"]
        assert connector["surface"] == "open"
        assert out.nodes[neighbour]["y"] == pytest.approx(Y)
    _, length = route(out, nodes["a"], nodes["b"])
    assert length == pytest.approx(10 + 40 + 5)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.5, 99.5), st.floats(-40, 40).filter(lambda v: abs(v) > 0.01)),
        min_size=1,
        max_size=8,
    )
)
def test_many_points_on_one_edge_split_it_consistently(xy: list[tuple[float, float]]) -> None:
    graph = build_graph(
        corridors({"geometry": line((0, 0), (60, 20), (100, 0))}), barriers=NONE, settings=SETTINGS
    )
    original = next(iter(graph.edges(data=True)))[2]["geometry"]
    layer = points(**{f"p{i}": p for i, p in enumerate(xy)})
    out, nodes = attach_points(graph, layer, barriers=NONE, settings=SETTINGS)
    assert len(nodes) == len(xy)
    corridor = [d for *_, d in out.edges(data=True) if not d["off_corridor"]]
    assert sum(d["length_m"] for d in corridor) == pytest.approx(original.length)
    assert sum(d["weight"] for d in corridor) == pytest.approx(original.length * SOIL)
    for d in corridor:
        assert d["geometry"].length == pytest.approx(d["length_m"])
    for name, geometry in zip(layer["id"], layer.geometry, strict=True):
        (neighbour,) = out[nodes[name]]
        expected = geometry.distance(original)
        assert out.edges[nodes[name], neighbour]["length_m"] == pytest.approx(expected, abs=1e-6)


def test_blocked_connector_takes_the_next_nearest_edge() -> None:
    layer = corridors(
        {"geometry": line((0, 10), (100, 10))}, {"geometry": line((0, -20), (100, -20))}
    )
    walls = barriers(rect(40, 2, 60, 8))
    graph = build_graph(layer, barriers=walls, settings=SETTINGS)
    out, nodes = attach_points(graph, points(a=(50, 0)), barriers=walls, settings=SETTINGS)
    (neighbour,) = out[nodes["a"]]
    assert out.nodes[neighbour]["y"] == pytest.approx(Y - 20)
    assert out.edges[nodes["a"], neighbour]["length_m"] == pytest.approx(20)


def test_blocked_connector_falls_back_to_the_open_ground_lattice() -> None:
    layer = corridors({"geometry": line((0, 10), (100, 10))})
    building = rect(30, 2, 70, 8)
    walls = barriers(building)
    graph = build_graph(layer, barriers=walls, settings=SETTINGS)
    out, nodes = attach_points(graph, points(a=(50, 0)), barriers=walls, settings=SETTINGS)
    path = nx.shortest_path(out, nodes["a"], node_at(out, 100, 10), weight="weight")
    geometry = path_geometry(out, path)
    assert shapely.relate_pattern(geometry, building, "F********")
    assert any(out.nodes[n].get("lattice") for n in path)
    assert all(out.edges[e]["off_corridor"] for e in nx.utils.pairwise(path[:3]))


def test_point_inside_its_own_block_still_attaches() -> None:
    layer = corridors({"geometry": line((0, 10), (100, 10))})
    block = rect(40, 2, 60, 8)
    walls = barriers(block, rect(70, 2, 90, 8))
    graph = build_graph(layer, barriers=walls, settings=SETTINGS)
    out, nodes = attach_points(graph, points(box=(50, 5)), barriers=walls, settings=SETTINGS)
    (neighbour,) = out[nodes["box"]]
    assert out.edges[nodes["box"], neighbour]["length_m"] == pytest.approx(5)


# --------------------------------------------------------------------------- open ground


def test_without_corridors_points_connect_around_a_building() -> None:
    empty = gpd.GeoDataFrame({"corridor_id": [], "surface": []}, geometry=[], crs=CRS)
    building = rect(-10, -10, 10, 10)
    walls = barriers(building)
    graph = build_graph(empty, barriers=walls, settings=SETTINGS)
    yard = rect(25, -5, 35, 5)
    out, nodes = attach_points(
        graph,
        points(w=(-15, 0), e=(15, 0), in_yard=(30, 0)),
        barriers=barriers(building, yard),
        settings=SETTINGS,
    )
    assert set(nodes) == {"w", "e", "in_yard"}
    assert nx.has_path(out, nodes["w"], nodes["in_yard"])
    path = nx.shortest_path(out, nodes["w"], nodes["e"], weight="weight")
    geometry = path_geometry(out, path)
    assert shapely.relate_pattern(geometry, building, "F********")
    assert geometry.length > 30
    assert all(d["surface"] == "open" for *_, d in out.edges(data=True))


def test_a_point_enclosed_by_barriers_gets_no_node() -> None:
    empty = gpd.GeoDataFrame({"corridor_id": [], "surface": []}, geometry=[], crs=CRS)
    ring = [rect(0, 0, 40, 6), rect(34, 0, 40, 40), rect(0, 34, 40, 40), rect(0, 0, 6, 40)]
    walls = barriers(*ring)
    graph = build_graph(empty, barriers=walls, settings=SETTINGS)
    layer = points(inside=(20, 20), a=(-10, 20), b=(50, 20))
    out, nodes = attach_points(graph, layer, barriers=walls, settings=SETTINGS)
    assert set(nodes) == {"a", "b"}
    assert not [n for n, d in out.nodes(data=True) if d.get("point_id") == "inside"]
    assert nx.has_path(out, nodes["a"], nodes["b"])


# ------------------------------------------------------------------------ path geometry


def test_path_geometry_is_continuous_and_as_long_as_its_edges() -> None:
    layer = corridors(
        {"geometry": line((0, 0), (50, 20), (100, 0))}, {"geometry": line((50, -50), (50, 50))}
    )
    graph = build_graph(layer, barriers=NONE, settings=SETTINGS)
    out, nodes = attach_points(
        graph, points(a=(10, -5), b=(95, 10)), barriers=NONE, settings=SETTINGS
    )
    path = nx.shortest_path(out, nodes["a"], nodes["b"], weight="weight")
    geometry = path_geometry(out, path)
    first, last = out.nodes[path[0]], out.nodes[path[-1]]
    assert geometry.coords[0] == (first["x"], first["y"])
    assert geometry.coords[-1] == (last["x"], last["y"])
    assert geometry.length == pytest.approx(
        sum(out.edges[e]["length_m"] for e in nx.utils.pairwise(path))
    )
    xy = np.asarray(geometry.coords)
    assert np.all(np.hypot(*np.diff(xy, axis=0).T) > 0)  # no repeated vertices
    assert path_geometry(out, list(reversed(path))).equals(geometry.reverse())
    with pytest.raises(ValueError, match="not joined"):
        path_geometry(out, [nodes["a"], nodes["b"]])


# -------------------------------------------------------------------------- determinism


def _messy_layer() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(6):
        xs = np.linspace(0, 100, 5)
        rows.append({"geometry": line(*zip(xs, i * 20 + rng.normal(0, 0.1, 5), strict=True))})
        rows.append(
            {
                "geometry": line(*zip(i * 20 + rng.normal(0, 0.1, 5), xs, strict=True)),
                "kind": "road" if i == 3 else "walkway",
                "surface": "paving",
            }
        )
    rows.append({"geometry": line((10, 10.3), (10, 15))})  # a near miss
    rows.append({"geometry": line((0, 0), (40, 0)), "surface": "lawn"})  # an overlap
    return corridors(*rows)


def _signature(graph: nx.Graph) -> tuple[list[object], list[object]]:
    nodes = sorted(graph.nodes(data=True))
    edges = sorted(
        (u, v, sorted((k, val.wkb if k == "geometry" else val) for k, val in d.items()))
        for u, v, d in graph.edges(data=True)
    )
    return nodes, edges


def test_graph_and_attachment_do_not_depend_on_row_order() -> None:
    layer = _messy_layer()
    walls = barriers(rect(45, 45, 55, 55))
    first = build_graph(layer, barriers=walls, settings=SETTINGS)
    again = build_graph(layer, barriers=walls, settings=SETTINGS)
    shuffled = build_graph(layer.sample(frac=1, random_state=3), barriers=walls, settings=SETTINGS)
    assert _signature(first) == _signature(again) == _signature(shuffled)

    layer_points = points(a=(5, 5), b=(33, 47), c=(50, 50), d=(97, 61), e=(5, 6))
    out1, nodes1 = attach_points(first, layer_points, barriers=walls, settings=SETTINGS)
    out2, nodes2 = attach_points(
        shuffled, layer_points.iloc[::-1], barriers=walls, settings=SETTINGS
    )
    assert nodes1 == nodes2
    assert _signature(out1) == _signature(out2)


def test_repeated_point_ids_are_refused() -> None:
    graph = build_graph(
        corridors({"geometry": line((0, 0), (100, 0))}), barriers=NONE, settings=SETTINGS
    )
    layer = gpd.GeoDataFrame(
        {"id": ["a", "a"]}, geometry=[Point(X, Y + 1), Point(X + 1, Y + 1)], crs=CRS
    )
    with pytest.raises(LayerError, match="repeated"):
        attach_points(graph, layer, barriers=NONE, settings=SETTINGS)


def test_corridors_geos_cannot_join_are_named() -> None:
    """GEOS gives up noding a line that doubles back a hair beside another (found by
    tests/test_noding.py): a LayerError naming both corridors, not a GEOS traceback."""
    layer = gpd.GeoDataFrame(
        {"corridor_id": ["A", "B"], "surface": ["soil", "soil"]},
        geometry=[
            LineString([(500030, 4300050), (500010.004, 4300010.004)]),
            LineString([(500000, 4300000), (500020, 4300020), (499999.98, 4299999.98)]),
        ],
        crs=CRS,
    )
    with pytest.raises(LayerError) as raised:
        build_graph(layer, barriers=NONE, settings=SETTINGS)
    problems = raised.value.problems
    assert [(p.layer, p.feature_id) for p in problems] == [("corridors", "A"), ("corridors", "B")]
    assert all("merge the overlapping corridors" in p.message for p in problems)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(["a", "B", "\x00", "\u00e9", "\u4e2d", "\U0001f600", "0"])
        ),
        max_size=30,
    )
)
@example(["b", "\u00e9", "a", "z"])
def test_corridor_ids_are_ranked_as_python_sorts_them(ids: list[str]) -> None:
    """The fast codes order strings as Python does, by code point (not by UTF-8 or UTF-16)."""
    from geoplan.network import _sorted_codes

    values = pd.Series(np.array(ids, dtype=object))
    want = pd.factorize(values, sort=True)[0]
    np.testing.assert_array_equal(_sorted_codes(values), want)


def test_codes_of_other_values_are_those_of_a_sorted_factorize() -> None:
    from geoplan.network import _sorted_codes

    values = pd.Series(np.array([3, 1, 2, 1], dtype=object))
    np.testing.assert_array_equal(_sorted_codes(values), [2, 0, 1, 0])


def test_codes_of_text_with_a_lone_surrogate_are_those_of_a_sorted_factorize() -> None:
    """Such text has no UTF-8 form for numpy's strings: Python's order is taken."""
    from geoplan.network import _sorted_codes

    values = pd.Series(np.array(["b", "\ud800", "a", "b"], dtype=object))
    np.testing.assert_array_equal(_sorted_codes(values), pd.factorize(values, sort=True)[0])


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 5),
            st.sampled_from([0.0, 1.5, -2.0, 1e-9]),
            st.sampled_from([7.0, 7.0, 3.25]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_sorting_by_codes_then_keys_is_lexsorts_order(rows: list[tuple]) -> None:
    """The corridor table's order (which every later tie-break rests on) is np.lexsort's."""
    from geoplan._geometry import _lexsort_codes

    a, b, x, y = (np.array(column) for column in zip(*rows, strict=True))
    codes = [np.unique(a, return_inverse=True)[1], np.unique(b, return_inverse=True)[1]]
    want = np.lexsort((y, x, b, a))
    np.testing.assert_array_equal(_lexsort_codes(codes, [x, y]), want)


def test_ends_find_the_lines_they_fall_short_of_on_a_grid_as_in_a_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A city's loose ends search a grid of cells; the graph is the tree search's."""
    from geoplan import network

    rng = np.random.default_rng(5)
    rows = []
    for i in range(12):  # streets across, each stopping short of (or past) the next one
        for j in range(12):
            x, y = 20.0 * i, 20.0 * j
            gap = rng.choice([0.0, 0.2, 0.45, 0.6, -0.3])
            rows.append({"geometry": line((x, y), (x + 20 - gap, y + rng.uniform(-0.3, 0.3)))})
            rows.append({"geometry": line((x, y), (x + rng.uniform(-0.3, 0.3), y + 20 - gap))})
    layer = corridors(*rows)

    def edges(grid_min_lines: int) -> list[tuple]:
        monkeypatch.setattr(network, "_GRID_MIN_LINES", grid_min_lines)
        a = network.build_arrays(layer, barriers=NONE, settings=SETTINGS)
        return sorted(
            zip(a.u.tolist(), a.v.tolist(), shapely.to_wkb(a.geometry).tolist(), strict=True)
        )

    on_grid, in_tree = edges(0), edges(10**9)
    assert on_grid == in_tree
    assert len(on_grid) > len(rows)  # the ends that fell short reached their lines
