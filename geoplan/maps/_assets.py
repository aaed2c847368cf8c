"""Offline page assets, read from installed packages at render time and inlined.

Leaflet's JS and CSS come from the ``xstatic-leaflet`` package (the version folium 0.20
links to), its images become ``data:`` URIs, and leaflet.heat comes from the folium wheel
itself. Nothing here is a copy of third-party code: every file is read from the package
that ships it, so upgrading the package upgrades the pages.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

LEAFLET_VERSION = "1.9.3"  # the version folium 0.20's pages link to
_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((['\"]?)images/([\w.-]+)\1\)")


def _leaflet_dir() -> Path:
    try:
        from xstatic.pkg import leaflet
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        msg = "offline maps need Leaflet from the xstatic-leaflet package: "
        msg += "pip install xstatic-leaflet"
        raise ImportError(msg) from exc
    if leaflet.VERSION != LEAFLET_VERSION:
        logger.warning(
            "xstatic-leaflet has Leaflet %s; the maps were made with %s",
            leaflet.VERSION,
            LEAFLET_VERSION,
        )
    return Path(leaflet.BASE_DIR)


def _inline_script(text: str) -> str:
    """Make JavaScript safe to put inside ``<script>``: no source-map fetch, no end tag."""
    return _SOURCE_MAP.sub("", text).replace("</script", "<\\/script")


def _data_uri(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


@functools.cache
def leaflet_js() -> str:
    """Return Leaflet's minified JavaScript."""
    return _inline_script((_leaflet_dir() / "leaflet.js").read_text(encoding="utf-8"))


@functools.cache
def leaflet_css() -> str:
    """Return Leaflet's CSS with its images inlined as ``data:`` URIs."""
    folder = _leaflet_dir()
    css = (folder / "leaflet.css").read_text(encoding="utf-8")
    css = _CSS_URL.sub(lambda m: f"url({_data_uri(folder / 'images' / m.group(2))})", css)
    css = _SOURCE_MAP.sub("", css)
    return css.replace("</style", "<\\/style")


@functools.cache
def default_icon_js() -> str:
    """Return a script pointing Leaflet's default marker icon at inlined images.

    The pages draw no default markers, but a plugin that does would otherwise request
    ``marker-icon.png`` next to the HTML file.
    """
    images = _leaflet_dir() / "images"
    return (
        'L.Icon.Default.imagePath = "";'
        "L.Icon.Default.mergeOptions({"
        f'iconUrl: "{_data_uri(images / "marker-icon.png")}",'
        f'iconRetinaUrl: "{_data_uri(images / "marker-icon-2x.png")}",'
        f'shadowUrl: "{_data_uri(images / "marker-shadow.png")}"'
        "});"
    )


@functools.cache
def heat_js() -> str:
    """Return leaflet.heat as shipped (patched) inside the folium wheel."""
    path = resources.files("folium").joinpath("templates", "leaflet_heat.min.js")
    return _inline_script(path.read_text(encoding="utf-8"))
