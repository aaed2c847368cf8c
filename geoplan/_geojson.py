r"""RFC 7946 features as GDAL's GeoJSON driver writes them, byte for byte, with numpy.

GDAL (through pyogrio) builds a JSON object per coordinate and takes about 14 µs a
feature: a city's layers took 9 s. :func:`write_geojson` makes the same lines from whole
columns at once for the features geoplan writes: points and line strings, in any CRS
(reprojected to EPSG:4326 as geopandas does), with text, integer, boolean and float
columns. GDAL writes the feature collection around them, and the features this module
does not vouch for: other geometry types, empty or 3D geometries, coordinates out of
bounds, lines that might cross the date line or shrink to a point at the precision
(GDAL then writes a point), non-finite numbers (left out), text GDAL reads as JSON.

What GDAL does, as seen in its output (the tests compare the two on many values):

* coordinates: ``%.7f``; then, when that text is more than ten characters
  long, digits 2 to 6 after the point all ``0`` drop the last digit and all ``9`` round
  up at the first; then trailing zeros go, but one digit stays after the point;
* floats: ``%.17g``, or the first of ``%.16g``, ``%.15g``, ``%.14g`` whose decimals hold
  no run of six ``0`` or ``9`` when those of ``%.17g`` do; ``.0`` added to a whole
  number;
* text: JSON escapes for ``"``, ``\`` and control characters, everything else as it is
  (as :func:`json.dumps` writes it with ``ensure_ascii=False``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pandas.api.types import infer_dtype

from ._checks import LONLAT, to_lonlat

__all__ = ["PRECISION", "write_geojson"]

#: Decimals of the coordinates (GDAL's ``COORDINATE_PRECISION``, 7 by RFC 7946's default):
#: the rounding below is GDAL's for exactly this many.
PRECISION = 7

#: GDAL checks the extent against these bounds; beyond them it refuses the feature.
_LON_LAT_LIMITS = (180.0, 90.0)
#: Veltkamp's constant 2**27 + 1, to split a double into two halves (Dekker's product).
_SPLIT = 134217729.0
#: A text as a JSON string, quotes included, as GDAL (json-c) writes it: ``"``, ``\`` and
#: the control characters escaped, everything else (``/``, U+2028, ...) as it is. The
#: same for every character but NUL (GDAL's C strings end there: such texts are left to
#: GDAL) and lone surrogates (neither can encode them); test_export_fast_geojson.py
#: compares the two on every character.
_quoted = json.JSONEncoder(ensure_ascii=False).encode
#: What GDAL writes before the features, and after them.
_FEATURES = b'"features": [\n'
_END = b"\n]\n}\n"
#: Features whose lines are made at once: bounds the memory their pieces take (and parts
#: this small reuse it: a city's layers took 0.2 s less CPU than in parts of 65,536).
_ROWS_AT_ONCE = 1 << 14
#: Lines shorter than this (degrees) may collapse to one point: GDAL then writes a point.
_COLLAPSE = 2e-7
_DROPPED_RUNS = ("000000", "999999")
#: What JSON escapes in a text: ``"``, ``\\`` and the control characters.
_ESCAPED = re.compile(r'["\\\x00-\x1f]')
#: A text that may start with one of these may be JSON to GDAL.
_JSON_STARTS = "{["
#: Every row of a column.
_ALL = slice(None)
#: Rows whose distinct texts are looked for in a text column, to tell ids from codes.
_SAMPLE = 1000
#: A column's texts are few when they number at most 1/_FEW of the rows: then a text the
#: same in every line is put into each of them (making a string costs some joins).
_FEW = 4


def _gdal_float(value: float) -> str:
    """Return a float as GDAL writes a property: ``%.17g``, trimmed of rounding noise."""
    text = f"{value:.17g}"
    dot = text.find(".")
    if dot >= 0 and any(run in text[dot:] for run in _DROPPED_RUNS):
        for digits in (16, 15, 14):
            shorter = f"{value:.{digits}g}"
            dot = shorter.find(".")
            if dot >= 0 and not any(run in shorter[dot:] for run in _DROPPED_RUNS):
                text = shorter
                break
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _float_texts(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Return :func:`_gdal_float` of finite values: each one's code, and the distinct texts.

    All are formatted ``%.17g`` in one operation; those with a run of six ``0`` or ``9``
    anywhere (:func:`_lines_with_runs`) are formatted again one by one.
    """
    codes, bits = pd.factorize(values.view(np.int64))  # -0.0 is not 0.0
    uniques = bits.view(np.float64)
    numbers = uniques.tolist()
    joined = "%.17g\n" * len(numbers) % tuple(numbers)
    texts = joined.split("\n")[:-1]
    again = _lines_with_runs(joined)
    for index in again.tolist():
        texts[index] = _gdal_float(numbers[index])
    whole = (uniques == np.floor(uniques)) & (np.abs(uniques) < 1e17)  # no "." nor "e"
    whole[again] = False  # _gdal_float saw to those
    for index in np.flatnonzero(whole).tolist():
        texts[index] += ".0"
    return codes, texts


def _lines_with_runs(joined: str) -> np.ndarray:
    """Return the numbers of the lines of ``joined`` that hold one of :data:`_DROPPED_RUNS`.

    Found by :meth:`str.find`, line after line: such lines are few.
    """
    found = []
    for run in _DROPPED_RUNS:
        at = joined.find(run)
        while at >= 0:
            found.append(at)
            at = joined.find(run, joined.find("\n", at) + 1)
    if not found:
        return np.zeros(0, dtype=np.intp)
    ends = np.flatnonzero(np.frombuffer(joined.encode("ascii"), dtype=np.uint8) == ord("\n"))
    return np.unique(np.searchsorted(ends, found, side="right"))


def _exact_scaled(values: np.ndarray, scale: float) -> np.ndarray:
    """Return ``values * scale`` rounded to the nearest integer, ties to even, exactly.

    That is what ``%.{n}f`` does with ``scale = 10**n``: it rounds the exact binary value,
    while ``values * scale`` is already rounded once. Dekker's product gives the
    rounding error of the product, which settles the rare products that land on half.
    """
    product = values * scale
    nearest = np.rint(product)
    split = values * _SPLIT
    high = split - (split - values)
    error = (high * scale - product) + (values - high) * scale
    half = product - nearest
    nearest += ((half == 0.5) & (error > 0)).astype(np.float64)
    nearest -= ((half == -0.5) & (error < 0)).astype(np.float64)
    return nearest.astype(np.int64)


def _digit_table(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the digits of ``0`` to ``10**width - 1``, zero-padded, and their trailing zeros.

    A row of characters per number, and how many of them end it as ``0`` (all, for 0).
    """
    numbers = np.arange(10**width)
    places = 10 ** np.arange(width - 1, -1, -1)
    digits = (numbers[:, np.newaxis] // places) % 10
    zeros = np.zeros(len(numbers), dtype=np.int64)
    for place in range(1, width + 1):
        zeros += numbers % 10**place == 0
    return (digits + ord("0")).astype(np.uint8), zeros


_DIGITS3, _ZEROS3 = _digit_table(3)
_DIGITS4, _ZEROS4 = _digit_table(4)
#: A coordinate's characters: sign, three digits, point, :data:`PRECISION` decimals.
_COORDINATE_WIDTH = 1 + 3 + 1 + PRECISION
#: The decimals of a coordinate in two parts, of three digits and of four.
_HIGH_DECIMALS = 10**4


def _coordinate_chars(values: np.ndarray, chars: np.ndarray, keep: np.ndarray) -> None:
    """Write each value as GDAL writes a coordinate into a character matrix and keep mask.

    ``chars`` and ``keep`` have a row per value and :data:`_COORDINATE_WIDTH` columns; row
    ``i``, its kept characters read left to right, becomes the text of ``values[i]`` with
    :data:`PRECISION` decimals. Every value is within ±999 (the caller makes sure).
    """
    negative = np.signbit(values)
    unit = 10**PRECISION
    scaled = _exact_scaled(np.abs(values), float(unit))
    whole = scaled // unit
    digits_before = 1 + (whole >= 10) + (whole >= 100)
    # GDAL's "intelliround" of a text over ten characters: decimals 2 to 6 all 0 drop the
    # last decimal, all 9 round up at the first decimal
    long = negative + digits_before + 1 + PRECISION > 10
    middle = (scaled // 10) % 100_000
    scaled = np.where(long & (middle == 0), scaled - scaled % 10, scaled)
    scaled = np.where(long & (middle == 99_999), (scaled // 10**6 + 1) * 10**6, scaled)
    whole, fraction = np.divmod(scaled, unit)
    high, low = np.divmod(fraction, _HIGH_DECIMALS)
    # trailing zeros go; one decimal stays
    zeros = np.where(low == 0, _ZEROS4[0] + _ZEROS3[high], _ZEROS4[low])
    decimals = PRECISION - np.minimum(zeros, PRECISION - 1)
    chars[:, 0] = ord("-")
    keep[:, 0] = negative
    chars[:, 1:4] = _DIGITS3[whole]
    keep[:, 1] = whole >= 100
    keep[:, 2] = whole >= 10
    keep[:, 3] = True
    chars[:, 4] = ord(".")
    keep[:, 4] = True
    chars[:, 5:8] = _DIGITS3[high]
    chars[:, 8 : 5 + PRECISION] = _DIGITS4[low]
    for place in range(PRECISION):
        keep[:, 5 + place] = decimals > place


def _positions(xy: np.ndarray, last: np.ndarray) -> str:
    r"""Return ``"[ x, y ], "`` for every vertex, all in one text; ``"[ x, y ]\n"`` if last.

    ``last`` says which vertices end their geometry: splitting the text at its line ends
    gives each geometry's positions.
    """
    texts = ("[ ", ", ", " ]", ", ")
    width = sum(map(len, texts)) + 2 * _COORDINATE_WIDTH
    chars = np.empty((len(xy), width), dtype=np.uint8)
    keep = np.ones((len(xy), width), dtype=bool)
    column = 0
    for number, text in enumerate(texts):
        chars[:, column : column + len(text)] = np.frombuffer(text.encode("ascii"), np.uint8)
        column += len(text)
        if number < xy.shape[1]:
            place = slice(column, column + _COORDINATE_WIDTH)
            _coordinate_chars(xy[:, number], chars[:, place], keep[:, place])
            column += _COORDINATE_WIDTH
    chars[last, -2] = ord("\n")
    keep[last, -1] = False
    return chars[keep].tobytes().decode("ascii")


def _lonlat(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Return the coordinates of all geometries in EPSG:4326, as ``shapely`` lists them.

    Transformed as :meth:`geopandas.GeoDataFrame.to_crs` transforms them (the same PROJ
    transformation, point by point), without building the geometries again.
    """
    xy = shapely.get_coordinates(np.asarray(frame.geometry.array, dtype=object))
    return np.column_stack(to_lonlat(xy, frame.crs))


def _geometry_items(
    frame: gpd.GeoDataFrame, before: str, after: str
) -> tuple[list[_Item], np.ndarray]:
    """Return the ``"geometry"`` member of every feature, and which ones to leave to GDAL.

    Items of the features' lines (:func:`_compact`), from ``before`` to ``after``: the
    texts around the positions are the same in every line when the features shown are
    all points or all line strings (the lines of those left to GDAL are replaced).

    Left to GDAL: anything but points and line strings (or no geometry), empty or 3D
    geometries, coordinates out of bounds, lines that might cross the date line, and lines
    shorter than the precision, which GDAL may turn into points.
    """
    geometries = np.asarray(frame.geometry.array, dtype=object)
    kinds = shapely.get_type_id(geometries)  # -1 missing, 0 point, 1 line string
    counts = shapely.get_num_coordinates(geometries)
    odd = ~np.isin(kinds, (-1, 0, 1)) | shapely.has_z(geometries)
    odd |= (kinds >= 0) & (counts == 0)  # empty
    xy = _lonlat(frame)
    first = np.zeros(len(geometries) + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    some = counts > 0
    low = np.full((len(geometries), 2), np.nan)
    high = np.full((len(geometries), 2), np.nan)
    if some.any():
        low[some] = np.minimum.reduceat(xy, first[:-1][some], axis=0)
        high[some] = np.maximum.reduceat(xy, first[:-1][some], axis=0)
    limits = np.array(_LON_LAT_LIMITS)
    with np.errstate(invalid="ignore"):
        odd |= some & ~np.isfinite(np.hstack([low, high])).all(axis=1)
        odd |= ((np.abs(low) > limits) | (np.abs(high) > limits)).any(axis=1)
        extent = high - low
        odd |= (kinds == 1) & ((extent[:, 0] >= limits[0]) | (extent.max(axis=1) < _COLLAPSE))
    shown = ~odd & (kinds >= 0)
    last = np.zeros(len(xy), dtype=bool)
    last[first[1:][shown] - 1] = True
    vertex = np.repeat(shown, counts)
    positions = np.full(len(geometries), "", dtype=object)
    positions[shown] = _positions(xy[vertex], last[vertex]).split("\n")[:-1]
    point = kinds == 0
    members = (
        ('{ "type": "Point", "coordinates": ', " }"),
        ('{ "type": "LineString", "coordinates": [ ', " ] }"),
    )
    for kind, (start, end) in enumerate(members):
        if (kinds[~odd] == kind).all():  # all shown alike, none missing
            return [before + start, _Column(positions), end + after], odd
    out = np.full(len(geometries), f"{before}null{after}", dtype=object)
    out[shown] = [
        f"{before}{members[0][0]}{text}{members[0][1]}{after}"
        if is_point
        else f"{before}{members[1][0]}{text}{members[1][1]}{after}"
        for is_point, text in zip(point[shown].tolist(), positions[shown].tolist(), strict=True)
    ]
    return [_Column(out)], odd


@dataclasses.dataclass(frozen=True)
class _Column:
    """The texts of a column's values in a feature's line, as few strings as can be.

    Parameters
    ----------
    texts
        The distinct texts, when ``codes`` is given; else one text per feature.
    codes
        Each feature's index into ``texts``, or None.
    """

    texts: np.ndarray
    codes: np.ndarray | None = None

    def rows(self, part: slice = _ALL) -> np.ndarray:
        """Return one text per feature (of the features ``part``)."""
        return self.texts[part] if self.codes is None else self.texts[self.codes[part]]

    def few(self, rows: int) -> bool:
        """Whether the texts are few: making a new one each is cheaper than joining it."""
        return self.codes is not None and len(self.texts) * _FEW <= rows


_Item: TypeAlias = str | _Column


def _coded(codes: np.ndarray, texts: list[str]) -> _Column:
    return _Column(np.array(texts, dtype=object), codes)


def _few_distinct(values: list[str]) -> bool:
    """Whether a column's first values (:data:`_SAMPLE`) say its distinct values are few.

    Then a column is worth :func:`pandas.factorize`: not a column of ids.
    """
    sample = values[:_SAMPLE]
    return len(set(sample)) * _FEW <= len(sample)


def _text_column(array: np.ndarray) -> tuple[list[_Item], np.ndarray]:
    """Return a text column's items (quotes and texts) and which values to leave to GDAL.

    Texts with nothing to escape and no brace or bracket (most, found at once in all the
    texts) are written as they are, between quotes; the others one distinct text at a time.
    """
    values = array.tolist()
    joined = "".join(values)
    if _ESCAPED.search(joined) is None and not any(c in joined for c in _JSON_STARTS):
        column = _Column(array)
        if _few_distinct(values):  # shared
            codes, uniques = pd.factorize(array)
            column = _Column(uniques.astype(object), codes)
        return ['"', column, '"'], np.zeros(len(array), dtype=bool)
    codes, uniques = pd.factorize(array)
    texts = list(uniques)
    # GDAL writes texts in braces or brackets as JSON, not as text
    odd = np.array([t[:1] + t[-1:] in ("{}", "[]") for t in texts], dtype=bool)
    if "\x00" in joined:  # GDAL's C strings end there
        odd |= np.array(["\x00" in t for t in texts], dtype=bool)
    return [_coded(codes, [_quoted(t) for t in texts])], odd[codes]


def _property_texts(values: pd.Series) -> tuple[list[_Item], np.ndarray] | None:
    """Return a column's values as GDAL writes them, and which ones to leave to GDAL.

    The values come as items of the features' lines: texts the same in every feature,
    and a :class:`_Column`. None for a column of another type (GDAL writes the layer).
    """
    array = values.to_numpy()
    fine = np.zeros(len(array), dtype=bool)
    if values.dtype == bool:
        return [_coded(array.astype(np.intp), ["false", "true"])], fine
    if values.dtype.kind in "iu":
        codes, uniques = pd.factorize(array)
        return [_coded(codes, [str(v) for v in uniques.tolist()])], fine
    if values.dtype.kind == "f":  # GDAL leaves out NaN and infinity
        finite = np.isfinite(array)
        codes = np.zeros(len(array), dtype=np.intp)
        codes[finite], texts = _float_texts(array[finite])
        codes[~finite] = len(texts)
        return [_coded(codes, [*texts, ""])], ~finite
    if values.dtype != object or infer_dtype(array, skipna=False) not in ("string", "empty"):
        return None
    return _text_column(array)


def _pairs(first: _Column, second: _Column, rows: int) -> _Column | None:
    """Return two neighbouring columns as one, if both and their pairs of texts are few."""
    if first.codes is None or second.codes is None:
        return None
    if len(first.texts) * len(second.texts) * _FEW > rows:  # then each is few too
        return None
    pairs = (first.texts[:, np.newaxis] + second.texts[np.newaxis, :]).ravel()
    return _Column(pairs, first.codes * len(second.texts) + second.codes)


def _compact(items: list[_Item], rows: int) -> list[_Item]:
    """Return the items of ``rows`` features' lines in fewer strings per line.

    A text the same in every line goes into the distinct texts of a column of
    :meth:`_Column.few` texts next to it, and two such neighbouring columns become one
    (all pairs of their texts) while the pairs are few too.
    """
    out: list[_Item] = []
    for item in items:
        last = out[-1] if out else None
        if isinstance(item, str) and isinstance(last, str):
            out[-1] = last + item
        elif isinstance(item, str) and isinstance(last, _Column) and last.few(rows):
            out[-1] = _Column(last.texts + item, last.codes)
        elif isinstance(item, _Column) and item.few(rows) and isinstance(last, str):
            out[-1] = _Column(last + item.texts, item.codes)
        elif (
            isinstance(item, _Column)
            and isinstance(last, _Column)
            and (pair := _pairs(last, item, rows)) is not None
        ):
            out[-1] = pair
        else:
            out.append(item)
    return out


def _feature_pieces(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    r"""Return the pieces of each feature's line, and which features to leave to GDAL.

    The pieces: a matrix, a row per feature, whose row joined is the feature's line as
    GDAL writes it, ending with ``",\n"``. None when a column has a type GDAL writes
    otherwise.
    """
    items: list[_Item] = ['{ "type": "Feature", "properties": { ']
    odd = np.zeros(len(frame), dtype=bool)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    for number, column in enumerate(columns):
        found = _property_texts(frame[column])
        if found is None:
            return None
        column_items, odd_values = found
        odd |= odd_values
        items += [(", " if number else "") + f"{_quoted(str(column))}: ", *column_items]
    items.append((" }" if columns else "}") + ', "geometry": ')
    items = _compact(items, len(frame))
    before = items.pop() if isinstance(items[-1], str) else ""
    geometry, odd_geometry = _geometry_items(frame, before, " },\n")
    items = _compact(items + geometry, len(frame))
    return _matrix(items, len(frame)), odd | odd_geometry


def _matrix(items: list[_Item], rows: int, part: slice = _ALL) -> np.ndarray:
    """Return the pieces of ``rows`` lines (those of ``part``), a row of pieces per line."""
    matrix = np.empty((len(range(rows)[part]), len(items)), dtype=object)
    for index, item in enumerate(items):
        matrix[:, index] = item if isinstance(item, str) else item.rows(part)
    return matrix


def write_geojson(
    frame: gpd.GeoDataFrame, path: Path, gdal: Callable[[gpd.GeoDataFrame, Path], None]
) -> None:
    """Write a layer as GDAL's RFC 7946 GeoJSON writer does, most of it with numpy.

    GDAL writes the feature collection with the features only it writes right (none,
    mostly); the other features' lines are put in between, in the layer's order. The
    lines are made :data:`_ROWS_AT_ONCE` features at a time, and kept encoded.

    Parameters
    ----------
    frame
        The layer, in any CRS; text, integer, boolean and float columns.
    path
        The file to write (not synced).
    gdal
        Writes a frame (in EPSG:4326) with GDAL (pyogrio) into a file, with the layer's
        name and options, ``RFC7946=YES`` and ``COORDINATE_PRECISION`` :data:`PRECISION`.
    """
    parts: list[bytes | tuple[np.ndarray, np.ndarray]] = []  # encoded, or pieces and odd
    odd_rows: list[np.ndarray] = []
    for start in range(0, len(frame), _ROWS_AT_ONCE):
        found = _feature_pieces(frame.iloc[start : start + _ROWS_AT_ONCE])
        encoded = None if found is None or found[1].any() else _encoded(found[0])
        if found is None or (encoded is None and not found[1].any()):
            gdal(frame.to_crs(LONLAT), path)  # GDAL says what is wrong, if anything
            return
        parts.append(encoded if encoded is not None else found)
        odd_rows.append(start + np.flatnonzero(found[1]))
    rows = np.concatenate([np.zeros(0, dtype=np.int64), *odd_rows])
    if len(rows) == len(frame):
        gdal(frame.to_crs(LONLAT), path)
        return
    gdal(frame.iloc[rows].to_crs(LONLAT), path)
    written = path.read_bytes()
    start = written.index(_FEATURES) + len(_FEATURES)
    if not written.endswith(_END):
        msg = f"GDAL ended the GeoJSON file {path} unexpectedly: {written[-40:]!r}"
        raise AssertionError(msg)
    lines = iter(written[start : -len(_END)].decode("utf-8").split(",\n") if len(rows) else [])
    texts: list[bytes] = []
    for part in parts:
        text = part if isinstance(part, bytes) else _with_gdal_lines(*part, lines)
        if text is None:
            gdal(frame.to_crs(LONLAT), path)
            return
        texts.append(text)
    texts[-1] = texts[-1][: -len(b",\n")]
    with path.open("wb") as handle:
        handle.write(written[:start])
        for text in texts:
            handle.write(text)
        handle.write(_END)


def _with_gdal_lines(pieces: np.ndarray, odd: np.ndarray, lines: Iterator[str]) -> bytes | None:
    """Return :func:`_encoded` pieces, GDAL's next lines in place of the odd features'."""
    pieces[odd, :] = ""
    pieces[odd, 0] = [next(lines) + ",\n" for _ in range(int(odd.sum()))]
    return _encoded(pieces)


def _encoded(pieces: np.ndarray) -> bytes | None:
    """Return the lines of a matrix of pieces, joined and encoded; None if they cannot be."""
    try:
        return "".join(pieces.ravel().tolist()).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: GDAL says what to do
        return None
