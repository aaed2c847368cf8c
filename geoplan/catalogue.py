"""The engineering catalogue: equipment and design figures, each with its source.

The defaults ship in ``geoplan/data/catalogue.toml``. A project overrides any figure by
repeating its section and key in ``geoplan.toml``; an override must name a key the
catalogue knows and keep its type, and its source becomes the overriding file.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import pandas as pd

from .errors import Problem, SettingsError

DEFAULT_PATH = "data/catalogue.toml"

# Sections whose every key is a figure that must carry a source.
_REQUIRED_TABLE_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("cables", "types"): (
        "name",
        "material",
        "cross_section_mm2",
        "ampacity_direct_a",
        "ampacity_duct_a",
        "r20_ohm_per_km",
        "cost_cny_per_m",
    ),
    ("demand_factors", "rows"): ("households_min", "households_max", "kx_first", "kx_last"),
    ("demand_factors", "cable_floor"): ("households_above", "kx_min"),
}


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Catalogue:
    """Read-only engineering figures with their sources.

    Use :func:`load_catalogue` to build one. ``value(section, key)`` returns one figure,
    ``table(section, key)`` a list of records as a DataFrame, ``source(section, key)`` where
    the figure comes from.
    """

    data: Mapping[str, Any]
    origin: str = field(default="geoplan catalogue")

    def value(self, section: str, key: str) -> Any:
        """Return one figure; a list or table is returned as a tuple."""
        try:
            return self.data[section][key]
        except KeyError:
            msg = f"catalogue has no figure [{section}] {key}"
            raise SettingsError(msg) from None

    def table(self, section: str, key: str) -> pd.DataFrame:
        """Return a list of records (``[[section.key]]`` in TOML) as a new DataFrame."""
        return pd.DataFrame([dict(row) for row in self.value(section, key)])

    def source(self, section: str, key: str) -> str:
        """Return the source of a figure."""
        return str(self.data[section]["sources"][key])

    def to_dict(self) -> dict[str, Any]:
        """Return a mutable deep copy of the catalogue as plain dicts and lists."""
        return _thaw(self.data)


def default_document() -> dict[str, Any]:
    """Return the shipped catalogue as a fresh, mutable document."""
    text = resources.files("geoplan").joinpath(DEFAULT_PATH).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _same_kind(default: Any, new: Any) -> bool:
    if isinstance(default, bool) or isinstance(new, bool):
        return isinstance(default, bool) and isinstance(new, bool)
    if isinstance(default, int | float):
        return isinstance(new, int | float)
    if isinstance(default, list):
        return isinstance(new, list) and (
            not default or all(_same_kind(default[0], item) for item in new)
        )
    if isinstance(default, dict):
        return isinstance(new, dict) and all(
            _same_kind(default[key], item) for key, item in new.items() if key in default
        )
    return isinstance(new, type(default))


def _check(document: Mapping[str, Any], origin: str) -> list[Problem]:
    problems: list[Problem] = []
    for section, body in document.items():
        sources = body.get("sources", {})
        for key in body:
            if key != "sources" and key not in sources:
                problems.append(
                    Problem(f"[{section}] {key} has no entry in [{section}.sources]", file=origin)
                )
    for (section, key), fields in _REQUIRED_TABLE_FIELDS.items():
        rows = document.get(section, {}).get(key, [])
        if not rows:
            problems.append(Problem(f"[{section}] {key} must list at least one row", file=origin))
        for i, row in enumerate(rows, start=1):
            missing = [f for f in fields if f not in row]
            if missing:
                problems.append(
                    Problem(f"[[{section}.{key}]] row {i} lacks {', '.join(missing)}", file=origin)
                )
    return problems


def merge_overrides(
    base: dict[str, Any], overrides: Mapping[str, Any], *, origin: str
) -> tuple[dict[str, Any], list[Problem]]:
    """Return a copy of ``base`` with ``overrides`` applied, and the problems found.

    Parameters
    ----------
    base
        A catalogue document (sections of keys).
    overrides
        Sections of keys to replace; each must exist in ``base`` with the same kind of value.
    origin
        The name of the overriding file, recorded as the source of each overridden figure.

    Returns
    -------
    merged
        The new document.
    problems
        Unknown sections or keys and values of the wrong type.
    """
    merged = copy.deepcopy(base)
    problems: list[Problem] = []
    for section, body in overrides.items():
        if section not in merged:
            known = ", ".join(sorted(merged))
            problems.append(
                Problem(f"unknown section [{section}]; known sections: {known}", file=origin)
            )
            continue
        if not isinstance(body, dict):
            problems.append(Problem(f"[{section}] must be a table of keys", file=origin))
            continue
        for key, new in body.items():
            if key == "sources" or key not in merged[section]:
                known = ", ".join(sorted(k for k in merged[section] if k != "sources"))
                problems.append(
                    Problem(f"unknown key [{section}] {key}; known keys: {known}", file=origin)
                )
                continue
            default = merged[section][key]
            if not _same_kind(default, new):
                problems.append(
                    Problem(
                        f"[{section}] {key} = {new!r} should be a {type(default).__name__} "
                        f"like the default {default!r}",
                        file=origin,
                    )
                )
                continue
            if isinstance(default, dict):
                unknown = sorted(set(new) - set(default))
                if unknown:
                    problems.append(
                        Problem(
                            f"[{section}] {key} has unknown entries {unknown}; "
                            f"known: {sorted(default)}",
                            file=origin,
                        )
                    )
                    continue
                merged[section][key] = {**default, **new}
            else:
                merged[section][key] = new
            merged[section]["sources"][key] = f"{origin} (project override)"
    return merged, problems


def build_catalogue(document: dict[str, Any], *, origin: str) -> Catalogue:
    """Validate a catalogue document and freeze it.

    Raises
    ------
    SettingsError
        A figure lacks a source or a table lacks a required field.
    """
    problems = _check(document, origin)
    if problems:
        raise SettingsError(problems)
    return Catalogue(_freeze(document), origin=origin)


def load_catalogue(overrides: Mapping[str, Any] | None = None, *, origin: str = "") -> Catalogue:
    """Load the shipped catalogue, apply overrides, validate, and freeze it.

    Parameters
    ----------
    overrides
        Sections of keys to replace, as read from a project's ``geoplan.toml``.
    origin
        The file the overrides came from, named in errors and in sources.

    Returns
    -------
    Catalogue
        The validated, read-only catalogue.

    Raises
    ------
    SettingsError
        An override names an unknown section or key or has the wrong type, or the
        catalogue lacks a source for a figure.
    """
    document = default_document()
    if overrides:
        document, problems = merge_overrides(document, overrides, origin=origin or "overrides")
        if problems:
            raise SettingsError(problems)
    return build_catalogue(document, origin=origin or "geoplan/data/catalogue.toml")
