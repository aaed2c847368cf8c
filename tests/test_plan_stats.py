"""``Plan.stats``: the same keys for every plan, so that plans compare side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import geopandas as gpd

from geoplan.layers import read_layers
from geoplan.plan import plan
from geoplan.routing import UNSERVED_REASONS as REASONS


def test_every_unserved_reason_is_counted_even_when_none(
    layer_frames: dict[str, gpd.GeoDataFrame],
    layer_writer: Callable[[Mapping[str, gpd.GeoDataFrame]], Path],
) -> None:
    served = plan(read_layers(layer_writer(layer_frames)))
    assert served.stats["unserved_boxes"] == 0
    assert [served.stats[f"unserved_{r}"] for r in REASONS] == [0, 0, 0, 0]

    supplies = layer_frames["supply_points"]
    layer_frames["supply_points"] = supplies.assign(load_kva=supplies["capacity_kva"])
    full = plan(read_layers(layer_writer(layer_frames)))
    assert full.stats["unserved_boxes"] > 0
    assert 0 in [full.stats[f"unserved_{r}"] for r in REASONS]  # some reason has no box
    # the same keys in the same order: the two plans compare figure by figure
    assert list(full.stats) == list(served.stats)
    reasons = [key for key in served.stats if key.startswith("unserved_")][1:]
    assert reasons == [f"unserved_{r}" for r in REASONS]
    counts = full.unserved["reason"].value_counts()
    assert {r: full.stats[f"unserved_{r}"] for r in REASONS} == {
        r: int(counts.get(r, 0)) for r in REASONS
    }
