"""The map pages in a real headless Chromium, with every network request blocked.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package; never
``playwright install``. Without Chromium the module is skipped, except under CI (the
``CI`` environment variable is set), where it fails: CI must run it. Screenshots and load
times go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_maps import PAYLOAD_IMG, PAYLOAD_SCRIPT, make_plan, sample_layers, with_names

from geoplan.maps import compound_file, write_maps
from geoplan.maps._planmap import positions_text
from geoplan.plan import Plan

logger = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALLOWED_SCHEMES = ("file:", "data:", "about:", "blob:")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LOAD_TIMEOUT_MS = 15_000

# Count the leaf layers of an overlay that are on the map and drawn in the DOM.
COUNT_JS = """
() => {
  const out = {};
  const leaves = (layer) => layer.getLayers
    ? layer.getLayers().flatMap(leaves) : [layer];
  for (const [key, layer] of Object.entries(window.geoplan.overlays)) {
    if (!window.geoplan.map.hasLayer(layer) || !layer.getLayers) continue;
    const all = leaves(layer);
    out[key] = {
      layers: all.length,
      drawn: all.filter((l) => l._path && l._path.isConnected).length,
    };
  }
  return out;
}
"""

HEAT_PIXELS_JS = """
() => {
  const canvas = document.querySelector('canvas.leaflet-heatmap-layer');
  if (!canvas || !canvas.width || !canvas.height) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}
"""


def _require(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
    pytest.skip(reason)


@dataclass
class Visit:
    """One page opened in Chromium and what it tried to do."""

    page: object
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    load_s: float = 0.0


@pytest.fixture(scope="module", autouse=True)
def _needs_chromium() -> None:
    """Skip (or fail under CI) before building anything when there is no browser."""
    if not CHROMIUM.exists():
        _require(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        _require("the playwright package is missing (pip install playwright)")


@pytest.fixture(scope="module")
def timings() -> Iterator[dict[str, float]]:
    found: dict[str, float] = {}
    yield found
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser_timings.json").write_text(json.dumps(found, indent=2, sort_keys=True))


@pytest.fixture(scope="module")
def browser(
    tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float]
) -> Iterator[object]:
    """One Chromium for the whole module (a persistent context on a fresh profile)."""
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    manager = sync_playwright().start()
    context = manager.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 860},
        service_workers="block",
    )
    timings["chromium_launch"] = round(time.perf_counter() - started, 3)
    logger.info("Chromium launched in %.2f s", timings["chromium_launch"])
    try:
        yield context
    finally:
        context.close()
        manager.stop()


@pytest.fixture(scope="module")
def plan() -> Plan:
    layers = sample_layers()
    ids = sorted(layers["compounds"]["compound_id"])
    return make_plan(with_names(layers, {ids[0]: PAYLOAD_SCRIPT, ids[1]: PAYLOAD_IMG}))


@pytest.fixture(scope="module")
def site(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    write_maps(plan, out)
    return out


@pytest.fixture
def visit(browser, timings: dict[str, float]) -> Iterator:
    """Open a page with every non-local request blocked and recorded."""
    opened: list[Visit] = []

    def open_page(path: Path, *, ready: str = "() => true") -> Visit:
        page = browser.new_page()
        seen = Visit(page)
        opened.append(seen)

        def route(r) -> None:
            url = r.request.url
            if url.startswith(ALLOWED_SCHEMES):
                r.continue_()
            else:
                seen.blocked.append(url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.on("requestfailed", lambda r: seen.errors.append(f"failed: {r.url}"))

        def dialog(d) -> None:
            seen.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        started = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(ready, timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function("() => document.fonts.status === 'loaded'")
        seen.load_s = time.perf_counter() - started
        timings[path.name] = round(seen.load_s, 3)
        logger.info("%s loaded in %.2f s", path.name, seen.load_s)
        return seen

    yield open_page
    for seen in opened:
        seen.page.close()


def shot(seen: Visit, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    seen.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def assert_clean(seen: Visit) -> None:
    blocked = [u for u in seen.blocked if not u.startswith("file:")]
    assert blocked == [], "the page asked the network for these"
    assert seen.errors == []
    assert seen.dialogs == []
    assert seen.page.evaluate("() => window.__pwned") is None


MAP_READY = "() => window.L !== undefined && window.geoplan !== undefined"


def expected_counts(plan: Plan, compound_id: str | None = None) -> dict[str, int]:
    def n(frame) -> int:
        if compound_id is None or "compound_id" not in frame.columns:
            return len(frame)
        return int((frame["compound_id"].astype(str) == compound_id).sum())

    layers = plan.layers
    counts = {
        "compounds": n(layers["compounds"]),
        "buildings": n(layers["buildings"]),
        "storage_blocks": n(layers["storage_blocks"]),
        "flying_wires": n(layers["flying_wires"]),
        "cables": n(plan.cables),
        "meter_boxes": n(plan.meter_boxes),
        "unserved": n(plan.unserved),
    }
    if compound_id is None:
        counts["trenches"] = len(plan.trenches)
        counts["supply_points"] = len(layers["supply_points"])
    return {k: v for k, v in counts.items() if v}


# ----------------------------------------------------------------------------- tests


def test_district_map_loads_leaflet_offline(site: Path, visit):
    seen = visit(site / "district.html", ready=MAP_READY)
    assert seen.page.evaluate("() => window.L.version") == "1.9.3"
    assert seen.page.locator(".leaflet-control-layers").count() == 1
    assert seen.page.locator(".gp-legend").count() == 1
    shot(seen, "district")
    assert_clean(seen)


def test_district_map_draws_every_feature(plan: Plan, site: Path, visit):
    seen = visit(site / "district.html", ready=MAP_READY)
    drawn = seen.page.evaluate(COUNT_JS)
    expected = expected_counts(plan)
    assert {k: v["layers"] for k, v in drawn.items()} == expected
    assert {k: v["drawn"] for k, v in drawn.items()} == expected
    assert_clean(seen)


def test_compound_map_draws_its_features(plan: Plan, site: Path, visit):
    cid = str(plan.unserved["compound_id"].iloc[0])  # a compound with an unserved block
    seen = visit(site / compound_file(cid), ready=MAP_READY)
    drawn = seen.page.evaluate(COUNT_JS)
    expected = expected_counts(plan, cid)
    got = {k: v["layers"] for k, v in drawn.items() if k in expected}
    assert got == expected
    assert drawn["supply_points"]["layers"] >= 1
    shot(seen, "compound")
    assert_clean(seen)


def test_clicking_a_meter_box_opens_its_popup(plan: Plan, site: Path, visit):
    served = plan.meter_boxes[plan.meter_boxes["box_id"].isin(plan.cables["box_id"])]
    box = served.sort_values("box_id").iloc[0]
    cable = plan.cables.set_index("box_id").loc[box["box_id"]]
    seen = visit(site / "district.html", ready=MAP_READY)
    x, y = seen.page.evaluate(
        """(boxId) => {
          const g = window.geoplan, layers = g.overlays.meter_boxes.getLayers();
          const marker = layers.find((l) => l.feature.properties.f0 === boxId);
          g.map.setView(marker.getLatLng(), 19, {animate: false});
          const p = g.map.latLngToContainerPoint(marker.getLatLng());
          const r = g.map.getContainer().getBoundingClientRect();
          return [r.left + p.x, r.top + p.y];
        }""",
        str(box["box_id"]),
    )
    seen.page.mouse.click(x, y)
    popup = seen.page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible", timeout=5_000)
    text = popup.inner_text()
    assert str(box["box_id"]) in text
    assert str(box["block_id"]) in text
    assert positions_text(box["positions"], box["used"], box["reserved"]) in text
    assert str(cable["cable_type"]) in text
    seen.page.wait_for_timeout(300)  # the popup fades in
    shot(seen, "meter_box_popup")
    assert_clean(seen)


def test_heatmap_canvas_is_painted(site: Path, visit):
    seen = visit(site / "heatmap.html", ready=MAP_READY)
    seen.page.wait_for_function(HEAT_PIXELS_JS, timeout=5_000)
    assert seen.page.evaluate(HEAT_PIXELS_JS) > 1000
    assert seen.page.evaluate("() => window.geoplan.counts.heat") > 0
    shot(seen, "heatmap")
    assert_clean(seen)


def test_dashboard_lists_every_compound(plan: Plan, site: Path, visit):
    seen = visit(site / "index.html")
    listed = seen.page.evaluate(
        "() => [...document.querySelectorAll('#ranking tr[data-compound]')]"
        ".map((tr) => tr.dataset.compound)"
    )
    assert sorted(listed) == sorted(plan.layers["compounds"]["compound_id"].astype(str))
    assert listed == plan.summary.sort_values("priority_rank")["compound_id"].tolist()
    links = seen.page.evaluate(
        "() => [...document.querySelectorAll('#ranking a')].map((a) => a.getAttribute('href'))"
    )
    assert set(links) == {compound_file(c) for c in listed}
    assert seen.page.locator(".bar").count() >= 8
    shot(seen, "dashboard", full_page=True)
    assert_clean(seen)


def test_script_in_a_name_shows_as_text_and_never_runs(plan: Plan, site: Path, visit):
    ids = sorted(plan.layers["compounds"]["compound_id"].astype(str))
    dashboard = visit(site / "index.html")
    cells = dashboard.page.evaluate(
        """(ids) => ids.map((id) =>
             document.querySelector(`tr[data-compound="${id}"] a`).textContent)""",
        ids[:2],
    )
    assert cells == [PAYLOAD_SCRIPT, PAYLOAD_IMG]
    assert_clean(dashboard)

    district = visit(site / "district.html", ready=MAP_READY)
    shown = district.page.evaluate(
        """(ids) => ids.map((id) => {
             const layer = window.geoplan.overlays.compounds.getLayers()
               .find((l) => l.feature.properties.f1 === id);
             layer.fire('click', {latlng: layer.getBounds().getCenter()}, true);
             return document.querySelector('.leaflet-popup-content').textContent;
           })""",
        ids[:2],
    )
    assert PAYLOAD_SCRIPT in shown[0]
    assert PAYLOAD_IMG in shown[1]
    district.page.wait_for_timeout(200)  # an <img onerror> would have fired by now
    assert_clean(district)

    for path in (site / "heatmap.html", site / compound_file(ids[0]), site / compound_file(ids[1])):
        seen = visit(path, ready=MAP_READY)
        assert seen.page.title()  # the escaped name is the compound page's title
        assert_clean(seen)
