"""Maps at city scale: the overview pages, the lean dashboard and fast compound pages.

The plan is the planner's plan of a 10k-edge synthetic city (:mod:`benchmarks.city`,
486 compounds, about a second to plan), drawn with ``scale="city"``. It stays below
:data:`~geoplan.maps.CITY_FEATURES`, so ``"auto"`` would draw it in full: the tests force
the overview, and check the switch itself with :func:`~geoplan.maps.map_scale`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import branca.element
import geopandas as gpd
import jinja2
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from test_browser import (  # noqa: F401 (fixtures)
    COUNT_JS,
    MAP_READY,
    assert_clean,
    browser,
    expected_counts,
    visit,
)
from test_maps import PAYLOAD_IMG, PAYLOAD_SCRIPT, external_urls, with_names

from benchmarks.city import CitySpec, make_city
from geoplan.layers import Layers, validate_layers
from geoplan.maps import (
    ASSETS_DIR,
    CITY_FEATURES,
    _assets,
    _page,
    compound_file,
    map_features,
    map_scale,
    write_maps,
)
from geoplan.maps._dashboard import LEAN_ROWS, LEAN_WIDTHS_EM, dashboard_page
from geoplan.maps._index import PlanIndex
from geoplan.maps._overview import COLUMNS, overview_page
from geoplan.maps._page import lonlat, lonlat_bounds
from geoplan.maps._planmap import _select, plan_page
from geoplan.maps._templates import Verbatim
from geoplan.plan import Plan
from geoplan.plan import plan as plan_layers

CITY_EDGES = 10_000
PAYLOAD_JINJA = "{{ 7*7 }} {% if x %}"
OVERVIEW_BYTES_PER_COMPOUND = 250  # 15 MB for 50,000 compounds (the 1M-edge city), heat included
DASHBOARD_BYTES_PER_COMPOUND = 300
DATA = re.compile(r"var geoplanData = (\{.*?\});</script>", re.DOTALL)


# --------------------------------------------------------------------------- helpers


def city_plan(layers: Layers | None = None) -> Plan:
    """Return the planner's plan of the 10k-edge synthetic city (or of given layers)."""
    if layers is None:
        layers = validate_layers(make_city(CitySpec(CITY_EDGES)))
    return plan_layers(layers, engine="csgraph")


def overview_data(text: str) -> dict:
    """Return the compound table an overview page carries."""
    found = DATA.search(text)
    assert found, "no compound table in the page"
    return json.loads(found.group(1))


def overview(plan: Plan, *, focus: str = "plan") -> str:
    ids = sorted({str(c) for c in plan.layers["compounds"]["compound_id"]})
    page, _ = overview_page(
        plan,
        title="overview",
        links={c: compound_file(c) for c in ids},
        back_links=[("index.html", "dashboard")],
        tiles=None,
        focus=focus,  # type: ignore[arg-type]
    )
    return page


def top_pages(plan: Plan) -> list[str]:
    """Return the city dashboard and the two overviews of a plan."""
    ids = sorted({str(c) for c in plan.layers["compounds"]["compound_id"]})
    dashboard = dashboard_page(
        plan,
        links={c: compound_file(c) for c in ids},
        district_href="district.html",
        heatmap_href="heatmap.html",
        version="test",
        city=True,
    )
    return [dashboard, overview(plan), overview(plan, focus="hazard")]


def own_script(text: str) -> str:
    """Return a page without the libraries it inlines (Leaflet, leaflet.heat)."""
    return text.replace(_assets.leaflet_js(), "").replace(_assets.heat_js(), "")


def only_compounds(plan: Plan, keep: set[str]) -> Plan:
    """Return the plan restricted to some compounds (their features and summary rows)."""

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        if "compound_id" not in frame.columns:
            return frame
        return frame[frame["compound_id"].astype(str).isin(keep)]

    frames = {name: pick(frame) for name, frame in plan.layers.frames.items()}
    layers = Layers(frames=frames, crs=plan.layers.crs, sources=plan.layers.sources)
    return dataclasses.replace(
        plan,
        layers=layers,
        summary=pick(plan.summary),
        meter_boxes=pick(plan.meter_boxes),
        cables=pick(plan.cables),
        removals=pick(plan.removals),
        unserved=pick(plan.unserved),
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plan() -> Plan:
    return city_plan()


@pytest.fixture(scope="module")
def pages(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_maps(plan, tmp_path_factory.mktemp("city"), scale="city")


@pytest.fixture(scope="module")
def hostile(plan: Plan) -> Plan:
    ids = sorted(plan.layers["compounds"]["compound_id"].astype(str))
    names = {ids[0]: PAYLOAD_SCRIPT, ids[1]: PAYLOAD_IMG, ids[2]: PAYLOAD_JINJA}
    return city_plan(with_names(plan.layers, names))


# ----------------------------------------------------------------------------- tests


def test_scale_switches_on_the_number_of_features(plan: Plan, monkeypatch: pytest.MonkeyPatch):
    features = map_features(plan)
    _, drawn = plan_page(plan, title="t", links={}, back_links=[], tiles=None)  # district.html
    assert len(drawn) == 9  # every layer of the page has features here, so each is counted
    assert features == sum(drawn.values())  # what the full district page draws, one by one
    assert features < CITY_FEATURES  # a 10k-edge city is still drawn in full ...
    assert map_scale(plan) == "district"
    monkeypatch.setattr("geoplan.maps.CITY_FEATURES", features - 1)
    assert map_scale(plan) == "city"  # ... and one feature more than the limit is not
    assert map_scale(plan, "district") == "district"
    monkeypatch.setattr("geoplan.maps.CITY_FEATURES", features)
    assert map_scale(plan) == "district"
    assert map_scale(plan, "city") == "city"


def test_a_wrong_scale_is_refused_before_anything_is_written(plan: Plan, tmp_path: Path):
    with pytest.raises(ValueError, match="scale must be one of auto, district, city"):
        write_maps(plan, tmp_path / "out", scale="town")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_every_page_is_written(plan: Plan, pages: list[Path]):
    out = pages[0].parent
    names = [p.relative_to(out).as_posix() for p in pages]
    ids = sorted(plan.layers["compounds"]["compound_id"].astype(str))
    assert names[:3] == ["index.html", "district.html", "heatmap.html"]
    assert names[3:6] == [f"{ASSETS_DIR}/{name}" for name in _page.ASSET_FILES]
    assert names[6:] == [compound_file(c) for c in ids]


def test_compound_pages_share_one_copy_of_leaflet(pages: list[Path]):
    """A city's compound pages link to Leaflet's files in assets/ instead of inlining them
    (150 kB a page), and those files are what the district pages inline."""
    out = pages[0].parent
    texts = _page.asset_texts()
    for name in _page.ASSET_FILES:
        assert (out / ASSETS_DIR / name).read_text(encoding="utf-8") == texts[name]
    compound = [p for p in pages if p.parent.name == "compounds"]
    sizes = [p.stat().st_size for p in compound]
    assert max(sizes) < len(texts["leaflet.js"]), "a compound page still inlines Leaflet"
    for path in compound[:5]:
        text = path.read_text(encoding="utf-8")
        assert texts["leaflet.js"][:2000] not in text
        assert '<script src="../assets/leaflet.js"></script>' in text
        assert '<link rel="stylesheet" href="../assets/leaflet.css">' in text


def test_overview_has_one_marker_per_compound_and_no_lines(plan: Plan, pages: list[Path]):
    text = pages[1].read_text(encoding="utf-8")
    data = overview_data(text)
    assert data["columns"] == list(COLUMNS)
    ids = [row[COLUMNS.index("id")] for row in data["rows"]]
    assert ids == plan.layers["compounds"]["compound_id"].astype(str).tolist()
    assert "geoplanOverview.dots(geoplanData" in text
    for word in ("LineString", "Polygon", "L.geoJson", "geo_json", "L.polyline", "L.polygon"):
        assert word not in own_script(text), word
    registry = re.search(r"counts: (\{.*?\}),", text)
    assert registry
    counts = json.loads(registry.group(1))
    unserved = int((plan.summary["unserved_blocks"] > 0).sum())
    assert counts == {"compounds": len(ids), "heat": counts["heat"], "unserved": unserved}
    assert 0 < counts["heat"] <= len(plan.layers["flying_wires"])


def test_marker_figures_are_the_summary(plan: Plan, pages: list[Path]):
    data = overview_data(pages[1].read_text(encoding="utf-8"))
    rows = {r[COLUMNS.index("id")]: dict(zip(COLUMNS, r, strict=True)) for r in data["rows"]}
    prefix, suffix = data["href"]
    for record in plan.summary.to_dict("records"):
        row = rows[record["compound_id"]]
        for name in ("households", "boxes", "used", "reserved", "priority_rank"):
            assert row[name] == record[name], name
        assert row["cost_cny"] == round(record["cost_cny"])
        assert row["hazard_before"] == round(record["hazard_before"], 1)
        assert row["unserved_blocks"] == record["unserved_blocks"]
        assert prefix + row["href"] + suffix == compound_file(record["compound_id"])
    compounds = plan.layers["compounds"].set_index("compound_id")
    inside = gpd.GeoSeries(
        gpd.points_from_xy(
            [r["lon"] for r in rows.values()], [r["lat"] for r in rows.values()], crs=4326
        )
    ).to_crs(plan.crs)
    assert inside.within(compounds.loc[list(rows)].geometry.buffer(2.0), align=False).all()


def test_overview_size_grows_with_compounds_not_cables(plan: Plan):
    full = len(overview(plan).encode("utf-8"))
    ids = sorted(plan.summary["compound_id"])
    few = len(overview(only_compounds(plan, set(ids[:10]))).encode("utf-8"))
    per_compound = (full - few) / (len(ids) - 10)
    assert per_compound <= OVERVIEW_BYTES_PER_COMPOUND, f"{per_compound:.0f} bytes per compound"

    many_lines = dataclasses.replace(
        plan,
        cables=pd.concat([plan.cables] * 10, ignore_index=True),
        trenches=pd.concat([plan.trenches] * 10, ignore_index=True),
    )
    grown = len(overview(many_lines).encode("utf-8"))
    assert abs(grown - full) < 20  # only the cable total in the legend changes


def test_heatmap_overview_has_hazard_now_and_after(plan: Plan, pages: list[Path]):
    text = pages[2].read_text(encoding="utf-8")
    assert text.count("L.heatLayer(") == 2
    assert "simpleheat" in text
    data = overview_data(text)
    assert len(data["rows"]) == len(plan.layers["compounds"])
    assert "geoplanOverview.rings" not in text
    assert "LineString" not in own_script(text)


def test_pages_are_offline(pages: list[Path]):
    compound = [p for p in pages if p.parent.name == "compounds"]
    for path in [*pages[:3], *compound[:7]]:
        text = path.read_text(encoding="utf-8")
        assert external_urls(text) == [], path.name
        links = re.findall(r"<link[^>]*>", text)
        local = ['<link rel="stylesheet" href="../assets/leaflet.css">']
        assert links == (local if path in compound else []), path.name
        for word in ("cdn.", "bootstrap", "font-awesome", "awesome-markers", "jquery"):
            assert word not in text.lower(), (path.name, word)
        assert '<meta charset="utf-8">' in text


def test_names_are_escaped_and_templates_never_run(hostile: Plan, tmp_path: Path):
    ids = sorted(hostile.layers["compounds"]["compound_id"].astype(str))
    index = PlanIndex(hostile)
    texts = [
        *top_pages(hostile),
        *(
            plan_page(
                hostile, compound_id=c, title=c, links={}, back_links=[], tiles=None, index=index
            )[0]
            for c in ids[:3]
        ),
    ]
    for text in texts:
        assert PAYLOAD_SCRIPT not in text
        assert "<img src=x" not in text
        assert "{{ 7*7 }}" not in text
        assert "{% if" not in text
    overview_text = texts[1]
    names = [r[COLUMNS.index("name")] for r in overview_data(overview_text)["rows"][:3]]
    assert names == [
        "&lt;script&gt;window.__pwned = 1&lt;/script&gt;",
        "&lt;img src=x onerror=&quot;window.__pwned = 2&quot;&gt;",
        "&#123;&#123; 7*7 &#125;&#125; &#123;% if x %&#125;",
    ]
    for text in (texts[0], texts[2], texts[5]):  # the dashboard, heatmap, compound page
        text = text.replace("\\u0026", "&")  # noqa: PLW2901 (folium's JSON writes & so)
        assert "&#123;&#123; 7*7 &#125;&#125; &#123;% if x %&#125;" in text


def test_dashboard_lists_every_compound_in_a_lean_table(plan: Plan, pages: list[Path]):
    text = pages[0].read_text(encoding="utf-8")
    order = re.findall(r'<tr data-compound="([^"]+)">', text)
    assert order == plan.summary.sort_values("priority_rank")["compound_id"].tolist()
    for cid in order:
        assert f'href="{compound_file(cid)}"' in text
    ranking = text.split('<div id="ranking" class="lean">')[1].split('<h2 id="unserved-list">')[0]
    head, rows = ranking.split("</table></div>", 1)
    assert head.count("<th") == len(LEAN_WIDTHS_EM)
    assert rows.count('<div class="rows"') == -(-len(order) // LEAN_ROWS)
    assert "class=n" not in rows
    assert "</td>" not in rows
    ids = sorted(plan.summary["compound_id"])
    few = dashboard_page(
        only_compounds(plan, set(ids[:10])),
        links={},
        district_href="d",
        heatmap_href="h",
        version="t",
        city=True,
    )
    per_compound = (len(text.encode("utf-8")) - len(few.encode("utf-8"))) / (len(ids) - 10)
    assert per_compound <= DASHBOARD_BYTES_PER_COMPOUND, f"{per_compound:.0f} bytes per compound"


def test_dashboard_counts_unserved_blocks_by_reason(plan: Plan, pages: list[Path]):
    text = pages[0].read_text(encoding="utf-8")
    table = text.split('<table id="unserved">')[1].split("</table>")[0]
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td class=n>([\d,]+)</td><td class=n>([\d,]+)</td>", table
    )
    unserved = plan.unserved
    by_reason = unserved.groupby("reason")
    assert {r: int(b.replace(",", "")) for r, b, _ in rows} == by_reason[
        "block_id"
    ].nunique().to_dict()
    assert sum(int(x.replace(",", "")) for _, _, x in rows) == len(unserved)
    assert "B0" not in table  # no block-by-block list


def test_index_selects_what_the_page_filters_select(plan: Plan):
    index = PlanIndex(plan)
    ids = sorted(plan.summary["compound_id"])
    with_unserved = set(plan.unserved["compound_id"].astype(str))
    sample = [*ids[::10], *sorted(with_unserved)[:10], "no-such-compound"]
    for cid in sample:
        fast, slow = index.frames(cid), _select(plan, cid)
        assert list(fast) == list(slow)
        for key in slow:
            assert_geodataframe_equal(fast[key], slow[key], check_like=False)
        box_ids = set(fast["meter_boxes"]["box_id"])
        expected = plan.cables[plan.cables["box_id"].isin(box_ids)]
        pd.testing.assert_frame_equal(index.box_cables(cid), expected)
        pd.testing.assert_frame_equal(
            index.summary(cid), plan.summary[plan.summary["compound_id"] == cid]
        )


def test_compound_pages_are_the_same_with_the_index(plan: Plan):
    index = PlanIndex(plan)
    ids = sorted(plan.summary["compound_id"])
    busy = plan.cables["compound_id"].value_counts().index[0]
    for cid in [ids[0], busy, str(plan.unserved["compound_id"].iloc[0])]:
        options = {"compound_id": cid, "title": cid, "links": {}, "back_links": [], "tiles": None}
        assert plan_page(plan, index=index, **options) == plan_page(plan, **options)


@pytest.mark.parametrize(
    "source",
    ["", "\n", "a", "a\n", "a\n\n", "a\r\nb\rc\n", "x { y } z", "{ {", "<p>{x}</p>\r\n"],
)
def test_verbatim_text_renders_as_jinja_renders_it(source: str):
    assert Verbatim(source).render(this=None, kwargs={}) == jinja2.Template(source).render()


def test_reused_templates_give_the_same_bytes(plan: Plan, monkeypatch: pytest.MonkeyPatch):
    ids = sorted(plan.summary["compound_id"])
    index = PlanIndex(plan)

    def render_all() -> list[str]:
        options = {"title": "t", "links": {}, "back_links": [("a", "b")], "tiles": None}
        return [
            plan_page(plan, **options)[0],  # every feature of the city
            plan_page(plan, compound_id=ids[1], index=index, **options)[0],
            overview(plan),
        ]

    fast = render_all()
    monkeypatch.setattr(_page, "REUSE_TEMPLATES", False)
    assert render_all() == fast
    assert branca.element.Template is jinja2.Template  # put back after rendering


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_same_bytes_twice_and_in_another_process(plan: Plan):
    first = [_digest(t) for t in top_pages(plan)]
    assert [_digest(t) for t in top_pages(plan)] == first
    script = textwrap.dedent(
        f"""
        import hashlib, json, sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]
        from test_city_maps import city_plan, top_pages
        pages = top_pages(city_plan())
        print(json.dumps([hashlib.sha256(t.encode("utf-8")).hexdigest() for t in pages]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONHASHSEED": "4242"},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == first


def test_written_pages_are_the_rendered_ones(plan: Plan, pages: list[Path]):
    from geoplan.privacy import redact_plan

    ids = sorted(plan.summary["compound_id"])
    shown = redact_plan(plan)
    written = (pages[0].parent / compound_file(ids[0])).read_text(encoding="utf-8")
    page, _ = plan_page(
        shown,
        compound_id=ids[0],
        title=written.split("<title>")[1].split("</title>")[0],
        links={c: f"../{compound_file(c)}" for c in ids},
        back_links=[
            ("../index.html", "看板 Dashboard"),
            ("../district.html", "区域概览图 District overview"),
        ],
        tiles=None,
        assets=f"../{ASSETS_DIR}/",
    )
    assert page == written


# ------------------------------------------------------------------ in a real browser

CHROMIUM = Path("/usr/bin/chromium")


def _browser_missing() -> str:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        return "the playwright package is missing (pip install playwright)"
    return ""


needs_browser = pytest.mark.skipif(
    bool(_browser_missing()) and not os.environ.get("CI"),
    reason=_browser_missing() or "browser available",
)


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    """Load times (kept here: ``test_browser`` owns ``artifacts/browser_timings.json``)."""
    return {}


@needs_browser
def test_overview_loads_offline_in_chromium(plan: Plan, pages: list[Path], request):
    seen = request.getfixturevalue("visit")(pages[1], ready=MAP_READY)
    drawn = seen.page.evaluate(
        "() => Object.fromEntries(Object.entries(window.geoplan.overlays)"
        ".filter(([, l]) => l.getLayers).map(([k, l]) => [k, l.getLayers().length]))"
    )
    assert drawn["compounds"] == len(plan.layers["compounds"])
    assert drawn["unserved"] == int((plan.summary["unserved_blocks"] > 0).sum())
    cid = str(plan.summary.sort_values("priority_rank")["compound_id"].iloc[0])
    x, y = seen.page.evaluate(
        """(cid) => {
          const g = window.geoplan;
          const m = g.overlays.compounds.getLayers().find((l) => l.row[5] === cid);
          g.map.setView(m.getLatLng(), 17, {animate: false});
          const p = g.map.latLngToContainerPoint(m.getLatLng());
          const r = g.map.getContainer().getBoundingClientRect();
          return [r.left + p.x, r.top + p.y];
        }""",
        cid,
    )
    seen.page.mouse.click(x, y)
    popup = seen.page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible", timeout=5_000)
    text = popup.inner_text()
    assert cid in text
    assert "优先 priority rank\t1" in text
    href = seen.page.locator(".leaflet-popup-content a").get_attribute("href")
    assert href == compound_file(cid)
    assert_clean(seen)


@needs_browser
def test_lean_dashboard_lists_every_compound_in_aligned_columns(
    plan: Plan, pages: list[Path], request
):
    seen = request.getfixturevalue("visit")(pages[0])
    listed = seen.page.evaluate(
        "() => [...document.querySelectorAll('#ranking tr[data-compound]')]"
        ".map((tr) => tr.dataset.compound)"
    )
    assert listed == plan.summary.sort_values("priority_rank")["compound_id"].tolist()
    lefts = seen.page.evaluate(
        """() => {
          const x = (cells) => [...cells].map((c) => Math.round(c.getBoundingClientRect().left));
          const rows = document.querySelectorAll('#ranking tr[data-compound]');
          return [document.querySelectorAll('#ranking .head th'), rows[0].cells,
                  rows[rows.length - 1].cells].map(x);
        }"""
    )
    assert lefts[0] == lefts[1] == lefts[2]
    assert len(lefts[0]) == len(LEAN_WIDTHS_EM)
    assert_clean(seen)


@needs_browser
def test_overview_names_show_as_text_in_chromium(hostile: Plan, tmp_path: Path, request):
    path = tmp_path / "district.html"
    path.write_text(overview(hostile), encoding="utf-8")
    seen = request.getfixturevalue("visit")(path, ready=MAP_READY)
    shown = seen.page.evaluate(
        """() => window.geoplan.overlays.compounds.getLayers().slice(0, 3).map((m) => {
             m.fire('click', {latlng: m.getLatLng()}, true);
             return document.querySelector('.leaflet-popup-content tr td').textContent;
           })"""
    )
    assert shown == [PAYLOAD_SCRIPT, PAYLOAD_IMG, PAYLOAD_JINJA]
    seen.page.wait_for_timeout(200)  # an <img onerror> would have fired by now
    assert_clean(seen)


@needs_browser
def test_compound_page_draws_with_the_shared_leaflet_in_chromium(
    plan: Plan, pages: list[Path], request
):
    out = pages[0].parent
    cid = str(plan.cables["compound_id"].value_counts().index[0])  # the busiest compound
    seen = request.getfixturevalue("visit")(out / compound_file(cid), ready=MAP_READY)
    drawn = seen.page.evaluate(COUNT_JS)
    expected = expected_counts(plan, cid)
    assert {k: v["layers"] for k, v in drawn.items() if k in expected} == expected
    assert seen.page.evaluate("() => L.version") == _assets.LEAFLET_VERSION
    assert_clean(seen)


def test_only_the_compound_pages_asked_for_are_written(
    plan: Plan, pages: list[Path], tmp_path: Path
):
    """The overviews are whole (linking every compound); the pages asked for are those of
    a full write, byte for byte; an unknown id is refused before anything is written."""
    full = pages[0].parent
    ids = sorted(plan.layers["compounds"]["compound_id"].astype(str))
    some = write_maps(plan, tmp_path / "some", scale="city", compounds=[ids[3], ids[1]])
    names = [p.relative_to(tmp_path / "some").as_posix() for p in some]
    assert [n for n in names if n.startswith("compounds/")] == [
        compound_file(ids[1]),
        compound_file(ids[3]),
    ]
    assert {"index.html", "district.html", "heatmap.html"} <= set(names)
    for name in names:
        assert (tmp_path / "some" / name).read_bytes() == (full / name).read_bytes(), name
    with pytest.raises(ValueError, match="no compound 'nowhere' in the plan"):
        write_maps(plan, tmp_path / "none", scale="city", compounds=["nowhere", ids[0]])
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("crs", ["EPSG:4545", "EPSG:3857", "EPSG:4326"])
def test_lonlat_is_what_geopandas_reprojects(crs: str):
    from shapely.geometry import LineString, Point, Polygon

    at = gpd.GeoSeries([Point(106.85, 39.65)], crs=4326).to_crs(crs).iloc[0]
    x, y = at.x, at.y
    d = 0.0001 if crs == "EPSG:4326" else 10.0
    geoms = gpd.GeoSeries(
        [
            Point(x, y),
            LineString([(x, y), (x + d, y + 2 * d)]),
            None,
            Polygon(),
            LineString([(x, y, 5.0), (x - d, y, 7.0)]),  # a 3-D line keeps its heights
            Polygon([(x, y), (x + d, y), (x, y + d)]),
        ],
        crs=crs,
    )
    moved = lonlat(geoms.to_numpy(), geoms.crs)
    expected = geoms.to_crs(4326).to_numpy()
    # bit for bit: the same coordinates, heights and empties
    assert list(shapely.to_wkb(moved)) == list(shapely.to_wkb(expected))
    assert shapely.has_z(moved).tolist() == shapely.has_z(expected).tolist()
    assert lonlat_bounds(geoms.to_numpy(), crs).tolist() == geoms.to_crs(4326).total_bounds.tolist()
