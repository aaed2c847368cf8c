"""City-scale maps: sizes and times of ``write_maps`` on the synthetic cities.

Usage::

    python -m benchmarks.maps --sizes 10k,100k [--pages all|N] [--json out.json]

Each size runs in its own process: the synthetic city (:mod:`benchmarks.city`) is made in
memory, validated and planned (``engine="csgraph"``), then the maps are written to a
temporary folder and measured: the size of the dashboard, of the district page and of
the heatmap page, the number and total size of the compound pages, the time of each
page (from the ``wrote ...`` log lines: a page's time runs from the previous page
written, so the first compound page also carries the per-plan index) and peak memory.

``--pages all`` (default) times ``write_maps`` writing every page; ``--pages N`` has it
write the dashboard, the two overviews and only N compound pages spread over the city
(its ``compounds`` option), and extrapolates the compound pages' time and size to all
of them: for the 1M city, whose 50,000 compound pages take long and take gigabytes.
Either way the per-plan index is built just before the district page, so its time is
counted in that page's.

``--keep DIR`` keeps the pages in ``DIR/<size>`` (to open them in a browser).
``--no-index`` also times N compound pages drawn the way they were before the per-plan
index (each page filtering the whole plan) and extrapolates to all pages. ``--full``
also renders the full district page (every feature) for comparison.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from .run import SIZES, _peak_rss_mb, run_sizes

NO_INDEX_SAMPLE = 20


class _Clock(logging.Handler):
    """Records when each page was written (``geoplan.maps`` logs one line per page)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.marks: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "wrote %s (%.0f kB)":
            path = Path(str(record.args[0]))  # type: ignore[index]
            self.marks.append((f"{path.parent.name}/{path.name}", time.perf_counter()))


def _write_some(plan: Any, out: Path, pages: int) -> list[Path]:
    """``write_maps`` at city scale with only ``pages`` compound pages, spread over the city."""
    from geoplan.maps import write_maps

    ids = sorted({str(c) for c in plan.layers["compounds"]["compound_id"]})
    sample = ids[:: max(1, len(ids) // max(pages, 1))][:pages]
    return write_maps(plan, out, scale="city", compounds=sample)


def _no_index(plan: Any, n: int) -> float:
    """Seconds per compound page when each page filters the whole plan (no index)."""
    from geoplan.maps._planmap import plan_page

    ids = sorted({str(c) for c in plan.layers["compounds"]["compound_id"]})
    sample = ids[:: max(1, len(ids) // n)][:n]
    started = time.perf_counter()
    for cid in sample:
        plan_page(plan, compound_id=cid, title=cid, links={}, back_links=[], tiles=None)
    return (time.perf_counter() - started) / len(sample)


def run_one(
    label: str, *, pages: int | None, no_index: bool, full: bool, keep: str | None = None
) -> dict[str, Any]:
    """Plan one city size and measure its maps; return the measurements."""
    from geoplan.layers import validate_layers
    from geoplan.maps import map_features, write_maps
    from geoplan.maps._planmap import plan_page
    from geoplan.plan import plan

    from .city import CitySpec, describe, make_city

    result: dict[str, Any] = {"size": label}
    started = time.perf_counter()
    city = make_city(CitySpec(SIZES[label]))
    result["city"] = describe(city)
    made = plan(validate_layers(city), engine="csgraph")
    del city
    result["plan_s"] = time.perf_counter() - started
    result["features"] = map_features(made)
    result["counts"] = {
        "compounds": len(made.layers["compounds"]),
        "cables": len(made.cables),
        "trenches": len(made.trenches),
        "flying_wires": len(made.layers["flying_wires"]),
        "unserved": len(made.unserved),
    }
    clock = _Clock()
    logger = logging.getLogger("geoplan.maps")
    logger.addHandler(clock)
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="geoplan-maps-") as tmp:
        out = Path(keep) / label if keep else Path(tmp)
        started = time.perf_counter()
        if pages is None:
            paths = write_maps(made, out, scale="city")
        else:
            paths = _write_some(made, out, pages)
        elapsed = time.perf_counter() - started
        sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in paths}
    logger.removeHandler(clock)
    stamps = [started, *(t for _, t in clock.marks)]
    times = [b - a for a, b in itertools.pairwise(stamps)]
    n_compounds = len({str(c) for c in made.layers["compounds"]["compound_id"]})
    written = sum(k.startswith("compounds/") for k in sizes)
    compound_bytes = sum(v for k, v in sizes.items() if k.startswith("compounds/"))
    compound_s = sum(  # the compound pages' marks only (not the shared assets)
        t for (name, _), t in zip(clock.marks, times, strict=True) if name.startswith("compounds/")
    )
    result |= {
        "index_bytes": sizes["index.html"],
        "district_bytes": sizes["district.html"],
        "heatmap_bytes": sizes["heatmap.html"],
        "index_s": times[0],
        "district_s": times[1],
        "heatmap_s": times[2],
        "compound_pages": n_compounds,
        "compound_pages_written": written,
        "compound_bytes": compound_bytes,
        "compound_s": compound_s,
        "compound_ms_per_page": compound_s / max(written, 1) * 1000,
        "maps_s": elapsed,
        "extrapolated": written < n_compounds,
    }
    if written < n_compounds:
        scale = n_compounds / max(written, 1)
        result["compound_bytes_all_est"] = compound_bytes * scale
        result["maps_s_all_est"] = sum(times[:3]) + compound_s * scale  # index: in district
    if no_index:
        per_page = _no_index(made, NO_INDEX_SAMPLE)
        result["no_index_ms_per_page"] = per_page * 1000
        result["no_index_compound_s_est"] = per_page * n_compounds
    if full:
        started = time.perf_counter()
        page, _ = plan_page(made, title="full", links={}, back_links=[], tiles=None)
        result["full_district_bytes"] = len(page.encode("utf-8"))
        result["full_district_s"] = time.perf_counter() - started
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def table(results: list[dict[str, Any]]) -> str:
    """The results as a plain-text table."""
    width = 16
    lines = [f"{'':34}" + "".join(f"{r['size']:>{width}}" for r in results)]

    def row(name: str, key: str, fmt: str = "{:,.0f}") -> None:
        values = [fmt.format(r[key]) if key in r else "-" for r in results]
        lines.append(f"{name:34}" + "".join(f"{v:>{width}}" for v in values))

    for name in ("compounds", "cables", "trenches", "flying_wires", "unserved"):
        lines.append(f"{name:34}" + "".join(f"{r['counts'][name]:>{width},}" for r in results))
    row("features (full district would draw)", "features")
    row("plan (make, validate, plan) s", "plan_s", "{:,.1f}")
    lines.append("sizes (MB)")
    for name, key in (
        ("  index.html (dashboard)", "index_bytes"),
        ("  district.html (overview)", "district_bytes"),
        ("  heatmap.html (overview)", "heatmap_bytes"),
        ("  compound pages written", "compound_bytes"),
        ("  compound pages, all (est.)", "compound_bytes_all_est"),
        ("  full district.html (not written)", "full_district_bytes"),
    ):
        values = [f"{r[key] / 1e6:,.2f}" if key in r else "-" for r in results]
        lines.append(f"{name:34}" + "".join(f"{v:>{width}}" for v in values))
    row("compound pages", "compound_pages")
    row("compound pages written", "compound_pages_written")
    lines.append("seconds")
    row("  index.html", "index_s", "{:,.2f}")
    row("  district.html", "district_s", "{:,.2f}")
    row("  heatmap.html", "heatmap_s", "{:,.2f}")
    row("  compound pages written", "compound_s", "{:,.1f}")
    row("  ms per compound page", "compound_ms_per_page", "{:,.1f}")
    row("  maps, as run", "maps_s", "{:,.1f}")
    row("  maps, all pages (est.)", "maps_s_all_est", "{:,.1f}")
    row("  ms per page without index", "no_index_ms_per_page", "{:,.1f}")
    row("  compound pages w/o index (est.)", "no_index_compound_s_est", "{:,.0f}")
    row("  full district.html", "full_district_s", "{:,.1f}")
    row("peak memory (MB)", "peak_rss_mb")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure each size in a fresh process and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.maps", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated: 10k,...,1M")
    parser.add_argument("--pages", default="all", help="'all' or how many compound pages")
    parser.add_argument("--no-index", action="store_true", help="also time pages w/o index")
    parser.add_argument("--full", action="store_true", help="also render the full district")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--keep", help="keep the pages in this folder (one per size)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pages = None if args.pages == "all" else int(args.pages)
    if args.one:
        result = run_one(
            args.one, pages=pages, no_index=args.no_index, full=args.full, keep=args.keep
        )
        print(json.dumps(result))
        return 0
    extra = ["--pages", args.pages, *["--no-index"] * args.no_index, *["--full"] * args.full]
    extra += ["--keep", args.keep] if args.keep else []
    results = run_sizes(parser, args.sizes, "benchmarks.maps", extra)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
