"""Map pages without a browser: files, offline-ness, escaping, determinism, size.

The plan is the planner's (:func:`geoplan.plan.plan`) for the shipped Haibowan sample;
``test_browser.py`` imports the helpers below.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from geoplan.layers import Layers, read_layers
from geoplan.maps import MapPage, compound_file, district_map, write_maps
from geoplan.maps._page import esc
from geoplan.maps._planmap import box_fields, compound_overlay
from geoplan.plan import Plan
from geoplan.plan import plan as plan_layers
from geoplan.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "layers" / "haibowan"
PAYLOAD_SCRIPT = "<script>window.__pwned = 1</script>"
PAYLOAD_IMG = '<img src=x onerror="window.__pwned = 2">'
DISTRICT_LIMIT_BYTES = 3_000_000


# ----------------------------------------------------------------------- fixture plan


def sample_layers(tmp: Path | None = None) -> Layers:
    """Read the committed sample district (or write it first when it is not there)."""
    if SAMPLE.is_dir():
        return read_layers(SAMPLE)
    from geoplan.sample import write_sample

    assert tmp is not None, "the sample layers are missing; give a folder to write them to"
    write_sample(tmp)
    return read_layers(tmp)


def with_names(layers: Layers, names: dict[str, str]) -> Layers:
    """Return layers whose compounds (by id) carry other names, e.g. an XSS payload."""
    compounds = layers["compounds"].copy()
    for cid, name in names.items():
        compounds.loc[compounds["compound_id"] == cid, "name"] = name
    frames = dict(layers.frames)
    frames["compounds"] = compounds
    return Layers(frames=frames, crs=layers.crs, sources=layers.sources)


def make_plan(layers: Layers, settings: Settings | None = None) -> Plan:
    """Return the planner's plan of a layer set (the maps read it, never recompute it)."""
    return plan_layers(layers, settings=settings or Settings())


# --------------------------------------------------------------------------- helpers


class _Links(HTMLParser):
    """Collect every src/href/srcset/action/poster attribute and inline CSS urls."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self._in_style = False
        self.css: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in {"src", "href", "srcset", "action", "poster", "data"} and value:
                self.urls.append((tag, name, value))
            if name == "style" and value:
                self.css.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)


def external_urls(text: str) -> list[str]:
    """Return every URL the page would load or link to outside itself."""
    parser = _Links()
    parser.feed(text)
    found = [f"{t} {n}={v}" for t, n, v in parser.urls if re.match(r"\s*(https?:)?//", v)]
    for css in parser.css:
        found += [
            f"css url({u})"
            for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
            if not u.startswith(("data:", "#"))
        ]
        found += [f"css @import {m}" for m in re.findall(r"@import[^;]+", css)]
    return found


def digest(paths: list[Path]) -> dict[str, str]:
    return {
        p.name if p.parent.name != "compounds" else f"compounds/{p.name}": hashlib.sha256(
            p.read_bytes()
        ).hexdigest()
        for p in paths
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return make_plan(sample_layers(tmp_path_factory.mktemp("sample")))


@pytest.fixture(scope="module")
def pages(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_maps(plan, tmp_path_factory.mktemp("maps"))


@pytest.fixture(scope="module")
def hostile_pages(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    ids = sorted(plan.layers["compounds"]["compound_id"])
    layers = with_names(plan.layers, {ids[0]: PAYLOAD_SCRIPT, ids[1]: PAYLOAD_IMG})
    hostile = make_plan(layers, plan.settings)
    return write_maps(hostile, tmp_path_factory.mktemp("hostile"))


# ----------------------------------------------------------------------------- tests


def test_every_page_is_written(plan: Plan, pages: list[Path]):
    out = pages[0].parent
    names = [p.relative_to(out).as_posix() for p in pages]
    ids = sorted(plan.layers["compounds"]["compound_id"])
    assert names[:3] == ["index.html", "district.html", "heatmap.html"]
    assert names[3:] == [compound_file(c) for c in ids]
    assert all(p.stat().st_size > 0 for p in pages)


def test_pages_declare_utf8_and_keep_chinese_names(plan: Plan, pages: list[Path]):
    name = str(plan.layers["compounds"]["name"].iloc[0])
    for path in pages[:4]:
        text = path.read_text(encoding="utf-8")
        assert '<meta charset="utf-8">' in text
    assert name in pages[0].read_text(encoding="utf-8")
    district = pages[1].read_text(encoding="utf-8")
    assert name in district or json.dumps(name)[1:-1] in district


def test_offline_pages_load_nothing_from_outside(pages: list[Path]):
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert external_urls(text) == [], path.name
        for word in ("cdn.", "bootstrap", "font-awesome", "fontawesome", "awesome-markers"):
            assert word not in text.lower(), (path.name, word)
        assert "<link" not in text, path.name


def test_offline_maps_inline_leaflet(pages: list[Path]):
    district = pages[1].read_text(encoding="utf-8")
    heat = pages[2].read_text(encoding="utf-8")
    assert "L.map(" in district
    assert '"maxZoom":' in district.replace(" ", "")
    assert "leaflet-control-layers" in district  # the CSS is there
    assert "L.heatLayer" in heat
    assert "simpleheat" in heat
    assert "simpleheat" not in district
    assert "jquery" not in district.lower()


def test_tiles_page_has_the_tile_url(plan: Plan, tmp_path: Path):
    out = tmp_path / "online"
    from geoplan.maps import _heatmap, _planmap

    page, _ = _planmap.plan_page(plan, title="t", links={}, back_links=[], tiles="OpenStreetMap")
    assert "tile.openstreetmap.org" in page
    heat, _ = _heatmap.heatmap_page(plan, title="t", links={}, back_links=[], tiles="OpenStreetMap")
    assert "tile.openstreetmap.org" in heat
    url = "https://tiles.example.invalid/{z}/{x}/{y}.png"
    custom, _ = _planmap.plan_page(plan, title="t", links={}, back_links=[], tiles=url)
    assert url in custom
    assert not out.exists()


def test_names_are_escaped_everywhere(hostile_pages: list[Path]):
    escaped = "&lt;script&gt;window.__pwned = 1&lt;/script&gt;"
    for path in hostile_pages:
        text = path.read_text(encoding="utf-8")
        assert PAYLOAD_SCRIPT not in text, path.name
        assert "<img src=x" not in text, path.name
        assert "__pwned = 1</" not in text, path.name
    dashboard = hostile_pages[0].read_text(encoding="utf-8")
    assert escaped in dashboard
    assert "&lt;img src=x onerror=&quot;window.__pwned = 2&quot;&gt;" in dashboard


def test_rendering_twice_gives_the_same_bytes(plan: Plan, pages: list[Path], tmp_path: Path):
    again = write_maps(plan, tmp_path / "again")
    assert digest(again) == digest(pages)
    text = pages[1].read_text(encoding="utf-8")
    assert not re.search(r"[0-9a-f]{32}", text), "a random folium id is left"


def test_same_bytes_in_other_processes(pages: list[Path], tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import hashlib, json, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_maps import make_plan, sample_layers, digest
        from geoplan.maps import write_maps
        paths = write_maps(make_plan(sample_layers(Path(sys.argv[2]))), Path(sys.argv[1]))
        print(json.dumps(digest(paths[:4])))
        """
    )
    results = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / seed), str(tmp_path / f"s{seed}")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        results.append(done.stdout.strip().splitlines()[-1])
    assert results[0] == results[1]
    assert json.loads(results[0]) == digest(pages[:4])


def test_district_map_size(pages: list[Path]):
    size = pages[1].stat().st_size
    assert size <= DISTRICT_LIMIT_BYTES, f"district.html is {size:,} bytes"


def test_dashboard_lists_every_compound_with_a_link(plan: Plan, pages: list[Path]):
    text = pages[0].read_text(encoding="utf-8")
    for cid in plan.layers["compounds"]["compound_id"]:
        assert f'data-compound="{cid}"' in text
        assert f'href="{compound_file(cid)}"' in text
    assert 'href="district.html"' in text
    assert 'href="heatmap.html"' in text


def test_dashboard_ranks_by_priority(plan: Plan, pages: list[Path]):
    text = pages[0].read_text(encoding="utf-8")
    order = re.findall(r'<tr data-compound="([^"]+)">', text)
    expected = plan.summary.sort_values("priority_rank")["compound_id"].tolist()
    assert order == expected


@pytest.mark.parametrize(
    ("compound_id", "expected"),
    [
        ("C001", "compounds/C001.html"),
        ("团结小区", "compounds/团结小区.html"),
    ],
)
def test_compound_file_keeps_safe_ids(compound_id: str, expected: str):
    assert compound_file(compound_id) == expected


@pytest.mark.parametrize("compound_id", ["../evil", "a/b", "..", "", "x y", "C.1"])
def test_compound_file_cleans_unsafe_ids(compound_id: str):
    name = compound_file(compound_id)
    assert name.startswith("compounds/")
    assert name.endswith(".html")
    stem = name.removeprefix("compounds/").removesuffix(".html")
    assert "/" not in stem
    assert ".." not in stem
    assert stem
    assert compound_file(compound_id) != compound_file(compound_id + "_")


def test_box_fields_show_positions_and_cable_escaped():
    boxes = pd.DataFrame(
        {
            "box_id": ["S1-M1", "S2-M1"],
            "block_id": ["S1", "S2"],
            "positions": [12, 4],
            "used": [9, 4],
            "reserved": [3, 0],
        }
    )
    cables = pd.DataFrame(
        {
            "box_id": ["S1-M1"],
            "cable_type": ["YJV22-4x16"],
            "length_m": [85.25],
            "supply_id": ["<T1>"],
        }
    )
    rows = {f.label: list(f.values) for f in box_fields(boxes, cables)}
    assert rows["表位 positions"] == ["12 (used 9 / reserved 3)", "4 (used 4 / reserved 0)"]
    assert rows["电缆 cable"][0] == "YJV22-4x16"
    assert "unserved" in rows["电缆 cable"][1]
    assert rows["电缆长度 cable length"] == ["85.2 m", ""]
    overlay_text = esc(rows["电源 supply"][0])
    assert overlay_text == "&lt;T1&gt;"


def test_compound_popups_take_their_own_summary_row():
    import geopandas as gpd
    from shapely.geometry import box

    compounds = gpd.GeoDataFrame(
        {"compound_id": ["C2", "C1", "C3"], "name": ["二", "一", "三"]},
        geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)],
        crs="EPSG:4545",
    )
    summary = pd.DataFrame(  # another order, no row for C3, C1 twice (the first counts)
        {
            "compound_id": ["C1", "C2", "C1"],
            "boxes": [3, 12, 99],
            "hazard_before": [40.0, 7.5, 99.0],
            "hazard_after": [0.0, 1.25, 99.0],
            "priority_rank": [1, 2, 99],
        }
    )
    overlay = compound_overlay(compounds, summary, {"C1": "c1.html"})
    rows = [f["properties"] for f in overlay.layer.data["features"]]
    assert [r["f1"] for r in rows] == ["C2", "C1", "C3"]
    assert [r["f4"] for r in rows] == ["12", "3", ""]
    assert [r["f5"] for r in rows] == ["7.5 → 1.2", "40.0 → 0.0", " → "]
    assert [r["f6"] for r in rows] == ["2", "1", ""]
    assert [("c1.html" in r["f7"]) for r in rows] == [False, True, False]


# ------------------------------------------------------------ district_map (inline pages)


def _counts(page: str) -> dict[str, int]:
    """Return the features drawn per overlay (``window.geoplan.counts``) of a page."""
    return json.loads(re.search(r"counts: (\{.*\}),", page).group(1))


def _without_links(page: str) -> str:
    """Return a written page without the links that go nowhere when it is shown alone.

    The legend's links to the other pages, and the compound popups' map row with its
    link to the compound's page (field ``f7``; ``<`` is ``\\u003c`` in the page's JSON).
    """
    page = re.sub(
        r'(<div class="gp-legend">.*?)(?:<a href="[^"]*">[^<]*</a>)+(</div>)', r"\1\2", page
    )
    page = re.sub(r', "f7": "\\u003ca href=\\"[^"\\]*\\"\\u003e[^"]*\\u003c/a\\u003e"', "", page)
    return page.replace(', "f7"];', "];").replace(', "\\u5730\\u56fe map"];', "];")


def _legend(page: str) -> str:
    return re.search(r'<div class="gp-legend">.*?</div>\s*$', page, re.MULTILINE).group(0)


def test_district_map_is_the_written_page_without_its_links(plan: Plan, pages: list[Path]):
    written = pages[1].read_text(encoding="utf-8")
    page = district_map(plan)
    assert page.title == "区域方案图 District plan"
    assert 'href="heatmap.html"' in _legend(written)  # the written page links to the others
    assert "<a " not in _legend(page.html)  # ... the inline one does not
    assert "open the compound map" not in page.html
    assert page.html == _without_links(written) != written  # all else is the same
    assert external_urls(page.html) == []
    assert "<link" not in page.html
    assert "L.map(" in page.html
    assert "leaflet-control-layers" in page.html  # Leaflet's CSS is inlined


def test_district_map_shows_inline_and_saves(tmp_path: Path):
    html = "<html><p title=\"a &amp; b\">'x' <script>window.__pwned = 1</script></p></html>"
    page = MapPage(html=html, title="t", height_px=420)
    shown = page._repr_html_()
    assert shown.startswith('<div><iframe srcdoc="')
    srcdoc, quote, rest = shown.removeprefix('<div><iframe srcdoc="').partition('"')
    assert quote
    assert rest == ' style="width: 100%; height: 420px; border: 0"></iframe></div>'
    assert "<" not in srcdoc
    assert "'" not in srcdoc
    assert unescape(srcdoc) == html
    assert repr(page) == "MapPage('t', 0 kB)"  # never the whole page
    saved = page.save(tmp_path / "maps" / "district.html")
    assert saved == tmp_path / "maps" / "district.html"
    assert saved.read_bytes() == html.encode("utf-8")


def test_district_map_of_one_compound(plan: Plan, pages: list[Path]):
    cid = sorted(plan.layers["compounds"]["compound_id"])[0]
    written = pages[3].read_text(encoding="utf-8")
    page = district_map(plan, compound_id=cid)
    name = plan.layers["compounds"].set_index("compound_id").loc[cid, "name"]
    assert page.title == f"{name} ({cid})"
    assert page.html == _without_links(written) != written
    assert "<a " not in _legend(page.html)


def test_district_map_city_overview(plan: Plan):
    page = district_map(plan, scale="city")
    assert page.title == "区域概览图 District overview"
    assert "<a " not in _legend(page.html)
    rows = json.loads(re.search(r'"rows":(\[\[.*?\]\]),', page.html).group(1))
    assert len(rows) == len(plan.layers["compounds"])
    assert {row[-1] for row in rows} == {None}  # no compound has a link (href) to its page
    assert external_urls(page.html) == []
    assert "L.map(" in page.html


def test_district_map_refuses_unknown_compounds_and_scales(plan: Plan):
    with pytest.raises(ValueError, match="'nowhere' is not a compound"):
        district_map(plan, compound_id="nowhere")
    with pytest.raises(ValueError, match="scale must be one of"):
        district_map(plan, scale="street")  # type: ignore[arg-type]


def test_district_map_keeps_personal_data_out(tmp_path: Path):
    from conftest import make_layers, write_layers

    mobile, masked, phone_id = "13912345678", "139****5678", "13700001111"
    layers = read_layers(write_layers(make_layers(), tmp_path / "layers"))
    frames = dict(layers.frames)
    for name, frame in frames.items():  # compound C2's id is a phone number, in every layer
        if "compound_id" in frame.columns:
            frames[name] = frame.assign(compound_id=frame["compound_id"].replace("C2", phone_id))
    compounds = frames["compounds"]
    frames["compounds"] = compounds.assign(
        name=compounds["name"].replace("海北小区", f"海北小区 {mobile}"), 户主="张秀英"
    )
    made = make_plan(Layers(frames=frames, crs=layers.crs, sources=layers.sources))
    for page in (
        district_map(made),
        district_map(made, compound_id="C1"),
        district_map(made, compound_id=phone_id),
    ):
        for secret in (mobile, phone_id, "张秀英"):
            assert secret not in page.html, (page.title, secret)
            assert secret not in page.title
    assert district_map(made, compound_id="C1").title == f"海北小区 {masked} (C1)"
    assert _counts(district_map(made, compound_id=phone_id).html)["meter_boxes"] == 1
