"""plan(): the pipeline from validated layers to a Plan."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import pyproj

from .layers import Layers
from .settings import Settings


@dataclass(frozen=True)
class Plan:
    """An engineered plan: plain data, reproducible from the same layers and settings.

    Every layer is in the working CRS ``crs`` and has the columns of
    :mod:`geoplan.schema` (``OUTPUT_LAYERS``), in that order.

    Parameters
    ----------
    meter_boxes, cables, trenches, removals, unserved
        The plan's layers.
    summary
        One row per compound (``schema.SUMMARY_COLUMNS``).
    layers
        The validated input layers the plan was made from.
    settings
        The settings it was made with.
    stats
        Headline figures (boxes, positions, km of cable and trench, saving from shared
        trenches, unserved by reason).
    """

    meter_boxes: gpd.GeoDataFrame
    cables: gpd.GeoDataFrame
    trenches: gpd.GeoDataFrame
    removals: gpd.GeoDataFrame
    unserved: gpd.GeoDataFrame
    summary: pd.DataFrame
    layers: Layers
    settings: Settings
    stats: dict[str, float | int | str]

    @property
    def crs(self) -> pyproj.CRS:
        """The working CRS of every layer."""
        return self.layers.crs
