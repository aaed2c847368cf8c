"""The public API is reachable where the README and the notebook say it is."""

from __future__ import annotations

import geoplan
import geoplan.layers
import geoplan.maps
from geoplan.layers import Layers


def test_summarize_is_exported_at_top_level(sample_layers: Layers) -> None:
    assert geoplan.summarize is geoplan.layers.summarize
    figures = geoplan.summarize(sample_layers)
    assert figures["compounds"] == len(sample_layers["compounds"])
    assert figures["storage_blocks"] == len(sample_layers["storage_blocks"])


def test_maps_export_district_map() -> None:
    assert {"district_map", "MapPage", "write_maps"} <= set(geoplan.maps.__all__)
    assert all(hasattr(geoplan.maps, name) for name in geoplan.maps.__all__)
