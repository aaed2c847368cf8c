"""City-scale benchmark of ``geoplan plan``: stage times, reference routings, peak memory.

Usage::

    python -m benchmarks --sizes 10k,100k,1M --out benchmarks/results

Each size runs in its own Python process (so that its peak memory is its own): the
synthetic city (:mod:`benchmarks.city`) is generated in memory and written to a temporary
GeoPackage; then the stages are timed: load (``read_layers``), the stages of ``plan``
(meter boxes, noding, graph build, snapping, candidate routes, assignment, trenches and
cable routes, cable sizing, hazards and costs) and export (``export_plan``, every
format, no maps). At city scale the meter boxes (with the supply candidates and the
flying wires' scores) are worked out by a forked process while the routing graph is
built, so the stage times add up to more than the plan's. Peak memory (max RSS) is read
after the export, with that of the largest forked process (the siting or an export
writer; forked, so sharing the planner's pages until either writes to them) beside it.
Then the references run on the same graph:

* **csgraph floor**: one ``scipy.sparse.csgraph.dijkstra`` from all supplies with
  ``min_only=True`` and predecessors, and numpy path extraction to every box;
* **naive**: what a script does with networkx, timed on a sample of boxes and
  extrapolated: one ``single_source_dijkstra`` per box cut off at its supply radius
  (the routes to every supply in reach: what the routing phase computes for all boxes),
  and one ``shortest_path`` per served box from its planned supply.

The table printed and ``benchmark.json`` give every time, the ratios and the machine;
``benchmark.png`` plots time against size.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

SIZES = {"10k": 10_000, "30k": 30_000, "100k": 100_000, "300k": 300_000, "1M": 1_000_000}
PLAN_STAGES = (
    "meter boxes",
    "noding",
    "graph build",
    "snapping",
    "candidate routes",
    "assignment",
    "trenches and cable routes",
    "cable sizing",
    "hazards and costs",
)
ROUTING_STAGES = ("candidate routes", "trenches and cable routes")
NAIVE_SAMPLE = 300


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def machine() -> dict[str, Any]:
    """The machine and software the benchmark ran on."""
    cpu = ""
    with Path("/proc/cpuinfo").open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with Path("/proc/meminfo").open(encoding="utf-8") as handle:
        mem_kb = int(handle.readline().split()[1])
    packages = (
        "numpy",
        "scipy",
        "shapely",
        "geopandas",
        "pandas",
        "networkx",
        "pyogrio",
        "numba",
    )
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024**2, 1),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in packages},
    }


def run_one(label: str, edges: int, *, seed: int = 7) -> dict[str, Any]:
    """Benchmark one city size in this process; return the measurements."""
    from geoplan import export_plan, read_layers
    from geoplan.plan import plan

    plan_module = importlib.import_module("geoplan.plan")  # the package's `plan` is a function

    from .city import CitySpec, describe, make_city, write_city

    result: dict[str, Any] = {"size": label, "target_edges": edges}
    started = time.perf_counter()
    city = make_city(CitySpec(edges, seed=seed))
    result["generate_s"] = time.perf_counter() - started
    result["city"] = describe(city)
    with tempfile.TemporaryDirectory(prefix="geoplan-bench-") as tmp:
        path = str(Path(tmp) / "city.gpkg")
        write_city(city, path)
        del city
        rss_before = _peak_rss_mb()
        started = time.perf_counter()
        layers = read_layers(path)
        load_s = time.perf_counter() - started

        captured: dict[str, Any] = {}
        real_attach = plan_module.attach_arrays

        def attach(*args: Any, **kwargs: Any) -> Any:
            captured["graph"], captured["nodes"] = real_attach(*args, **kwargs)
            return captured["graph"], captured["nodes"]

        timings: dict[str, float] = {}
        started = time.perf_counter()
        with mock.patch.object(plan_module, "attach_arrays", attach):
            made = plan(layers, engine="csgraph", timings=timings)
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        export_plan(made, Path(tmp) / "out")
        export_s = time.perf_counter() - started
        result["peak_rss_mb"] = _peak_rss_mb()
        # the export's writer processes (forked from this one, sharing its pages)
        result["peak_rss_child_mb"] = _peak_rss_mb(resource.RUSAGE_CHILDREN)
        result["peak_rss_before_load_mb"] = rss_before

    graph, nodes = captured["graph"], captured["nodes"]
    stats = made.stats
    result["graph"] = {"nodes": graph.n_nodes, "edges": graph.n_edges}
    result["plan"] = {
        k: stats[k]
        for k in ("boxes", "served_boxes", "unserved_boxes", "cable_km", "trench_km", "cost_cny")
    }
    result["supplies"] = len(layers["supply_points"])
    stages = {"load": load_s, **{s: timings.get(s, 0.0) for s in PLAN_STAGES}}
    stages["export"] = export_s
    result["stages_s"] = stages
    result["plan_s"] = plan_s
    result["end_to_end_s"] = load_s + plan_s + export_s
    result["routing_s"] = sum(timings.get(s, 0.0) for s in ROUTING_STAGES)

    result["floor_s"] = _csgraph_floor(graph, nodes)
    naive = _naive(graph, nodes, made)
    result["naive_s"], result["naive_path_s"] = naive["search_s"], naive["path_s"]
    result["naive_sampled"] = naive["sampled"]
    result["routing_over_floor"] = result["routing_s"] / result["floor_s"]
    result["candidates_over_floor"] = timings.get("candidate routes", 0.0) / result["floor_s"]
    result["naive_over_routing"] = result["naive_s"] / result["routing_s"]
    return result


def _csgraph_floor(graph: Any, nodes: dict[str, int]) -> float:
    """One multi-source csgraph Dijkstra from all supplies and every box's path."""
    from scipy.sparse import csgraph

    from geoplan._fastroute import walk

    supplies = np.array([n for k, n in nodes.items() if k.startswith("supply:")])
    boxes = np.array([n for k, n in nodes.items() if k.startswith("box:")])
    matrix = graph.csr(graph.weight)
    started = time.perf_counter()
    dist, pred, _ = csgraph.dijkstra(
        matrix, indices=supplies, min_only=True, return_predecessors=True
    )
    reached = boxes[np.isfinite(dist[boxes])]
    walk(pred.astype(np.int64), reached)
    return time.perf_counter() - started


def _naive(graph: Any, nodes: dict[str, int], made: Any) -> dict[str, float | int]:
    """What a script would do with networkx, per box; timed on a sample, extrapolated.

    * **search**: one ``networkx.single_source_dijkstra`` per box, by length and cut off
      at its supply radius, giving the routes to every supply in reach (the question the
      routing phase answers for all boxes at once);
    * **path**: one ``networkx.shortest_path`` per served box from its planned supply.
    """
    import networkx as nx

    from geoplan._graph import to_networkx

    nxg = to_networkx(graph)
    boxes = made.meter_boxes
    radius_m = _radius_by_box(made)
    rng = np.random.default_rng(0)
    ids = [b for b in boxes["box_id"] if f"box:{b}" in nodes]
    sample = [ids[i] for i in rng.choice(len(ids), size=min(NAIVE_SAMPLE, len(ids)), replace=False)]
    started = time.perf_counter()
    for box_id in sample:
        nx.single_source_dijkstra(
            nxg, nodes[f"box:{box_id}"], cutoff=radius_m[box_id], weight="length_m"
        )
    search_s = (time.perf_counter() - started) / max(len(sample), 1) * len(ids)

    assignment = made.cables[["box_id", "supply_id"]]
    rows = rng.choice(len(assignment), size=min(NAIVE_SAMPLE, len(assignment)), replace=False)
    pairs = [
        (
            nodes[f"supply:{assignment['supply_id'].iloc[i]}"],
            nodes[f"box:{assignment['box_id'].iloc[i]}"],
        )
        for i in rows
    ]
    started = time.perf_counter()
    for source, target in pairs:
        nx.shortest_path(nxg, source, target, weight="weight")
    path_s = (time.perf_counter() - started) / max(len(pairs), 1) * len(assignment)
    return {"search_s": search_s, "path_s": path_s, "sampled": len(sample)}


def _radius_by_box(made: Any) -> dict[str, float]:
    """The supply radius of each box (by its compound's area class)."""
    from geoplan.plan import _radius_by_compound

    radius = _radius_by_compound(made.layers["compounds"], made.settings)
    boxes = made.meter_boxes
    return dict(zip(boxes["box_id"], boxes["compound_id"].map(radius).astype(float), strict=True))


# ---------------------------------------------------------------------------- reporting


def table(results: list[dict[str, Any]]) -> str:
    """The results as a plain-text table."""
    labels = [r["size"] for r in results]
    width = max(12, *(len(x) + 2 for x in labels))
    lines = [f"{'':28}" + "".join(f"{x:>{width}}" for x in labels)]

    def row(name: str, values: list[str]) -> None:
        lines.append(f"{name:28}" + "".join(f"{v:>{width}}" for v in values))

    row("graph nodes", [f"{r['graph']['nodes']:,}" for r in results])
    row("graph edges", [f"{r['graph']['edges']:,}" for r in results])
    row("supplies", [f"{r['supplies']:,}" for r in results])
    row(
        "meter boxes (served)",
        [f"{r['plan']['boxes']:,} ({r['plan']['served_boxes']:,})" for r in results],
    )
    lines.append("seconds")
    for stage in results[0]["stages_s"]:
        row(f"  {stage}", [f"{r['stages_s'][stage]:.2f}" for r in results])
    row("  plan (all stages)", [f"{r['plan_s']:.2f}" for r in results])
    row("  end to end (load..export)", [f"{r['end_to_end_s']:.2f}" for r in results])
    row("  routing phase", [f"{r['routing_s']:.2f}" for r in results])
    row("  csgraph floor", [f"{r['floor_s']:.2f}" for r in results])
    row("  naive nx search per box", [f"{r['naive_s']:.1f}" for r in results])
    row("  naive nx path per box", [f"{r['naive_path_s']:.1f}" for r in results])
    lines.append("ratios")
    row("  routing / floor", [f"{r['routing_over_floor']:.2f}" for r in results])
    row("  candidate routes / floor", [f"{r['candidates_over_floor']:.2f}" for r in results])
    row("  naive search / routing", [f"{r['naive_over_routing']:.1f}" for r in results])
    row("peak memory (MB)", [f"{r['peak_rss_mb']:,.0f}" for r in results])
    row(
        "  largest forked child (MB)",
        [f"{r['peak_rss_child_mb']:,.0f}" for r in results],
    )
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Plot time against graph size (log-log), per stage and end to end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.array([r["graph"]["edges"] for r in results], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    series = {
        "end to end": [r["end_to_end_s"] for r in results],
        "routing phase": [r["routing_s"] for r in results],
        "csgraph floor": [r["floor_s"] for r in results],
        "naive nx search per box": [r["naive_s"] for r in results],
    }
    for stage in ("load", "noding", "graph build", "snapping", "assignment", "export"):
        series[stage] = [r["stages_s"][stage] for r in results]
    for name, values in series.items():
        style = "-o" if name in ("end to end", "routing phase") else "--."
        ax.plot(edges, values, style, label=name)
    if len(edges):
        ref = np.array([results[0]["end_to_end_s"]]) * edges / edges[0]
        ax.plot(edges, ref, ":", color="grey", label="linear from smallest")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("routing graph edges")
    ax.set_ylabel("seconds")
    ax.set_title("geoplan plan on synthetic cities")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compile_kernels() -> float:
    """Plan a small city through every compiled path once; return the seconds it took.

    The first run after installing compiles and caches the numba kernels (several
    seconds); the stage times of every size are then those of later runs, as an engineer
    sees them. The small city takes the paths of a large one (noding by contacts, searches
    and element-wise calls split over two threads) by lowering their thresholds here.
    """
    from geoplan import _geometry, _localsearch, _noding, _steiner
    from geoplan.layers import validate_layers
    from geoplan.plan import plan

    from .city import CitySpec, make_city

    started = time.perf_counter()
    layers = validate_layers(make_city(CitySpec(2_000, seed=1)))
    with (
        mock.patch.object(_noding, "_CONTACT_MIN_LINES", 0),
        mock.patch.object(_localsearch, "_SPLIT_MIN", 2),
        mock.patch.object(_steiner, "_SPLIT_MIN", 2),
        mock.patch.object(_geometry, "_THREADED_MIN", 2),
    ):
        plan(layers, engine="csgraph")
    return time.perf_counter() - started


def run_sizes(
    parser: argparse.ArgumentParser, sizes: str, module: str, extra: list[str]
) -> list[dict[str, Any]]:
    """Run ``python -m module --one SIZE *extra`` for each of the comma-separated sizes.

    Each size runs in a process of its own (its peak memory is its own); returns the JSON
    each printed last.
    """
    labels = [s.strip() for s in sizes.split(",") if s.strip()]
    unknown = [s for s in labels if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {', '.join(unknown)}; use {', '.join(SIZES)}")
    results = []
    for label in labels:
        print(f"running {label} ...", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", module, "--one", label, *extra]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark for each size in a fresh process and report."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes", default="10k,100k,1M", help="comma-separated: 10k,30k,100k,300k,1M"
    )
    parser.add_argument("--out", default="benchmarks/results", help="folder for JSON, table, plot")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workers",
        default="",
        help="also plan a multi-district city on Dask with these worker counts, e.g. 1,2",
    )
    parser.add_argument("--districts", type=int, default=6, help="districts for --workers")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, SIZES[args.one], seed=args.seed)))
        return 0
    compile_s = compile_kernels()
    results = run_sizes(parser, args.sizes, "benchmarks.run", ["--seed", str(args.seed)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "compile_kernels_s": compile_s, "results": results}
    text = table(results) + (
        f"\n\ncompiling the numba kernels before the runs: {compile_s:.1f} s"
        " (once per installation: cached beside the module)"
    )
    if args.workers:
        from benchmarks.workers import run as run_workers
        from benchmarks.workers import table as workers_table

        counts = tuple(int(w) for w in args.workers.split(","))
        report["workers"] = run_workers(args.districts, counts, 1)
        text += f"\n\nDask, {args.districts} districts\n" + workers_table(report["workers"])
    (out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    header = "\n".join(f"{k}: {v}" for k, v in report["machine"].items())
    (out / "benchmark.txt").write_text(header + "\n\n" + text + "\n", encoding="utf-8")
    plot(results, out / "benchmark.png")
    print(header + "\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
