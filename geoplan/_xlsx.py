"""The workbook: one sheet per table, as pandas and openpyxl write it, at numpy speed.

openpyxl takes about 60 µs a cell: a city's sheets hold millions. pandas and openpyxl
write each sheet's header and first row (and so its styles); the other rows of a sheet of
plain values (those :func:`_column_texts` can write) are put together here from whole
columns, in openpyxl's exact XML, and streamed into the sheet's zip entry. The zip
carries a fixed timestamp (:data:`FIXED_TIME`): the same tables give the same bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pandas as pd
from openpyxl.utils import get_column_letter
from pandas.api.types import infer_dtype

from ._geojson import _Column, _compact, _few_distinct, _Item, _matrix

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

__all__ = ["FIXED_TIME", "write_xlsx", "xlsx_bytes"]

#: The workbook's timestamp, fixed so that exports are reproducible.
FIXED_TIME = datetime(2000, 1, 1)
#: Sheets this large (cells) are deflated at zlib's level 1: a city's 350 MB of sheet XML
#: takes 1.1 s instead of 3.8 s, for a file a quarter larger. Smaller ones keep level 6.
_FAST_DEFLATE_CELLS = 500_000
_FAST_DEFLATE_LEVEL = 1
_CORE_TIMES = re.compile(rb"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)")


def _display_width(value: object) -> int:
    """Return the width of a cell's text, counting CJK characters as two columns."""
    text = f"{value:,.2f}" if isinstance(value, float) else str(value)
    return len(text) + sum(1 for ch in text if ord(ch) > 0x2E80)


@dataclasses.dataclass(frozen=True)
class _Texts:
    """The texts of a column, and what the workbook writer needs to know of them.

    Parameters
    ----------
    codes
        Each row's index into ``texts``; None when ``texts`` holds one text per row.
    texts
        The distinct texts (or every row's), ``&``, ``<`` and ``>`` escaped for XML.
    plain
        Whether openpyxl writes every text as it is (see :func:`_texts`).
    widest
        The largest :func:`_display_width`.
    """

    codes: np.ndarray | None
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
    """Return the texts of an object array and their facts; None unless all text.

    All the texts are looked at together, with numpy: a city's sheets hold millions of
    cells. The distinct ones only, unless the column looks like one of ids
    (:func:`geoplan._geojson._few_distinct`).
    """
    if len(values) == 0:
        return _Texts(np.zeros(0, dtype=np.intp), [], plain=True, widest=0)
    if infer_dtype(values, skipna=False) != "string":
        return None
    texts: list[str] = values.tolist()
    codes: np.ndarray | None = None
    if _few_distinct(texts):
        codes, uniques = pd.factorize(values)
        texts = list(uniques)
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

    ``sheet`` may hold only the first rows of ``frame`` (:func:`write_xlsx` writes the
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
# error code, no surrounding white space, not too long; :func:`_texts` checks just this.
_PLAIN_DTYPES = ("int64", "float64", "bool")


def _column_texts(frame: pd.DataFrame) -> list[_Texts | None] | None:
    """Return :func:`_texts` of each column (None for numbers); None if the frame is not plain."""
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


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Integers up to this size are exact as floats: ``str`` writes them as ``.16g`` does.
_EXACT_INT = 2**53
#: Rows of a sheet put together at once, which bounds the memory their pieces take (and
#: parts this small reuse it: a city's sheets took 0.2 s less CPU than in parts of 32,768).
_ROWS_AT_ONCE = 1 << 13


def _number_texts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return each value's code, the distinct values and their ``.16g`` texts.

    Each distinct number is formatted once (NaN as ``nan``).
    """
    if values.dtype.kind in "iu":
        codes, uniques = pd.factorize(values)
        numbers = uniques.tolist()
        texts = [str(v) if -_EXACT_INT <= v <= _EXACT_INT else f"{v:.16g}" for v in numbers]
        return codes, uniques, texts
    codes, bits = pd.factorize(values.view(np.int64))  # -0.0 is not 0.0
    uniques = bits.view(np.float64)
    numbers = uniques.tolist()
    texts = ("%.16g\n" * len(numbers) % tuple(numbers)).split("\n")[:-1]
    return codes, uniques, texts


def _cell_items(values: pd.Series, texts: _Texts | None, style: str) -> list[_Item]:
    """Return what follows the row number of a column's cells, as openpyxl writes them.

    The items of :func:`geoplan._geojson._compact`: the cell's attributes, its value and
    its end, or each distinct cell whole where the cells are of more than one kind
    (numbers and text, or empty cells).
    """
    array = values.to_numpy()
    number = f'"{style} t="n"><v>'
    inline = f'"{style} t="inlineStr"><is><t>'
    empty = f'"{style} t="inlineStr" />'
    if values.dtype == bool:
        flags = _Column(np.array(["0", "1"], dtype=object), array.astype(np.intp))
        return [f'"{style} t="b"><v>', flags, "</v></c>"]
    if texts is not None:
        if "" not in texts.texts:
            return [
                inline,
                _Column(np.array(texts.texts, dtype=object), texts.codes),
                "</t></is></c>",
            ]
        cells = [f"{inline}{t}</t></is></c>" if t else empty for t in texts.texts]
        return [_Column(np.array(cells, dtype=object), texts.codes)]
    codes, numbers, strings = _number_texts(array)
    finite = np.isfinite(numbers)
    if values.dtype.kind in "iu" or finite.all():
        return [number, _Column(np.array(strings, dtype=object), codes), "</v></c>"]
    cells = np.array(
        [
            f"{number}{t}</v></c>" if ok else f"{inline}{t}</t></is></c>"  # infinity: text
            for ok, t in zip(finite.tolist(), strings, strict=True)
        ],
        dtype=object,
    )
    cells[np.isnan(numbers)] = empty
    return [_Column(cells, codes)]


def _sheet_rows(
    frame: pd.DataFrame, sheet: Worksheet, texts: Sequence[_Texts | None] = ()
) -> Iterator[bytes]:
    """Yield the ``<row>`` elements of rows 2 onwards of ``frame``, as openpyxl writes them.

    ``sheet`` holds the header and the first row, written by pandas and openpyxl: its
    cells give each column's style. ``frame`` must be plain (:func:`_column_texts` can
    write it); ``texts`` holds :func:`_column_texts` of it, where already known. The rows
    come in parts of :data:`_ROWS_AT_ONCE`, each put together by one ``str.join`` of all
    its pieces (:func:`geoplan._geojson._compact` makes them few).
    """
    texts = texts or _column_texts(frame) or ()
    rows = _Column(np.array([str(r) for r in range(2, len(frame) + 2)], dtype=object))
    items: list[_Item] = ['<row r="', rows, '">']
    for index in range(1, len(frame.columns) + 1):
        cell = sheet.cell(row=2, column=index)
        style = f' s="{cell.style_id}"' if cell.has_style else ""
        items += [f'<c r="{get_column_letter(index)}', rows]
        items += _cell_items(frame.iloc[:, index - 1], texts[index - 1], style)
    items.append("</row>")
    items = _compact(items, len(frame))
    for start in range(0, len(frame), _ROWS_AT_ONCE):
        matrix = _matrix(items, len(frame), slice(start, start + _ROWS_AT_ONCE))
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
    levels: Mapping[str, int] = MappingProxyType({}),
) -> None:
    """Write the workbook ``data`` into ``target`` with fixed timestamps, entries in order.

    ``replace`` maps entry names to functions that rewrite their content, part by part;
    ``levels`` the entries deflated at another level than zlib's default.
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
            # the level writestr sets (ZipInfo.compress_level from Python 3.13 on)
            entry._compresslevel = levels.get(info.filename)
            if info.filename in replace:
                with book.open(entry, "w") as stream:  # the same bytes as writestr
                    for part in replace[info.filename](content):
                        stream.write(part)
            else:
                book.writestr(entry, content)


def _reproducible_zip(data: bytes, replace: Mapping[str, Callable[[bytes], bytes]]) -> bytes:
    """Return the workbook with fixed timestamps, entries in the order written.

    ``replace`` maps entry names to functions that rewrite their content.
    """
    out = io.BytesIO()
    _rezip(data, {name: _whole(rewrite) for name, rewrite in replace.items()}, out)
    return out.getvalue()


def _whole(rewrite: Callable[[bytes], bytes]) -> Callable[[bytes], Iterable[bytes]]:
    return lambda content: [rewrite(content)]


def write_xlsx(sheets: Mapping[str, pd.DataFrame], target: BinaryIO) -> None:
    """Write a workbook into ``target``: one sheet per table, in order.

    pandas and openpyxl write each sheet's header and first row (and so its styles); the
    remaining rows of a sheet of plain values (those :func:`_column_texts` can write) are
    written straight as XML, in openpyxl's exact form, and spliced in, part by part, as
    the workbook is compressed: openpyxl takes about 60 µs a cell. A sheet of
    :data:`_FAST_DEFLATE_CELLS` cells or more is deflated at :data:`_FAST_DEFLATE_LEVEL`,
    not zlib's default 6.
    """
    buffer = io.BytesIO()
    replace: dict[str, Callable[[bytes], Iterable[bytes]]] = {}
    levels: dict[str, int] = {}
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for number, (name, table) in enumerate(sheets.items(), start=1):
            frame = pd.DataFrame(table).drop(columns="geometry", errors="ignore")
            texts = _column_texts(frame)
            fast = len(frame) > 1 and len(frame.columns) > 0 and texts is not None
            (frame.head(1) if fast else frame).to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            _format_sheet(sheet, frame, texts or ())
            if fast:
                entry = f"xl/worksheets/sheet{number}.xml"
                replace[entry] = functools.partial(
                    _splice, frame=frame, sheet=sheet, texts=texts or ()
                )
                if frame.size >= _FAST_DEFLATE_CELLS:
                    levels[entry] = _FAST_DEFLATE_LEVEL
        writer.book.properties.creator = "geoplan"
        writer.book.properties.created = FIXED_TIME
    _rezip(buffer.getvalue(), replace, target, levels)


def xlsx_bytes(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """Return the workbook :func:`write_xlsx` writes."""
    out = io.BytesIO()
    write_xlsx(sheets, out)
    return out.getvalue()
