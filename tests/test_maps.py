"""Map pages without a browser: files, offline-ness, escaping, determinism, size.

The plan comes from :func:`fixture_plan`: boxes at block centroids fed by straight cables
from the nearest supply, built from the real sample layers. It stands in for
``geoplan.plan.plan`` until the planner runs end to end; ``test_browser.py`` imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString

from geoplan.hazards import compound_hazard, rank_priority, score_wires
from geoplan.layers import Layers, read_layers
from geoplan.maps import compound_file, write_maps
from geoplan.maps._page import esc
from geoplan.maps._planmap import box_fields
from geoplan.plan import Plan
from geoplan.schema import conform
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


def fixture_plan(layers: Layers, settings: Settings | None = None) -> Plan:
    """Return a FIXTURE plan (not the planner's): one box per storage block at its
    centroid, a straight cable from the nearest supply, one trench per cable, every
    tenth block unserved.
    """
    settings = settings or Settings()
    sizes = sorted(settings.catalogue.value("meter_boxes", "single_phase_positions"))
    blocks = layers["storage_blocks"].reset_index(drop=True)
    supplies = layers["supply_points"].reset_index(drop=True)
    units = blocks["units"].astype(int)
    applicants = blocks["applicants"].fillna(blocks["units"]).astype(int)
    positions = [next((s for s in sizes if s >= u), sizes[-1]) for u in units]
    used = np.minimum(applicants, positions)
    centroids = blocks.geometry.centroid
    nearest = [int(supplies.distance(c).to_numpy().argmin()) for c in centroids]
    boxes = gpd.GeoDataFrame(
        {
            "box_id": blocks["block_id"] + "-M1",
            "block_id": blocks["block_id"],
            "compound_id": blocks["compound_id"],
            "rooms": units,
            "positions": positions,
            "used": used,
            "reserved": np.asarray(positions) - used,
            "phases": 1,
            "model": [f"DXB-1P-{p}" for p in positions],
            "design_load_kw": units * 0.75,
            "supply_id": supplies["supply_id"].iloc[nearest].to_numpy(),
            "status": blocks["status"].fillna("planned"),
            "cost_cny": 1200.0 + 350.0 * np.asarray(positions),
        },
        geometry=centroids,
        crs=layers.crs,
    )
    unserved_mask = (np.arange(len(boxes)) % 10) == 9
    served = boxes[~unserved_mask]
    lines = [
        LineString([supplies.geometry.iloc[i].coords[0], c.coords[0]])
        for i, c in zip(np.asarray(nearest)[~unserved_mask], served.geometry, strict=True)
    ]
    length = np.array([g.length for g in lines])
    big = served["design_load_kw"].to_numpy() > 10
    cables = gpd.GeoDataFrame(
        {
            "cable_id": served["supply_id"] + "/" + served["box_id"],
            "box_id": served["box_id"],
            "supply_id": served["supply_id"],
            "compound_id": served["compound_id"],
            "length_m": length,
            "off_corridor_m": length,
            "max_cables_in_trench": 1,
            "design_load_kw": served["design_load_kw"],
            "phases": 1,
            "cable_type": np.where(big, "YJV22-4x25", "YJV22-4x16"),
            "cross_section_mm2": np.where(big, 25.0, 16.0),
            "design_current_a": served["design_load_kw"] * 4.5,
            "ampacity_a": np.where(big, 107.0, 84.0),
            "voltage_drop_pct": length / 100.0,
            "cost_cny": length * np.where(big, 95.0, 65.0),
            "flags": "",
        },
        geometry=lines,
        crs=layers.crs,
    ).reset_index(drop=True)
    trenches = gpd.GeoDataFrame(
        {
            "trench_id": [f"T{i + 1:04d}" for i in range(len(cables))],
            "supply_id": cables["supply_id"],
            "surface": "soil",
            "off_corridor": True,
            "road_crossings": 0.0,
            "n_cables": 1,
            "length_m": cables["length_m"],
            "cost_cny": cables["length_m"] * 120.0,
        },
        geometry=cables.geometry,
        crs=layers.crs,
    )
    unserved = gpd.GeoDataFrame(
        {
            "block_id": boxes.loc[unserved_mask, "block_id"],
            "box_id": boxes.loc[unserved_mask, "box_id"],
            "compound_id": boxes.loc[unserved_mask, "compound_id"],
            "reason": "beyond_radius",
            "detail": "fixture: no supply within the radius",
        },
        geometry=boxes.loc[unserved_mask].geometry,
        crs=layers.crs,
    ).reset_index(drop=True)
    scored = score_wires(layers["flying_wires"], corridors=layers["corridors"], settings=settings)
    present = scored[~scored["reasons"].str.contains("removed", regex=False)]
    box_of_block = dict(zip(served["block_id"], served["box_id"], strict=True))
    removals = gpd.GeoDataFrame(
        {
            "wire_id": present["wire_id"],
            "box_id": present["to_block_id"].map(box_of_block).fillna(""),
            "compound_id": present["compound_id"],
            "hazard_score": present["hazard_score"],
            "reasons": present["reasons"],
        },
        geometry=present.geometry,
        crs=layers.crs,
    ).reset_index(drop=True)

    compounds = layers["compounds"]
    cost = (
        pd.concat(
            [
                boxes.groupby("compound_id")["cost_cny"].sum(),
                cables.groupby("compound_id")["cost_cny"].sum() * 2.0,
            ]
        )
        .groupby(level=0)
        .sum()
    )
    hazard = compound_hazard(
        scored, compounds, removed_wire_ids=removals.loc[removals["box_id"] != "", "wire_id"]
    )
    ranked = rank_priority(hazard, cost).set_index("compound_id")
    by_box = boxes.groupby("compound_id")
    summary = compounds.drop(columns="geometry").set_index("compound_id", drop=False)
    summary["applicants"] = applicants.groupby(blocks["compound_id"]).sum()
    summary["boxes"] = by_box.size()
    for name in ("positions", "used", "reserved"):
        summary[name] = by_box[name].sum()
    summary["energized_blocks"] = (
        (blocks["status"] == "energized").groupby(blocks["compound_id"]).sum()
    )
    summary["unserved_blocks"] = unserved.groupby("compound_id").size()
    summary["cable_m"] = cables.groupby("compound_id")["length_m"].sum()
    summary["trench_m"] = summary["cable_m"]
    summary["cost_cny"] = cost
    summary["hazard_before"] = ranked["hazard_index"]
    summary["hazard_after"] = ranked["hazard_after"]
    summary["priority_rank"] = ranked["priority_rank"]
    summary = conform(summary.fillna(0).reset_index(drop=True), "summary")
    return Plan(
        meter_boxes=conform(boxes, "meter_boxes"),
        cables=conform(cables, "cables"),
        trenches=conform(trenches, "trenches"),
        removals=conform(removals, "removals"),
        unserved=conform(unserved, "unserved"),
        summary=summary,
        layers=layers,
        settings=settings,
        stats={"fixture": "yes"},
    )


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
    return fixture_plan(sample_layers(tmp_path_factory.mktemp("sample")))


@pytest.fixture(scope="module")
def pages(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_maps(plan, tmp_path_factory.mktemp("maps"))


@pytest.fixture(scope="module")
def hostile_pages(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    ids = sorted(plan.layers["compounds"]["compound_id"])
    layers = with_names(plan.layers, {ids[0]: PAYLOAD_SCRIPT, ids[1]: PAYLOAD_IMG})
    hostile = fixture_plan(layers, plan.settings)
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
        from test_maps import fixture_plan, sample_layers, digest
        from geoplan.maps import write_maps
        paths = write_maps(fixture_plan(sample_layers(Path(sys.argv[2]))), Path(sys.argv[1]))
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
