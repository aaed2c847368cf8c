"""The engineering catalogue: equipment and design figures, each with its source.

The defaults ship in ``geoplan/data/catalogue.toml``. A project overrides any figure by
repeating its section and key in ``geoplan.toml``; an override must name a key the
catalogue knows and keep the shape of its default (the same type, the same keys of a
table, a list not empty), stay within what the section's ``allowed`` table declares
(``min``, ``max``, ``above``, ``integer``, ``one_of``, ``key_of``), and its source becomes
the overriding file. The ``allowed`` tables are read with the catalogue but are not
figures: :attr:`Catalogue.data` holds no ``allowed`` key.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import pandas as pd

from .errors import Problem, SettingsError

DEFAULT_PATH = "data/catalogue.toml"
#: The table of each section that declares what values its figures may take.
ALLOWED = "allowed"

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


_RULE_WORDS = ("min", "above", "max", "integer", "one_of", "key_of")


@dataclass(frozen=True)
class _Rule:
    """What one value may be; see :func:`allowed_values`."""

    min: float | None = None
    above: float | None = None
    max: float | None = None
    integer: bool = False
    one_of: tuple[str, ...] | None = None
    key_of: str | None = None

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> _Rule:
        """Read a rule from its table in an ``allowed`` table."""
        unknown = sorted(set(spec) - set(_RULE_WORDS))
        if unknown:
            msg = f"{DEFAULT_PATH}: unknown words {unknown} in an allowed table; use {_RULE_WORDS}"
            raise ValueError(msg)
        one_of = spec.get("one_of")
        return cls(
            min=spec.get("min"),
            above=spec.get("above"),
            max=spec.get("max"),
            integer=bool(spec.get("integer", False)),
            one_of=None if one_of is None else tuple(map(str, one_of)),
            key_of=spec.get("key_of"),
        )

    def describe(self, section: str, figures: Mapping[str, Any]) -> str:
        """Say in words what a value must be (``figures``: the section's, for key_of)."""
        if self.key_of is not None:
            keys = ", ".join(map(str, figures.get(self.key_of, {})))
            return f"one of {keys} (the entries of [{section}] {self.key_of})"
        if self.one_of is not None:
            return f"one of {', '.join(self.one_of)}"
        words = (("at least", self.min), ("above", self.above), ("at most", self.max))
        bounds = " and ".join(f"{word} {bound:g}" for word, bound in words if bound is not None)
        kind = "a whole number" if self.integer else ""
        return ", ".join(part for part in (kind, bounds) if part) or "a finite number"

    def fits(self, value: Any, figures: Mapping[str, Any]) -> bool:
        """Whether ``value`` (of the right type already) is allowed."""
        if self.key_of is not None:
            return value in figures.get(self.key_of, {})
        if self.one_of is not None:
            return value in self.one_of
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True  # not a number: its type was checked against the default
        return (
            math.isfinite(value)
            and not (self.integer and value % 1 != 0)
            and (self.min is None or value >= self.min)
            and (self.above is None or value > self.above)
            and (self.max is None or value <= self.max)
        )


#: A figure's rule, or for a list of rows the rules of its fields.
_Rules = _Rule | dict[str, _Rule]


@cache
def _shipped() -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[tuple[str, str], _Rules]]:
    """Return the shipped figures, ``allowed`` tables and parsed rules, read once."""
    text = resources.files("geoplan").joinpath(DEFAULT_PATH).read_text(encoding="utf-8")
    document = tomllib.loads(text)
    allowed = {section: body.pop(ALLOWED, {}) for section, body in document.items()}
    rules: dict[tuple[str, str], _Rules] = {}
    for section, body in allowed.items():
        for key, spec in body.items():
            default = document[section].get(key)
            if _is_rows(default):
                rules[section, key] = {name: _Rule.parse(s) for name, s in spec.items()}
            else:
                rules[section, key] = _Rule.parse(spec)
    return document, allowed, rules


def _is_rows(default: Any) -> bool:
    """Whether a figure is a list of rows (``[[section.key]]`` in TOML)."""
    return isinstance(default, list) and bool(default) and isinstance(default[0], dict)


def default_document() -> dict[str, Any]:
    """Return the shipped catalogue as a fresh, mutable document (figures and sources)."""
    return copy.deepcopy(_shipped()[0])


def allowed_values() -> dict[str, dict[str, Any]]:
    """Return what values each figure may take, ``{section: {key: rule}}``, as shipped.

    A rule is a table of ``min``, ``max`` (inclusive), ``above`` (exclusive), ``integer``,
    ``one_of`` (choices) and ``key_of`` (a key of another table of the section); for a
    list of rows (``[[section.key]]``) it is a table of such rules by field.
    """
    return copy.deepcopy(_shipped()[1])


def _values(section: str, key: str, value: Any) -> Iterator[tuple[str, str | None, Any]]:
    """Yield ``(where, field, item)`` for each checked item of a figure.

    ``where`` names the item as a message starts: ``[section] key`` for a single value,
    ``[section] key: entry`` for a table's entry, ``[[section.key]] row i field`` for a
    field of a list of rows. ``field`` is the row field's name (its own rule), else None.
    """
    if isinstance(value, Mapping):
        for entry, item in value.items():
            yield f"[{section}] {key}: {entry}", None, item
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value, start=1):
            if isinstance(item, Mapping):
                for name, cell in item.items():
                    yield f"[[{section}.{key}]] row {i} {name}", name, cell
            else:
                yield f"[{section}] {key} value {i}", None, item
    else:
        yield f"[{section}] {key}", None, value


def figure_problems(section: str, key: str, value: Any, *, figures: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with one figure's value against its shipped default and rule.

    A list whose default is not empty must not be empty; every number must be finite;
    every value (of a list, table or list of rows) must keep to the figure's rule in the
    section's ``allowed`` table. The type was checked before (see :func:`merge_overrides`).

    Parameters
    ----------
    section, key
        The figure's name.
    value
        Its value: a number, text, a list, a table or a list of rows.
    figures
        The figures of its section (for a ``key_of`` rule).

    Returns
    -------
    problems
        One message per bad value (empty when all is well); each names the figure.
    """
    document, _, rules = _shipped()
    default = document.get(section, {}).get(key)
    if isinstance(default, list) and default and not value:
        if _is_rows(default):
            return [f"[{section}] {key} must list at least one row"]
        return [f"[{section}] {key} = [] must list at least one value, like the default {default}"]
    rule = rules.get((section, key), _Rule())
    problems = []
    for where, name, item in _values(section, key, value):
        item_rule = rule.get(name, _Rule()) if isinstance(rule, dict) else rule
        if isinstance(item, float) and not math.isfinite(item):
            problems.append(f"{where} = {item!r} must be a finite number")
        elif not item_rule.fits(item, figures):
            problems.append(f"{where} = {item!r} must be {item_rule.describe(section, figures)}")
    return problems


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


def _like(default: Any) -> str:
    """Say what kind of value a figure takes, by its default (a list of rows by its fields)."""
    if _is_rows(default):
        return f"a list of rows, each a table of {', '.join(default[0])}"
    return f"a {type(default).__name__} like the default {default!r}"


def _check(document: Mapping[str, Any], origin: str) -> list[Problem]:
    problems: list[Problem] = []
    for section, body in document.items():
        sources = body.get("sources", {})
        for key, value in body.items():
            if key == "sources":
                continue
            if key not in sources:
                problems.append(
                    Problem(f"[{section}] {key} has no entry in [{section}.sources]", file=origin)
                )
            problems += [
                Problem(message, file=origin)
                for message in figure_problems(section, key, value, figures=body)
            ]
    for (section, key), fields in _REQUIRED_TABLE_FIELDS.items():
        rows = document.get(section, {}).get(key, [])
        if key not in document.get(section, {}):
            problems.append(
                Problem(f"[{section}] {key} is missing; list at least one row", file=origin)
            )
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
        Unknown sections or keys, values of the wrong type or shape, and values outside
        what the section's ``allowed`` table declares.
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
                    Problem(f"[{section}] {key} = {new!r} should be {_like(default)}", file=origin)
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
            value = {**default, **new} if isinstance(default, dict) else new
            figures = {**merged[section], key: value}
            found = figure_problems(section, key, value, figures=figures)
            if found:
                problems += [Problem(message, file=origin) for message in found]
                continue
            merged[section][key] = value
            merged[section]["sources"][key] = f"{origin} (project override)"
    return merged, problems


def build_catalogue(document: dict[str, Any], *, origin: str) -> Catalogue:
    """Validate a catalogue document and freeze it.

    Raises
    ------
    SettingsError
        A figure lacks a source, a table lacks a required field, or a value is empty or
        outside its ``allowed`` rule.
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
        An override names an unknown section or key, has the wrong type or shape or a
        value its ``allowed`` rule refuses, or the catalogue lacks a source for a figure.
    """
    document = default_document()
    if overrides:
        document, problems = merge_overrides(document, overrides, origin=origin or "overrides")
        if problems:
            raise SettingsError(problems)
    return build_catalogue(document, origin=origin or "geoplan/data/catalogue.toml")
