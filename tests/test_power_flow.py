"""The pandapower load flow agrees with geoplan's voltage-drop formula."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from geoplan.catalogue import load_catalogue
from geoplan.electrical import size_cables
from geoplan.power_flow import check_power_flow

pytest.importorskip("pandapower")

CATALOGUE = load_catalogue()


def sized(loads_kw: list[float], lengths_m: list[float], phases: list[int]) -> pd.DataFrame:
    n = len(loads_kw)
    frame = pd.DataFrame(
        {
            "cable_id": [f"S{i % 2}/B{i}" for i in range(n)],
            "box_id": [f"B{i}" for i in range(n)],
            "supply_id": [f"S{i % 2}" for i in range(n)],
            "length_m": lengths_m,
            "design_load_kw": loads_kw,
            "phases": phases,
            "max_cables_in_trench": [1] * n,
        }
    )
    return size_cables(frame, catalogue=CATALOGUE)


def test_pandapower_agrees_with_the_formula() -> None:
    cables = sized(
        [30.0, 60.0, 15.0, 8.0, 4.5, 10.0],
        [120.0, 250.0, 40.0, 60.0, 150.0, 20.0],
        [3, 3, 3, 1, 1, 1],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check = check_power_flow(cables, catalogue=CATALOGUE)
    assert list(check.columns) == [
        "cable_id",
        "box_id",
        "voltage_drop_pct",
        "pandapower_drop_pct",
        "difference_pct_points",
    ]
    assert list(check["cable_id"]) == list(cables["cable_id"])
    assert check["pandapower_drop_pct"].notna().all()
    assert (check["pandapower_drop_pct"] > 0).all()
    np.testing.assert_allclose(check["voltage_drop_pct"], cables["voltage_drop_pct"])
    assert (check["difference_pct_points"].abs() < 0.5).all()
    np.testing.assert_allclose(
        check["difference_pct_points"],
        check["pandapower_drop_pct"] - check["voltage_drop_pct"],
    )


def test_an_impossible_load_has_no_solution_and_spoils_nothing() -> None:
    cables = sized([400.0, 30.0], [800.0, 120.0], [3, 3])
    check = check_power_flow(cables, catalogue=CATALOGUE)
    assert np.isnan(check.loc[0, "pandapower_drop_pct"])
    assert abs(check.loc[1, "difference_pct_points"]) < 0.5


def test_pandapower_logging_is_left_as_it_was() -> None:
    logger = logging.getLogger("pandapower")
    level = logger.level
    check_power_flow(sized([5.0], [30.0], [1]), catalogue=CATALOGUE)
    assert logger.level == level


def test_power_flow_needs_sized_cables() -> None:
    cables = sized([5.0], [30.0], [3])
    with pytest.raises(ValueError, match="ampacity_a"):
        check_power_flow(cables.drop(columns="ampacity_a"), catalogue=CATALOGUE)
    with pytest.raises(ValueError, match="NYY"):
        check_power_flow(cables.assign(cable_type="NYY-4x25"), catalogue=CATALOGUE)


def test_power_flow_of_no_cables() -> None:
    check = check_power_flow(sized([5.0], [30.0], [3]).iloc[:0], catalogue=CATALOGUE)
    assert check.empty


def test_a_failed_load_flow_is_solved_cable_by_cable(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandapower as pp

    cables = sized([30.0, 8.0, 60.0], [120.0, 60.0, 250.0], [3, 1, 3])
    expected = check_power_flow(cables, catalogue=CATALOGUE)
    runpp = pp.runpp

    def fails_on_the_whole_network(net: object, **kwargs: object) -> None:
        if net.load["in_service"].sum() > 1:  # type: ignore[attr-defined]
            raise pp.LoadflowNotConverged("simulated")
        runpp(net, **kwargs)

    monkeypatch.setattr(pp, "runpp", fails_on_the_whole_network)
    check = check_power_flow(cables, catalogue=CATALOGUE)
    pd.testing.assert_frame_equal(check, expected, rtol=1e-9)


def test_pandapower_is_imported_only_when_the_check_runs() -> None:
    code = "import sys, geoplan.power_flow; print('pandapower' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_pandapower_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandapower", None)
    with pytest.raises(ImportError, match="pip install 'pandapower>=3'"):
        check_power_flow(sized([5.0], [30.0], [3]), catalogue=CATALOGUE)
