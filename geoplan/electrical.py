"""Design load, cable selection and voltage drop for the cables that feed meter boxes.

Every figure comes from the catalogue (see ``geoplan/data/catalogue.toml`` and
ENGINEERING.md): the JGJ 242 demand coefficients, the 0.6/1 kV XLPE cable types with their
ampacity and resistance, the derating factors, the voltage-drop limit. The functions take
scalars or arrays (numpy, pandas) and return the same kind: a scalar for scalars, an
array for arrays, a Series with the input's index for a Series.

Cable selection (:func:`size_cables`) is vectorised over cables x catalogue types, so it
runs on a city's 10^5 cables in one pass.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from ._arraylike import FloatOrArray, IntOrArray, nonnegative, shaped_like
from .catalogue import Catalogue
from .errors import Problem, SettingsError

PHASES = (1, 3)
INSTALLATIONS = ("direct", "duct")
SIZE_CABLES_INPUT = ("cable_id", "length_m", "design_load_kw", "phases", "max_cables_in_trench")


# --- helpers -----------------------------------------------------------------------------


def _phases(phases: Any) -> npt.NDArray[np.int64]:
    out = np.asarray(phases)
    if not np.isin(out, PHASES).all():
        bad = out[~np.isin(out, PHASES)].flat[0]
        msg = f"phases must be 1 or 3; got {bad!r}"
        raise ValueError(msg)
    return out.astype(np.int64)


def _tan_phi(catalogue: Catalogue) -> float:
    power_factor = float(catalogue.value("loads", "power_factor"))
    if not 0 < power_factor <= 1:
        msg = f"[loads] power_factor = {power_factor} must be in (0, 1]"
        raise SettingsError(msg)
    return math.sqrt(1.0 - power_factor**2) / power_factor


# --- demand ------------------------------------------------------------------------------


def _demand_curve(catalogue: Catalogue) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the JGJ 242 table as break points (households, Kx) for ``np.interp``."""
    rows = catalogue.table("demand_factors", "rows").sort_values("households_min")
    lows = rows["households_min"].to_numpy(float)
    highs = rows["households_max"].to_numpy(float)
    problems = [
        Problem(f"[[demand_factors.rows]] households_min {lo:g} must be below households_max")
        for lo, hi in zip(lows, highs, strict=True)
        if not lo < hi
    ]
    problems += [
        Problem(f"[[demand_factors.rows]] rows overlap at {lo:g} households")
        for lo, prev_hi in zip(lows[1:], highs[:-1], strict=True)
        if not prev_hi < lo
    ]
    if problems:
        raise SettingsError(problems)
    households = np.column_stack([lows, highs]).ravel()
    kx = np.column_stack([rows["kx_first"], rows["kx_last"]]).astype(float).ravel()
    return households, kx


def demand_factor(
    households: npt.ArrayLike, *, catalogue: Catalogue, cable: bool = False
) -> FloatOrArray:
    """Return the demand (diversity) coefficient Kx for a number of households.

    Kx follows the JGJ 242-2011 table in ``[demand_factors] rows``: within a row it runs
    linearly from ``kx_first`` at ``households_min`` to ``kx_last`` at ``households_max``;
    between rows (non-integer counts) it runs linearly from one row's end to the next
    row's start; below the table it is the first row's ``kx_first`` and above the table the
    last row's ``kx_last``. Each storage room counts as one single-phase household.

    Parameters
    ----------
    households
        Number of households (storage rooms), >= 0; a scalar, array or Series.
    catalogue
        The engineering catalogue.
    cable
        Apply the utility rule for one cable as well (``[demand_factors] cable_floor``):
        Kx is at least the ``kx_min`` of the last floor row whose ``households_above`` is
        below the count (<= 3 households 1.0, 4-12 0.8, 13-36 0.7, more 0.6 by default).

    Returns
    -------
    kx
        The coefficient, shaped like ``households``.
    """
    count = nonnegative(households, "households")
    points, kx_points = _demand_curve(catalogue)
    kx = np.interp(count, points, kx_points)
    if cable:
        floor = catalogue.table("demand_factors", "cable_floor").sort_values("households_above")
        above = floor["households_above"].to_numpy(float)
        kx_min = floor["kx_min"].to_numpy(float)
        row = np.searchsorted(above, count, side="left") - 1
        floor_kx = np.where(row >= 0, kx_min[np.clip(row, 0, None)], 0.0)
        kx = np.maximum(kx, floor_kx)
    return shaped_like(kx, households)


def design_load_kw(
    rooms: npt.ArrayLike, *, catalogue: Catalogue, cable: bool = False
) -> FloatOrArray:
    """Return the design load of a number of storage rooms.

    ``rooms x [loads] storage_room_kw x demand_factor(rooms)``.

    Parameters
    ----------
    rooms
        Storage rooms served (>= 0); a scalar, array or Series.
    catalogue
        The engineering catalogue.
    cable
        Use the utility floor rule for one cable (see :func:`demand_factor`).

    Returns
    -------
    load_kw
        Design load in kW, shaped like ``rooms``.
    """
    count = nonnegative(rooms, "rooms")
    kx: npt.NDArray[np.float64] = np.asarray(demand_factor(count, catalogue=catalogue, cable=cable))
    load = count * float(catalogue.value("loads", "storage_room_kw")) * kx
    return shaped_like(load, rooms)


def box_phases(load_kw: npt.ArrayLike, *, catalogue: Catalogue) -> IntOrArray:
    """Return 3 where a box's design load exceeds ``[meter_boxes] three_phase_above_kw``, else 1.

    Parameters
    ----------
    load_kw
        Design load of the box, kW.
    catalogue
        The engineering catalogue.

    Returns
    -------
    phases
        1 or 3, shaped like ``load_kw``.
    """
    load = nonnegative(load_kw, "load_kw")
    above = float(catalogue.value("meter_boxes", "three_phase_above_kw"))
    return shaped_like(np.where(load > above, 3, 1).astype(np.int64), load_kw)


# --- current and voltage drop -----------------------------------------------------------


def design_current_a(
    load_kw: npt.ArrayLike, *, phases: npt.ArrayLike, catalogue: Catalogue
) -> FloatOrArray:
    """Return the design current of a load.

    Three-phase ``I = P / (√3 · U · cosφ)`` with ``U = [voltage] three_phase_kv``;
    single-phase ``I = P / (U · cosφ)`` with ``U = [voltage] single_phase_kv``; cosφ is
    ``[loads] power_factor``. With P in kW and U in kV the current is in A.

    Parameters
    ----------
    load_kw
        Active power, kW.
    phases
        1 or 3, a scalar or an array broadcastable against ``load_kw``.
    catalogue
        The engineering catalogue.

    Returns
    -------
    current_a
        Line current, A.
    """
    load = nonnegative(load_kw, "load_kw")
    n_phases = _phases(phases)
    power_factor = float(catalogue.value("loads", "power_factor"))
    three_kv = float(catalogue.value("voltage", "three_phase_kv"))
    single_kv = float(catalogue.value("voltage", "single_phase_kv"))
    apparent_kv = np.where(n_phases == 3, math.sqrt(3.0) * three_kv, single_kv)
    return shaped_like(load / (apparent_kv * power_factor), load_kw, phases)


def voltage_drop_pct(
    load_kw: npt.ArrayLike,
    length_m: npt.ArrayLike,
    r_ohm_per_km: npt.ArrayLike,
    x_ohm_per_km: npt.ArrayLike,
    *,
    phases: npt.ArrayLike,
    catalogue: Catalogue,
) -> FloatOrArray:
    """Return the voltage drop along a cable in per cent of the nominal voltage.

    The formulas of ENGINEERING.md, with P in kW, L in km, U in kV, R and X in Ω/km:

    - three-phase: ``ΔU% = P·L·(R + X·tanφ) / (10·U²)``, U = ``[voltage] three_phase_kv``
    - single-phase: ``ΔU% = 2·P·L·(R + X·tanφ) / (10·U²)``, U = ``[voltage]
      single_phase_kv`` (the current flows out and back: twice the length)

    tanφ follows from ``[loads] power_factor``. The arguments broadcast against each other
    (``size_cables`` passes cables as a column and cable types as a row).

    Parameters
    ----------
    load_kw
        Active power at the end of the cable, kW.
    length_m
        Cable length, m.
    r_ohm_per_km
        Conductor resistance at the operating temperature, Ω/km: R20 x
        ``[cables] resistance_factor_90c_cu`` / ``_al`` (``cable_types`` gives it).
    x_ohm_per_km
        Reactance, Ω/km.
    phases
        1 or 3.
    catalogue
        The engineering catalogue.

    Returns
    -------
    drop_pct
        Voltage drop, %.
    """
    load = nonnegative(load_kw, "load_kw")
    length_km = nonnegative(length_m, "length_m") / 1000.0
    r = nonnegative(r_ohm_per_km, "r_ohm_per_km")
    x = nonnegative(x_ohm_per_km, "x_ohm_per_km")
    n_phases = _phases(phases)
    three_kv = float(catalogue.value("voltage", "three_phase_kv"))
    single_kv = float(catalogue.value("voltage", "single_phase_kv"))
    # ΔU% = k·P·L·(R + X·tanφ)/(10·U²): k = 1 three-phase, 2 single-phase
    factor = np.where(n_phases == 3, 1.0 / (10.0 * three_kv**2), 2.0 / (10.0 * single_kv**2))
    drop = factor * load * length_km * (r + x * _tan_phi(catalogue))
    return shaped_like(drop, load_kw, length_m, r_ohm_per_km, x_ohm_per_km, phases)


def derating_factor(n_cables: npt.ArrayLike, *, catalogue: Catalogue) -> FloatOrArray:
    """Return the ampacity correction for buried cables sharing a trench.

    ``[cables] ground_25c_factor x group_factors[n - 1]``; beyond the end of
    ``group_factors`` its last value applies.

    Parameters
    ----------
    n_cables
        Cables (circuits) laid together, >= 1.
    catalogue
        The engineering catalogue.

    Returns
    -------
    factor
        Multiplier on the tabulated ampacity, shaped like ``n_cables``.
    """
    count = np.asarray(n_cables)
    if not np.issubdtype(count.dtype, np.number) or (count < 1).any() or (count % 1 != 0).any():
        msg = f"n_cables must be whole numbers >= 1; got {n_cables!r}"
        raise ValueError(msg)
    group = np.asarray(catalogue.value("cables", "group_factors"), dtype=float)
    ground = float(catalogue.value("cables", "ground_25c_factor"))
    index = np.minimum(count.astype(np.int64), len(group)) - 1
    return shaped_like(ground * group[index], n_cables)


# --- cable selection ---------------------------------------------------------------------


def cable_types(catalogue: Catalogue) -> pd.DataFrame:
    """Return the catalogue's cable types in the order :func:`size_cables` prefers them.

    Parameters
    ----------
    catalogue
        The engineering catalogue.

    Returns
    -------
    types
        One row per type: ``cable_type``, ``material``, ``cross_section_mm2``,
        ``ampacity_a`` (for ``[cables] installation``, before derating), ``r_ohm_per_km``
        (at 90 °C), ``x_ohm_per_km``, ``cost_cny_per_m``; sorted by cost per metre, then
        cross-section, then name.

    Raises
    ------
    SettingsError
        ``installation`` is not direct or duct, or a material has no 90 °C factor.
    """
    installation = str(catalogue.value("cables", "installation"))
    if installation not in INSTALLATIONS:
        msg = f"[cables] installation = {installation!r} must be one of {', '.join(INSTALLATIONS)}"
        raise SettingsError(msg)
    table = catalogue.table("cables", "types")
    factors: dict[str, float] = {}
    for material in sorted(table["material"].unique()):
        key = f"resistance_factor_90c_{str(material).lower()}"
        if key not in catalogue.data["cables"]:
            msg = f"[[cables.types]] material {material!r} has no [cables] {key}"
            raise SettingsError(msg)
        factors[material] = float(catalogue.value("cables", key))
    types = pd.DataFrame(
        {
            "cable_type": table["name"].astype(str),
            "material": table["material"].astype(str),
            "cross_section_mm2": table["cross_section_mm2"].astype(float),
            "ampacity_a": table[f"ampacity_{installation}_a"].astype(float),
            "r_ohm_per_km": table["r20_ohm_per_km"].astype(float) * table["material"].map(factors),
            "x_ohm_per_km": float(catalogue.value("cables", "reactance_ohm_per_km")),
            "cost_cny_per_m": table["cost_cny_per_m"].astype(float),
        }
    )
    return types.sort_values(
        ["cost_cny_per_m", "cross_section_mm2", "cable_type"], kind="stable", ignore_index=True
    )


def size_cables(cables: gpd.GeoDataFrame, *, catalogue: Catalogue) -> gpd.GeoDataFrame:
    """Choose a catalogue cable type for every cable and check it.

    Choice rule: among all catalogue types (copper YJV22 and aluminium YJLV22 alike), take
    the cheapest by ``cost_cny_per_m`` (ties: smaller cross-section, then name) that

    - carries the design current x ``[cables] growth_factor`` within its ampacity for
      ``[cables] installation``, derated by :func:`derating_factor` for the most cables
      sharing a trench along the route (``max_cables_in_trench``), and
    - keeps the voltage drop within ``[voltage] drop_limit_pct``.

    If no type passes, the largest type is taken (largest cross-section, lowest
    resistance: it fails least) and ``flags`` says why. ``flags`` also reports a load
    above ``[supply] max_kva_per_cable`` (kVA = kW / power factor) or above
    ``[meter_boxes] max_load_kw``. Reasons are joined by ``"; "``; ``flags`` is ``""``
    when all is well. The tabulated ampacity is for 4-core cables with three loaded
    conductors, which is conservative for a single-phase cable.

    Parameters
    ----------
    cables
        One row per cable with ``cable_id``, ``length_m``, ``design_load_kw``, ``phases``
        (1 or 3) and ``max_cables_in_trench`` (>= 1); other columns (``box_id``,
        ``supply_id``, ``rooms``, geometry ...) are carried through.
    catalogue
        The engineering catalogue.

    Returns
    -------
    cables
        A copy with ``cable_type``, ``cross_section_mm2``, ``design_current_a`` (without
        the growth factor), ``ampacity_a`` (derated), ``voltage_drop_pct``, ``cost_cny``
        (length x cost per metre) and ``flags`` filled in.
    """
    missing = [c for c in SIZE_CABLES_INPUT if c not in cables.columns]
    if missing:
        msg = f"size_cables needs the columns {', '.join(missing)}"
        raise ValueError(msg)
    out = cables.copy()
    types = cable_types(catalogue)

    load_kw = nonnegative(out["design_load_kw"], "design_load_kw")
    length_m = nonnegative(out["length_m"], "length_m")
    phases = _phases(out["phases"].to_numpy())
    current_a: npt.NDArray[np.float64] = np.asarray(
        design_current_a(load_kw, phases=phases, catalogue=catalogue)
    )
    required_a = current_a * float(catalogue.value("cables", "growth_factor"))
    derate: npt.NDArray[np.float64] = np.asarray(
        derating_factor(out["max_cables_in_trench"].to_numpy(), catalogue=catalogue)
    )
    limit_pct = float(catalogue.value("voltage", "drop_limit_pct"))

    # cables x types
    ampacity_a = derate[:, None] * types["ampacity_a"].to_numpy()[None, :]
    drop_pct: npt.NDArray[np.float64] = np.asarray(
        voltage_drop_pct(
            load_kw[:, None],
            length_m[:, None],
            types["r_ohm_per_km"].to_numpy()[None, :],
            types["x_ohm_per_km"].to_numpy()[None, :],
            phases=phases[:, None],
            catalogue=catalogue,
        )
    )
    passes = (required_a[:, None] <= ampacity_a) & (drop_pct <= limit_pct)
    largest = int(np.lexsort((types["r_ohm_per_km"], -types["cross_section_mm2"]))[0])
    choice = np.where(passes.any(axis=1), passes.argmax(axis=1), largest)
    rows = np.arange(len(out))
    chosen_ampacity_a = ampacity_a[rows, choice]
    chosen_drop_pct = drop_pct[rows, choice]

    out["cable_type"] = types["cable_type"].to_numpy()[choice]
    out["cross_section_mm2"] = types["cross_section_mm2"].to_numpy()[choice]
    out["design_current_a"] = current_a
    out["ampacity_a"] = chosen_ampacity_a
    out["voltage_drop_pct"] = chosen_drop_pct
    out["cost_cny"] = length_m * types["cost_cny_per_m"].to_numpy()[choice]
    out["flags"] = _flags(
        required_a,
        chosen_ampacity_a,
        chosen_drop_pct,
        load_kw,
        catalogue=catalogue,
    )
    return out


def _flags(
    required_a: npt.NDArray[np.float64],
    ampacity_a: npt.NDArray[np.float64],
    drop_pct: npt.NDArray[np.float64],
    load_kw: npt.NDArray[np.float64],
    *,
    catalogue: Catalogue,
) -> npt.NDArray[np.object_]:
    """Return the reasons a sized cable is not acceptable, ``""`` where it is."""
    growth = float(catalogue.value("cables", "growth_factor"))
    limit_pct = float(catalogue.value("voltage", "drop_limit_pct"))
    max_kva = float(catalogue.value("supply", "max_kva_per_cable"))
    max_box_kw = float(catalogue.value("meter_boxes", "max_load_kw"))
    load_kva = load_kw / float(catalogue.value("loads", "power_factor"))
    overload = required_a > ampacity_a
    high_drop = drop_pct > limit_pct
    over_kva = load_kva > max_kva
    over_box = load_kw > max_box_kw
    flags = np.full(len(load_kw), "", dtype=object)
    for i in np.flatnonzero(overload | high_drop | over_kva | over_box):
        reasons = []
        if overload[i]:
            reasons.append(
                f"overload: {required_a[i]:.1f} A (x{growth:g} growth) "
                f"> {ampacity_a[i]:.1f} A derated"
            )
        if high_drop[i]:
            reasons.append(f"voltage_drop: {drop_pct[i]:.2f} % > {limit_pct:g} %")
        if over_kva[i]:
            reasons.append(f"cable_load: {load_kva[i]:.1f} kVA > {max_kva:g} kVA per cable")
        if over_box[i]:
            reasons.append(f"box_load: {load_kw[i]:.1f} kW > {max_box_kw:g} kW per box")
        flags[i] = "; ".join(reasons)
    return flags
