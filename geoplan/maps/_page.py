"""Folium plumbing shared by the map pages: layers, legend, offline assets, stable ids.

Every page is one self-contained HTML file: folium's CDN links are dropped and Leaflet
(plus leaflet.heat where needed) is inlined from installed packages; Bootstrap, Font
Awesome, awesome-markers and jQuery are not used. Folium names each element with a
random id; :func:`render` renames them in tree order so a plan always gives the same
bytes.
"""

from __future__ import annotations

import functools
import html
import json
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from . import _assets
from ._templates import reused_templates

REUSE_TEMPLATES = True  # render with :func:`~._templates.reused_templates` (same bytes, faster)
COORDINATE_DECIMALS = 6  # about 0.1 m: plenty for a map, and small
SIMPLIFY_M = 0.2  # drop vertices closer than this to a straight line (metric CRS)
MAX_ZOOM = 21  # a plain background has no tile layer to set the map's maxZoom
MIN_ZOOM = 10
PLAIN_CSS = ".leaflet-container{background:#eef0eb;}"  # no tiles: a calm plain background
PAGE_CSS = (
    "html,body{margin:0;padding:0;width:100%;height:100%;"
    "font-family:system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','Microsoft YaHei',"
    "'PingFang SC',sans-serif;}"
    ".leaflet-container{font-family:inherit;font-size:13px;}"
    ".gp-legend{position:fixed;left:10px;bottom:56px;z-index:1000;background:#fff;"
    "padding:8px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);"
    "font-size:12px;line-height:18px;max-width:260px;max-height:60vh;overflow:auto;}"
    ".gp-legend h4{margin:0 0 4px;font-size:13px;}"
    ".gp-legend i{display:inline-block;width:18px;height:10px;margin-right:6px;"
    "vertical-align:middle;border-radius:2px;}"
    ".gp-legend i.gp-dot{width:10px;height:10px;border-radius:50%;margin:0 10px 0 4px;}"
    ".gp-legend i.gp-line{height:3px;}"
    ".gp-legend a{display:block;margin-top:4px;}"
    ".gp-pop table{border-collapse:collapse;}"
    ".gp-pop th{text-align:left;padding:1px 8px 1px 0;font-weight:600;white-space:nowrap;}"
    ".gp-pop td{padding:1px 0;white-space:nowrap;}"
    ".gp-pop tr:first-child td{font-weight:600;}"
)


#: The files of :func:`asset_texts`, by name: Leaflet's CSS (images inlined), its
#: JavaScript and the default-icon script, as the pages would otherwise inline them.
ASSET_FILES = ("leaflet.css", "leaflet.js", "leaflet-icon.js")


def asset_texts() -> dict[str, str]:
    """Return Leaflet's files (:data:`ASSET_FILES`), for many pages to share."""
    texts = (_assets.leaflet_css(), _assets.leaflet_js(), _assets.default_icon_js())
    return dict(zip(ASSET_FILES, texts, strict=True))


def _leaflet_head(assets: str | None) -> list[tuple[str, Element]]:
    """Return the page head's Leaflet elements: inlined, or linked from ``assets``."""
    css, js, icon = ASSET_FILES
    if assets is None:
        texts = asset_texts()
        return [
            ("leaflet_css", Raw(f"<style>{texts[css]}</style>")),
            ("leaflet_js", Raw(f"<script>{texts[js]}</script>")),
            ("icon_js", Raw(f"<script>{texts[icon]}</script>")),
        ]
    return [
        ("leaflet_css", Raw(f'<link rel="stylesheet" href="{esc(assets + css)}">')),
        ("leaflet_js", Raw(f'<script src="{esc(assets + js)}"></script>')),
        ("icon_js", Raw(f'<script src="{esc(assets + icon)}"></script>')),
    ]


_BRACES = str.maketrans({"{": "&#123;", "}": "&#125;"})


def esc(value: object) -> str:
    """Return a value as escaped HTML text (None/NaN shown as an empty string).

    Braces become character references too: branca compiles what folium renders as a
    Jinja template, so ``{{ ... }}`` or ``{% ... %}`` in a name would otherwise be run
    (or break the page) instead of being shown.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True).translate(_BRACES)


class Raw(Element):
    """A piece of a page given as finished text: rendered as is, never as a template."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Raw"
        self.text = text

    def render(self, **_kwargs: object) -> str:
        """Return the text."""
        return self.text


@dataclass(frozen=True)
class Field:
    """One row of a layer's tooltip/popup: a label and one value per feature.

    Values are escaped when the page is built, unless ``markup`` says they already are
    HTML made by geoplan (links built from escaped parts).
    """

    label: str
    values: Sequence[object]
    tip: bool = True
    pop: bool = True
    markup: bool = False


def to_features(
    frame: gpd.GeoDataFrame, properties: Mapping[str, Sequence[object]]
) -> dict[str, object]:
    """Return a GeoJSON FeatureCollection in EPSG:4326 with only the given properties.

    Geometries are simplified in the frame's metric CRS, reprojected and rounded to
    :data:`COORDINATE_DECIMALS`; features get positional integer ids.
    """
    crs = frame.crs
    geoms = np.asarray(frame.geometry.array, dtype=object)
    if crs is not None and crs.is_projected:
        geoms = shapely.simplify(geoms, SIMPLIFY_M)
    # Round (not snap) coordinates: a feature shorter than the grid must not vanish.
    rounded = shapely.transform(lonlat(geoms, crs), lambda xy: xy.round(COORDINATE_DECIMALS))
    names = list(properties)
    columns = [list(properties[n]) for n in names]
    features = []
    for i, geom in enumerate(rounded):
        if geom is None or geom.is_empty:
            continue
        features.append(
            {
                "type": "Feature",
                "id": i,
                "properties": {n: c[i] for n, c in zip(names, columns, strict=True)},
                "geometry": json.loads(shapely.to_geojson(geom)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def lonlat(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """Return geometries in EPSG:4326, as ``GeoSeries.to_crs(4326)`` gives them.

    The same transformer (lon/lat order) on the same coordinates, found once per CRS:
    geopandas works out the CRS pair again on every call, which is most of the time of
    a compound page's few features.
    """
    if crs is None:
        raise ValueError("Cannot transform naive geometries: the layer has no CRS.")
    transform = _to_lonlat(pyproj.CRS.from_user_input(crs).srs)
    if transform is None:
        return geoms
    has_z = shapely.has_z(geoms)
    result = np.empty_like(geoms)
    for z, rows in ((False, ~has_z), (True, has_z)):
        coords = shapely.get_coordinates(geoms[rows], include_z=z)
        moved = transform(*coords.T)
        result[rows] = shapely.set_coordinates(geoms[rows].copy(), np.array(moved).T)
    return result


@functools.lru_cache(maxsize=16)
def _to_lonlat(srs: str) -> Any:
    """Return the transform of ``srs`` coordinates to lon/lat, or None if they are."""
    crs = pyproj.CRS.from_user_input(srs)
    if crs.is_exact_same(pyproj.CRS.from_epsg(4326)):
        return None
    return pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(4326), always_xy=True).transform


def lonlat_bounds(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """Return ``(minx, miny, maxx, maxy)`` of geometries in EPSG:4326 (NaN if none)."""
    return shapely.total_bounds(lonlat(geoms, crs))


def script_json(value: object) -> str:
    """Return compact JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


class ScriptLayer(folium.map.Layer):
    """An overlay made by one JavaScript expression of geoplan's own, written as is.

    The expression is not passed through a template, so megabytes of data in it cost
    no template compilation; whatever text it holds must already be escaped.
    """

    def __init__(self, expression: str, *, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "ScriptLayer"
        self.expression = expression

    def render(self, **kwargs: object) -> None:  # type: ignore[override] # as folium's Layer
        """Define the layer's variable, then let folium add it to the map."""
        figure = self.get_root()
        assert isinstance(figure, Figure)
        figure.script.add_child(
            Raw(f"var {self.get_name()} = {self.expression};"), name=self.get_name()
        )
        super().render(**kwargs)


@dataclass(frozen=True)
class Overlay:
    """One overlay of a map page: a key for scripts and tests, a label for people."""

    key: str
    label: str
    layer: folium.map.Layer
    count: int


def geojson_overlay(
    key: str,
    label: str,
    frame: gpd.GeoDataFrame,
    *,
    fields: Sequence[Field],
    styles: Sequence[Mapping[str, object]],
    style_index: Sequence[int] | None = None,
    popup: bool = False,
    radius: float | None = None,
    show: bool = True,
) -> Overlay:
    """Return one GeoJson layer for a whole frame (one object per layer, not per feature).

    Labels are written once per layer; each feature carries only its escaped values
    under short keys, which keeps a district map small.

    Parameters
    ----------
    key, label
        Stable key (``window.geoplan.overlays[key]``) and the label in the layer control.
    frame
        The features, in the plan's metric CRS.
    fields
        Tooltip and popup rows.
    styles, style_index
        Leaflet path styles and, per feature, which one it takes (default: the first).
    popup
        Bind a popup (on click) with the fields marked ``pop``.
    radius
        Draw points as CircleMarkers of this radius (pixels).
    """
    properties: dict[str, Sequence[object]] = {}
    for i, field in enumerate(fields):
        values = field.values if field.markup else [esc(v) for v in field.values]
        properties[f"f{i}"] = list(values)
    if style_index is not None and len(styles) > 1:
        properties["s"] = [int(i) for i in style_index]
    data = to_features(frame, properties)
    chosen = [dict(s) for s in styles]

    def style(feature: dict) -> dict[str, object]:
        return dict(chosen[feature["properties"].get("s", 0)])

    def detail(kind: type, wanted: str, **options: object) -> Any:
        picked = [(f"f{i}", esc(f.label)) for i, f in enumerate(fields) if getattr(f, wanted)]
        return kind(fields=[k for k, _ in picked], aliases=[a for _, a in picked], **options)

    layer = folium.GeoJson(
        data,
        name=label,
        style_function=style,
        tooltip=detail(folium.GeoJsonTooltip, "tip", class_name="gp-pop"),
        popup=detail(folium.GeoJsonPopup, "pop", class_name="gp-pop", localize=False)
        if popup
        else None,
        marker=folium.CircleMarker(radius=radius) if radius is not None else None,
        zoom_on_click=False,
        show=show,
    )
    return Overlay(key, label, layer, len(data["features"]))  # type: ignore[arg-type]


def new_map(bounds_4326: Sequence[float], *, tiles: str | None) -> folium.Map:
    """Return an empty map fitted to ``(minx, miny, maxx, maxy)`` in lon/lat.

    Without ``tiles`` the map has a plain background and an explicit maxZoom; with a
    folium tiles name or URL it gets that online base layer.
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds_4326)
    centre = [round((miny + maxy) / 2, COORDINATE_DECIMALS), round((minx + maxx) / 2, 6)]
    attr = None
    if tiles is not None and "{z}" in tiles:  # a URL template: folium wants an attribution
        attr = f"Map tiles: {esc(urlsplit(tiles).netloc or tiles)}"
    fmap = folium.Map(location=centre, tiles=tiles, attr=attr, zoom_start=15, control_scale=True)
    if tiles is None:
        fmap.options["max_zoom"] = MAX_ZOOM
        fmap.options["min_zoom"] = MIN_ZOOM
    _FitBounds([[miny, minx], [maxy, maxx]]).add_to(fmap)
    return fmap


class _FitBounds(MacroElement):
    """Fit the map to the features at once (folium's FitBounds animates the zoom)."""

    _template = Template(
        """
{% macro script(this, kwargs) %}
{{ this._parent.get_name() }}.fitBounds(
  {{ this.bounds|tojson }}, {animate: false, padding: [12, 12]}
);
{% endmacro %}
"""
    )

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "FitBounds"
        self.bounds = bounds


_REGISTRY = Template(
    """
{% macro script(this, kwargs) %}
window.geoplan = {
  map: {{ this._parent.get_name() }},
  overlays: {
{%- for key, layer in this.overlays %}
    {{ key|tojson }}: {{ layer.get_name() }},
{%- endfor %}
  },
  counts: {{ this.counts|tojson }},
};
{% endmacro %}
"""
)


class _Registry(MacroElement):
    """Expose the map and its overlays as ``window.geoplan`` (for tests and scripts)."""

    _template = _REGISTRY

    def __init__(self, overlays: Sequence[Overlay]) -> None:
        super().__init__()
        self._name = "Registry"
        self.overlays = [(o.key, o.layer) for o in overlays]
        self.counts = {o.key: o.count for o in overlays}


def add_overlays(fmap: folium.Map, overlays: Sequence[Overlay]) -> None:
    """Add the overlays, a layer control and the ``window.geoplan`` registry to a map."""
    for overlay in overlays:
        overlay.layer.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    _Registry(overlays).add_to(fmap)


def legend(
    title: str,
    items: Sequence[tuple[str, str, str]],
    links: Sequence[tuple[str, str]],
    *,
    notes: Sequence[str] = (),
) -> str:
    """Return the legend's HTML: ``items`` are (kind, colour, label), kind in box/line/dot.

    Labels, notes and link texts are escaped; link targets are relative file names.
    """
    rows = "".join(
        f'<div><i class="gp-{esc(kind)}" style="background:{esc(colour)}"></i>{esc(text)}</div>'
        for kind, colour, text in items
    )
    remarks = "".join(f'<div class="gp-note">{esc(text)}</div>' for text in notes)
    anchors = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in links)
    return f'<div class="gp-legend"><h4>{esc(title)}</h4>{rows}{remarks}{anchors}</div>'


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _stable_ids(root: Figure) -> None:
    """Rename every element ``<kind>_<n>`` in tree order and re-key the children."""
    old_names: dict[int, str] = {}
    for n, element in enumerate(_walk(root)):
        old_names[id(element)] = element.get_name()
        element._id = str(n)
    for element in _walk(root):
        element._children = OrderedDict(
            (child.get_name() if key == old_names[id(child)] else key, child)
            for key, child in element._children.items()
        )


def _strip_links(root: Figure) -> None:
    """Drop every CDN link folium would add (Leaflet, jQuery, Bootstrap, Font Awesome...)."""
    for element in _walk(root):
        if hasattr(element, "default_js"):
            element.default_js = []
            element.default_css = []  # type: ignore[attr-defined] # beside default_js


def render(
    fmap: folium.Map,
    *,
    title: str,
    legend_html: str,
    heat: bool = False,
    tiles: str | None,
    scripts: Sequence[str] = (),
    assets: str | None = None,
) -> str:
    """Render a map as one self-contained page (offline unless ``tiles`` was given).

    ``scripts`` are geoplan's own scripts (already safe), run before the map is made.
    ``assets``: None inlines Leaflet; a relative folder (``"../assets/"``) links to the
    files of :func:`asset_texts` written there instead, for many pages side by side.
    """
    figure = fmap.get_root()
    assert isinstance(figure, Figure)
    _strip_links(figure)
    leaflet = _leaflet_head(assets)
    head: list[tuple[str, Element]] = [
        ("meta_charset", Raw('<meta charset="utf-8">')),
        ("title", Raw(f"<title>{esc(title)}</title>")),
        leaflet[0],
        ("page_css", Raw(f"<style>{PAGE_CSS}{'' if tiles else PLAIN_CSS}</style>")),
        *leaflet[1:],
    ]
    if heat:
        head.append(("heat_js", Raw(f"<script>{_assets.heat_js()}</script>")))
    head += [(f"page_js_{i}", Raw(f"<script>{js}</script>")) for i, js in enumerate(scripts)]
    existing = list(figure.header._children.items())
    figure.header._children = OrderedDict(head + existing)
    figure.html.add_child(Raw(legend_html), name="legend")
    _stable_ids(figure)
    if REUSE_TEMPLATES:
        with reused_templates():
            text = figure.render()
    else:
        text = figure.render()
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
