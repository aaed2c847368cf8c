"""The walkthrough notebook runs top to bottom and shows what it says it shows.

``notebooks/walkthrough.ipynb`` is committed without outputs. Here it runs in a fresh
kernel of this very interpreter (nbclient and ipykernel, no network), from the notebooks
folder as Jupyter would run it, and its outputs are checked as a reader sees them.
"""

from __future__ import annotations

import math
import re
import sys
from html import unescape
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
WATCHED = ("layers", "notebooks")
"""Folders the notebook must leave as they are: it writes only to a temporary folder."""


def _files(folders: tuple[str, ...]) -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): path.stat().st_mtime_ns
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file()
    }


def _kernel() -> KernelManager:
    """Return a manager of ipykernel's own ``python3`` kernel, run by ``sys.executable``.

    No kernel folder is searched, so a ``python3`` kernelspec installed elsewhere (another
    venv, the user's Jupyter) cannot take its place.
    """
    return KernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )


@pytest.fixture(scope="module")
def executed() -> tuple[nbformat.NotebookNode, set[str]]:
    """Run the notebook, plus one cell printing the kernel's interpreter; return it.

    Also returns the files of :data:`WATCHED` folders that changed, appeared or went.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell("import sys\nprint(sys.executable, end='')", id="interpreter")
    )
    before = _files(WATCHED)
    client = NotebookClient(
        notebook,
        km=_kernel(),
        timeout=120,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    after = _files(WATCHED)
    touched = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    return notebook, touched


def _cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    (cell,) = (c for c in notebook.cells if tag in c.metadata.get("tags", []))
    return cell


def _shown(cell: nbformat.NotebookNode, mime: str = "text/plain") -> str:
    """Return what a cell shows: its printed text and its results of one MIME type."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in {"execute_result", "display_data"}:
            parts.append(output.data.get(mime, ""))
    return "".join(parts)


def _rows(table: str) -> dict[str, list[float]]:
    """Read a DataFrame's text form into {row label: numbers} (labels may have spaces)."""
    header, *lines = table.splitlines()
    width = len(header.split())
    rows = {}
    for line in lines:
        label, *values = line.rsplit(maxsplit=width)
        rows[label.strip()] = [float(v) for v in values]
    return rows


def test_committed_clean() -> None:
    text = NOTEBOOK.read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    # nbformat's own layout, so that rewriting the notebook changes nothing
    assert text == nbformat.writes(notebook) + "\n"


def test_runs_in_this_interpreter(executed: tuple[nbformat.NotebookNode, set]) -> None:
    notebook, _ = executed
    assert _shown(notebook.cells[-1]) == sys.executable


def test_no_errors_or_warnings(executed: tuple[nbformat.NotebookNode, set]) -> None:
    notebook, _ = executed
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", output
            assert output.get("name") != "stderr", output.text


def test_writes_only_to_a_temporary_folder(executed: tuple[nbformat.NotebookNode, set]) -> None:
    _, touched = executed
    assert touched == set()


def test_validation_summary(executed: tuple[nbformat.NotebookNode, set]) -> None:
    notebook, _ = executed
    shown = _shown(_cell(notebook, "validate"))
    assert "haibowan: valid" in shown
    assert "storage blocks" in shown
    assert "flying wires" in shown


def test_stricter_voltage_drop_limit_changes_the_plan(
    executed: tuple[nbformat.NotebookNode, set],
) -> None:
    notebook, _ = executed
    rows = _rows(_shown(_cell(notebook, "compare")))
    default, stricter, _ = rows["voltage-drop limit %"]
    assert (default, stricter) == (4.0, 2.5)
    default_drop, stricter_drop, _ = rows["largest voltage drop %"]
    assert stricter_drop <= 2.5 < default_drop <= 4.0
    # a stricter limit takes larger cross-sections, which cost more
    assert rows["cables of 25 mm² or more"][2] > 0
    assert rows["cable cost CNY"][2] > 0


def test_stats_side_by_side(executed: tuple[nbformat.NotebookNode, set]) -> None:
    notebook, _ = executed
    rows = _rows(_shown(_cell(notebook, "stats")))
    # both plans have every figure, unserved boxes counted for every reason
    reasons = ["beyond radius", "no capacity", "no circuit", "no path"]
    assert {f"unserved {reason}" for reason in reasons} <= rows.keys()
    assert all(len(values) == 2 and not math.isnan(sum(values)) for values in rows.values())
    default, stricter = rows["max voltage drop pct"]
    assert stricter <= 2.5 < default


def test_map_shown_inline_and_offline(executed: tuple[nbformat.NotebookNode, set]) -> None:
    notebook, _ = executed
    cell = _cell(notebook, "map")
    assert "district_map(plan)" in cell.source
    assert "write_maps" not in "".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert _shown(cell).startswith("MapPage('区域方案图 District plan', ")  # not the page
    html = _shown(cell, "text/html")
    assert html.startswith('<div><iframe srcdoc="')
    page = unescape(html.removeprefix('<div><iframe srcdoc="').partition('"')[0])
    assert "<title>区域方案图 District plan</title>" in page
    assert "L.map(" in page
    # Leaflet and the data are inlined: no script, style sheet or image is fetched
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=[\"']?(https?:)?//", page)
    # the legend has no links to pages that do not exist beside an inline map
    legend = re.search(r'<div class="gp-legend">.*?</div>\s*$', page, re.MULTILINE).group(0)
    assert "<a " not in legend


def test_export_lists_the_files(executed: tuple[nbformat.NotebookNode, set]) -> None:
    notebook, _ = executed
    shown = _shown(_cell(notebook, "export"))
    for name in ("plan.gpkg", "geojson/cables.geojson", "summary.csv", "plan.xlsx"):
        assert name in shown
