"""The README's screenshots: the sample plan's district map and dashboard in Chromium.

The pages are the plan of the shipped sample district with the default settings, opened
offline (no base map: the map's background stays plain) in headless Chromium with every
network request blocked, through the helpers of ``test_browser.py``. Each screenshot is
checked (the page loaded cleanly and shows what README says it shows; the image is not
blank and small enough to commit) and written to ``tests/artifacts/readme_*.png``. With
``UPDATE_SCREENSHOTS=1`` it is also written to ``docs/img/``, the copy README shows: a plain
test run never changes committed files. The committed copies are checked on every run.
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

import pytest
import test_browser
from test_browser import ARTIFACTS, MAP_READY, assert_clean
from test_maps import make_plan, sample_layers

from geoplan.maps import write_maps
from geoplan.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
DOCS_IMG = ROOT / "docs" / "img"
VIEWPORT = {"width": 1000, "height": 650}
MAX_BYTES = 250_000
MIN_COLOURS = 16  # a blank or broken page has a handful; the maps have hundreds
MAX_SHARE_OF_ONE_COLOUR = 0.97
UPDATE = os.environ.get("UPDATE_SCREENSHOTS") == "1"
SHOTS = ("district", "dashboard")

# The browser fixtures of test_browser.py, used here by name.
_needs_chromium = test_browser._needs_chromium
browser = test_browser.browser
visit = test_browser.visit

# Count the distinct colours of a PNG (a data: URL) and the share of the commonest one.
COLOURS_JS = """
async (url) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = new Map();
  for (let i = 0; i < data.length; i += 4) {
    const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  return [counts.size, Math.max(...counts.values()) / (data.length / 4)];
}
"""


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    """Load times, not written anywhere (``test_browser.py`` records its own)."""
    return {}


@pytest.fixture(scope="module")
def readme_plan() -> Plan:
    return make_plan(sample_layers())


@pytest.fixture(scope="module")
def site(readme_plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("screenshots")
    write_maps(readme_plan, out)
    return out


def png_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) of a PNG, read from its header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_image(data: bytes, page) -> None:
    """Assert a screenshot is a PNG of the viewport, small, and not blank."""
    assert png_size(data) == (VIEWPORT["width"], VIEWPORT["height"])
    assert len(data) < MAX_BYTES, f"{len(data):,} bytes: make the viewport smaller"
    url = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    colours, commonest = page.evaluate(COLOURS_JS, url)
    assert colours > MIN_COLOURS
    assert commonest < MAX_SHARE_OF_ONE_COLOUR


def save(data: bytes, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"readme_{name}.png").write_bytes(data)
    if UPDATE:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        (DOCS_IMG / f"{name}.png").write_bytes(data)


def test_district_map_screenshot(readme_plan: Plan, site: Path, visit):
    seen = visit(site / "district.html", ready=MAP_READY)
    page = seen.page
    page.set_viewport_size(VIEWPORT)
    # Fit the district again to the smaller window, as a reader opening it there sees it.
    page.evaluate(
        """() => {
          const g = window.geoplan;
          g.map.invalidateSize({animate: false});
          g.map.fitBounds(g.overlays.compounds.getBounds(), {animate: false});
        }"""
    )
    page.wait_for_timeout(200)  # let Leaflet redraw the vector layers
    shown = page.evaluate(
        """() => {
          const g = window.geoplan, view = g.map.getBounds();
          const leaves = (layer) => layer.getLayers ? layer.getLayers().flatMap(leaves) : [layer];
          const inside = (key) => leaves(g.overlays[key]).filter((l) => l.getLatLng
            ? view.contains(l.getLatLng()) : view.contains(l.getBounds())).length;
          return {compounds: inside('compounds'), meter_boxes: inside('meter_boxes'),
                  cables: inside('cables')};
        }"""
    )
    # The whole district is in the picture: every compound, box and cable.
    assert shown == {
        "compounds": len(readme_plan.layers["compounds"]),
        "meter_boxes": len(readme_plan.meter_boxes),
        "cables": len(readme_plan.cables),
    }
    assert page.locator(".gp-legend").is_visible()
    data = page.screenshot()
    check_image(data, page)
    save(data, "district")
    assert_clean(seen)


def test_dashboard_screenshot(readme_plan: Plan, site: Path, visit):
    seen = visit(site / "index.html")
    page = seen.page
    page.set_viewport_size(VIEWPORT)
    cards = page.locator(".card")
    assert cards.count() == 10
    # Every headline figure is in the picture, with the plan's own numbers.
    for i in range(cards.count()):
        box = cards.nth(i).bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= VIEWPORT["height"]
    text = page.locator(".cards").inner_text()
    assert f"{len(readme_plan.meter_boxes):,}" in text
    assert f"{len(readme_plan.layers['compounds']):,}" in text
    data = page.screenshot()
    check_image(data, page)
    save(data, "dashboard")
    assert_clean(seen)


@pytest.mark.parametrize("name", SHOTS)
def test_committed_screenshot_is_small_and_shown_in_readme(name: str):
    path = DOCS_IMG / f"{name}.png"
    assert path.is_file(), "make it with UPDATE_SCREENSHOTS=1 pytest tests/test_screenshots.py"
    data = path.read_bytes()
    assert png_size(data) == (VIEWPORT["width"], VIEWPORT["height"])
    assert len(data) < MAX_BYTES
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"](docs/img/{name}.png)" in readme
