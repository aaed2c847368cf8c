"""Settings: catalogue defaults < geoplan.toml beside the layers < command-line flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from geoplan.catalogue import (
    allowed_values,
    build_catalogue,
    default_document,
    load_catalogue,
)
from geoplan.errors import SettingsError
from geoplan.settings import Settings, load_settings, parse_assignments

PROJECT_FILE = """\
[plan]
crs = "EPSG:4545"
load_basis = "applicants"

[voltage]
drop_limit_pct = 5.0

[supply]
radius_m = { B = 300.0 }
"""


def write_project_file(folder: Path, text: str = PROJECT_FILE) -> Path:
    """Write ``geoplan.toml`` into folder (created if needed) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "geoplan.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    for settings in (load_settings(), load_settings(tmp_path)):
        assert settings.crs is None
        assert settings.load_basis == "rooms"
        assert settings.files == ()
        assert settings.catalogue.value("voltage", "drop_limit_pct") == 4.0
        assert settings.catalogue.source("voltage", "drop_limit_pct").startswith("[U] DL/T 5220")


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.load_basis = "applicants"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.catalogue.data["voltage"]["drop_limit_pct"] = 10.0  # type: ignore[index]


def test_project_file_beside_the_layers(tmp_path: Path) -> None:
    path = write_project_file(tmp_path)
    settings = load_settings(tmp_path)
    assert settings.crs == "EPSG:4545"
    assert settings.load_basis == "applicants"
    assert settings.files == (str(path),)
    catalogue = settings.catalogue
    assert catalogue.value("voltage", "drop_limit_pct") == 5.0
    assert catalogue.source("voltage", "drop_limit_pct") == f"{path} (project override)"
    radius_m = catalogue.value("supply", "radius_m")
    assert radius_m["B"] == 300.0
    assert radius_m["C"] == 400.0  # the entries not given keep their defaults
    assert catalogue.value("voltage", "three_phase_kv") == 0.38
    assert catalogue.source("voltage", "three_phase_kv").startswith("[S] GB/T 12325")


def test_project_file_beside_a_geopackage(tmp_path: Path) -> None:
    write_project_file(tmp_path)
    assert load_settings(tmp_path / "layers.gpkg").load_basis == "applicants"


def test_explicit_settings_file_replaces_the_one_beside_the_layers(tmp_path: Path) -> None:
    write_project_file(tmp_path / "layers")
    other = write_project_file(tmp_path / "elsewhere", "[voltage]\ndrop_limit_pct = 3.5\n")
    settings = load_settings(tmp_path / "layers", settings_file=other)
    assert settings.files == (str(other),)
    assert settings.load_basis == "rooms"
    assert settings.catalogue.value("voltage", "drop_limit_pct") == 3.5


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path, settings_file=tmp_path / "nowhere.toml")


def test_flags_override_the_file(tmp_path: Path) -> None:
    write_project_file(tmp_path)
    settings = load_settings(
        tmp_path,
        options={"load_basis": "rooms", "crs": None},
        overrides={"voltage": {"drop_limit_pct": 3.0}},
    )
    assert settings.load_basis == "rooms"
    assert settings.crs == "EPSG:4545"  # a flag not given (None) leaves the file's value
    assert settings.catalogue.value("voltage", "drop_limit_pct") == 3.0
    assert settings.catalogue.source("voltage", "drop_limit_pct") == "--set (project override)"
    assert settings.catalogue.value("supply", "radius_m")["B"] == 300.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[volts]\ndrop_limit_pct = 5.0\n", "unknown section [volts]; known sections:"),
        ("[voltage]\ndrop_limt_pct = 5.0\n", "unknown key [voltage] drop_limt_pct; known keys:"),
        ("[voltage]\ndrop_limit_pct = 'high'\n", "[voltage] drop_limit_pct = 'high' should be"),
        ("[voltage]\ndrop_limit_pct = true\n", "[voltage] drop_limit_pct = True should be"),
        ("[supply]\nradius_m = { B = 'far' }\n", "[supply] radius_m = {'B': 'far'} should be"),
        ("[supply]\nradius_m = { E = 600.0 }\n", "[supply] radius_m has unknown entries ['E']"),
        (
            "[meter_boxes]\nsingle_phase_positions = [1, 'a']\n",
            "[meter_boxes] single_phase_positions = [1, 'a'] should be",
        ),
        ("[voltage\ndrop_limit_pct = 5.0\n", "not valid TOML"),
        ("plan = 3\n", "[plan] must be a table of options"),
        ("[plan]\nspeed = 3\n", "unknown option [plan] speed"),
        ("[plan]\ncrs = 'EPSG:4326'\n", "[plan] crs = 'EPSG:4326' is not a projected CRS"),
        ("[plan]\ncrs = 'EPSG:99999999'\n", "[plan] crs = 'EPSG:99999999' is not a CRS"),
        ("[plan]\ncrs = 4545\n", "[plan] crs = 4545 must be a string"),
        ("[plan]\nload_basis = 'households'\n", "[plan] load_basis = 'households' must be one of"),
        ("[voltage]\nallowed = {}\n", "unknown key [voltage] allowed; known keys:"),
        (
            "[supply]\narea_class = 'E'\n",
            "[supply] area_class = 'E' must be one of A+, A, B, C, D "
            "(the entries of [supply] radius_m)",
        ),
        (
            "[meter_boxes]\nsingle_phase_positions = []\n",
            "[meter_boxes] single_phase_positions = [] must list at least one value",
        ),
        ("[voltage]\ndrop_limit_pct = -1\n", "[voltage] drop_limit_pct = -1 must be above 0"),
    ],
)
def test_bad_project_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write_project_file(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path)
    (problem,) = info.value.problems
    assert str(problem).startswith(f"{path}: {expected}")


def test_every_problem_of_a_project_file_is_reported(tmp_path: Path) -> None:
    path = write_project_file(
        tmp_path, "[plan]\nload_basis = 'all'\n[voltage]\ndrop_limt_pct = 5.0\n"
    )
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path)
    assert [p.file for p in info.value.problems] == [str(path), str(path)]
    assert len(str(info.value).splitlines()) == 2


def test_bad_flags() -> None:
    with pytest.raises(SettingsError, match=r"^command line: \[plan\] load_basis = 'all'"):
        load_settings(options={"load_basis": "all"})
    with pytest.raises(SettingsError, match=r"^--set: unknown key \[voltage\] drop_limt_pct"):
        load_settings(overrides={"voltage": {"drop_limt_pct": 5.0}})


def test_bad_flags_are_reported_with_the_file_problems(tmp_path: Path) -> None:
    path = write_project_file(tmp_path, "[plan]\nload_basis = 'all'\n")
    with pytest.raises(SettingsError) as info:
        load_settings(
            tmp_path,
            options={"crs": "EPSG:4326"},
            overrides={"voltage": {"drop_limt_pct": 5.0}},
        )
    assert [p.file for p in info.value.problems] == [str(path), "--set", "command line"]


#: Overrides the catalogue refuses (as --set gives them), and the line each gives.
REFUSED = [
    ({"supply": {"area_class": "E"}}, "[supply] area_class = 'E' must be one of A+, A, B, C, D"),
    (
        {"meter_boxes": {"single_phase_positions": []}},
        "[meter_boxes] single_phase_positions = [] must list at least one value, "
        "like the default [1, 2, 4, 6, 8, 9, 12, 16]",
    ),
    (
        {"cables": {"group_factors": []}},
        "[cables] group_factors = [] must list at least one value",
    ),
    ({"cables": {"types": []}}, "[cables] types must list at least one row"),
    ({"demand_factors": {"rows": []}}, "[demand_factors] rows must list at least one row"),
    (
        {"voltage": {"drop_limit_pct": -1}},
        "[voltage] drop_limit_pct = -1 must be above 0 and at most 100",
    ),
    ({"voltage": {"drop_limit_pct": 400}}, "[voltage] drop_limit_pct = 400 must be above 0"),
    ({"supply": {"loading_limit": 0}}, "[supply] loading_limit = 0 must be above 0 and at most 2"),
    ({"supply": {"loading_limit": 85}}, "[supply] loading_limit = 85 must be above 0"),
    ({"loads": {"power_factor": 1.2}}, "[loads] power_factor = 1.2 must be above 0 and at most 1"),
    (
        {"supply": {"default_max_circuits": 2.5}},
        "[supply] default_max_circuits = 2.5 must be a whole number, at least 1",
    ),
    ({"supply": {"radius_m": {"B": -250.0}}}, "[supply] radius_m: B = -250.0 must be above 0"),
    (
        {"trench": {"cost_cny_per_m": {"soil": 0}}},
        "[trench] cost_cny_per_m: soil = 0 must be above 0",
    ),
    (
        {"cables": {"group_factors": [1.0, 0.0]}},
        "[cables] group_factors value 2 = 0.0 must be above 0 and at most 1",
    ),
    ({"cables": {"installation": "air"}}, "[cables] installation = 'air' must be one of direct"),
    (
        {"network": {"lattice_spacing_m": float("inf")}},
        "[network] lattice_spacing_m = inf must be a finite number",
    ),
    ({"hazards": {"weight_low": float("nan")}}, "[hazards] weight_low = nan must be a finite"),
    ({"voltage": {"drop_limit_pct": {"max": 5}}}, "[voltage] drop_limit_pct = {'max': 5} should"),
    ({"supply": {"radius_m": 250.0}}, "[supply] radius_m = 250.0 should be a dict like"),
    (
        {"cables": {"types": 3}},
        "[cables] types = 3 should be a list of rows, each a table of name, material,",
    ),
    (
        {"cables": {"types": [{**default_document()["cables"]["types"][0], "material": "Fe"}]}},
        "[[cables.types]] row 1 material = 'Fe' must be one of Cu, Al",
    ),
    (
        {"demand_factors": {"cable_floor": [{"households_above": 0, "kx_min": 0.0}]}},
        "[[demand_factors.cable_floor]] row 1 kx_min = 0.0 must be above 0 and at most 1",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), REFUSED)
def test_values_the_catalogue_does_not_allow(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(overrides=overrides)
    (problem,) = info.value.problems
    assert str(problem).startswith(f"--set: {expected}")
    with pytest.raises(SettingsError) as info:
        Settings().with_overrides(overrides)
    (same,) = info.value.problems
    assert str(same) == str(problem).replace("--set", "with_overrides", 1)


def test_the_three_ways_in_are_checked_alike(tmp_path: Path) -> None:
    beside = write_project_file(tmp_path / "layers", "[supply]\nloading_limit = 0\n")
    other = write_project_file(tmp_path / "elsewhere", "[supply]\nloading_limit = 0\n")
    expected = "[supply] loading_limit = 0 must be above 0 and at most 2"
    for file, kwargs in ((beside, {}), (other, {"settings_file": other})):
        with pytest.raises(SettingsError) as info:
            load_settings(tmp_path / "layers", **kwargs)
        assert str(info.value) == f"{file}: {expected}"


def test_every_refused_value_is_reported() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            overrides={
                "voltage": {"drop_limit_pct": -1, "single_phase_kv": 0},
                "supply": {"radius_m": {"A": -1.0, "B": 0.0}},
            }
        )
    assert len(info.value.problems) == 4


@pytest.mark.parametrize(
    "overrides",
    [
        {"supply": {"area_class": "A+", "loading_limit": 2, "radius_m": {"D": 0.5}}},
        {"voltage": {"drop_limit_pct": 100}, "cables": {"group_factors": [1]}},
        {"meter_boxes": {"single_phase_positions": [4.0, 8], "setback_m": 0}},
        {"trench": {"road_crossing_cny": 0}, "hazards": {"weight_present": 0}},
        {"cables": {"installation": "duct", "growth_factor": 1}},
    ],
)
def test_values_at_the_edge_of_what_is_allowed_are_taken(overrides: dict) -> None:
    catalogue = load_settings(overrides=overrides).catalogue
    for section, body in overrides.items():
        for key, value in body.items():
            got = catalogue.value(section, key)
            if isinstance(value, dict):
                assert {k: got[k] for k in value} == value
            else:
                assert got == (tuple(value) if isinstance(value, list) else value)


def test_with_overrides_returns_new_checked_settings() -> None:
    settings = Settings(load_basis="applicants")
    changed = settings.with_overrides({"voltage": {"drop_limit_pct": 5}})
    assert changed.catalogue.value("voltage", "drop_limit_pct") == 5
    assert changed.catalogue.source("voltage", "drop_limit_pct") == (
        "with_overrides (project override)"
    )
    assert changed.load_basis == "applicants"
    assert settings.catalogue.value("voltage", "drop_limit_pct") == 4.0  # unchanged
    with pytest.raises(TypeError):
        changed.catalogue.data["voltage"]["drop_limit_pct"] = 10.0  # type: ignore[index]
    again = changed.with_overrides({"supply": {"radius_m": {"B": 300.0}}}, origin="notebook")
    assert again.catalogue.value("voltage", "drop_limit_pct") == 5  # earlier overrides stay
    assert again.catalogue.value("supply", "radius_m")["C"] == 400.0
    assert again.catalogue.value("supply", "radius_m")["B"] == 300.0
    assert again.catalogue.source("supply", "radius_m") == "notebook (project override)"


def test_with_options_validates() -> None:
    settings = Settings().with_options(crs="EPSG:32648")
    assert settings.crs == "EPSG:32648"
    with pytest.raises(SettingsError, match="not a projected CRS"):
        settings.with_options(crs="EPSG:4326")


@pytest.mark.parametrize(
    ("assignments", "expected"),
    [
        (["voltage.drop_limit_pct=5"], {"voltage": {"drop_limit_pct": 5}}),
        (["voltage.drop_limit_pct = 5.5"], {"voltage": {"drop_limit_pct": 5.5}}),
        (["supply.area_class=C"], {"supply": {"area_class": "C"}}),
        (["supply.area_class='A+'"], {"supply": {"area_class": "A+"}}),
        (
            ["meter_boxes.single_phase_positions=[4, 8]"],
            {"meter_boxes": {"single_phase_positions": [4, 8]}},
        ),
        (
            [
                "voltage.drop_limit_pct=5",
                "supply.radius_m={ B = 300.0 }",
                "voltage.single_phase_kv=0.23",
            ],
            {
                "voltage": {"drop_limit_pct": 5, "single_phase_kv": 0.23},
                "supply": {"radius_m": {"B": 300.0}},
            },
        ),
        ([], {}),
    ],
)
def test_parse_assignments(assignments: list[str], expected: dict[str, object]) -> None:
    assert parse_assignments(assignments) == expected


@pytest.mark.parametrize("text", ["voltage", "voltage=5", "drop_limit_pct.=5", ".key=5"])
def test_parse_assignments_refuses_malformed_text(text: str) -> None:
    with pytest.raises(SettingsError, match=r"write SECTION\.KEY=VALUE"):
        parse_assignments([text])


def test_assignments_feed_load_settings() -> None:
    overrides = parse_assignments(["voltage.drop_limit_pct=5", "supply.area_class=C"])
    catalogue = load_settings(overrides=overrides).catalogue
    assert catalogue.value("voltage", "drop_limit_pct") == 5
    assert catalogue.value("supply", "area_class") == "C"


# --- the catalogue ----------------------------------------------------------------------


def test_every_catalogue_figure_has_a_source() -> None:
    catalogue = load_catalogue()
    for section, body in catalogue.data.items():
        for key in body:
            if key != "sources":
                assert catalogue.source(section, key).strip(), f"[{section}] {key}"


def test_a_figure_without_a_source_is_refused() -> None:
    document = default_document()
    del document["voltage"]["sources"]["drop_limit_pct"]
    with pytest.raises(SettingsError) as info:
        build_catalogue(document, origin="catalogue.toml")
    assert str(info.value) == (
        "catalogue.toml: [voltage] drop_limit_pct has no entry in [voltage.sources]"
    )


def test_the_shipped_figures_keep_to_their_own_rules() -> None:
    build_catalogue(default_document(), origin="catalogue.toml")  # raises on any problem


def _numbers(value: object) -> bool:
    if isinstance(value, dict):
        return any(_numbers(v) for v in value.values())
    if isinstance(value, list):
        return any(_numbers(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_every_number_has_a_declared_range() -> None:
    document, allowed = default_document(), allowed_values()
    for section, body in document.items():
        for key, value in body.items():
            if key == "sources" or not _numbers(value):
                continue
            rule = allowed.get(section, {}).get(key)
            assert rule, f"[{section}.allowed] has no {key}"
            if isinstance(value, list) and isinstance(value[0], dict):
                numeric = {f for f, v in value[0].items() if _numbers(v)}
                assert numeric <= set(rule), f"[{section}.allowed.{key}] lacks fields"
    for section, rules in allowed.items():
        assert set(rules) <= set(document[section]) - {"sources"}, section


def test_a_shipped_figure_out_of_range_is_refused() -> None:
    document = default_document()
    document["voltage"]["drop_limit_pct"] = -1.0
    document["supply"]["area_class"] = "E"
    with pytest.raises(SettingsError) as info:
        build_catalogue(document, origin="catalogue.toml")
    assert str(info.value).splitlines() == [
        "catalogue.toml: [voltage] drop_limit_pct = -1.0 must be above 0 and at most 100",
        "catalogue.toml: [supply] area_class = 'E' must be one of A+, A, B, C, D "
        "(the entries of [supply] radius_m)",
    ]


def test_a_table_row_without_a_required_field_is_refused() -> None:
    document = default_document()
    del document["cables"]["types"][0]["ampacity_direct_a"]
    with pytest.raises(SettingsError, match=r"\[\[cables.types\]\] row 1 lacks ampacity_direct_a"):
        build_catalogue(document, origin="catalogue.toml")


def test_catalogue_tables() -> None:
    cables = load_catalogue().table("cables", "types")
    assert {"name", "cross_section_mm2", "ampacity_direct_a", "cost_cny_per_m"} <= set(cables)
    assert len(cables) > 1
    with pytest.raises(SettingsError, match=r"catalogue has no figure \[voltage\] nope"):
        load_catalogue().value("voltage", "nope")
