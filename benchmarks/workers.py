"""Speed-up of ``geoplan plan --workers N`` over one process, on a multi-district city.

Usage::

    python -m benchmarks.workers --districts 6 --workers 1,2 [--json results.json]

The city is :func:`geoplan.scale.sample_city`: ``--districts`` sample districts 6 km
apart, so that each is one partition. It is validated once (``read_layers``); then the
plan is timed in this process (``plan``) and on a fresh local Dask cluster of each
number of single-threaded worker processes (``plan_on_dask``: partitioning, the tasks,
the merge). Starting the cluster is timed apart: a long-lived cluster pays it once.
Every Dask plan is checked against the single-process plan (same boxes, cables and
trenches). Times are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from geopandas.testing import assert_geodataframe_equal

from geoplan.layers import Layers, read_layers
from geoplan.plan import Plan, plan
from geoplan.scale import dask_client, plan_on_dask, sample_city

SEEDS = (2, 3, 4, 5, 6, 7, 8, 9)


def city_layers(districts: int, folder: Path) -> Layers:
    """Write a city of ``districts`` sample districts as one GeoPackage and read it."""
    path = folder / "city.gpkg"
    columns = max(1, round(districts**0.5))
    for name, frame in sample_city(seeds=SEEDS[:districts], columns=columns).items():
        frame.to_file(path, layer=name, driver="GPKG")
    return read_layers(path)


def _same(a: Plan, b: Plan) -> None:
    for name in ("meter_boxes", "cables", "trenches"):
        assert_geodataframe_equal(getattr(a, name), getattr(b, name))


def run(districts: int = 6, workers: tuple[int, ...] = (1, 2), repeat: int = 1) -> list[dict]:
    """Time the single-process plan and the Dask plan on each number of workers.

    Returns
    -------
    list of dict
        One row per mode: mode, workers (0 for the single process), partitions, boxes,
        cluster_start_s, plan_s, speedup (single-process time / plan time), same_plan.
    """
    with tempfile.TemporaryDirectory() as tmp:
        layers = city_layers(districts, Path(tmp))
    best = float("inf")
    single = None
    for _ in range(repeat):
        start = time.perf_counter()
        single = plan(layers)
        best = min(best, time.perf_counter() - start)
    assert single is not None
    rows: list[dict[str, Any]] = [
        {
            "mode": "single process",
            "workers": 0,
            "partitions": 1,
            "boxes": len(single.meter_boxes),
            "cluster_start_s": 0.0,
            "plan_s": best,
            "speedup": 1.0,
            "same_plan": True,
        }
    ]
    for n in workers:
        start = time.perf_counter()
        with dask_client(workers=n) as client:
            started = time.perf_counter() - start
            fastest = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                scaled = plan_on_dask(layers, client=client)
                fastest = min(fastest, time.perf_counter() - start)
        try:
            _same(scaled.plan, single)
            same = True
        except AssertionError:
            same = False
        rows.append(
            {
                "mode": f"dask, {n} worker{'s' if n > 1 else ''}",
                "workers": n,
                "partitions": len(scaled.partitioning.partitions),
                "boxes": len(scaled.plan.meter_boxes),
                "cluster_start_s": started,
                "plan_s": fastest,
                "speedup": best / fastest,
                "same_plan": same,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    """Format the rows as a plain-text table."""
    head = (
        f"{'mode':<18}{'workers':>8}{'partitions':>11}{'boxes':>7}"
        f"{'cluster s':>11}{'plan s':>9}{'speed-up':>10}  same plan"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['mode']:<18}{r['workers']:>8}{r['partitions']:>11}{r['boxes']:>7}"
            f"{r['cluster_start_s']:>11.2f}{r['plan_s']:>9.2f}{r['speedup']:>9.2f}x"
            f"  {'yes' if r['same_plan'] else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__)
    parser.add_argument("--districts", type=int, default=6, help=f"1 to {len(SEEDS)}")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if not 1 <= args.districts <= len(SEEDS):
        parser.error(f"--districts must be 1 to {len(SEEDS)}")
    workers = tuple(int(w) for w in args.workers.split(","))
    rows = run(args.districts, workers, args.repeat)
    print(f"{args.districts} districts, {os.cpu_count()} CPUs")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["same_plan"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
