"""The command line: parsing, progress, exit codes — nothing else.

Exit codes: 0 success; 2 bad input (one line per problem on stderr, no traceback).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import GeoplanError
from .settings import Settings, load_settings, parse_assignments

if TYPE_CHECKING:
    from rich.progress import Progress

    from .layers import Layers
    from .scale import ScaledPlan

EXIT_BAD_INPUT = 2


def _fail(exc: GeoplanError) -> None:
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a GeoplanError into one line per problem and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GeoplanError as exc:
            _fail(exc)

    return wrapper


def settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that build the settings and pass the command ``settings`` instead.

    The options: --settings, --crs, --load-basis, --include-personal, --set. The settings
    are built from the catalogue, the file beside ``layers`` and these flags.
    """

    @wraps(func)
    def wrapper(
        *,
        layers: Path,
        settings_file: Path | None,
        crs: str | None,
        load_basis: str | None,
        include_personal: bool | None,
        assignments: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        settings = load_settings(
            layers,
            settings_file=settings_file,
            options={"crs": crs, "load_basis": load_basis, "include_personal": include_personal},
            overrides=parse_assignments(assignments),
        )
        return func(layers=layers, settings=settings, **kwargs)

    options = [
        click.option(
            "--settings",
            "settings_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Settings file to read instead of geoplan.toml beside the layers.",
        ),
        click.option("--crs", help="Working CRS (projected, metres), e.g. EPSG:4545."),
        click.option(
            "--load-basis",
            type=click.Choice(["rooms", "applicants"]),
            help="Size loads for all storage rooms or only for applicants.",
        ),
        click.option(
            "--include-personal",
            is_flag=True,
            default=None,
            help="Keep columns that look personal (names, phone and ID numbers) in outputs.",
        ),
        click.option(
            "--set",
            "assignments",
            multiple=True,
            metavar="SECTION.KEY=VALUE",
            help="Override a catalogue figure, e.g. voltage.drop_limit_pct=5 (repeatable).",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="geoplan")
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
def cli(*, verbose: bool) -> None:
    """Plan underground cables and meter boxes that replace flying wires to storage sheds."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=20261126, show_default=True, help="Random seed of the sample.")
@_user_errors
def sample(directory: Path, seed: int) -> None:
    """Write the synthetic Haibowan sample district into DIRECTORY."""
    from .sample import write_sample

    paths = write_sample(directory, seed=seed)
    click.echo(f"wrote {len(paths)} layers to {directory}")


@cli.command()
@click.argument("layers", type=click.Path(path_type=Path))
@_user_errors
@settings_options
def validate(*, layers: Path, settings: Settings) -> None:
    """Check LAYERS (a folder or GeoPackage) against the layer contract and summarize it."""
    from .layers import read_layers, summarize

    result = read_layers(layers, settings=settings)
    for line in result.warnings:
        click.echo(f"warning: {line}", err=True)
    figures = summarize(result)
    click.echo(f"{layers}: valid ({result.crs.name})")
    for key, value in figures.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        click.echo(f"  {key.replace('_', ' '):<22}{shown:>12}")


@cli.command(name="plan")
@click.argument("layers", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the plan's layers, reports and maps (created if missing).",
)
@click.option(
    "--tiles",
    default=None,
    help="Online base map for the maps (e.g. OpenStreetMap); default: offline, no base map.",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Maps without any base map or network request (the default; refuses --tiles).",
)
@click.option("--no-maps", is_flag=True, help="Skip the HTML maps and dashboard.")
@click.option(
    "--check-power-flow",
    is_flag=True,
    help="Check every cable's voltage drop with a pandapower load flow.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Plan the layers' partitions on a local Dask cluster of N worker processes.",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Plan the layers' partitions on the running Dask cluster at this address.",
)
@_user_errors
@settings_options
def plan_command(
    *,
    layers: Path,
    out_dir: Path,
    tiles: str | None,
    settings: Settings,
    offline: bool,
    no_maps: bool,
    check_power_flow: bool,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Plan meter boxes, cables and trenches for LAYERS and write them to --out."""
    if offline and tiles is not None:
        msg = "--offline maps have no base map: drop --tiles or --offline"
        raise click.UsageError(msg)
    if workers is not None and scheduler is not None:
        msg = "give --workers or --scheduler, not both"
        raise click.UsageError(msg)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .export import check_out_dir, export_plan
    from .layers import read_layers
    from .plan import plan

    stages = [
        "reading layers",
        "meter boxes",
        "routing graph",
        "assignment and trenches",
        "cable sizing",
        "hazards and costs",
        "power flow check",
        "writing outputs",
    ]
    if not no_maps:
        stages.append("maps")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
        # Redrawn at each stage, not by a thread of its own: a running thread keeps the
        # export from writing a large plan's files in child processes.
        auto_refresh=False,
    ) as bar:
        task = bar.add_task("reading layers", total=len(stages))

        def advance(stage: str) -> None:
            bar.update(task, description=stage, completed=stages.index(stage), refresh=True)

        result = read_layers(layers, settings=settings)
        check_out_dir(out_dir, inputs=result.sources.values())
        for line in result.warnings:
            click.echo(f"warning: {line}", err=True)
        scaled = None
        if workers is None and scheduler is None:
            made = plan(
                result, settings=settings, progress=advance, check_power_flow=check_power_flow
            )
        else:
            scaled = _plan_on_dask(
                result,
                settings=settings,
                workers=workers,
                scheduler=scheduler,
                check_power_flow=check_power_flow,
                bar=bar,
            )
            made = scaled.plan
        advance("writing outputs")
        written = export_plan(made, out_dir)
        if scaled is not None and not scaled.border.empty:
            from .scale import write_border_report

            written.append(write_border_report(scaled.border, out_dir / "border_supplies.csv"))
            click.echo(
                f"warning: {len(scaled.border)} supplies are within reach of more than one "
                "partition; the plan may differ there from a single-process plan "
                "(see border_supplies.csv)",
                err=True,
            )
        if not no_maps:
            from .maps import write_maps

            advance("maps")
            written += write_maps(made, out_dir, tiles=tiles)
    _print_stats(made.stats)
    click.echo(f"wrote {len(written)} files to {out_dir}")


def _plan_on_dask(
    layers: Layers,
    *,
    settings: Settings,
    workers: int | None,
    scheduler: str | None,
    check_power_flow: bool,
    bar: Progress,
) -> ScaledPlan:
    """Plan the layers' partitions on a Dask cluster, showing each partition as it ends."""
    from .partition import partition_layers
    from .scale import dask_client, plan_on_dask

    partitioning = partition_layers(layers, settings=settings)
    total = len(partitioning.partitions)
    task = bar.add_task(f"planning {total} partitions", total=total)

    def done(partition_id: str, finished: int, total: int) -> None:
        bar.update(
            task,
            completed=finished,
            description=f"partition {partition_id} ({finished}/{total})",
            refresh=True,
        )

    with dask_client(workers=workers, scheduler=scheduler) as client:
        return plan_on_dask(
            layers,
            client=client,
            settings=settings,
            partitioning=partitioning,
            check_power_flow=check_power_flow,
            progress=done,
        )


@cli.command(name="export")
@click.argument("plan_dir", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["gpkg", "geojson", "csv", "xlsx"]),
    help="Format to write (repeatable); default: all.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder to write into; default: PLAN_DIR.",
)
@_user_errors
def export_command(*, plan_dir: Path, formats: tuple[str, ...], out_dir: Path | None) -> None:
    """Export the plan in PLAN_DIR (its plan.gpkg) as GeoPackage, GeoJSON, CSV or XLSX."""
    from .export import FORMATS, export_tables, read_plan_layers

    tables = read_plan_layers(plan_dir)
    written = export_tables(tables, out_dir or plan_dir, formats=formats or FORMATS)
    for path in written:
        click.echo(str(path))


def _print_stats(stats: dict[str, float | int | str]) -> None:
    for key, value in stats.items():
        shown = (
            f"{value:,.2f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else value
        )
        click.echo(f"  {key.replace('_', ' '):<40}{shown:>14}")


def main() -> None:
    """Entry point of the ``geoplan`` console script."""
    cli(prog_name="geoplan")


if __name__ == "__main__":  # pragma: no cover
    main()
