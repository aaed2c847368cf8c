"""The public API is reachable where the README and the notebook say it is."""

from __future__ import annotations

import geoplan
import geoplan.layers
from geoplan.layers import Layers


def test_summarize_is_exported_at_top_level(sample_layers: Layers) -> None:
    assert geoplan.summarize is geoplan.layers.summarize
    figures = geoplan.summarize(sample_layers)
    assert figures["compounds"] == len(sample_layers["compounds"])
    assert figures["storage_blocks"] == len(sample_layers["storage_blocks"])
