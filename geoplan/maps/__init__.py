"""Folium pages of a plan: the managers' dashboard, plan maps and the hazard heatmap.

Pages are offline by default: each is one self-contained HTML file that makes no
request at all (Leaflet and leaflet.heat are inlined from installed packages), so it
opens from a shared folder on an intranet without internet. ``tiles="OpenStreetMap"`` (or
any folium tiles name or URL) adds an online base layer when asked for.

Maps read a :class:`~geoplan.plan.Plan`; they never recompute it. :func:`write_maps`
writes every page; :func:`district_map` makes the plan map alone, to show inline in
Jupyter or save as one file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geoplan._fork import Beside, can_fork
from geoplan.errors import OutputError

if TYPE_CHECKING:
    from geoplan.plan import Plan

logger = logging.getLogger(__name__)

COMPOUND_FOLDER = "compounds"
CITY_FEATURES = 20_000
"""Most features (:func:`map_features`) a district map draws one by one; above: overviews."""
Scale = Literal["auto", "district", "city"]
SCALES: tuple[Scale, ...] = ("auto", "district", "city")
_SAFE_NAME = re.compile(r"[^\w-]", re.UNICODE)
_MAX_NAME = 80
_DISTRICT_PLAN = "区域方案图 District plan"
_DISTRICT_OVERVIEW = "区域概览图 District overview"
#: From this many compound pages, a forked process (:mod:`geoplan._fork`) writes every
#: other one while this process writes the rest.
_PAGES_IN_TWO = 200


ASSETS_DIR = "assets"  # city scale: Leaflet's files, shared by the compound pages


def compound_file(compound_id: str) -> str:
    """Return the page of a compound relative to the output folder.

    Ids that are not safe file names (path separators, dots, spaces...) are cleaned and
    suffixed with a short hash so that two ids never share a page.
    """
    text = str(compound_id)
    safe = _SAFE_NAME.sub("_", text)[:_MAX_NAME]
    if safe != text or not safe:
        safe = f"{safe}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"
    return f"{COMPOUND_FOLDER}/{safe}.html"


def _write(path: Path, text: str) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        msg = f"cannot write the map ({exc.strerror}); choose another --out folder"
        raise OutputError(msg) from None
    logger.info("wrote %s (%.0f kB)", path, path.stat().st_size / 1000)
    return path


@contextmanager
def _page_modules() -> Iterator[None]:
    """Turn a missing folium or xstatic-leaflet, met importing the page modules, into advice."""
    try:
        yield
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        msg = (
            f"geoplan maps need folium and xstatic-leaflet ({exc.name} is missing): "
            "pip install folium xstatic-leaflet"
        )
        raise ImportError(msg) from exc


def _compound_names(plan: Plan) -> dict[str, str]:
    """Return ``{compound_id: name}`` (ids as text)."""
    compounds = plan.layers["compounds"]
    return dict(zip(compounds["compound_id"].astype(str), compounds["name"], strict=True))


def _compound_title(names: dict[str, str], compound_id: str) -> str:
    return f"{names.get(compound_id) or compound_id} ({compound_id})"


def _known_compounds(ids: list[str], compounds: Iterable[str]) -> list[str]:
    """Return the asked-for compound ids, sorted, refusing any the plan does not hold."""
    asked = {str(c) for c in compounds}
    unknown = sorted(asked.difference(ids))
    if unknown:
        msg = f"no compound {', '.join(map(repr, unknown))} in the plan"
        raise ValueError(msg)
    return sorted(asked)


def map_features(plan: Plan) -> int:
    """Return how many features the full district map of a plan would draw.

    Every compound, building, storage block, flying wire, supply point, meter box,
    unserved block, trench and cable: what decides whether ``district.html`` can show them
    all (:data:`CITY_FEATURES`).
    """
    layers = plan.layers
    frames = (
        *(layers[name] for name in ("compounds", "buildings", "storage_blocks")),
        *(layers[name] for name in ("flying_wires", "supply_points")),
        plan.meter_boxes,
        plan.unserved,
        plan.trenches,
        plan.cables,
    )
    return sum(len(frame) for frame in frames)


def map_scale(plan: Plan, scale: Scale = "auto") -> Literal["district", "city"]:
    """Return how a plan's maps are drawn: ``"district"`` (every feature) or ``"city"``.

    ``"auto"`` gives ``"city"`` when the full district map would draw more than
    :data:`CITY_FEATURES` features (:func:`map_features`); the other two are returned
    as they are.

    Raises
    ------
    ValueError
        ``scale`` is not ``"auto"``, ``"district"`` or ``"city"``.
    """
    if scale == "auto":
        return "city" if map_features(plan) > CITY_FEATURES else "district"
    if scale in ("district", "city"):
        return scale
    msg = f"scale must be one of {', '.join(SCALES)}, not {scale!r}"
    raise ValueError(msg)


def write_maps(
    plan: Plan,
    out_dir: Path,
    *,
    tiles: str | None = None,
    scale: Scale = "auto",
    compounds: Iterable[str] | None = None,
) -> list[Path]:
    """Write the dashboard, the district plan map, the heatmap and one map per compound.

    A district is drawn feature by feature. A city (more than :data:`CITY_FEATURES`
    features, :func:`map_features`) would make pages of hundreds of megabytes, so its
    ``district.html`` and ``heatmap.html`` become overviews instead: one marker per
    compound with its figures and a link to its page, and the flying-wire hazard summed
    on a grid; the dashboard keeps every compound in a leaner table and counts unserved
    blocks by reason. Compound pages show the same at every scale; a city's link to one
    copy of Leaflet in ``assets/`` instead of each inlining it (150 kB a page: 1 GB for
    5,000 compounds), so copy the folder whole.

    Parameters
    ----------
    plan
        The plan to show; columns that look personal and phone or ID numbers are left
        out unless its settings say ``include_personal`` (:mod:`geoplan.privacy`).
    out_dir
        Folder to write into (created if needed); existing pages are replaced.
    tiles
        None (default) for offline pages on a plain background; a folium tiles name
        (``"OpenStreetMap"``, ``"CartoDB positron"``) or a tile URL template for an online
        base layer.
    scale
        ``"auto"`` (default): ``"city"`` above :data:`CITY_FEATURES` features, else
        ``"district"``; ``"district"`` draws every feature whatever the size;
        ``"city"`` writes the overviews whatever the size.
    compounds
        The compounds whose pages to write, by id; None (default) for every compound.
        The dashboard and overviews are written whole either way and link to every
        compound's page: after changing a few compounds, rewrite only theirs.

    Returns
    -------
    paths
        ``index.html``, ``district.html``, ``heatmap.html``, at city scale the files in
        ``assets/`` (Leaflet, which the compound pages then link to instead of each
        inlining it), then ``compounds/<compound_id>.html`` in compound-id order.

    Raises
    ------
    ImportError
        folium or xstatic-leaflet is not installed.
    OutputError
        A page cannot be written.
    ValueError
        ``scale`` is not one of the three, or a compound is not in the plan.
    """
    chosen = map_scale(plan, scale)  # before any work: a bad value fails at once
    ids = sorted({str(c) for c in plan.layers["compounds"]["compound_id"]})
    pages = ids if compounds is None else _known_compounds(ids, compounds)
    with _page_modules():
        from ._dashboard import dashboard_page
        from ._heatmap import heatmap_page
        from ._index import PlanIndex
        from ._overview import overview_page
        from ._planmap import plan_page
    from geoplan import __version__
    from geoplan.privacy import redact_plan

    plan = redact_plan(plan)  # personal data stays off the pages unless asked for
    logger.info("%s maps (scale=%r)", chosen, scale)
    city = chosen == "city"
    out_dir = Path(out_dir)
    files = {cid: compound_file(cid) for cid in ids}
    from_root = dict(files)
    from_compound = {cid: f"../{f}" for cid, f in files.items()}
    paths = [
        _write(
            out_dir / "index.html",
            dashboard_page(
                plan,
                links=from_root,
                district_href="district.html",
                heatmap_href="heatmap.html",
                version=__version__,
                city=city,
            ),
        )
    ]
    home = [("index.html", "看板 Dashboard")]
    district_label = _DISTRICT_OVERVIEW if city else _DISTRICT_PLAN
    district_back = [*home, ("heatmap.html", "隐患热力图 Hazard heatmap")]
    index = PlanIndex(plan)  # wire scores and cable colours, once for every page
    shared: dict[str, Any] = {"plan": plan, "links": from_root, "tiles": tiles}  # both top maps
    heat_back = [*home, ("district.html", district_label)]
    title = "飞线隐患热力图 Flying-wire hazard heatmap"
    if city:
        district, _ = overview_page(
            **shared, title=district_label, back_links=district_back, scores=index.scores
        )
    else:
        district, _ = plan_page(
            **shared, title=district_label, back_links=district_back, index=index
        )
    paths.append(_write(out_dir / "district.html", district))
    if city:
        heat, _ = overview_page(
            **shared, title=title, back_links=heat_back, focus="hazard", scores=index.scores
        )
    else:
        heat, _ = heatmap_page(**shared, title=title, back_links=heat_back, scores=index.scores)
    paths.append(_write(out_dir / "heatmap.html", heat))
    names = _compound_names(plan)
    up = [("../index.html", "看板 Dashboard"), ("../district.html", district_label)]
    assets = None
    if city:  # thousands of compound pages share one copy of Leaflet
        from ._page import asset_texts

        assets = f"../{ASSETS_DIR}/"
        for name, text in asset_texts().items():
            paths.append(_write(out_dir / ASSETS_DIR / name, text))

    def write_pages(some: list[str]) -> None:
        for cid in some:
            page, _ = plan_page(
                plan,
                compound_id=cid,
                title=_compound_title(names, cid),
                links=from_compound,
                back_links=up,
                tiles=tiles,
                index=index,
                assets=assets,
            )
            _write(out_dir / files[cid], page)

    if len(pages) >= _PAGES_IN_TWO and can_fork():
        # every other page written by a forked process (the same bytes; here if it fails)
        with Beside(lambda: write_pages(pages[1::2]), fork=True) as half:
            write_pages(pages[0::2])
            half.result()
    else:  # in compound order, so that a page that cannot be written is the first one
        write_pages(pages)
    paths += [out_dir / files[cid] for cid in pages]
    logger.info("wrote %d map pages to %s", len(paths), out_dir)
    return paths


@dataclass(frozen=True, repr=False)
class MapPage:
    """One self-contained map page: shown inline by Jupyter, or saved as an HTML file.

    Parameters
    ----------
    html
        The whole page, as :func:`write_maps` writes it (Leaflet inlined).
    title
        The page's title.
    height_px
        Height of the frame that shows the page inline.
    """

    html: str
    title: str
    height_px: int = 600

    def __repr__(self) -> str:
        """Name the page and its size (the page itself is far too long to print)."""
        return f"MapPage({self.title!r}, {len(self.html.encode('utf-8')) / 1000:,.0f} kB)"

    def _repr_html_(self) -> str:
        """Return the page in an iframe (escaped into ``srcdoc``), as Jupyter shows it."""
        style = f"width: 100%; height: {int(self.height_px)}px; border: 0"
        return f'<div><iframe srcdoc="{escape(self.html)}" style="{style}"></iframe></div>'

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (UTF-8; folders created) and return the path.

        Raises
        ------
        OutputError
            The file cannot be written.
        """
        return _write(Path(path), self.html)


def district_map(
    plan: Plan,
    *,
    compound_id: str | None = None,
    tiles: str | None = None,
    scale: Scale = "auto",
    height_px: int = 600,
) -> MapPage:
    """Return the plan map of the district, or of one compound, as one page in memory.

    The page is the ``district.html`` (or compound page) that :func:`write_maps` writes,
    offline in the same way (Leaflet inlined, no request at all), without the legend's
    links to the dashboard and heatmap and the popups' links to compound pages: those
    pages do not exist beside it. In Jupyter the returned page shows inline; ``.html`` is
    its text and ``.save(path)`` writes it.

    Parameters
    ----------
    plan
        The plan to show; columns that look personal and phone or ID numbers are left
        out unless its settings say ``include_personal`` (:mod:`geoplan.privacy`).
    compound_id
        None (default) for the whole district; a compound's id for its map alone.
    tiles
        None (default) for an offline page on a plain background; a folium tiles name or
        a tile URL template for an online base layer.
    scale
        As for :func:`write_maps`: above :data:`CITY_FEATURES` features ``"auto"`` draws
        the district as an overview (one marker per compound). A compound's map is
        drawn in full at every scale.
    height_px
        Height of the inline frame.

    Returns
    -------
    page
        The page (:class:`MapPage`).

    Raises
    ------
    ImportError
        folium or xstatic-leaflet is not installed.
    ValueError
        ``scale`` is not one of the three, or ``compound_id`` is not a compound of the plan.
    """
    chosen = map_scale(plan, scale)
    with _page_modules():
        from ._overview import overview_page
        from ._planmap import plan_page
    from geoplan.privacy import redact_plan

    ids = plan.layers["compounds"]["compound_id"].astype(str).tolist()
    if compound_id is not None and str(compound_id) not in ids:
        msg = f"{compound_id!r} is not a compound of the plan"
        raise ValueError(msg)
    shown = redact_plan(plan)
    options: dict[str, Any] = {"links": {}, "back_links": [], "tiles": tiles}
    if compound_id is not None:
        # the id as the page has it: a phone or ID number in it is masked there
        cid = str(shown.layers["compounds"]["compound_id"].iloc[ids.index(str(compound_id))])
        title = _compound_title(_compound_names(shown), cid)
        page, _ = plan_page(shown, compound_id=cid, title=title, **options)
    elif chosen == "city":
        title = _DISTRICT_OVERVIEW
        page, _ = overview_page(shown, title=title, **options)
    else:
        title = _DISTRICT_PLAN
        page, _ = plan_page(shown, title=title, **options)
    return MapPage(html=page, title=title, height_px=height_px)


__all__ = [
    "ASSETS_DIR",
    "CITY_FEATURES",
    "MapPage",
    "compound_file",
    "district_map",
    "map_features",
    "map_scale",
    "write_maps",
]
