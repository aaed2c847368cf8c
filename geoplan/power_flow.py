"""Check geoplan's voltage drops with a pandapower load flow of the planned LV network.

geoplan sizes cables with the approximate drop formula of ENGINEERING.md
(:func:`geoplan.electrical.voltage_drop_pct`). This module builds the same radial network
in pandapower, solves the AC load flow and reports both drops side by side, so the
approximation can be checked on a real plan. pandapower is an optional dependency,
imported only when the check runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from .catalogue import Catalogue
from .electrical import cable_types

INPUT_COLUMNS = (
    "cable_id",
    "box_id",
    "supply_id",
    "length_m",
    "design_load_kw",
    "phases",
    "cable_type",
    "ampacity_a",
    "voltage_drop_pct",
)
OUTPUT_COLUMNS = (
    "cable_id",
    "box_id",
    "voltage_drop_pct",
    "pandapower_drop_pct",
    "difference_pct_points",
)
INSTALL_HINT = "the power-flow check needs pandapower: pip install 'pandapower>=3'"


@contextlib.contextmanager
def _quiet_pandapower() -> Iterator[None]:
    """Silence pandapower's log messages and its deprecation notices, here only."""
    logger = logging.getLogger("pandapower")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=r"pandapower(\.|$)")
            yield
    finally:
        logger.setLevel(level)


def _import_pandapower() -> Any:
    with _quiet_pandapower():
        try:
            import pandapower
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
    return pandapower


def check_power_flow(cables: pd.DataFrame, *, catalogue: Catalogue) -> pd.DataFrame:
    """Solve the planned LV network with pandapower and compare its drops with geoplan's.

    The network: for each ``supply_id`` a bus at ``[voltage] three_phase_kv`` (0.38 kV,
    the supply's LV busbar) held at 1.0 p.u. by an external grid; for each cable a line
    from its supply's bus to a bus of its own (the box), with ``r_ohm_per_km`` at 90 °C
    and ``x_ohm_per_km`` of its ``cable_type``, ``length_km`` and ``max_i_ka`` = the
    derated ampacity, no capacitance; at the box a constant-power load of
    ``design_load_kw`` with ``q = p · tanφ`` (``[loads] power_factor``). Cables are
    radial, one per box, so each line is solved independently of the others.

    pandapower models balanced three-phase networks only. A single-phase cable is
    therefore checked as the balanced three-phase equivalent with the same per-cent
    drop: the single-phase formula ``2·P·L·(R + X·tanφ)/(10·U1²)`` equals the three-phase
    ``P'·L·(R + X·tanφ)/(10·U3²)`` when ``P' = 2·P·(U3/U1)²`` (about 5.97·P for 380/220 V),
    so its load is scaled by that factor. Its current (and line loading) in pandapower is
    then not the real one; only the drop is compared.

    Parameters
    ----------
    cables
        Sized cables (output of :func:`geoplan.electrical.size_cables`): ``cable_id``,
        ``box_id``, ``supply_id``, ``length_m``, ``design_load_kw``, ``phases``,
        ``cable_type``, ``ampacity_a``, ``voltage_drop_pct``.
    catalogue
        The catalogue the cables were sized with.

    Returns
    -------
    check
        One row per cable, in input order: ``cable_id``, ``box_id``, ``voltage_drop_pct``
        (geoplan), ``pandapower_drop_pct`` (``100 · (1 − vm_pu)`` at the box bus) and
        ``difference_pct_points`` (pandapower − geoplan). NaN where the load flow has no
        solution (a load beyond what the cable can transfer).

    Raises
    ------
    ImportError
        pandapower is not installed.
    ValueError
        A column is missing or a cable type is not in the catalogue.
    """
    missing = [c for c in INPUT_COLUMNS if c not in cables.columns]
    if missing:
        msg = f"check_power_flow needs the columns {', '.join(missing)}"
        raise ValueError(msg)
    types = cable_types(catalogue).set_index("cable_type")
    unknown = sorted(set(cables["cable_type"].astype(str)) - set(types.index))
    if unknown:
        msg = f"cable types not in the catalogue: {', '.join(unknown)}; size the cables first"
        raise ValueError(msg)

    drop_pct = np.full(len(cables), np.nan)
    if len(cables):
        pp = _import_pandapower()
        net, box_bus = _network(pp, cables, types, catalogue=catalogue)
        drop_pct = _solve(pp, net, box_bus)
    geoplan_pct = cables["voltage_drop_pct"].to_numpy(float)
    return pd.DataFrame(
        {
            "cable_id": cables["cable_id"].to_numpy(),
            "box_id": cables["box_id"].to_numpy(),
            "voltage_drop_pct": geoplan_pct,
            "pandapower_drop_pct": drop_pct,
            "difference_pct_points": drop_pct - geoplan_pct,
        }
    ).loc[:, list(OUTPUT_COLUMNS)]


def _network(
    pp: Any, cables: pd.DataFrame, types: pd.DataFrame, *, catalogue: Catalogue
) -> tuple[Any, np.ndarray]:
    """Build the pandapower network; return it and the box bus of each cable."""
    three_kv = float(catalogue.value("voltage", "three_phase_kv"))
    single_kv = float(catalogue.value("voltage", "single_phase_kv"))
    power_factor = float(catalogue.value("loads", "power_factor"))
    tan_phi = math.sqrt(1.0 - power_factor**2) / power_factor

    supplies = pd.Index(pd.unique(cables["supply_id"].astype(str)))
    chosen = types.loc[cables["cable_type"].astype(str)]
    length_km = cables["length_m"].to_numpy(float) / 1000.0
    r_ohm_per_km = chosen["r_ohm_per_km"].to_numpy(float)
    x_ohm_per_km = chosen["x_ohm_per_km"].to_numpy(float)
    # single-phase: the balanced three-phase load with the same per-cent drop
    scale = np.where(cables["phases"].to_numpy() == 3, 1.0, 2.0 * (three_kv / single_kv) ** 2)
    p_mw = cables["design_load_kw"].to_numpy(float) / 1000.0 * scale
    q_mvar = p_mw * tan_phi
    # a load beyond what its cable can transfer has no solution: leave it out of service
    solvable = _transferable(
        p_mw, q_mvar, r_ohm_per_km * length_km, x_ohm_per_km * length_km, vn_kv=three_kv
    )

    with _quiet_pandapower():
        net = pp.create_empty_network(name="geoplan LV check")
        supply_bus = pp.create_buses(net, len(supplies), vn_kv=three_kv, name=supplies.to_numpy())
        for bus in supply_bus:
            pp.create_ext_grid(net, int(bus), vm_pu=1.0, va_degree=0.0)
        box_bus = pp.create_buses(
            net, len(cables), vn_kv=three_kv, name=cables["box_id"].astype(str).to_numpy()
        )
        pp.create_lines_from_parameters(
            net,
            from_buses=supply_bus[supplies.get_indexer(cables["supply_id"].astype(str))],
            to_buses=box_bus,
            length_km=length_km,
            r_ohm_per_km=r_ohm_per_km,
            x_ohm_per_km=x_ohm_per_km,
            c_nf_per_km=0.0,
            max_i_ka=cables["ampacity_a"].to_numpy(float) / 1000.0,
            name=cables["cable_id"].astype(str).to_numpy(),
            in_service=solvable,
        )
        pp.create_loads(net, box_bus, p_mw=p_mw, q_mvar=q_mvar, in_service=solvable)
    return net, np.asarray(box_bus)


def _transferable(
    p_mw: np.ndarray, q_mvar: np.ndarray, r_ohm: np.ndarray, x_ohm: np.ndarray, *, vn_kv: float
) -> np.ndarray:
    """Return where a load can be supplied through its line from a bus held at ``vn_kv``.

    For a source voltage V0 feeding P + jQ through R + jX the receiving voltage V obeys
    ``V⁴ − (V0² − 2(PR + QX))·V² + (P² + Q²)(R² + X²) = 0``; it has a real solution only
    when the discriminant is positive (beyond it lies voltage collapse).
    """
    b = vn_kv**2 - 2.0 * (p_mw * r_ohm + q_mvar * x_ohm)
    discriminant = b**2 - 4.0 * (p_mw**2 + q_mvar**2) * (r_ohm**2 + x_ohm**2)
    return (b > 0) & (discriminant > 0)


def _solve(pp: Any, net: Any, box_bus: np.ndarray) -> np.ndarray:
    """Run the load flow; drops in % at each box bus, NaN where there is no solution."""
    solvable = net.load["in_service"].to_numpy(bool)
    with _quiet_pandapower():
        try:
            pp.runpp(net, numba=False)
        except pp.LoadflowNotConverged:
            return _solve_one_by_one(pp, net, box_bus)
    drops = 100.0 * (1.0 - net.res_bus.loc[box_bus, "vm_pu"].to_numpy(float))
    return np.where(solvable, drops, np.nan)


def _solve_one_by_one(pp: Any, net: Any, box_bus: np.ndarray) -> np.ndarray:
    """Solve each cable alone (they are independent) to isolate those with no solution."""
    drops = np.full(len(box_bus), np.nan)
    solvable = net.load["in_service"].to_numpy(bool)
    for i in np.flatnonzero(solvable):
        bus = box_bus[i]
        net.load["in_service"] = net.load["bus"] == bus
        net.line["in_service"] = net.line["to_bus"] == bus
        try:
            pp.runpp(net, numba=False)
        except pp.LoadflowNotConverged:
            continue
        drops[i] = 100.0 * (1.0 - float(net.res_bus.loc[bus, "vm_pu"]))
    net.load["in_service"] = solvable
    net.line["in_service"] = solvable
    return drops
