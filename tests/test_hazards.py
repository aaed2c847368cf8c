"""Flying-wire hazard rules, one test per reason, plus compound sums and priority ranking."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, box

from geoplan.errors import CRSError
from geoplan.hazards import REASONS, compound_hazard, rank_priority, score_wires
from geoplan.settings import Settings

CRS = "EPSG:32648"  # UTM 48N, metres
X0, Y0 = 500_000.0, 4_390_000.0
SETTINGS = Settings()


def figure(key: str) -> float:
    return SETTINGS.catalogue.value("hazards", key)


def wire(**columns: object) -> dict[str, object]:
    """Return a compliant wire record: 10 m long, 7 m high, insulated, one household."""
    record: dict[str, object] = {
        "wire_id": "W1",
        "compound_id": "C1",
        "households": 1,
        "height_m": 7.0,
        "insulated": True,
        "status": "present",
        "geometry": LineString([(X0, Y0), (X0, Y0 + 10.0)]),
    }
    record.update(columns)
    return record


def wires(*records: dict[str, object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(list(records), geometry="geometry", crs=CRS)


def corridors(*lines: tuple[str, LineString], kinds: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {"corridor_id": [c for c, _ in lines], "surface": ["paving"] * len(lines)},
        geometry=[g for _, g in lines],
        crs=CRS,
    )
    if kinds:
        frame["kind"] = list(kinds)
    return frame


NO_CORRIDORS = corridors()


def score_one(record: dict[str, object], corridor_frame: gpd.GeoDataFrame = NO_CORRIDORS):
    scored = score_wires(wires(record), corridors=corridor_frame, settings=SETTINGS)
    return scored.iloc[0]


def north_line(length_m: float) -> LineString:
    return LineString([(X0, Y0), (X0, Y0 + length_m)])


def test_compliant_wire_scores_only_the_base_weight():
    row = score_one(wire())
    assert row["reasons"] == ""
    assert row["hazard_score"] == pytest.approx(figure("weight_present"))
    assert row["length_m"] == pytest.approx(10.0)
    assert row["corridor_crossings"] == 0


def test_long_span():
    row = score_one(wire(geometry=north_line(figure("max_span_m") + 1.0)))
    assert row["reasons"] == "long_span"
    assert row["hazard_score"] == pytest.approx(
        figure("weight_present") + figure("weight_long_span")
    )


def test_span_at_the_limit_is_allowed():
    assert score_one(wire(geometry=north_line(figure("max_span_m"))))["reasons"] == ""


def test_very_long_span_adds_to_long_span():
    row = score_one(wire(geometry=north_line(figure("max_span_with_pole_m") + 5.0)))
    assert row["reasons"] == "long_span;very_long_span"
    assert row["hazard_score"] == pytest.approx(
        figure("weight_present") + figure("weight_long_span") + figure("weight_very_long_span")
    )


def test_low():
    row = score_one(wire(height_m=figure("min_height_m") - 0.5))
    assert row["reasons"] == "low"
    assert row["hazard_score"] == pytest.approx(figure("weight_present") + figure("weight_low"))


def test_unknown_height():
    row = score_one(wire(height_m=np.nan))
    assert row["reasons"] == "unknown_height"
    assert row["hazard_score"] == pytest.approx(
        figure("weight_present") + figure("weight_unknown_height")
    )


def test_missing_height_column_means_unknown_height():
    frame = wires(wire()).drop(columns=["height_m"])
    scored = score_wires(frame, corridors=NO_CORRIDORS, settings=SETTINGS)
    assert scored["reasons"].tolist() == ["unknown_height"]


@pytest.mark.parametrize("value", [False, "no", "bare", 0])
def test_uninsulated(value):
    row = score_one(wire(insulated=value))
    assert row["reasons"] == "uninsulated"
    assert row["hazard_score"] == pytest.approx(
        figure("weight_present") + figure("weight_uninsulated")
    )


def test_unknown_insulation_is_not_scored():
    assert score_one(wire(insulated=None))["reasons"] == ""


def test_crosses_corridor_counts_each_corridor_once():
    across = LineString([(X0 - 5.0, Y0 + 5.0), (X0 + 5.0, Y0 + 5.0)])
    across_again = LineString([(X0 - 5.0, Y0 + 7.0), (X0 + 5.0, Y0 + 7.0)])
    zigzag = LineString(
        [(X0 - 5.0, Y0 + 2.0), (X0 + 5.0, Y0 + 2.0), (X0 + 5.0, Y0 + 3.0), (X0 - 5.0, Y0 + 3.0)]
    )
    frame = corridors(("K1", across), ("K2", across_again), ("K3", zigzag))
    row = score_one(wire(), frame)
    assert row["corridor_crossings"] == 3
    assert row["reasons"] == "crosses_corridor"
    assert row["hazard_score"] == pytest.approx(
        figure("weight_present") + 3 * figure("weight_crosses_corridor")
    )


def test_wire_ending_on_a_corridor_does_not_cross_it():
    under_the_end = LineString([(X0 - 5.0, Y0 + 10.0), (X0 + 5.0, Y0 + 10.0)])
    beside = LineString([(X0 + 3.0, Y0), (X0 + 3.0, Y0 + 10.0)])
    row = score_one(wire(), corridors(("K1", under_the_end), ("K2", beside)))
    assert row["corridor_crossings"] == 0
    assert row["reasons"] == ""


def test_only_roads_and_walkways_count_as_crossings():
    lines = [LineString([(X0 - 5.0, Y0 + y), (X0 + 5.0, Y0 + y)]) for y in (2.0, 4.0, 6.0)]
    frame = corridors(
        ("K1", lines[0]), ("K2", lines[1]), ("K3", lines[2]), kinds=("road", "walkway", "green")
    )
    assert score_one(wire(), frame)["corridor_crossings"] == 2


def test_corridors_in_another_crs_are_reprojected():
    across = LineString([(X0 - 5.0, Y0 + 5.0), (X0 + 5.0, Y0 + 5.0)])
    frame = corridors(("K1", across)).to_crs(4326)
    assert score_one(wire(), frame)["corridor_crossings"] == 1


def test_shared():
    row = score_one(wire(households=4))
    assert row["reasons"] == "shared"
    assert row["hazard_score"] == pytest.approx(
        figure("weight_present") + 3 * figure("weight_per_extra_household")
    )


def test_removed_wire_scores_zero_whatever_it_breaks():
    record = wire(
        status="removed", height_m=2.0, insulated=False, households=3, geometry=north_line(50)
    )
    row = score_one(record)
    assert row["hazard_score"] == 0.0
    assert row["reasons"] == "removed"


def test_every_reason_in_the_vocabulary_order():
    across = LineString([(X0 - 5.0, Y0 + 5.0), (X0 + 5.0, Y0 + 5.0)])
    record = wire(height_m=2.0, insulated=False, households=2, geometry=north_line(45))
    row = score_one(record, corridors(("K1", across)))
    assert row["reasons"] == "long_span;very_long_span;low;uninsulated;crosses_corridor;shared"
    assert set(row["reasons"].split(";")) <= set(REASONS)


def test_inputs_are_not_mutated_and_columns_are_added():
    frame = wires(wire(), wire(wire_id="W2", status="removed"))
    before = frame.copy()
    scored = score_wires(frame, corridors=NO_CORRIDORS, settings=SETTINGS)
    pd.testing.assert_frame_equal(frame, before)
    assert {"length_m", "corridor_crossings", "hazard_score", "reasons"} <= set(scored.columns)
    assert scored["hazard_score"].dtype == "float64"
    assert scored["corridor_crossings"].dtype == "int64"


def test_weights_come_from_the_catalogue():
    document = SETTINGS.catalogue.to_dict()
    from geoplan.catalogue import build_catalogue

    document["hazards"]["weight_low"] = 10.0
    settings = Settings(catalogue=build_catalogue(document, origin="test"))
    row = score_wires(wires(wire(height_m=2.0)), corridors=NO_CORRIDORS, settings=settings).iloc[0]
    assert row["hazard_score"] == pytest.approx(figure("weight_present") + 10.0)


def test_geographic_wires_are_refused():
    with pytest.raises(CRSError, match="projected"):
        score_wires(wires(wire()).to_crs(4326), corridors=NO_CORRIDORS, settings=SETTINGS)


# ----------------------------------------------------------------- compounds and ranking


def compounds(*ids: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"compound_id": list(ids), "name": [f"小区{i}" for i in ids]},
        geometry=[box(X0 + 100 * i, Y0, X0 + 100 * i + 50, Y0 + 50) for i in range(len(ids))],
        crs=CRS,
    )


def scored_sample() -> gpd.GeoDataFrame:
    frame = wires(
        wire(wire_id="W1", compound_id="C1", height_m=2.0),  # 1 + 3
        wire(wire_id="W2", compound_id="C1"),  # 1
        wire(wire_id="W3", compound_id="C1", status="removed"),  # 0
        wire(wire_id="W4", compound_id="C2", insulated=False),  # 1 + 3
    )
    return score_wires(frame, corridors=NO_CORRIDORS, settings=SETTINGS)


def test_compound_hazard_sums_present_wires_and_lists_every_compound():
    hazard = compound_hazard(scored_sample(), compounds("C3", "C1", "C2"))
    assert hazard["compound_id"].tolist() == ["C1", "C2", "C3"]
    assert hazard["wires_present"].tolist() == [2, 1, 0]
    assert hazard["wires_removed"].tolist() == [1, 0, 0]
    base, low = figure("weight_present"), figure("weight_low")
    assert hazard["hazard_index"].tolist() == pytest.approx([2 * base + low, base + 3.0, 0.0])
    assert hazard["hazard_removed"].tolist() == hazard["hazard_index"].tolist()
    assert hazard["hazard_after"].tolist() == [0.0, 0.0, 0.0]


def test_compound_hazard_with_the_plans_removals():
    hazard = compound_hazard(
        scored_sample(), compounds("C1", "C2"), removed_wire_ids=pd.Series(["W2", "W3"])
    )
    base = figure("weight_present")
    assert hazard["hazard_removed"].tolist() == pytest.approx([base, 0.0])
    assert hazard["hazard_after"].tolist() == pytest.approx(
        (hazard["hazard_index"] - hazard["hazard_removed"]).tolist()
    )


def test_rank_by_hazard_alone_breaks_ties_by_compound_id():
    hazard = pd.DataFrame(
        {"compound_id": ["C3", "C1", "C2", "C4"], "hazard_index": [5.0, 5.0, 9.0, 0.0]}
    )
    ranked = rank_priority(hazard)
    assert ranked["compound_id"].tolist() == ["C2", "C1", "C3", "C4"]
    assert ranked["priority_rank"].tolist() == [1, 2, 3, 4]


def test_rank_by_hazard_removed_per_yuan():
    hazard = pd.DataFrame(
        {
            "compound_id": ["C1", "C2", "C3", "C4", "C5"],
            "hazard_index": [10.0, 10.0, 4.0, 4.0, 50.0],
            "hazard_removed": [10.0, 10.0, 4.0, 4.0, 50.0],
        }
    )
    cost = pd.Series({"C1": 20_000.0, "C2": 10_000.0, "C3": 2_000.0, "C4": 2_000.0})
    ranked = rank_priority(hazard, cost)
    # C3/C4: 2 per kCNY (tie, by id), C2: 1, C1: 0.5, C5 has no cost: last.
    assert ranked["compound_id"].tolist() == ["C3", "C4", "C2", "C1", "C5"]
    assert ranked["hazard_per_kcny"].iloc[:4].tolist() == pytest.approx([2.0, 2.0, 1.0, 0.5])
    assert np.isnan(ranked["hazard_per_kcny"].iloc[4])
    assert ranked["priority_rank"].tolist() == [1, 2, 3, 4, 5]


def test_ranking_is_deterministic_whatever_the_input_order():
    hazard = pd.DataFrame(
        {"compound_id": [f"C{i}" for i in range(20)], "hazard_index": [1.0, 2.0] * 10}
    )
    cost = pd.Series(1000.0, index=hazard["compound_id"])
    first = rank_priority(hazard, cost)
    second = rank_priority(hazard.sample(frac=1.0, random_state=3), cost)
    pd.testing.assert_frame_equal(first, second)
