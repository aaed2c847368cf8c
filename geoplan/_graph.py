"""The routing graph as arrays, for city-scale runs; conversion to and from networkx.

:class:`GraphArrays` holds the same nodes and edges as the networkx routing graph of
:mod:`geoplan.network` (node ids are the row numbers), one numpy array per attribute. It
is what the compiled routing path (:mod:`geoplan._fastroute`) works on: a scipy CSR
matrix is built from it in a fraction of a second, where a networkx graph of a million
edges takes ten seconds and 0.7 GB. networkx stays the model and the reference: tests
check that both give the same routes and costs on small graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pyproj
from scipy import sparse

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
ObjArray = np.ndarray[Any, np.dtype[np.object_]]

EDGE_FIELDS = (
    "u",
    "v",
    "length_m",
    "weight",
    "surface",
    "corridor_id",
    "kind",
    "off_corridor",
    "road_crossings",
    "geometry",
)


@dataclass(frozen=True)
class GraphArrays:
    """Nodes and edges of a routing graph, one array per attribute.

    Node ``i`` is row ``i`` of ``node_xy``; edge ``k`` joins ``u[k] < v[k]`` and its
    ``geometry`` runs from ``u`` to ``v``. Attributes mean what they mean on the networkx
    graph (see :mod:`geoplan.network`).
    """

    crs: pyproj.CRS
    node_xy: FloatArray
    road_crossing: BoolArray
    lattice: BoolArray
    u: IntArray
    v: IntArray
    length_m: FloatArray
    weight: FloatArray
    surface: ObjArray
    corridor_id: ObjArray
    kind: ObjArray
    off_corridor: BoolArray
    road_crossings: FloatArray
    geometry: ObjArray
    point_id: dict[int, str] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self.u)

    def edges_where(self, keep: BoolArray | IntArray) -> dict[str, np.ndarray]:
        """Return the edge arrays, each taken at ``keep`` (a mask or indices)."""
        return {name: getattr(self, name)[keep] for name in EDGE_FIELDS}

    def csr(self, values: FloatArray | IntArray | None = None) -> sparse.csr_array:
        """Return the symmetric adjacency matrix with ``values`` per edge (default: edge index + 1).

        Explicit zeros are kept: scipy's shortest-path routines treat them as edges.
        """
        data = np.arange(1, self.n_edges + 1) if values is None else values
        n = self.n_nodes
        rows = np.concatenate([self.u, self.v])
        cols = np.concatenate([self.v, self.u])
        matrix = sparse.csr_array(
            (np.concatenate([data, data]), (rows, cols)), shape=(n, n), copy=False
        )
        matrix.sort_indices()
        return matrix


def from_networkx(graph: nx.Graph) -> GraphArrays:
    """Arrays of a routing graph whose nodes are ``0 .. n-1`` (as built by geoplan)."""
    n = graph.number_of_nodes()
    ids = np.fromiter(graph.nodes, dtype=np.int64, count=n)
    if n and (ids.min() < 0 or ids.max() >= n or len(np.unique(ids)) != n):
        msg = "node ids must be 0 .. n-1"
        raise ValueError(msg)
    node_xy = np.zeros((n, 2))
    crossing = np.zeros(n, dtype=bool)
    lattice = np.zeros(n, dtype=bool)
    point_id: dict[int, str] = {}
    for i, d in graph.nodes(data=True):
        node_xy[i] = (d["x"], d["y"])
        crossing[i] = bool(d.get("road_crossing", False))
        lattice[i] = bool(d.get("lattice", False))
        if "point_id" in d:
            point_id[i] = d["point_id"]
    rows = list(graph.edges(data=True))
    u = np.array([min(a, b) for a, b, _ in rows], dtype=np.int64)
    v = np.array([max(a, b) for a, b, _ in rows], dtype=np.int64)

    def column(name: str, dtype: Any, default: Any = None) -> np.ndarray:
        return np.array([d.get(name, default) for _, _, d in rows], dtype=dtype)

    return GraphArrays(
        crs=pyproj.CRS.from_user_input(graph.graph["crs"]),
        node_xy=node_xy,
        road_crossing=crossing,
        lattice=lattice,
        u=u,
        v=v,
        length_m=column("length_m", float),
        weight=column("weight", float),
        surface=column("surface", object),
        corridor_id=column("corridor_id", object),
        kind=column("kind", object),
        off_corridor=column("off_corridor", bool, False),
        road_crossings=column("road_crossings", float, 0.0),
        geometry=column("geometry", object),
        point_id=point_id,
    )


def to_networkx(arrays: GraphArrays) -> nx.Graph:
    """Return the networkx routing graph of the arrays: nodes in id order, edges in row order."""
    graph = nx.Graph(crs=arrays.crs)
    xs, ys = arrays.node_xy[:, 0].tolist(), arrays.node_xy[:, 1].tolist()
    crossing, lattice = arrays.road_crossing.tolist(), arrays.lattice.tolist()
    nodes = []
    for i in range(arrays.n_nodes):
        data: dict[str, Any] = {"x": xs[i], "y": ys[i]}
        if lattice[i]:
            data["lattice"] = True
        elif i in arrays.point_id:
            data["point_id"] = arrays.point_id[i]
        else:
            data["road_crossing"] = crossing[i]
        nodes.append((i, data))
    graph.add_nodes_from(nodes)
    columns = zip(
        arrays.u.tolist(),
        arrays.v.tolist(),
        arrays.length_m.tolist(),
        arrays.weight.tolist(),
        arrays.surface.tolist(),
        arrays.corridor_id.tolist(),
        arrays.kind.tolist(),
        arrays.off_corridor.tolist(),
        arrays.road_crossings.tolist(),
        arrays.geometry.tolist(),
        strict=True,
    )
    graph.add_edges_from(
        (
            a,
            b,
            {
                "length_m": length,
                "weight": cost,
                "surface": surface,
                "corridor_id": corridor_id,
                "kind": kind,
                "off_corridor": off,
                "road_crossings": rc,
                "geometry": geometry,
            },
        )
        for a, b, length, cost, surface, corridor_id, kind, off, rc, geometry in columns
    )
    return graph
