"""The output contract: the plan's layers, their columns, types and units.

Export writes exactly these columns in this order; maps and reports read them. A column
named ``*_m`` is metres, ``*_kw`` kilowatts, ``*_kva`` kilovolt-amperes, ``*_a`` amperes,
``*_pct`` percent, ``*_cny`` yuan (CNY), ``*_mm2`` square millimetres.
"""

from __future__ import annotations

from types import MappingProxyType

import geopandas as gpd
import pandas as pd

# layer -> ((column, dtype, description), ...); dtype is a pandas dtype name.
OUTPUT_LAYERS = MappingProxyType(
    {
        "meter_boxes": (
            ("box_id", "str", "meter box id: <block_id>-M<n>"),
            ("block_id", "str", "storage block served"),
            ("compound_id", "str", "compound of the block"),
            ("rooms", "int64", "storage rooms this box serves"),
            ("positions", "int64", "meter positions of the box model"),
            ("used", "int64", "positions for households that applied"),
            ("reserved", "int64", "positions reserved for later applicants"),
            ("phases", "int64", "1 or 3"),
            ("model", "str", "box model name, e.g. DXB-1P-12"),
            ("design_load_kw", "float64", "design load after the demand factor, kW"),
            ("supply_id", "str", "supply the box is fed from (empty when unserved)"),
            ("status", "str", "status of the storage block served"),
            ("cost_cny", "float64", "box cost, CNY"),
        ),
        "cables": (
            ("cable_id", "str", "cable id: <supply_id>/<box_id>"),
            ("box_id", "str", "meter box fed"),
            ("supply_id", "str", "supply feeding it"),
            ("compound_id", "str", "compound of the box"),
            ("length_m", "float64", "route length, m"),
            ("off_corridor_m", "float64", "length dug outside surveyed corridors, m"),
            ("max_cables_in_trench", "int64", "most cables sharing a trench along the route"),
            ("design_load_kw", "float64", "design load carried, kW"),
            ("phases", "int64", "1 or 3"),
            ("cable_type", "str", "catalogue cable type"),
            ("cross_section_mm2", "float64", "conductor cross-section, mm2"),
            ("design_current_a", "float64", "design current, A"),
            ("ampacity_a", "float64", "derated current-carrying capacity, A"),
            ("voltage_drop_pct", "float64", "voltage drop from the supply to the box, %"),
            ("cost_cny", "float64", "cable cost, CNY"),
            ("flags", "str", "empty when all is well, else the reasons"),
        ),
        "trenches": (
            ("trench_id", "str", "trench section id"),
            ("supply_id", "str", "supply whose cables it carries"),
            ("surface", "str", "surface dug: soil, lawn, paving, asphalt, concrete, open"),
            ("off_corridor", "bool", "dug outside surveyed corridors"),
            ("road_crossings", "float64", "road crossings (a section ending at one counts half)"),
            ("n_cables", "int64", "cables laid in it"),
            ("length_m", "float64", "length, m"),
            ("cost_cny", "float64", "digging and restoration cost, CNY"),
        ),
        "removals": (
            ("wire_id", "str", "flying wire to remove"),
            ("box_id", "str", "meter box that replaces it (empty when unserved)"),
            ("compound_id", "str", "compound"),
            ("hazard_score", "float64", "hazard score of the wire"),
            ("reasons", "str", "what makes it hazardous"),
        ),
        "unserved": (
            ("block_id", "str", "storage block"),
            ("box_id", "str", "box sited there, if any"),
            ("compound_id", "str", "compound"),
            ("reason", "str", "no_path, beyond_radius, no_capacity, no_circuit"),
            ("detail", "str", "what to do about it"),
        ),
    }
)

SUMMARY_COLUMNS = (
    ("compound_id", "str", "compound"),
    ("name", "str", "compound name"),
    ("status", "str", "compound status"),
    ("households", "int64", "households in the compound"),
    ("applicants", "int64", "households that applied for power in their sheds"),
    ("boxes", "int64", "meter boxes planned"),
    ("positions", "int64", "meter positions"),
    ("used", "int64", "positions used"),
    ("reserved", "int64", "positions reserved"),
    ("energized_blocks", "int64", "storage blocks already energized (done)"),
    ("unserved_blocks", "int64", "storage blocks with a box not served"),
    ("cable_m", "float64", "cable length, m"),
    ("trench_m", "float64", "trench length, m"),
    ("cost_cny", "float64", "boxes + cables + trenches, CNY"),
    ("hazard_before", "float64", "hazard index of present flying wires"),
    ("hazard_after", "float64", "hazard index left after the plan"),
    ("priority_rank", "int64", "1 = most hazard removed per yuan"),
)


def columns(layer: str) -> list[str]:
    """Return the column names of an output layer, in order."""
    if layer == "summary":
        return [c for c, _, _ in SUMMARY_COLUMNS]
    return [c for c, _, _ in OUTPUT_LAYERS[layer]]


def conform(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Return ``frame`` with exactly the layer's columns, in order, with their dtypes.

    Missing text columns become empty strings; a GeoDataFrame keeps its geometry last.
    """
    spec = SUMMARY_COLUMNS if layer == "summary" else OUTPUT_LAYERS[layer]
    out = pd.DataFrame(index=frame.index)
    for name, dtype, _ in spec:
        values = frame[name] if name in frame else pd.Series("", index=frame.index)
        if dtype == "str":
            out[name] = values.fillna("").astype(str)
        else:
            out[name] = values.astype(dtype)
    if isinstance(frame, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=frame.geometry, crs=frame.crs)
    return out
