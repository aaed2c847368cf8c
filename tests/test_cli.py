"""The command line, run as a user runs it: a real process, its exit code and its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_layers, write_layers

EXIT_BAD_INPUT = 2


def geoplan(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``geoplan ARGS`` in a new Python process and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "geoplan.cli", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def figures(stdout: str) -> dict[str, str]:
    """Return the summary figures ``validate`` prints, by label."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("  "):
            label, value = line.strip().rsplit(None, 1)
            out[" ".join(label.split())] = value
    return out


def assert_user_error(result: subprocess.CompletedProcess[str], expected: list[str]) -> None:
    """Assert exit code 2, no traceback, and one ``error:`` line per expected problem."""
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    reported = result.stderr.splitlines()
    assert all(line.startswith("error: ") for line in reported), reported
    assert len(reported) == len(expected), reported
    for start in expected:
        assert any(line.startswith(f"error: {start}") for line in reported), (start, reported)


def test_help(tmp_path: Path) -> None:
    result = geoplan("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: geoplan")
    assert "validate" in result.stdout


def test_validate_a_valid_set(tmp_path: Path) -> None:
    path = write_layers(make_layers(), tmp_path / "layers")
    result = geoplan("validate", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"{path}: valid (WGS 84 / UTM zone 48N)\n")
    shown = figures(result.stdout)
    assert shown["compounds"] == "2"
    assert shown["households"] == "144"
    assert shown["storage blocks"] == "3"
    assert shown["rooms"] == "30"
    assert shown["applicants"] == "22"
    assert shown["flying wires"] == "3"
    assert shown["supply capacity kva"] == "450.0"
    assert shown["corridor km"] == "0.4"


def test_validate_honours_the_crs_flag(tmp_path: Path) -> None:
    path = write_layers(make_layers(), tmp_path / "layers", "gpkg_single")
    result = geoplan("validate", path, "--crs", "EPSG:4545", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: valid (CGCS2000 / 3-degree Gauss-Kruger CM 108E)")


def test_validate_prints_repairs_as_warnings(tmp_path: Path) -> None:
    layers = make_layers()
    blocks = layers["storage_blocks"]
    blocks["geometry"] = blocks.geometry.force_3d(5.0)
    path = write_layers(layers, tmp_path / "layers")
    result = geoplan("validate", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 3
    assert all("layer storage_blocks" in line and "dropped Z values" in line for line in warned)


def test_validate_a_bad_set(tmp_path: Path) -> None:
    layers = make_layers()
    layers["storage_blocks"].loc[1, "units"] = -3
    layers["corridors"].loc[2, "surface"] = "gravel"
    layers["flying_wires"].loc[0, "to_block_id"] = "S9"
    del layers["supply_points"]
    path = write_layers(layers, tmp_path / "layers")
    result = geoplan("validate", path, cwd=tmp_path)
    assert_user_error(
        result,
        [
            f"{path}, layer supply_points: required layer missing",
            f"{path / 'storage_blocks.geojson'}, layer storage_blocks, feature S2: units = -3",
            f"{path / 'corridors.geojson'}, layer corridors, feature K3: surface = 'gravel'",
            f"{path / 'flying_wires.geojson'}, layer flying_wires, feature W1: to_block_id = 'S9'",
        ],
    )
    assert result.stdout == ""


def test_validate_a_path_that_does_not_exist(tmp_path: Path) -> None:
    result = geoplan("validate", tmp_path / "nowhere", cwd=tmp_path)
    assert_user_error(result, [f"{tmp_path / 'nowhere'}: no such file or folder"])


def test_validate_with_a_bad_settings_file(tmp_path: Path) -> None:
    path = write_layers(make_layers(), tmp_path / "layers")
    settings = path / "geoplan.toml"
    settings.write_text("[plan]\nload_basis = 'all'\n\n[voltage]\ndrop_limt_pct = 5.0\n")
    result = geoplan("validate", path, cwd=tmp_path)
    assert_user_error(
        result,
        [
            f"{settings}: unknown key [voltage] drop_limt_pct",
            f"{settings}: [plan] load_basis = 'all' must be one of rooms, applicants",
        ],
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--settings", "missing.toml"], "missing.toml: settings file not found"),
        (["--crs", "EPSG:4326"], "command line: [plan] crs = 'EPSG:4326' is not a projected"),
        (["--set", "voltage.drop_limit_pct"], "--set 'voltage.drop_limit_pct': write SECTION"),
        (["--set", "voltage.drop_limit_pct=high"], "--set: [voltage] drop_limit_pct = 'high'"),
    ],
)
def test_validate_with_bad_flags(tmp_path: Path, flags: list[str], expected: str) -> None:
    path = write_layers(make_layers(), tmp_path / "layers")
    result = geoplan("validate", path, *flags, cwd=tmp_path)
    assert_user_error(result, [expected])


def test_offline_maps_refuse_an_online_base_map(tmp_path: Path) -> None:
    path = write_layers(make_layers(), tmp_path / "layers")
    result = geoplan(
        "plan", path, "--out", "plan", "--offline", "--tiles", "OpenStreetMap", cwd=tmp_path
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert "--offline" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "plan").exists()
