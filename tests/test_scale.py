"""Scale-out: partitions, their merge, and planning on a real local Dask cluster.

The city is two sample districts 6 km apart (:func:`geoplan.scale.sample_city`): they
cannot share a supply or a trench, so the partitioned plan must be the single-process
plan. The cluster is a ``LocalCluster`` of two worker processes on 127.0.0.1.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import make_layers, write_layers
from distributed import Client, LocalCluster
from geopandas.testing import assert_geodataframe_equal

from geoplan.cli import cli
from geoplan.layers import Layers, read_layers
from geoplan.partition import partition_layers
from geoplan.plan import Plan, plan
from geoplan.scale import (
    PartitionPlan,
    PortableSettings,
    merge_partition_plans,
    plan_on_dask,
    plan_partition,
    sample_city,
)
from geoplan.settings import Settings

LAYERS = ("meter_boxes", "cables", "trenches", "removals", "unserved")
# Floats summed part by part rather than row by row: equal to the last few bits.
SUMMED_STATS = ("separate_trench_km", "trench_saving_pct")


def assert_same_plan(merged: Plan, single: Plan) -> None:
    """Assert two plans have the same layers, summary, power flow and headline figures.

    The power flow check is compared when the merged plan has one.
    """
    for name in LAYERS:
        assert_geodataframe_equal(getattr(merged, name), getattr(single, name))
    pd.testing.assert_frame_equal(merged.summary, single.summary)
    stats = single.stats
    if merged.power_flow is not None:
        pd.testing.assert_frame_equal(merged.power_flow, single.power_flow)
    else:
        stats = {k: v for k, v in stats.items() if not k.startswith("power_flow_")}
    assert list(merged.stats) == list(stats)
    for key, value in stats.items():
        if key in SUMMED_STATS:
            assert merged.stats[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert merged.stats[key] == value, key


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Layers:
    """Two sample districts 6 km apart, validated."""
    return read_layers(write_layers(sample_city(seeds=(2, 3)), tmp_path_factory.mktemp("city")))


@pytest.fixture(scope="module")
def single(city: Layers) -> Plan:
    """The single-process plan of the city."""
    return plan(city, check_power_flow=True)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A client of a local cluster of two single-threaded worker processes."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_separate_districts_are_separate_partitions(city: Layers) -> None:
    partitioning = partition_layers(city)
    assert [p.partition_id for p in partitioning.partitions] == ["P0001", "P0002"]
    for partition, district in zip(partitioning.partitions, ("D1-", "D2-"), strict=True):
        assert all(c.startswith(district) for c in partition.compound_ids)
        for name in ("compounds", "storage_blocks", "supply_points", "corridors"):
            ids = partition.frames[name].iloc[:, 0].astype(str)
            assert ids.str.startswith(district).all(), name
    assert partitioning.compounds["compound_id"].is_unique
    assert len(partitioning.compounds) == len(city["compounds"])
    assert not partitioning.interacting
    # Partitioning depends on the data alone.
    again = partition_layers(city)
    assert [p.compound_ids for p in again.partitions] == [
        p.compound_ids for p in partitioning.partitions
    ]


def test_merged_partitions_equal_the_single_process_plan(city: Layers, single: Plan) -> None:
    partitioning = partition_layers(city)
    portable = PortableSettings.of(Settings())
    parts = [
        plan_partition(p, settings=portable, check_power_flow=True)
        for p in reversed(partitioning.partitions)  # the merge does not depend on the order
    ]
    assert_same_plan(merge_partition_plans(city, parts, settings=Settings()), single)


def test_local_cluster_plan_equals_the_single_process_plan(
    city: Layers, single: Plan, client: Client
) -> None:
    seen: list[tuple[str, int, int]] = []
    scaled = plan_on_dask(city, client=client, progress=lambda *a: seen.append(a))
    assert_same_plan(scaled.plan, single)
    assert sorted(p for p, _, _ in seen) == ["P0001", "P0002"]
    assert [(done, total) for _, done, total in seen] == [(1, 2), (2, 2)]
    assert scaled.border.empty
    assert list(scaled.seconds["partition_id"]) == ["P0001", "P0002"]


def _slow_plan_partition(*args: object, started: Path, **kwargs: object) -> PartitionPlan:
    """Plan a partition after a pause, leaving this worker's pid in ``started``."""
    (started / str(os.getpid())).touch()
    time.sleep(1.5)
    return plan_partition(*args, **kwargs)


def test_a_killed_worker_does_not_lose_the_plan(
    city: Layers, single: Plan, client: Client, tmp_path: Path
) -> None:
    before = set(client.run(os.getpid).values())
    killed: list[int] = []

    def kill_the_first_worker_that_starts() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = [int(p.name) for p in tmp_path.iterdir()]
            if started:
                os.kill(started[0], signal.SIGKILL)
                killed.append(started[0])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_worker_that_starts)
    killer.start()
    scaled = plan_on_dask(
        city,
        client=client,
        task=functools.partial(_slow_plan_partition, started=tmp_path),
    )
    killer.join()
    assert killed
    assert killed[0] in before
    assert_same_plan(scaled.plan, single)
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the killed worker
    assert killed[0] not in set(client.run(os.getpid).values())


def test_cut_city_gives_each_supply_to_one_partition(tmp_path: Path) -> None:
    layers = read_layers(write_layers(sample_city(seeds=(2,)), tmp_path))
    settings = Settings()
    partitioning = partition_layers(layers, max_blocks=50, tile_m=1500.0)
    assert len(partitioning.partitions) > 2
    assert partitioning.interacting
    border = partitioning.border_supplies
    assert border["supply_id"].is_unique
    assert (border["partitions"].str.count(";") >= 1).all()
    assert all(
        o in p.split(";")
        for o, p in zip(border["owner_partition"], border["partitions"], strict=True)
    )
    # Outside its owner a supply has no spare capacity and no free circuit.
    owner = border.set_index("supply_id")["owner_partition"]
    for partition in partitioning.partitions:
        supplies = partition.frames["supply_points"].set_index("supply_id")
        lent = [s for s in supplies.index if s in owner and owner[s] != partition.partition_id]
        assert (supplies.loc[lent, "load_kva"] >= supplies.loc[lent, "capacity_kva"]).all()
        assert (supplies.loc[lent, "max_circuits"] == 0).all()

    portable = PortableSettings.of(settings)
    parts = [plan_partition(p, settings=portable) for p in partitioning.partitions]
    merged = merge_partition_plans(layers, parts, settings=settings)
    single = plan(layers, settings=settings)
    # Boxes are sited block by block: the same whatever the partitions.
    assert_geodataframe_equal(
        merged.meter_boxes.drop(columns="supply_id"), single.meter_boxes.drop(columns="supply_id")
    )
    # Every box is planned once; no supply gives more than its spare capacity or circuits.
    assert merged.cables["box_id"].is_unique
    assert set(merged.cables["box_id"]).isdisjoint(merged.unserved["box_id"])
    assert len(merged.cables) + len(merged.unserved) == len(merged.meter_boxes)
    assert merged.trenches["trench_id"].is_unique
    catalogue = settings.catalogue
    limit = float(catalogue.value("supply", "loading_limit"))
    power_factor = float(catalogue.value("loads", "power_factor"))
    supplies = layers["supply_points"].set_index("supply_id")
    demand_kva = merged.meter_boxes.set_index("box_id")["design_load_kw"] / power_factor
    fed = merged.cables[merged.cables["supply_id"].isin(supplies.index)]
    used_kva = fed["box_id"].map(demand_kva).groupby(fed["supply_id"]).sum()
    spare_kva = supplies["capacity_kva"] * limit - supplies["load_kva"].fillna(0.0)
    assert (used_kva <= spare_kva.reindex(used_kva.index) + 1e-6).all()
    assert (
        fed.groupby("supply_id").size() <= supplies["max_circuits"].reindex(used_kva.index)
    ).all()
    # Where the plans differ, a border supply is within reach.
    single_supply = single.cables.set_index("box_id")["supply_id"]
    merged_supply = merged.cables.set_index("box_id")["supply_id"]
    both = single_supply.index.union(merged_supply.index)
    changed = both[single_supply.reindex(both).fillna("") != merged_supply.reindex(both).fillna("")]
    part_of = partitioning.compounds.set_index("compound_id")["partition_id"]
    changed_parts = set(
        merged.meter_boxes.set_index("box_id").loc[changed, "compound_id"].map(part_of)
    )
    bordering = {p for ps in border["partitions"] for p in ps.split(";")}
    assert changed_parts <= bordering


def test_an_isolated_compound_keeps_its_unserved_reason(tmp_path: Path) -> None:
    # In district seed 1 the outlying compound lies over 1 km from the others.
    layers = read_layers(write_layers(sample_city(seeds=(1,)), tmp_path))
    partitioning = partition_layers(layers)
    assert [len(p.compound_ids) for p in partitioning.partitions] == [83, 1]
    portable = PortableSettings.of(Settings())
    parts = [plan_partition(p, settings=portable) for p in partitioning.partitions]
    merged = merge_partition_plans(layers, parts, settings=Settings())
    assert_geodataframe_equal(merged.unserved, plan(layers).unserved)


def geoplan_plan(layers: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``geoplan plan LAYERS --no-maps ARGS`` in a new process (1 s to reach a cluster)."""
    return subprocess.run(
        [sys.executable, "-m", "geoplan.cli", "plan", layers, "--no-maps", *map(str, args)],
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONIOENCODING": "utf-8",
            "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s",
        },
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def test_plan_command_on_a_cluster(tmp_path: Path, client: Client) -> None:
    layers = write_layers(make_layers(), tmp_path / "layers")
    one = geoplan_plan(layers, "--out", tmp_path / "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    many = geoplan_plan(layers, "--out", tmp_path / "many", "--scheduler", address, cwd=tmp_path)
    assert many.returncode == 0, many.stderr
    assert many.stdout == one.stdout.replace(str(tmp_path / "one"), str(tmp_path / "many"))
    for layer in LAYERS:
        assert_geodataframe_equal(
            gpd.read_file(tmp_path / "many" / "plan.gpkg", layer=layer),
            gpd.read_file(tmp_path / "one" / "plan.gpkg", layer=layer),
        )


def test_plan_command_refuses_workers_with_a_scheduler_and_a_dead_scheduler(
    tmp_path: Path,
) -> None:
    layers = str(write_layers(make_layers(), tmp_path / "layers"))
    runner = CliRunner()
    dead_scheduler = ["--scheduler", "tcp://127.0.0.1:9"]
    both = runner.invoke(
        cli, ["plan", layers, "--out", str(tmp_path / "both"), "--workers", "1", *dead_scheduler]
    )
    assert both.exit_code == 2
    assert "not both" in both.output
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        dead = runner.invoke(
            cli,
            ["plan", layers, "--out", str(tmp_path / "dead"), *dead_scheduler],
        )
    assert dead.exit_code == 2
    assert "error: cannot reach the Dask scheduler at tcp://127.0.0.1:9" in dead.output
    assert dead.exception is None or isinstance(dead.exception, SystemExit)


def test_plan_command_on_local_workers(tmp_path: Path) -> None:
    layers = write_layers(make_layers(), tmp_path / "layers")
    done = geoplan_plan(layers, "--out", tmp_path / "out", "--workers", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "plan.gpkg").exists()
    assert not (tmp_path / "out" / "border_supplies.csv").exists()
    assert "served boxes" in done.stdout
