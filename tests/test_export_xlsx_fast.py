"""The workbook's fast sheet writer gives openpyxl's bytes exactly (geoplan.export)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from geoplan import _xlsx, export


def _display_width(value: object) -> int:
    """A cell's text width, CJK counting two (as geoplan wrote it cell by cell)."""
    text = f"{value:,.2f}" if isinstance(value, float) else str(value)
    return len(text) + sum(1 for ch in text if ord(ch) > 0x2E80)


def _format_sheet_cell_by_cell(sheet: object, frame: pd.DataFrame) -> None:
    """Freeze, filter, size and format a sheet cell by cell: the reference for widths."""
    sheet.freeze_panes = "A2"  # type: ignore[attr-defined]
    if len(frame):
        sheet.auto_filter.ref = sheet.dimensions  # type: ignore[attr-defined]
    for index, column in enumerate(frame.columns, start=1):
        values = frame[column]
        widest = max([_display_width(column), *(_display_width(v) for v in values)])
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = min(widest + 2, 60)  # type: ignore[attr-defined]
        if pd.api.types.is_float_dtype(values):
            number_format = _xlsx._number_format(column)
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):  # type: ignore[attr-defined]
                cell.number_format = number_format


def _slow_xlsx(tables: dict[str, pd.DataFrame]) -> bytes:
    """The workbook as pandas and openpyxl write it, every cell through openpyxl."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name in export.XLSX_SHEETS:
            frame = tables[name]
            frame.to_excel(writer, sheet_name=name, index=False)
            _format_sheet_cell_by_cell(writer.sheets[name], frame)
        writer.book.properties.creator = "geoplan"
        writer.book.properties.created = _xlsx.FIXED_TIME
    return _xlsx._reproducible_zip(buffer.getvalue(), {})


def _tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    small = pd.DataFrame({"item": ["a"], "cost_cny": [1.5]})
    return {name: frame if name == "cables" else small for name in export.XLSX_SHEETS}


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


EDGY = pd.DataFrame(
    {
        "cable_id": ["C-1", "电缆 & <二>", "", "x" * 70, "a'b\"c", "#"],
        "length_m": [1.0, np.nan, np.inf, -np.inf, -0.001, 1e17],
        "cost_cny": [0.1 + 0.2, 123456789.125, -5.0, 0.0, 1e-9, 3.0],
        "cores": np.array([1, -7, 0, 2**40, 5, 9], dtype="int64"),
        "shared": [True, False, True, True, False, False],
        "note": ["", "", "ok", "夜", "a b", "z"],
    }
)


@pytest.mark.parametrize("rows", [0, 1, 2, 6])
def test_fast_sheets_match_openpyxl(rows: int) -> None:
    tables = _tables(EDGY.head(rows))
    assert _entries(export._xlsx_bytes(tables)) == _entries(_slow_xlsx(tables))


@pytest.mark.parametrize(
    "text", [" leading", "trailing ", "=SUM(A1)", "#N/A", "tab\there", "line\nbreak"]
)
def test_unusual_text_falls_back_to_openpyxl(text: str) -> None:
    frame = EDGY.assign(note=["plain", text, "", "x", "y", "z"])
    assert _xlsx._column_texts(frame) is None  # not written by the fast path
    tables = _tables(frame)
    assert _entries(export._xlsx_bytes(tables)) == _entries(_slow_xlsx(tables))


@pytest.mark.parametrize("part_rows", [None, 7], ids=["whole", "in_parts"])
def test_sheets_of_few_distinct_values_match_openpyxl(
    part_rows: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns of few values: their cells are made once each, neighbours paired; also
    when the rows are put together part by part (each part takes its rows' codes)."""
    if part_rows is not None:
        monkeypatch.setattr(_xlsx, "_ROWS_AT_ONCE", part_rows)
    rng = np.random.default_rng(5)
    rows = 400
    frame = pd.DataFrame(
        {
            "cable_id": [f"C{i}" for i in range(rows)],
            "kind": rng.choice(["a", "b & c", ""], rows),
            "cores": rng.integers(1, 4, rows),
            "shared": rng.integers(0, 2, rows).astype(bool),
            "length_m": rng.choice([1.5, np.nan, np.inf, -0.0], rows),
            "cost_cny": rng.uniform(0, 100, rows),
            "phases": rng.choice([1, 3], rows),
        }
    )
    tables = _tables(frame)
    assert _entries(export._xlsx_bytes(tables)) == _entries(_slow_xlsx(tables))
