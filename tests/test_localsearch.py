"""Each supply's bounded search (numba): the ball by length, cheapest routes inside it."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from geoplan._localsearch import NO_PRED, search_balls


def _graph(edges: list[tuple[int, int, float, float]], n: int) -> tuple[sparse.csr_array, ...]:
    """Adjacency (data = edge row + 1, as _fastroute.adjacency), lengths and weights."""
    u = np.array([e[0] for e in edges])
    v = np.array([e[1] for e in edges])
    rows = np.arange(1, len(edges) + 1)
    matrix = sparse.csr_array((np.r_[rows, rows], (np.r_[u, v], np.r_[v, u])), shape=(n, n))
    matrix.sort_indices()
    length = np.array([e[2] for e in edges])
    weight = np.array([e[3] for e in edges])
    return matrix, length, weight


def test_the_ball_holds_the_nodes_at_exactly_the_reach() -> None:
    # 0 -1- 1 -1- 2 -1- 3: from 0 with a reach of 2, node 2 is in (networkx's cutoff)
    matrix, length, weight = _graph([(0, 1, 1.0, 5.0), (1, 2, 1.0, 5.0), (2, 3, 1.0, 5.0)], 4)
    balls = search_balls(matrix, length, weight, np.array([0, 3]), 2.0)
    assert balls.copies.node.tolist() == [0, 1, 2, 1, 2, 3]
    assert balls.copies.block.tolist() == [0, 0, 0, 1, 1, 1]
    assert balls.copies.first.tolist() == [0, 3, 6]
    assert balls.copies.source.tolist() == [0, 5]
    assert balls.length_m.tolist() == [0.0, 1.0, 2.0, 2.0, 1.0, 0.0]
    assert balls.cost.tolist() == [0.0, 5.0, 10.0, 10.0, 5.0, 0.0]
    assert balls.pred.tolist() == [NO_PRED, 0, 1, 4, 5, NO_PRED]
    # copy edges: both ways between entries of one block, none across blocks
    pairs = sorted(zip(balls.copies.ea.tolist(), balls.copies.eb.tolist(), strict=True))
    assert pairs == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3), (4, 5), (5, 4)]


def test_the_cheapest_route_stays_inside_the_ball() -> None:
    # 0-1 is short and dear; 0-2-1 is longer and cheap; 0-3-4-1 cheaper still, but 4
    # lies beyond the reach, so the route to 1 may not pass it.
    edges = [
        (0, 1, 1.0, 100.0),
        (0, 2, 1.0, 10.0),
        (2, 1, 1.0, 10.0),
        (0, 3, 1.0, 1.0),
        (3, 4, 5.0, 1.0),
        (4, 1, 3.0, 1.0),
    ]
    matrix, length, weight = _graph(edges, 5)
    balls = search_balls(matrix, length, weight, np.array([0]), 3.0)
    assert balls.copies.node.tolist() == [0, 1, 2, 3]  # 4 is 4 m away (0-1-4), beyond the reach
    at = dict(zip(balls.copies.node.tolist(), range(4), strict=True))
    assert balls.cost[at[1]] == 20.0  # via 2, not via 4 (cost 3) nor direct (100)
    assert balls.length_m[at[1]] == 2.0
    assert balls.copies.node[balls.pred[at[1]]] == 2
