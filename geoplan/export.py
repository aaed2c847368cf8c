"""Write a plan for the GIS and for people: GeoPackage, GeoJSON, CSV and XLSX.

``plan.gpkg`` holds every layer of :data:`geoplan.schema.OUTPUT_LAYERS` in the plan's
working CRS plus the ``summary`` and ``bill_of_quantities`` attribute tables;
``geojson/<layer>.geojson`` follow RFC 7946 (EPSG:4326, counter-clockwise exteriors,
7 decimals); ``summary.csv`` and ``bill_of_quantities.csv`` are UTF-8 with a byte-order
mark so that Excel shows Chinese; ``plan.xlsx`` has one sheet per table.

Every file is first written complete into a hidden staging folder inside the output
folder, synced to disk, and only then moved onto its final name with :func:`os.replace`:
an interrupted export leaves the previous files intact and never a partial file under a
final name. The same plan gives byte-identical files (the GeoPackage and the workbook
carry a fixed timestamp, 2000-01-01).

At city scale (a million street edges, 650,000 features) this takes seconds: GeoJSON
features and sheet rows are put together from whole columns with numpy
(:mod:`geoplan._geojson`, :mod:`geoplan._xlsx`), in the very bytes GDAL and openpyxl
write, and a large plan's GeoPackage and workbook are written by forked processes while
this one writes the GeoJSON and CSV files (:func:`_stage`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors
from pandas.api.types import infer_dtype

from . import _fork, _xlsx
from ._checks import LONLAT
from ._geojson import PRECISION, write_geojson
from .costs import bill_of_quantities
from .errors import LayerError, OutputError, Problem
from .privacy import redact_plan
from .schema import OUTPUT_LAYERS, SUMMARY_COLUMNS

if TYPE_CHECKING:
    from .plan import Plan

logger = logging.getLogger(__name__)

FORMATS = ("gpkg", "geojson", "csv", "xlsx")
GPKG_NAME = "plan.gpkg"
GEOJSON_DIR = "geojson"
XLSX_NAME = "plan.xlsx"
CSV_TABLES = ("summary", "bill_of_quantities")
XLSX_SHEETS = (
    "summary",
    "bill_of_quantities",
    "meter_boxes",
    "cables",
    "trenches",
    "removals",
    "unserved",
)
CSV_ENCODING = "utf-8-sig"

#: The bill of quantities (:func:`geoplan.costs.bill_of_quantities`) as a table spec.
BILL_COLUMNS = (
    ("item_kind", "str", "meter_box, cable, trench or road_crossing"),
    ("item", "str", "box model, cable type, trench surface, or road crossing"),
    ("unit", "str", "unit of the quantity: pcs or m"),
    ("quantity", "float64", "quantity, in the row's unit"),
    ("unit_cost_cny", "float64", "average cost per unit, CNY"),
    ("cost_cny", "float64", "cost, CNY"),
)

#: Every table written, spatial layers first: name -> ((column, dtype, description), ...).
TABLES = MappingProxyType(
    {**OUTPUT_LAYERS, "summary": SUMMARY_COLUMNS, "bill_of_quantities": BILL_COLUMNS}
)

#: Geometry type of each spatial layer, declared as such when the layer is empty; else the
#: features decide (``unserved`` holds the point of the box sited for the block, but may
#: hold block polygons; a layer mixing single and multi-part geometries is promoted to
#: multi-part, one mixing points and polygons is declared ``Unknown``).
GEOMETRY_TYPES = MappingProxyType(
    {
        "meter_boxes": "Point",
        "cables": "LineString",
        "trenches": "LineString",
        "removals": "LineString",
        "unserved": "Point",
    }
)

# The GeoPackage's timestamp, fixed (as the workbook's, FIXED_TIME) for reproducible exports.
_GDAL_DATE = "2000-01-01T00:00:00.000Z"
#: Plans with at least this many features are written in parallel (:func:`_stage`).
_PARALLEL_FEATURES = 20_000
_STAGING_PREFIX = ".geoplan-export-"
_STAGING_SUFFIX = ".tmp"

Table: TypeAlias = gpd.GeoDataFrame | pd.DataFrame


# --- the tables of a plan ----------------------------------------------------------------


def _as(values: pd.Series, dtype: str) -> pd.Series:
    """Return a column as the dtype of the table spec (``str``: text, missing as ``""``)."""
    if dtype != "str":
        return values.astype(dtype, copy=False)
    if values.dtype == object and infer_dtype(values, skipna=False) in ("string", "empty"):
        return values  # text already: checked in C, not converted value by value
    return values.fillna("").astype(str)


def _typed(frame: pd.DataFrame, name: str) -> Table:
    """Return ``frame`` with exactly the table's columns, in order, with their dtypes."""
    spec = TABLES[name]
    missing = [column for column, _, _ in spec if column not in frame.columns]
    if missing:
        msg = f"table {name} lacks the columns {', '.join(missing)}"
        raise ValueError(msg)
    out = pd.DataFrame(
        {column: _as(frame[column].reset_index(drop=True), dtype) for column, dtype, _ in spec},
        index=pd.RangeIndex(len(frame)),
    )
    if name in OUTPUT_LAYERS:
        geometry = gpd.GeoSeries(frame.geometry, crs=frame.crs).reset_index(drop=True)
        return gpd.GeoDataFrame(out, geometry=geometry.rename("geometry"), crs=frame.crs)
    return out


def plan_tables(plan: Plan) -> dict[str, Table]:
    """Return the tables an export writes, in the order they are written.

    Parameters
    ----------
    plan
        The plan.

    Returns
    -------
    tables
        The five spatial layers of :data:`geoplan.schema.OUTPUT_LAYERS` (GeoDataFrames in
        the working CRS), then ``summary`` and ``bill_of_quantities`` (DataFrames), each
        with exactly the columns and dtypes of :data:`TABLES`; phone and ID numbers in
        them masked unless the plan's settings say ``include_personal``
        (:func:`geoplan.privacy.redact_plan`).
    """
    plan = redact_plan(plan)
    bill = bill_of_quantities(
        plan.meter_boxes, plan.cables, plan.trenches, catalogue=plan.settings.catalogue
    )
    frames = {name: getattr(plan, name) for name in OUTPUT_LAYERS}
    frames["summary"] = plan.summary
    frames["bill_of_quantities"] = bill
    return {name: _typed(frames[name], name) for name in TABLES}


# --- refusing bad output folders ---------------------------------------------------------


def _input_folders(inputs: Iterable[str | Path]) -> dict[Path, Path]:
    """Return ``{folder: an input file in it}`` for the files the layers came from."""
    folders: dict[Path, Path] = {}
    for source in inputs:
        file = Path(source).resolve()
        folders.setdefault(file if file.is_dir() else file.parent, file)
    return folders


def _check_out_dir(out_dir: Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output folder that is, or would write into, the input layers' folder."""
    target = out_dir.resolve()
    for folder, file in _input_folders(inputs).items():
        if folder in (target, target / GEOJSON_DIR):
            msg = (
                f"this folder holds the input layers ({file.name}); the plan is never "
                f"written beside its inputs: choose another output folder, "
                f"e.g. {folder.parent / (folder.name + '_plan')}"
            )
            raise OutputError(Problem(msg, file=str(out_dir)))


def check_out_dir(out_dir: str | Path, *, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse, before any planning, an output folder that cannot take the plan.

    Raises
    ------
    OutputError
        ``out_dir`` is the input layers' folder, is a file, or lies under a file.
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, inputs)
    existing = next((p for p in (out_dir, *out_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise _unwritable(out_dir, NotADirectoryError(f"{existing} is a file"))


def _unwritable(out_dir: Path, exc: BaseException) -> OutputError:
    if out_dir.exists() and not out_dir.is_dir():
        msg = "this is a file, not a folder; give a folder for the plan's files"
        return OutputError(Problem(msg, file=str(out_dir)))
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    msg = f"cannot write the plan here ({reason}); choose a folder you can write to"
    return OutputError(Problem(msg, file=str(out_dir)))


# --- crash-safe files ----------------------------------------------------------------------


def _sync(path: Path) -> None:
    """Flush a written file to disk."""
    with path.open("r+b") as handle:
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (renames) to disk, where the OS allows it."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder to sync it
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write a new file and flush it to disk."""
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _commit(staging: Path, out_dir: Path, names: Sequence[str]) -> list[Path]:
    """Move staged files onto their final names, each in one atomic step."""
    written = []
    folders = {out_dir}
    for name in names:
        final = out_dir / name
        final.parent.mkdir(exist_ok=True)
        folders.add(final.parent)
        (staging / name).replace(final)
        written.append(final)
    for folder in sorted(folders):
        _sync_folder(folder)
    return written


def _remove_stale_staging(out_dir: Path) -> None:
    """Remove staging folders left by exports that were killed (their process is gone)."""
    if os.name != "posix":  # pragma: no cover - no cheap liveness check
        return
    for folder in out_dir.glob(f"{_STAGING_PREFIX}*{_STAGING_SUFFIX}"):
        pid_text = folder.name.removeprefix(_STAGING_PREFIX).split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            logger.info("removing %s, left by an interrupted export", folder)
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive, but another user's process
            continue


@contextlib.contextmanager
def _gdal_date() -> Iterator[None]:
    """Let GDAL stamp the GeoPackage with the fixed date, then restore the option."""
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _GDAL_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


# --- writers -------------------------------------------------------------------------------


def _geometry_type(frame: gpd.GeoDataFrame, name: str) -> tuple[str, bool]:
    """Return the layer geometry type to declare and whether to promote to multi-parts."""
    kinds = set(frame.geom_type.dropna())
    if not kinds:
        return GEOMETRY_TYPES[name], False
    bases = {kind.removeprefix("Multi") for kind in kinds}
    if len(bases) > 1:
        return "Unknown", False
    (base,) = bases
    return (base, False) if kinds == {base} else (f"Multi{base}", True)


def _write_layer(frame: Table, path: Path, name: str, **options: object) -> None:
    if isinstance(frame, gpd.GeoDataFrame):
        geometry_type, promote = _geometry_type(frame, name)
        options |= {"geometry_type": geometry_type, "promote_to_multi": promote}
    pyogrio.write_dataframe(frame, path, layer=name, **options)


def _write_gpkg(tables: Mapping[str, Table], path: Path) -> None:
    """Write every table into one GeoPackage, through Arrow.

    Arrow hands GDAL whole columns (a third faster at city scale); the file is the same.
    """
    with _gdal_date():
        for name, frame in tables.items():
            _write_layer(frame, path, name, driver="GPKG", use_arrow=True)
    _sync(path)


def _write_geojson(frame: gpd.GeoDataFrame, path: Path, name: str) -> None:
    """Write a layer as RFC 7946 GeoJSON, byte for byte as GDAL writes it.

    Most features are written by :func:`geoplan._geojson.write_geojson`, at numpy speed.
    """
    geometry_type, promote = _geometry_type(frame, name)

    def gdal(lonlat: gpd.GeoDataFrame, target: Path) -> None:
        pyogrio.write_dataframe(
            lonlat,
            target,
            layer=name,
            driver="GeoJSON",
            geometry_type=geometry_type,
            promote_to_multi=promote,
            layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": str(PRECISION)},
        )

    if promote:
        gdal(frame.to_crs(LONLAT), path)
    else:
        write_geojson(frame, path, gdal)
    _sync(path)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, lineterminator="\r\n")
    return text.encode(CSV_ENCODING)


def _xlsx_bytes(tables: Mapping[str, Table]) -> bytes:
    """Return the workbook: one sheet per table of :data:`XLSX_SHEETS`."""
    return _xlsx.xlsx_bytes({name: tables[name] for name in XLSX_SHEETS})


def _staged_names(formats: Sequence[str]) -> list[str]:
    """Return the files written for ``formats``, relative to the output folder, in order."""
    names = {
        "gpkg": [GPKG_NAME],
        "geojson": [f"{GEOJSON_DIR}/{name}.geojson" for name in OUTPUT_LAYERS],
        "csv": [f"{name}.csv" for name in CSV_TABLES],
        "xlsx": [XLSX_NAME],
    }
    return [name for kind in formats for name in names[kind]]


# --- writing in parallel -------------------------------------------------------------------


def _write_xlsx(tables: Mapping[str, Table], path: Path) -> None:
    """Write the workbook (through :func:`_write_bytes`, which the crash tests replace)."""
    _write_bytes(path, _xlsx_bytes(tables))


def _stage(tables: Mapping[str, Table], staging: Path, formats: Sequence[str]) -> list[str]:
    """Write every requested file into ``staging``; return their names, relative to it.

    A large plan is written by three processes at once: forked children write the
    GeoPackage (GDAL, which holds the GIL) and the workbook, this one the GeoJSON and CSV
    files. A child that fails has its file written here after all (which raises the
    error it met, if it meets it again).
    """
    in_children = sum(len(tables[name]) for name in OUTPUT_LAYERS) >= _PARALLEL_FEATURES
    writers = {
        "gpkg": (GPKG_NAME, functools.partial(_write_gpkg, tables, staging / GPKG_NAME)),
        "xlsx": (XLSX_NAME, functools.partial(_write_xlsx, tables, staging / XLSX_NAME)),
    }
    children = {
        kind: _fork.start_in_child(write)
        for kind, (_, write) in writers.items()
        if in_children and kind in formats
    }
    try:
        if "gpkg" in formats and children.get("gpkg") is None:
            writers["gpkg"][1]()
        if "geojson" in formats:
            (staging / GEOJSON_DIR).mkdir()
            for name in OUTPUT_LAYERS:
                _write_geojson(tables[name], staging / GEOJSON_DIR / f"{name}.geojson", name)
        if "csv" in formats:
            for name in CSV_TABLES:
                _write_bytes(staging / f"{name}.csv", _csv_bytes(tables[name]))
        if "xlsx" in formats and children.get("xlsx") is None:
            writers["xlsx"][1]()
    except BaseException:
        for child in children.values():
            if child is not None:
                child.kill()
                child.join()
        raise
    for kind, child in children.items():
        if child is None:
            continue
        child.join()
        if child.exitcode != 0:
            name, write = writers[kind]
            for leftover in staging.glob(f"{name}*"):
                leftover.unlink()
            write()
    return _staged_names(formats)


def _check_formats(formats: Sequence[str]) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        msg = f"unknown export format {', '.join(map(repr, unknown))}; use {', '.join(FORMATS)}"
        raise OutputError(msg)
    return [f for f in FORMATS if f in formats]


# --- public API ----------------------------------------------------------------------------


def export_tables(
    tables: Mapping[str, Table],
    out_dir: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    inputs: Iterable[str | Path] = (),
) -> list[Path]:
    """Write a plan's tables into ``out_dir``, each file atomically.

    Parameters
    ----------
    tables
        Every table of :data:`TABLES`, as :func:`plan_tables` or
        :func:`read_plan_layers` return them; the spatial layers share one CRS.
    out_dir
        The output folder, created if missing.
    formats
        Any of :data:`FORMATS`: ``gpkg`` (``plan.gpkg``), ``geojson``
        (``geojson/<layer>.geojson``), ``csv`` (``summary.csv``,
        ``bill_of_quantities.csv``), ``xlsx`` (``plan.xlsx``).
    inputs
        The files the plan's layers were read from: their folder is refused.

    Returns
    -------
    written
        The files written, in the order of :data:`FORMATS`.

    Raises
    ------
    OutputError
        An unknown format; ``out_dir`` is the input layers' folder, or cannot be
        created or written to.
    """
    chosen = _check_formats(formats)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, inputs)
    missing = [name for name in TABLES if name not in tables]
    if missing:
        msg = f"tables missing from the plan: {', '.join(missing)}"
        raise ValueError(msg)
    return _export({name: _typed(tables[name], name) for name in TABLES}, out_dir, chosen)


def _export(typed: Mapping[str, Table], out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write tables as :func:`export_tables` does, once they have their columns and dtypes.

    ``formats`` and ``out_dir`` are checked already.
    """
    crs = {name: typed[name].crs for name in OUTPUT_LAYERS}
    if any(value is None for value in crs.values()) or len(set(crs.values())) > 1:
        msg = f"the plan's layers must share one CRS; they have {crs}"
        raise ValueError(msg)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(out_dir)
        staging = Path(
            tempfile.mkdtemp(
                prefix=f"{_STAGING_PREFIX}{os.getpid()}-", suffix=_STAGING_SUFFIX, dir=out_dir
            )
        )
    except OSError as exc:
        raise _unwritable(out_dir, exc) from exc
    try:
        names = _stage(typed, staging, formats)
        written = _commit(staging, out_dir, names)
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        raise _unwritable(out_dir, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d files to %s", len(written), out_dir)
    return written


def export_plan(plan: Plan, out_dir: str | Path, *, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write a plan as GeoPackage, GeoJSON, CSV and XLSX files.

    Each file appears only when complete (written beside it, synced, then renamed), so
    an interrupted export leaves the previous one intact. The same plan gives the same
    bytes. See ``docs/schema.md`` for the files, columns, types, units and CRS.

    Parameters
    ----------
    plan
        The plan to write.
    out_dir
        The output folder, created if missing; never the input layers' folder.
    formats
        Any of :data:`FORMATS`.

    Returns
    -------
    written
        The files written, in the order of :data:`FORMATS`.

    Raises
    ------
    OutputError
        An unknown format; ``out_dir`` is the input layers' folder, or cannot be
        created or written to.
    """
    tables = plan_tables(plan)  # typed already
    chosen = _check_formats(formats)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, plan.layers.sources.values())
    return _export(tables, out_dir, chosen)


def read_plan_layers(out_dir: str | Path) -> dict[str, Table]:
    """Read the tables of an exported plan back from its ``plan.gpkg``.

    Parameters
    ----------
    out_dir
        A folder :func:`export_plan` wrote (with ``plan.gpkg``), or the GeoPackage.

    Returns
    -------
    tables
        Every table of :data:`TABLES`: the spatial layers as GeoDataFrames in the plan's
        working CRS, ``summary`` and ``bill_of_quantities`` as DataFrames; columns and
        dtypes as documented (extra columns are dropped).

    Raises
    ------
    LayerError
        No ``plan.gpkg``, or a table or column missing from it.
    """
    out_dir = Path(out_dir)
    path = out_dir if out_dir.is_file() else out_dir / GPKG_NAME
    if not path.is_file():
        msg = f"no {GPKG_NAME} here; write one with geoplan plan LAYERS --out {out_dir}"
        raise LayerError(Problem(msg, file=str(out_dir)))
    try:
        present = {str(name) for name in pyogrio.list_layers(path)[:, 0]}
    except pyogrio.errors.DataSourceError as exc:
        raise LayerError(Problem(f"cannot read it ({exc})", file=str(path))) from exc
    problems = [
        Problem("table missing; export the plan again", file=str(path), layer=name)
        for name in TABLES
        if name not in present
    ]
    tables: dict[str, Table] = {}
    for name in TABLES:
        if name not in present:
            continue
        frame = pyogrio.read_dataframe(path, layer=name)
        absent = [column for column, _, _ in TABLES[name] if column not in frame.columns]
        if absent:
            msg = f"columns missing: {', '.join(absent)}; export the plan again"
            problems.append(Problem(msg, file=str(path), layer=name))
            continue
        tables[name] = _typed(frame, name)
    if problems:
        raise LayerError(problems)
    return tables


# --- documentation -------------------------------------------------------------------------

_UNITS = (
    ("_mm2", "mm²"),
    ("_kva", "kVA"),
    ("_kw", "kW"),
    ("_pct", "%"),
    ("_cny", "CNY"),
    ("_m", "m"),
    ("_a", "A"),
)
_FIELD_TYPES = {
    "str": ("String", "string"),
    "int64": ("Integer64", "number (integer)"),
    "float64": ("Real", "number"),
    "bool": ("Integer (Boolean)", "boolean"),
}
_UNIT_SUFFIXES = ", ".join(f"`*{suffix}` {unit}" for suffix, unit in _UNITS)


def _unit(column: str) -> str:
    for suffix, unit in _UNITS:
        if column.endswith(suffix):
            return unit
    return "per `unit`" if column == "quantity" else ""


def _table_markdown(name: str) -> list[str]:
    if name in GEOMETRY_TYPES:
        geometry = "Point (the box), or Polygon (the block)" if name == "unserved" else None
        kind = f"layer, geometry {geometry or GEOMETRY_TYPES[name]}"
        where = "`plan.gpkg`, `geojson/" + name + ".geojson`"
    else:
        kind = "table, no geometry"
        where = f"`plan.gpkg`, `{name}.csv`"
    if name in XLSX_SHEETS:
        where += ", `plan.xlsx`"
    lines = [
        f"### {name}",
        "",
        f"{kind}; in {where}.",
        "",
        "| column | GeoPackage | GeoJSON | pandas | unit | description |",
        "|---|---|---|---|---|---|",
    ]
    for column, dtype, description in TABLES[name]:
        gpkg_type, json_type = _FIELD_TYPES[dtype]
        text = description.replace("|", "\\|").replace("<", "\\<")
        lines.append(
            f"| {column} | {gpkg_type} | {json_type} | {dtype} | {_unit(column)} | {text} |"
        )
    return [*lines, ""]


def schema_markdown() -> str:
    """Return ``docs/schema.md``: every output file, layer, column, type, unit and CRS.

    Generated from :mod:`geoplan.schema` and this module, so the documentation cannot
    drift from what is written; a test compares the committed file with it.

    Returns
    -------
    markdown
        The document, ending with a newline.
    """
    lines = [
        "# Output schema",
        "",
        "<!-- Generated by geoplan.export.schema_markdown() from geoplan/schema.py; do not",
        "edit by hand. Regenerate with:",
        "python -c 'from geoplan.export import schema_markdown as s; print(s(), end=\"\")'"
        " > docs/schema.md -->",
        "",
        "`geoplan plan LAYERS --out DIR` writes these files into `DIR`; the columns below are",
        "the contract GIS staff and spreadsheets can rely on: exactly these columns, in this",
        "order, with these types.",
        "",
        "## Files",
        "",
        "| file | content | CRS |",
        "|---|---|---|",
        f"| `{GPKG_NAME}` | every layer below plus the tables `summary` and "
        "`bill_of_quantities` (GeoPackage attribute tables) | the plan's working CRS |",
        f"| `{GEOJSON_DIR}/<layer>.geojson` | one file per layer, RFC 7946 | EPSG:4326 |",
        "| `summary.csv`, `bill_of_quantities.csv` | the two tables, UTF-8 with a "
        "byte-order mark (Excel shows Chinese), comma-separated, CRLF line ends | — |",
        f"| `{XLSX_NAME}` | one sheet each: {', '.join(XLSX_SHEETS)} (attributes, no "
        "geometry) | — |",
        "",
        "Each file is replaced in one step when complete: an interrupted export leaves the",
        "previous file intact. The same plan gives byte-identical GeoJSON, CSV and XLSX",
        "files, and a GeoPackage with the same content (stamped 2000-01-01).",
        "",
        "## Coordinate reference systems",
        "",
        "- **GeoPackage**: the plan's projected working CRS, in metres: `[plan] crs` in",
        "  `geoplan.toml` or `--crs`, by default the local UTM zone — for Wuhai",
        '  WGS 84 / UTM zone 48N (EPSG:32648); with `crs = "EPSG:4545"`, CGCS2000 /',
        "  3-degree Gauss-Kruger CM 108E. The CRS is stored in the file; QGIS and ArcGIS",
        "  pick it up.",
        "- **GeoJSON**: RFC 7946: WGS 84 longitude/latitude (EPSG:4326), longitude first,",
        f"  {PRECISION} decimals (about 1 cm), polygon exteriors counter-clockwise,"
        " no `crs` member.",
        "- **CSV, XLSX**: no geometry; lengths and costs are columns.",
        "",
        "## Types and units",
        "",
        'Text is UTF-8 (Chinese names intact); an empty text is `""`, not null. A boolean',
        "is an Integer field of subtype Boolean in the GeoPackage (0/1), `true`/`false` in",
        f"GeoJSON. Units follow the column name: {_UNIT_SUFFIXES}.",
        "",
        "GeoJSON carries no field types: readers guess them from the values (GDAL reads a",
        "number column whose values are all whole as Integer). Where the type matters, read",
        "the GeoPackage.",
        "",
        "## Importing",
        "",
        "- QGIS: drag `plan.gpkg` onto the map; pick the layers, and the tables `summary` and",
        "  `bill_of_quantities` (they open as attribute tables).",
        "- ArcGIS Pro: Add Data, then `plan.gpkg`; a Boolean field shows as a short integer.",
        "- Web maps and tools that want RFC 7946: the files in `geojson/`.",
        "- Excel: open `plan.xlsx`, or the CSV files directly (the byte-order mark tells Excel",
        "  they are UTF-8).",
        "",
        "## Layers",
        "",
    ]
    for name in OUTPUT_LAYERS:
        lines += _table_markdown(name)
    lines += ["## Tables", ""]
    for name in ("summary", "bill_of_quantities"):
        lines += _table_markdown(name)
    return "\n".join(lines).rstrip("\n") + "\n"
