"""The frozen settings object: catalogue defaults < ``geoplan.toml`` < command-line flags.

A project file ``geoplan.toml`` beside the layers may hold a ``[plan]`` table of run
options and any catalogue section to override, for example::

    [plan]
    crs = "EPSG:4545"          # CGCS2000 / 3-degree Gauss-Kruger CM 108E
    load_basis = "applicants"
    include_personal = false   # the default: personal data stays out of maps and exports

    [voltage]
    drop_limit_pct = 5.0

Flags override both: run options by name, catalogue figures as ``SECTION.KEY=VALUE``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pyproj

from .catalogue import (
    Catalogue,
    build_catalogue,
    default_document,
    load_catalogue,
    merge_overrides,
)
from .errors import Problem, SettingsError

SETTINGS_FILE = "geoplan.toml"
LOAD_BASES = ("rooms", "applicants")


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides the layers.

    Parameters
    ----------
    crs
        The projected, metric working CRS (any string pyproj accepts), or None for the
        local UTM zone of the layers.
    load_basis
        Size boxes' and cables' design load for all storage ``rooms`` (spare positions
        included) or only for the ``applicants``.
    include_personal
        Keep input columns that look personal (resident names, phone and ID numbers) and
        leave phone and ID numbers in names and ids unmasked; by default they are left
        out of the plan, its maps and its exports (see :mod:`geoplan.privacy`).
    catalogue
        Engineering figures with their sources.
    files
        The settings files that were read, in order.
    """

    crs: str | None = None
    load_basis: str = "rooms"
    include_personal: bool = False
    catalogue: Catalogue = field(default_factory=load_catalogue)
    files: tuple[str, ...] = ()

    def with_options(self, **options: Any) -> Settings:
        """Return a copy with run options replaced (validated)."""
        _check_options(options, origin="arguments")
        return replace(self, **options)

    def with_overrides(
        self, overrides: Mapping[str, Mapping[str, Any]], *, origin: str = "with_overrides"
    ) -> Settings:
        """Return a copy with catalogue figures replaced, checked as ``--set`` checks them.

        Parameters
        ----------
        overrides
            Figures to replace, ``{section: {key: value}}``; a table (such as
            ``{"supply": {"radius_m": {"B": 300.0}}}``) replaces only the entries given.
        origin
            Where the overrides come from, named in errors and recorded as the source
            of each figure replaced (``"<origin> (project override)"``).

        Returns
        -------
        Settings
            New frozen settings; this one is unchanged.

        Raises
        ------
        SettingsError
            With every unknown key and every value of the wrong type or shape or outside
            what the catalogue allows.
        """
        document, problems = merge_overrides(self.catalogue.to_dict(), overrides, origin=origin)
        if problems:
            raise SettingsError(problems)
        return replace(self, catalogue=build_catalogue(document, origin=self.catalogue.origin))


_OPTION_NAMES = tuple(f.name for f in fields(Settings) if f.name not in {"catalogue", "files"})


def _check_options(options: Mapping[str, Any], *, origin: str) -> None:
    problems: list[Problem] = []
    for key, value in options.items():
        if key not in _OPTION_NAMES:
            problems.append(
                Problem(
                    f"unknown option [plan] {key}; known options: {', '.join(_OPTION_NAMES)}",
                    file=origin,
                )
            )
        elif key == "load_basis" and value not in LOAD_BASES:
            problems.append(
                Problem(
                    f"[plan] load_basis = {value!r} must be one of {', '.join(LOAD_BASES)}",
                    file=origin,
                )
            )
        elif key == "crs" and value is not None:
            problems.extend(_check_crs(value, origin))
        elif key == "include_personal" and not isinstance(value, bool):
            problems.append(
                Problem(
                    f"[plan] include_personal = {value!r} must be true or false",
                    file=origin,
                )
            )
    if problems:
        raise SettingsError(problems)


def _check_crs(value: object, origin: str) -> list[Problem]:
    if not isinstance(value, str):
        return [
            Problem(f"[plan] crs = {value!r} must be a string such as 'EPSG:4545'", file=origin)
        ]
    try:
        crs = pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError:
        return [Problem(f"[plan] crs = {value!r} is not a CRS pyproj knows", file=origin)]
    if not crs.is_projected or crs.axis_info[0].unit_name not in {"metre", "meter"}:
        return [
            Problem(
                f"[plan] crs = {value!r} is not a projected CRS in metres; use e.g. EPSG:4545",
                file=origin,
            )
        ]
    return []


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        problem = Problem(f"not valid TOML ({exc}); fix the syntax", file=str(path))
        raise SettingsError(problem) from None
    except UnicodeDecodeError:
        problem = Problem("is not UTF-8 text; save it as UTF-8", file=str(path))
        raise SettingsError(problem) from None
    except OSError as exc:
        raise SettingsError(Problem(f"cannot read ({exc.strerror})", file=str(path))) from None


def parse_assignments(assignments: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Turn ``SECTION.KEY=VALUE`` strings into nested overrides; VALUE is read as TOML.

    A bare word that is not valid TOML is taken as a string.
    """
    out: dict[str, dict[str, Any]] = {}
    for text in assignments:
        name, sep, raw = text.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or not section or not key:
            msg = f"--set {text!r}: write SECTION.KEY=VALUE, e.g. voltage.drop_limit_pct=5"
            raise SettingsError(msg)
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out.setdefault(section, {})[key] = value
    return out


def load_settings(
    layers_path: str | Path | None = None,
    *,
    settings_file: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings for a run.

    Parameters
    ----------
    layers_path
        The layer folder (or GeoPackage); a ``geoplan.toml`` beside or inside it is read.
    settings_file
        An explicit settings file, read instead of the one found beside the layers.
    options
        Run options from the command line (``crs``, ``load_basis``,
        ``include_personal``), overriding the file; a None value is not given.
    overrides
        Catalogue figures from the command line, ``{section: {key: value}}``.

    Returns
    -------
    Settings
        The frozen settings.

    Raises
    ------
    SettingsError
        A settings file is unreadable, or it or the flags give unknown keys, values of
        the wrong type or shape (an empty list, unknown entries of a table) or values
        outside what the catalogue's ``allowed`` tables declare; every problem is listed.
    """
    path: Path | None = None
    if settings_file is not None:
        path = Path(settings_file)
        if not path.is_file():
            raise SettingsError(Problem("settings file not found", file=str(path)))
    elif layers_path is not None:
        layers_path = Path(layers_path)
        folder = layers_path if layers_path.is_dir() else layers_path.parent
        candidate = folder / SETTINGS_FILE
        path = candidate if candidate.is_file() else None

    document = default_document()
    plan_options: dict[str, Any] = {}
    files: list[str] = []
    problems: list[Problem] = []
    if path is not None:
        project = _read_toml(path)
        plan = project.pop("plan", {})
        document, problems = merge_overrides(document, project, origin=str(path))
        files.append(str(path))
        if isinstance(plan, dict):
            plan_options = plan
            try:
                _check_options(plan_options, origin=str(path))
            except SettingsError as exc:
                problems += exc.problems
        else:
            problems.append(Problem("[plan] must be a table of options", file=str(path)))
    if overrides:
        document, more = merge_overrides(document, overrides, origin="--set")
        problems += more
    flag_options = {k: v for k, v in (options or {}).items() if v is not None}
    try:
        _check_options(flag_options, origin="command line")
    except SettingsError as exc:
        problems += exc.problems
    if problems:
        raise SettingsError(problems)
    plan_options.update(flag_options)
    catalogue = build_catalogue(document, origin=" + ".join(files) or "geoplan catalogue")
    return Settings(catalogue=catalogue, files=tuple(files), **plan_options)
