"""Design load, cable selection and voltage drop, checked against hand calculations."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString

from geoplan.catalogue import load_catalogue
from geoplan.electrical import (
    box_phases,
    cable_types,
    demand_factor,
    derating_factor,
    design_current_a,
    design_load_kw,
    size_cables,
    voltage_drop_pct,
)
from geoplan.errors import SettingsError
from geoplan.settings import load_settings

CATALOGUE = load_catalogue()
TAN_PHI = math.sqrt(1 - 0.9**2) / 0.9  # cosφ = 0.9


def cables_frame(**columns: list) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values()), [None]))
    data = {
        "cable_id": [f"S1/B{i}-M1" for i in range(n)],
        "box_id": [f"B{i}-M1" for i in range(n)],
        "supply_id": ["S1"] * n,
        "length_m": [100.0] * n,
        "design_load_kw": [10.0] * n,
        "phases": [3] * n,
        "max_cables_in_trench": [1] * n,
        "rooms": [10] * n,
    }
    data.update(columns)
    geometry = [LineString([(0, 0), (length, 0)]) for length in data["length_m"]]
    return gpd.GeoDataFrame(data, geometry=geometry, crs="EPSG:4545")


# --- demand factor ------------------------------------------------------------------------

# JGJ 242-2011: (households, Kx) at the ends of every row of the table
ROW_ENDS = [
    (1, 1.0),
    (3, 0.9),
    (4, 0.9),
    (8, 0.65),
    (9, 0.65),
    (12, 0.5),
    (13, 0.5),
    (24, 0.45),
    (25, 0.45),
    (124, 0.4),
    (125, 0.4),
    (259, 0.3),
    (260, 0.3),
    (300, 0.26),
]
# midpoints of each row: the mean of its two ends
MIDPOINTS = [
    (2, 0.95),
    (6, 0.775),
    (10.5, 0.575),
    (18.5, 0.475),
    (74.5, 0.425),
    (192, 0.35),
    (280, 0.28),
]


@pytest.mark.parametrize(("households", "kx"), ROW_ENDS + MIDPOINTS)
def test_demand_factor_reproduces_jgj_242(households: float, kx: float) -> None:
    assert demand_factor(households, catalogue=CATALOGUE) == pytest.approx(kx, abs=1e-12)


def test_demand_factor_above_the_table_keeps_the_last_value() -> None:
    assert demand_factor(301, catalogue=CATALOGUE) == pytest.approx(0.26)
    assert demand_factor(5000, catalogue=CATALOGUE) == pytest.approx(0.26)


def test_demand_factor_keeps_the_kind_of_its_input() -> None:
    assert isinstance(demand_factor(5, catalogue=CATALOGUE), float)
    array = demand_factor(np.array([1, 8, 300]), catalogue=CATALOGUE)
    assert isinstance(array, np.ndarray)
    np.testing.assert_allclose(array, [1.0, 0.65, 0.26])
    series = pd.Series([1, 8], index=["a", "b"])
    out = demand_factor(series, catalogue=CATALOGUE)
    assert isinstance(out, pd.Series)
    assert list(out.index) == ["a", "b"]


@pytest.mark.parametrize(
    ("households", "kx"),
    [
        (2, 1.0),  # table 0.95, <= 3 households: 1.0
        (4, 0.9),  # table 0.9 is above the 0.8 floor
        (10, 0.8),  # table 0.6
        (12, 0.8),
        (13, 0.7),  # table 0.5
        (36, 0.7),
        (37, 0.6),
        (400, 0.6),
    ],
)
def test_cable_floor(households: int, kx: float) -> None:
    assert demand_factor(households, catalogue=CATALOGUE, cable=True) == pytest.approx(kx)


def test_demand_factor_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="households"):
        demand_factor(-1, catalogue=CATALOGUE)


def test_design_load_by_hand() -> None:
    # 10 rooms: Kx = 0.65 + (10 - 9)/(12 - 9) x (0.5 - 0.65) = 0.6
    assert design_load_kw(10, catalogue=CATALOGUE) == pytest.approx(10 * 1.5 * 0.6)
    # one cable for 10 rooms: the utility floor 0.8
    assert design_load_kw(10, catalogue=CATALOGUE, cable=True) == pytest.approx(10 * 1.5 * 0.8)
    assert design_load_kw(0, catalogue=CATALOGUE) == 0.0


def test_box_phases_above_the_threshold() -> None:
    assert box_phases(12.0, catalogue=CATALOGUE) == 1
    assert box_phases(12.1, catalogue=CATALOGUE) == 3
    np.testing.assert_array_equal(box_phases([5.0, 30.0], catalogue=CATALOGUE), [1, 3])


# --- current and voltage drop -------------------------------------------------------------


def test_three_phase_current_and_drop_by_hand() -> None:
    # 30 kW at cosφ 0.9 over 120 m of YJV22-4x25 (R20 0.727 Ω/km Cu, x 1.275 at 90 °C)
    current = 30 / (math.sqrt(3) * 0.38 * 0.9)
    assert design_current_a(30, phases=3, catalogue=CATALOGUE) == pytest.approx(current, abs=1e-9)
    r90 = 0.727 * 1.275
    drop = 30 * 0.120 * (r90 + 0.08 * TAN_PHI) / (10 * 0.38**2)
    got = voltage_drop_pct(30, 120, r90, 0.08, phases=3, catalogue=CATALOGUE)
    assert got == pytest.approx(drop, abs=1e-9)
    assert got == pytest.approx(2.4075, abs=1e-4)


def test_single_phase_current_and_drop_by_hand() -> None:
    # 8 kW single-phase over 50 m of YJLV22-4x25 (R20 1.20 Ω/km Al, x 1.282 at 90 °C)
    current = 8 / (0.22 * 0.9)
    assert design_current_a(8, phases=1, catalogue=CATALOGUE) == pytest.approx(current, abs=1e-9)
    r90 = 1.20 * 1.282
    drop = 2 * 8 * 0.050 * (r90 + 0.08 * TAN_PHI) / (10 * 0.22**2)
    got = voltage_drop_pct(8, 50, r90, 0.08, phases=1, catalogue=CATALOGUE)
    assert got == pytest.approx(drop, abs=1e-9)


def test_drop_broadcasts_over_cables_and_types() -> None:
    drops = voltage_drop_pct(
        np.array([[10.0], [20.0]]),
        100.0,
        np.array([[1.0, 0.5]]),
        0.08,
        phases=3,
        catalogue=CATALOGUE,
    )
    assert drops.shape == (2, 2)
    assert drops[1, 0] == pytest.approx(2 * drops[0, 0])


def test_phases_must_be_one_or_three() -> None:
    with pytest.raises(ValueError, match="phases"):
        design_current_a(10, phases=2, catalogue=CATALOGUE)


@pytest.mark.parametrize(
    ("n_cables", "factor"), [(1, 0.96), (2, 0.96 * 0.75), (6, 0.96 * 0.5), (9, 0.96 * 0.5)]
)
def test_derating_factor(n_cables: int, factor: float) -> None:
    assert derating_factor(n_cables, catalogue=CATALOGUE) == pytest.approx(factor)


def test_derating_refuses_zero_cables() -> None:
    with pytest.raises(ValueError, match="n_cables"):
        derating_factor(0, catalogue=CATALOGUE)


# --- cable selection ----------------------------------------------------------------------


def test_cable_types_at_90c_in_preference_order() -> None:
    types = cable_types(CATALOGUE)
    cu25 = types.set_index("cable_type").loc["YJV22-4x25"]
    assert cu25["r_ohm_per_km"] == pytest.approx(0.727 * 1.275)
    assert cu25["ampacity_a"] == 107  # direct in ground
    assert types["cost_cny_per_m"].is_monotonic_increasing


def test_sized_cable_passes_both_checks() -> None:
    sized = size_cables(cables_frame(design_load_kw=[30.0], length_m=[120.0]), catalogue=CATALOGUE)
    row = sized.iloc[0]
    assert row["flags"] == ""
    assert row["design_current_a"] * 1.5 <= row["ampacity_a"]
    assert row["voltage_drop_pct"] <= 4.0
    cost_per_m = cable_types(CATALOGUE).set_index("cable_type").loc[row["cable_type"]]
    assert row["cost_cny"] == pytest.approx(120.0 * cost_per_m["cost_cny_per_m"])


def test_choice_is_the_cheapest_type_that_passes() -> None:
    """Compare the vectorised choice with a plain loop over the catalogue."""
    rng = np.random.default_rng(7)
    n = 300
    frame = cables_frame(
        length_m=list(rng.uniform(5, 400, n)),
        design_load_kw=list(rng.uniform(0.5, 90, n)),
        phases=list(rng.choice([1, 3], n)),
        max_cables_in_trench=list(rng.integers(1, 8, n)),
    )
    sized = size_cables(frame, catalogue=CATALOGUE)
    types = CATALOGUE.table("cables", "types")
    for cable, got in zip(frame.itertuples(), sized["cable_type"], strict=True):
        kv = 0.38 if cable.phases == 3 else 0.22
        k = 1 if cable.phases == 3 else 2
        root = math.sqrt(3) if cable.phases == 3 else 1.0
        current = cable.design_load_kw / (root * kv * 0.9)
        derate = 0.96 * [1.0, 0.75, 0.65, 0.6, 0.55, 0.5][min(cable.max_cables_in_trench, 6) - 1]
        passing = []
        for t in types.itertuples():
            r = t.r20_ohm_per_km * (1.275 if t.material == "Cu" else 1.282)
            drop = k * cable.design_load_kw * cable.length_m / 1000 * (r + 0.08 * TAN_PHI)
            drop /= 10 * kv**2
            if current * 1.5 <= t.ampacity_direct_a * derate and drop <= 4.0:
                passing.append((t.cost_cny_per_m, t.cross_section_mm2, t.name))
        expected = min(passing)[2] if passing else "YJV22-4x240"
        assert got == expected, cable


def test_derating_makes_a_larger_cable() -> None:
    frame = cables_frame(
        design_load_kw=[30.0, 30.0], length_m=[60.0, 60.0], max_cables_in_trench=[1, 4]
    )
    alone, shared = size_cables(frame, catalogue=CATALOGUE).itertuples()
    assert shared.cross_section_mm2 > alone.cross_section_mm2
    assert shared.ampacity_a >= 1.5 * shared.design_current_a
    assert alone.flags == shared.flags == ""


def test_a_longer_cable_gets_a_larger_section_for_voltage_drop() -> None:
    frame = cables_frame(design_load_kw=[30.0, 30.0], length_m=[60.0, 400.0])
    short, long = size_cables(frame, catalogue=CATALOGUE).itertuples()
    assert long.cross_section_mm2 > short.cross_section_mm2
    assert long.voltage_drop_pct <= 4.0
    # the short cable's type would carry the current but drop too much over 400 m
    r = cable_types(CATALOGUE).set_index("cable_type").loc[short.cable_type, "r_ohm_per_km"]
    assert voltage_drop_pct(30, 400, r, 0.08, phases=3, catalogue=CATALOGUE) > 4.0


def test_an_impossible_cable_is_flagged_not_accepted() -> None:
    sized = size_cables(cables_frame(design_load_kw=[400.0], length_m=[800.0]), catalogue=CATALOGUE)
    row = sized.iloc[0]
    assert row["cable_type"] == "YJV22-4x240"  # the largest, the least bad
    flags = row["flags"].split("; ")
    assert flags[0].startswith("overload: ")
    assert flags[0].endswith(f"> {375 * 0.96:.1f} A derated")
    assert flags[1].startswith("voltage_drop: ")
    assert "cable_load: 444.4 kVA > 100 kVA per cable" in flags
    assert "box_load: 400.0 kW > 100 kW per box" in flags
    assert row["voltage_drop_pct"] > 4.0


def test_load_above_the_cable_limit_is_flagged_alone() -> None:
    # 95 kW is 105.6 kVA at cosφ 0.9: sized fine, but above 100 kVA per cable
    sized = size_cables(cables_frame(design_load_kw=[95.0], length_m=[20.0]), catalogue=CATALOGUE)
    assert sized.iloc[0]["flags"] == "cable_load: 105.6 kVA > 100 kVA per cable"


def test_a_catalogue_override_changes_the_choice() -> None:
    frame = cables_frame(design_load_kw=[30.0], length_m=[400.0])
    strict = size_cables(frame, catalogue=CATALOGUE).iloc[0]
    relaxed_catalogue = load_settings(overrides={"voltage": {"drop_limit_pct": 6.0}}).catalogue
    relaxed = size_cables(frame, catalogue=relaxed_catalogue).iloc[0]
    assert strict["voltage_drop_pct"] <= 4.0
    assert 4.0 < relaxed["voltage_drop_pct"] <= 6.0
    assert relaxed["cross_section_mm2"] < strict["cross_section_mm2"]
    assert relaxed["cost_cny"] < strict["cost_cny"]
    assert relaxed["flags"] == ""


def test_duct_installation_uses_the_duct_column() -> None:
    duct = load_settings(overrides={"cables": {"installation": "duct"}}).catalogue
    assert cable_types(duct).set_index("cable_type").loc["YJV22-4x25", "ampacity_a"] == 96
    with pytest.raises(
        SettingsError, match=r"\[cables\] installation = 'overhead' must be one of direct, duct"
    ):
        load_settings(overrides={"cables": {"installation": "overhead"}})


def test_size_cables_returns_a_copy_and_keeps_the_frame() -> None:
    frame = cables_frame(design_load_kw=[5.0, 20.0], phases=[1, 3])
    before = frame.copy()
    sized = size_cables(frame, catalogue=CATALOGUE)
    pd.testing.assert_frame_equal(frame, before)
    assert isinstance(sized, gpd.GeoDataFrame)
    assert sized.crs == frame.crs
    assert list(sized.columns[: len(frame.columns)]) == list(frame.columns)
    assert sized["cross_section_mm2"].dtype == np.float64
    assert (sized["flags"] == "").all()


def test_size_cables_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="max_cables_in_trench"):
        size_cables(cables_frame().drop(columns="max_cables_in_trench"), catalogue=CATALOGUE)


def test_size_cables_on_no_cables() -> None:
    sized = size_cables(cables_frame().iloc[:0], catalogue=CATALOGUE)
    assert len(sized) == 0
    assert "cable_type" in sized.columns


def test_size_cables_runs_on_a_city() -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "cable_id": np.arange(n).astype(str),
            "length_m": rng.uniform(5, 500, n),
            "design_load_kw": rng.uniform(1, 120, n),
            "phases": rng.choice([1, 3], n),
            "max_cables_in_trench": rng.integers(1, 10, n),
        }
    )
    sized = size_cables(frame, catalogue=CATALOGUE)
    assert len(sized) == n
    assert sized["cable_type"].notna().all()
