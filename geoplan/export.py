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
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
from openpyxl.utils import get_column_letter
from pandas.api.types import infer_dtype

from ._geojson import PRECISION, write_geojson
from .costs import bill_of_quantities
from .errors import LayerError, OutputError, Problem
from .privacy import redact_plan
from .schema import OUTPUT_LAYERS, SUMMARY_COLUMNS

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

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
GEOJSON_PRECISION = 7
CSV_ENCODING = "utf-8-sig"
GEOGRAPHIC_CRS = "EPSG:4326"

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

# The workbook's and the GeoPackage's timestamp, fixed so that exports are reproducible.
FIXED_TIME = datetime(2000, 1, 1)
_GDAL_DATE = "2000-01-01T00:00:00.000Z"
_CORE_TIMES = re.compile(rb"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)")
_STAGING_PREFIX = ".geoplan-export-"
_STAGING_SUFFIX = ".tmp"

Table: TypeAlias = gpd.GeoDataFrame | pd.DataFrame


# --- the tables of a plan ----------------------------------------------------------------


def _typed(frame: pd.DataFrame, name: str) -> Table:
    """Return ``frame`` with exactly the table's columns, in order, with their dtypes."""
    spec = TABLES[name]
    missing = [column for column, _, _ in spec if column not in frame.columns]
    if missing:
        msg = f"table {name} lacks the columns {', '.join(missing)}"
        raise ValueError(msg)
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column, dtype, _ in spec:
        values = frame[column].reset_index(drop=True)
        out[column] = values.fillna("").astype(str) if dtype == "str" else values.astype(dtype)
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
    with _gdal_date():
        for name, frame in tables.items():
            _write_layer(frame, path, name, driver="GPKG")
    _sync(path)


def _write_geojson(frame: gpd.GeoDataFrame, path: Path, name: str) -> None:
    """Write a layer as RFC 7946 GeoJSON, byte for byte as GDAL writes it.

    Most features are written by :func:`geoplan._geojson.write_geojson`, at numpy speed.
    """
    lonlat = frame.to_crs(GEOGRAPHIC_CRS)
    geometry_type, promote = _geometry_type(lonlat, name)

    def gdal(part: gpd.GeoDataFrame, target: Path) -> None:
        pyogrio.write_dataframe(
            part,
            target,
            layer=name,
            driver="GeoJSON",
            geometry_type=geometry_type,
            promote_to_multi=promote,
            layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": str(GEOJSON_PRECISION)},
        )

    if promote or GEOJSON_PRECISION != PRECISION:
        gdal(lonlat, path)
    else:
        write_geojson(lonlat, path, gdal)
    _sync(path)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, lineterminator="\r\n")
    return text.encode(CSV_ENCODING)


def _display_width(value: object) -> int:
    """Return the width of a cell's text, counting CJK characters as two columns."""
    text = f"{value:,.2f}" if isinstance(value, float) else str(value)
    return len(text) + sum(1 for ch in text if ord(ch) > 0x2E80)


@dataclasses.dataclass(frozen=True)
class _Texts:
    """The distinct texts of a column, and what the workbook writer needs to know of them.

    Parameters
    ----------
    codes
        Each row's index into ``texts``.
    texts
        The distinct texts, ``&``, ``<`` and ``>`` escaped for XML.
    plain
        Whether openpyxl writes every text as it is (see :data:`_PLAIN_TEXT`).
    widest
        The largest :func:`_display_width`.
    """

    codes: np.ndarray
    texts: list[str]
    plain: bool
    widest: int


def _code_points(text: str) -> np.ndarray:
    """Return the code points of a text, one array element per character."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _spaces(points: np.ndarray) -> np.ndarray:
    r"""Return which code points are white space (``\s``), leaving out control codes."""
    space = points == ord(" ")
    wide = np.flatnonzero(points > 0x7F)
    if len(wide):
        found = np.unique(points[wide])
        spaces = found[[chr(c).isspace() for c in found.tolist()]]
        space[wide] = np.isin(points[wide], spaces)
    return space


def _texts(values: np.ndarray) -> _Texts | None:
    """Return the distinct texts of an object array and their facts; None unless all text.

    All the texts are looked at together, with numpy: a city's sheets hold millions of
    cells.
    """
    if len(values) == 0:
        return _Texts(np.zeros(0, dtype=np.intp), [], plain=True, widest=0)
    if infer_dtype(values, skipna=False) != "string":
        return None
    codes, uniques = pd.factorize(values)
    texts: list[str] = list(uniques)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    points = _code_points("".join(texts))
    widths = lengths
    if points.dtype != np.uint8:  # CJK characters take two columns
        wide = np.concatenate([[0], np.cumsum(points > 0x2E80)])
        widths = lengths + wide[ends] - wide[starts]
    filled = lengths > 0
    first, last = points[starts[filled]], points[ends[filled] - 1]
    plain = not (
        lengths.max() > 32767
        or (points < 0x20).any()  # control characters
        or (first == ord("=")).any()  # a formula
        or ((first == ord("#")) & (lengths[filled] > 1)).any()  # an error code
        or _spaces(np.concatenate([first, last])).any()
    )
    special = (points == ord("&")) | (points == ord("<")) | (points == ord(">"))
    for index in np.unique(np.searchsorted(ends, np.flatnonzero(special), side="right")):
        texts[index] = _escape(texts[index])
    return _Texts(codes, texts, plain=plain, widest=int(widths.max()))


def _widest(values: pd.Series, texts: _Texts | None = None) -> int:
    """Return the largest :func:`_display_width` of a column's values, vectorised.

    The width of ``f"{v:,.2f}"`` (floats) and ``str(v)`` (integers) grows with ``|v|``,
    so the extremes decide; text is measured by :func:`_texts` (or ``texts``, its result
    for this column).
    """
    if len(values) == 0:
        return 0
    array = values.to_numpy()
    if pd.api.types.is_bool_dtype(values):
        return max(len(str(bool(v))) for v in np.unique(array))
    if pd.api.types.is_integer_dtype(values):
        return max(len(str(array.min())), len(str(array.max())))
    if pd.api.types.is_float_dtype(values):
        finite = np.isfinite(array)
        extremes = [float(v) for v in set(array[~finite].tolist())]  # nan, inf, -inf
        if finite.any():
            extremes += [float(array[finite].min()), float(array[finite].max())]
        return max(_display_width(v) for v in extremes)
    texts = texts or (_texts(array) if array.dtype == object else None)
    if texts is not None:
        return texts.widest
    return max(_display_width(v) for v in pd.unique(array))


def _number_format(column: str) -> str:
    if column.endswith("_cny"):
        return "#,##0.00"
    if column.endswith("_m"):
        return "#,##0.0"
    return "0.00"


def _format_sheet(
    sheet: Worksheet, frame: pd.DataFrame, texts: Sequence[_Texts | None] = ()
) -> None:
    """Freeze and filter the header row, size columns, format numbers.

    ``sheet`` may hold only the first rows of ``frame`` (:func:`_xlsx_bytes` writes the
    rest itself): the filter and the widths cover all of ``frame``. ``texts`` holds
    :func:`_texts` of the columns, where already known.
    """
    sheet.freeze_panes = "A2"
    if len(frame) and len(frame.columns):
        last = get_column_letter(len(frame.columns))
        sheet.auto_filter.ref = f"A1:{last}{len(frame) + 1}"
    for index, column in enumerate(frame.columns, start=1):
        letter = get_column_letter(index)
        values = frame.iloc[:, index - 1]
        known = texts[index - 1] if texts else None
        widest = max(_display_width(column), _widest(values, known))
        sheet.column_dimensions[letter].width = min(widest + 2, 60)
        if pd.api.types.is_float_dtype(values):
            number_format = _number_format(column)
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = number_format


# Text openpyxl writes as it is (escaping &, <, >): no control characters, no formula or
# error code, no surrounding white space, not too long. (:func:`_texts` checks just this.)
_PLAIN_TEXT = re.compile(r"[^\x00-\x1f=\s#][^\x00-\x1f]*(?<!\s)|[^\x00-\x1f=\s]?", re.DOTALL)
_PLAIN_DTYPES = ("int64", "float64", "bool")


def _column_texts(frame: pd.DataFrame) -> list[_Texts | None] | None:
    """Return :func:`_texts` of each column (None for numbers); None if not :func:`_plain`."""
    out: list[_Texts | None] = []
    for index in range(len(frame.columns)):
        values = frame.iloc[:, index]
        if str(values.dtype) in _PLAIN_DTYPES:
            out.append(None)
            continue
        texts = _texts(values.to_numpy()) if values.dtype == object else None
        if texts is None or not texts.plain:
            return None
        out.append(texts)
    return out


def _plain(frame: pd.DataFrame) -> bool:
    """Whether :func:`_sheet_rows` writes ``frame`` exactly as pandas and openpyxl would."""
    return _column_texts(frame) is not None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Integers up to this size are exact as floats: ``str`` writes them as ``.16g`` does.
_EXACT_INT = 2**53
#: Rows of a sheet put together at once, which bounds the memory their pieces take.
_ROWS_AT_ONCE = 1 << 15

_Piece: TypeAlias = str | np.ndarray


def _number_texts(values: np.ndarray) -> np.ndarray:
    """Return each value's ``.16g`` text (``""`` for NaN), formatting each number once."""
    if values.dtype.kind in "iu":
        codes, uniques = pd.factorize(values)
        numbers = uniques.tolist()
        texts = [str(v) if -_EXACT_INT <= v <= _EXACT_INT else f"{v:.16g}" for v in numbers]
        return np.array(texts, dtype=object)[codes]
    codes, bits = pd.factorize(values.view(np.int64))  # -0.0 is not 0.0
    numbers = bits.view(np.float64).tolist()
    texts = ("%.16g\n" * len(numbers) % tuple(numbers)).split("\n")[:-1]
    strings = np.array(texts, dtype=object)[codes]
    strings[np.isnan(values)] = ""
    return strings


def _cell_pieces(values: pd.Series, texts: _Texts | None, style: str) -> list[_Piece]:
    """Return what follows the row number of a column's cells, as openpyxl writes them.

    Three pieces: the cell's attributes, its value, its end; each a string (when the same
    in every row) or an object array (one per row).
    """
    array = values.to_numpy()
    number = f'"{style} t="n"><v>'
    inline = f'"{style} t="inlineStr"><is><t>'
    empty = f'"{style} t="inlineStr" />'
    if values.dtype == bool:
        return [f'"{style} t="b"><v>', np.where(array, "1", "0").astype(object), "</v></c>"]
    if texts is None:
        strings = _number_texts(array)
        if values.dtype.kind in "iu" or np.isfinite(array).all():
            return [number, strings, "</v></c>"]
        kinds = np.select([np.isnan(array), np.isinf(array)], [2, 1], 0)  # inf is text
    else:
        strings = np.array(texts.texts, dtype=object)[texts.codes]
        kinds = np.where(strings == "", 2, 1)
        if (kinds == 1).all():
            return [inline, strings, "</t></is></c>"]
    # kinds: 0 a number, 1 text, 2 empty
    starts = np.array([number, inline, empty], dtype=object)[kinds]
    ends = np.array(["</v></c>", "</t></is></c>", ""], dtype=object)[kinds]
    return [starts, strings, ends]


def _sheet_rows(
    frame: pd.DataFrame, sheet: Worksheet, texts: Sequence[_Texts | None] = ()
) -> Iterator[bytes]:
    """Yield the ``<row>`` elements of rows 2 onwards of ``frame``, as openpyxl writes them.

    ``sheet`` holds the header and the first row, written by pandas and openpyxl: its
    cells give each column's style. ``frame`` must be :func:`_plain`; ``texts`` holds
    :func:`_column_texts` of it, where already known. The rows come in parts of
    :data:`_ROWS_AT_ONCE`, each put together by one ``str.join`` of all its pieces.
    """
    texts = texts or _column_texts(frame) or ()
    rows = np.array([str(r) for r in range(2, len(frame) + 2)], dtype=object)
    pieces: list[_Piece] = ['<row r="', rows, '">']
    for index in range(1, len(frame.columns) + 1):
        cell = sheet.cell(row=2, column=index)
        style = f' s="{cell.style_id}"' if cell.has_style else ""
        known = texts[index - 1]
        pieces += [f'<c r="{get_column_letter(index)}', rows]
        pieces += _cell_pieces(frame.iloc[:, index - 1], known, style)
    pieces.append("</row>")
    merged: list[_Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    for start in range(0, len(frame), _ROWS_AT_ONCE):
        part = slice(start, start + _ROWS_AT_ONCE)
        matrix = np.empty((len(rows[part]), len(merged)), dtype=object)
        for column, piece in enumerate(merged):
            matrix[:, column] = piece if isinstance(piece, str) else piece[part]
        yield "".join(matrix.ravel().tolist()).encode("utf-8")


def _splice(
    xml: bytes, *, frame: pd.DataFrame, sheet: Worksheet, texts: Sequence[_Texts | None] = ()
) -> Iterator[bytes]:
    """Yield ``sheet``'s saved XML with all rows of ``frame`` in place of rows 2 onwards.

    Run after openpyxl saved the workbook, when every style has its number.
    """
    start = xml.index(b'<row r="2">')
    end = xml.index(b"</sheetData>", start)
    dimension = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"
    yield re.sub(
        rb'<dimension ref="[^"]*" />',
        f'<dimension ref="{dimension}" />'.encode(),
        xml[:start],
        count=1,
    )
    for number, rows in enumerate(_sheet_rows(frame, sheet, texts)):
        if number == 0 and not rows.startswith(xml[start:end]):
            msg = f"the fast writer of sheet {sheet.title} disagrees with openpyxl on row 2"
            raise AssertionError(msg)
        yield rows
    yield xml[end:]


def _rezip(
    data: bytes,
    replace: Mapping[str, Callable[[bytes], Iterable[bytes]]],
    target: BinaryIO,
) -> None:
    """Write the workbook ``data`` into ``target`` with fixed timestamps, entries in order.

    ``replace`` maps entry names to functions that rewrite their content, part by part.
    """
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as book,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _CORE_TIMES.sub(rb"\g<1>2000-01-01T00:00:00Z\g<3>", content)
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 3
            entry.external_attr = 0o644 << 16
            if info.filename not in replace:
                book.writestr(entry, content)
                continue
            with book.open(entry, "w") as stream:  # the same bytes as writestr
                for part in replace[info.filename](content):
                    stream.write(part)


def _reproducible_zip(data: bytes, replace: Mapping[str, Callable[[bytes], bytes]]) -> bytes:
    """Return the workbook with fixed timestamps, entries in the order written.

    ``replace`` maps entry names to functions that rewrite their content.
    """
    out = io.BytesIO()
    _rezip(data, {name: _whole(rewrite) for name, rewrite in replace.items()}, out)
    return out.getvalue()


def _whole(rewrite: Callable[[bytes], bytes]) -> Callable[[bytes], Iterable[bytes]]:
    return lambda content: [rewrite(content)]


def _write_xlsx(tables: Mapping[str, Table], target: BinaryIO) -> None:
    """Write the workbook into ``target``: one sheet per table of :data:`XLSX_SHEETS`.

    pandas and openpyxl write each sheet's header and first row (and so its styles); the
    remaining rows of a sheet of plain values (:func:`_plain`) are written straight as
    XML, in openpyxl's exact form, and spliced in, part by part, as the workbook is
    compressed: openpyxl takes about 60 µs a cell.
    """
    buffer = io.BytesIO()
    replace: dict[str, Callable[[bytes], Iterable[bytes]]] = {}
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for number, name in enumerate(XLSX_SHEETS, start=1):
            frame = pd.DataFrame(tables[name]).drop(columns="geometry", errors="ignore")
            texts = _column_texts(frame)
            fast = len(frame) > 1 and len(frame.columns) > 0 and texts is not None
            (frame.head(1) if fast else frame).to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            _format_sheet(sheet, frame, texts or ())
            if fast:
                replace[f"xl/worksheets/sheet{number}.xml"] = functools.partial(
                    _splice, frame=frame, sheet=sheet, texts=texts or ()
                )
        writer.book.properties.creator = "geoplan"
        writer.book.properties.created = FIXED_TIME
    _rezip(buffer.getvalue(), replace, target)


def _xlsx_bytes(tables: Mapping[str, Table]) -> bytes:
    """Return the workbook :func:`_write_xlsx` writes."""
    out = io.BytesIO()
    _write_xlsx(tables, out)
    return out.getvalue()


def _stage(tables: Mapping[str, Table], staging: Path, formats: Sequence[str]) -> list[str]:
    """Write every requested file into ``staging``; return their names, relative to it."""
    names: list[str] = []
    if "gpkg" in formats:
        _write_gpkg(tables, staging / GPKG_NAME)
        names.append(GPKG_NAME)
    if "geojson" in formats:
        (staging / GEOJSON_DIR).mkdir()
        for name in OUTPUT_LAYERS:
            relative = f"{GEOJSON_DIR}/{name}.geojson"
            _write_geojson(tables[name], staging / relative, name)
            names.append(relative)
    if "csv" in formats:
        for name in CSV_TABLES:
            _write_bytes(staging / f"{name}.csv", _csv_bytes(tables[name]))
            names.append(f"{name}.csv")
    if "xlsx" in formats:
        _write_bytes(staging / XLSX_NAME, _xlsx_bytes(tables))
        names.append(XLSX_NAME)
    return names


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
    typed = {name: _typed(tables[name], name) for name in TABLES}
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
        names = _stage(typed, staging, chosen)
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
    return export_tables(
        plan_tables(plan), out_dir, formats=formats, inputs=plan.layers.sources.values()
    )


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
        f"  {GEOJSON_PRECISION} decimals (about 1 cm), polygon exteriors counter-clockwise,"
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
