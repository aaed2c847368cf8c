"""Personal data stays out of plans, maps and exports unless the settings ask for it.

Columns that look personal (resident names, phone and ID numbers) are dropped when the
layers are read, and phone and ID numbers inside names and ids are masked, the same
number the same way everywhere; ``[plan] include_personal = true`` keeps everything.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner
from conftest import make_layers, write_layers
from hypothesis import given, settings
from hypothesis import strategies as st

from geoplan.cli import cli
from geoplan.export import export_plan
from geoplan.layers import SPECS, Layers, read_layers
from geoplan.maps import write_maps
from geoplan.plan import plan
from geoplan.privacy import Masker, personal_column, personal_numbers, redact_frames
from geoplan.settings import Settings, load_settings

with warnings.catch_warnings():  # see test_properties.py
    warnings.filterwarnings("ignore", "mypy_extensions", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import libcst  # noqa: F401

MOBILE = "13912345678"
MOBILE_SPACED = "+86 138 0013 8000"
ID_NUMBER = "11010519491231002X"
RESIDENT = "张秀英"
OWNER = "王建国"
SECRETS = (MOBILE, "13800138000", ID_NUMBER, RESIDENT, OWNER)
MASKED_MOBILE = "139****5678"
KNOWN_OPTIONAL = ("name", "name_en", "floors", "status", "area_class", "allowed", "kind")
KNOWN_OPTIONAL += ("surveyed_on", "insulated", "applicants", "households", "load_kva")


# --- what looks personal -----------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "resident",
        "Resident_Name",
        "owner",
        "shed_owner",
        "ownerName",
        "householder",
        "name_of_resident",
        "name_of_applicant",
        "applicant_name",
        "phone",
        "phone_no",
        "tel",
        "Tel.",
        "mobile",
        "contact",
        "id_card",
        "IDCard",
        "id_no",
        "姓名",
        "户主",
        "户主姓名",
        "业主",
        "电话",
        "联系电话",
        "手机",
        "手机号",
        "身份证",
        "身份证号码",
    ],
)
def test_personal_column_names(column: str) -> None:
    assert personal_column(column) is not None


@pytest.mark.parametrize(
    "column",
    sorted(
        {
            c
            for spec in SPECS
            for c in (
                *spec.required,
                *spec.counts,
                *spec.amounts,
                *spec.positive,
                *spec.references,
                *spec.choices,
            )
        }
        | set(KNOWN_OPTIONAL)
        | {"hotel", "title", "telecom_box", "identifier", "名称", "小区名称", "户数"}
    ),
)
def test_contract_columns_never_look_personal(column: str) -> None:
    assert personal_column(column) is None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"3号楼 联系人 {MOBILE}", [MOBILE]),
        (f"tel:{MOBILE_SPACED};", [MOBILE_SPACED]),
        ("138-0013-8000", ["138-0013-8000"]),
        (f"身份证{ID_NUMBER}号", [ID_NUMBER]),
        (f"{MOBILE},{ID_NUMBER}", [MOBILE, ID_NUMBER]),
        ("12345678901", []),  # no mobile number starts 12
        ("139123456789", []),  # twelve digits
        ("1391234567", []),  # ten digits
        ("S20240101-M1", []),
        ("110105194913310021", []),  # no month 13
        ("海北小区", []),
    ],
)
def test_personal_numbers(text: str, found: list[str]) -> None:
    assert personal_numbers(text) == found


def test_masks_keep_the_first_and_last_digits() -> None:
    mask = Masker.from_texts([f"a {MOBILE}", ID_NUMBER, MOBILE_SPACED])
    assert mask(f"a {MOBILE}") == f"a {MASKED_MOBILE}"
    assert mask(ID_NUMBER) == "110***********002X"
    assert mask(MOBILE_SPACED) == "138****8000"
    assert mask(12) == 12
    assert mask(None) is None


def test_two_numbers_with_one_mask_stay_apart() -> None:
    mask = Masker.from_texts(["13900005678", MOBILE])
    assert mask("13900005678") == MASKED_MOBILE
    assert mask(MOBILE) == f"{MASKED_MOBILE}#2"


NUMBERS = st.one_of(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(
        r"[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}[0-9X]",
        fullmatch=True,
    ),
)
TEXTS = st.builds(
    lambda before, number, after: f"{before}{number}{after}",
    st.sampled_from(["", "S", "楼 ", "B-", "联系 "]),
    NUMBERS,
    st.sampled_from(["", "-M1", " 号", "室"]),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(TEXTS, min_size=1, max_size=12, unique=True))
def test_masking_is_one_to_one_and_leaves_no_number(texts: list[str]) -> None:
    mask = Masker.from_texts(texts)
    masked = [mask(t) for t in texts]
    assert len(set(masked)) == len(texts), "two ids became one"
    assert all(personal_numbers(m) == [] for m in masked)
    assert [mask(m) for m in masked] == masked
    assert [Masker.from_texts(reversed(texts))(t) for t in texts] == masked


# --- reading layers ------------------------------------------------------------------------


def personal_layers() -> dict[str, gpd.GeoDataFrame]:
    """The tiny layer set with personal columns and numbers in names and ids."""
    layers = make_layers()
    blocks = layers["storage_blocks"]
    blocks["户主姓名"] = [RESIDENT, OWNER, "李四"]
    blocks["phone"] = [MOBILE, "13800138000", None]
    blocks["note"] = ["", f"call {MOBILE}", ""]
    buildings = layers["buildings"]
    buildings["name"] = ["1号楼", f"2号楼 联系 {MOBILE}", "3号楼"]
    buildings["id_card"] = [ID_NUMBER, None, None]
    compounds = layers["compounds"]
    compounds.loc[0, "name"] = f"海北小区 {MOBILE}"
    supplies = layers["supply_points"]
    supplies["name"] = [f"1号变 {ID_NUMBER}", "杆"]
    supplies["contact_tel"] = [12345, 67890]
    wires = layers["flying_wires"]
    wires["resident"] = [RESIDENT, OWNER, "李四"]
    wires["owner_mobile"] = [13800138000, 13912345678, 13700000000]  # numbers, not text
    # an id that is a phone number, referenced from another layer
    obstacles = layers["obstacles"]
    obstacles["obstacle_id"] = ["13700001111"]
    return layers


def test_reading_drops_personal_columns_and_masks_numbers(tmp_path: Path) -> None:
    path = write_layers(personal_layers(), tmp_path / "layers")
    layers = read_layers(path)
    assert "户主姓名" not in layers["storage_blocks"]
    assert "phone" not in layers["storage_blocks"]
    assert "id_card" not in layers["buildings"]
    assert "contact_tel" not in layers["supply_points"]
    assert "resident" not in layers["flying_wires"]
    assert "owner_mobile" not in layers["flying_wires"]
    assert list(layers["storage_blocks"]["note"]) == ["", f"call {MASKED_MOBILE}", ""]
    assert layers["compounds"].set_index("compound_id").loc["C1", "name"] == (
        f"海北小区 {MASKED_MOBILE}"
    )
    assert list(layers["obstacles"]["obstacle_id"]) == ["137****1111"]
    assert "3号楼" in set(layers["buildings"]["name"])
    text = json.dumps(
        {k: v.drop(columns="geometry").astype(str).to_dict() for k, v in layers.frames.items()},
        ensure_ascii=False,
    )
    for secret in SECRETS:
        assert secret not in text
    said = "\n".join(layers.warnings)
    assert f"{path / 'storage_blocks.geojson'}, layer storage_blocks: column '户主姓名'" in said
    assert "column 'phone' looks like a phone number or address" in said
    assert "column 'owner_mobile' looks like a phone number" in said
    assert "column 'contact_tel' looks like a phone number" in said
    assert "1 value(s) of column 'name' hold phone or ID numbers (features C1)" in said
    assert "include_personal = true" in said


def test_include_personal_keeps_everything(tmp_path: Path) -> None:
    path = write_layers(personal_layers(), tmp_path / "layers")
    (path / "geoplan.toml").write_text("[plan]\ninclude_personal = true\n", encoding="utf-8")
    settings_ = load_settings(path)
    assert settings_.include_personal
    layers = read_layers(path, settings=settings_)
    assert list(layers["storage_blocks"]["户主姓名"]) == [RESIDENT, OWNER, "李四"]
    assert layers["compounds"].set_index("compound_id").loc["C1", "name"] == f"海北小区 {MOBILE}"
    assert layers.warnings == ()


def test_redacting_leaves_frames_alone() -> None:
    frames = personal_layers()
    before = {k: v.copy() for k, v in frames.items()}
    redact_frames(frames)
    for name, frame in frames.items():
        assert frame.equals(before[name])


# --- outputs ---------------------------------------------------------------------------------


_U_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def output_text(folder: Path) -> str:
    """Every output file's text: XLSX entries unzipped, JSON escapes decoded."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                parts += [book.read(n).decode("utf-8", "replace") for n in book.namelist()]
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        parts.append(text)
        # pages embed GeoJSON whose non-ASCII text may be \\u-escaped
        parts.append(_U_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text))
    return "\n".join(parts)


def test_personal_data_stays_out_of_maps_and_exports(tmp_path: Path) -> None:
    path = write_layers(personal_layers(), tmp_path / "layers")
    out = tmp_path / "plan"
    result = CliRunner().invoke(cli, ["plan", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert any("column 'phone'" in line for line in warned)
    text = output_text(out)
    assert "海北小区" in text and MASKED_MOBILE in text  # noqa: PT018 - the check reads well
    for secret in SECRETS:
        assert secret not in text, secret


def test_outputs_keep_personal_data_when_asked(tmp_path: Path) -> None:
    path = write_layers(personal_layers(), tmp_path / "layers")
    (path / "geoplan.toml").write_text("[plan]\ninclude_personal = true\n", encoding="utf-8")
    out = tmp_path / "plan"
    result = CliRunner().invoke(cli, ["plan", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"海北小区 {MOBILE}" in output_text(out)


def test_maps_and_exports_redact_layers_built_by_hand(tmp_path: Path) -> None:
    """A plan made from layers that never went through read_layers is redacted too."""
    layers = read_layers(write_layers(make_layers(), tmp_path / "layers"))
    frames = dict(layers.frames)
    compounds = frames["compounds"].copy()
    compounds.loc[0, "name"] = f"海北小区 {MOBILE}"
    compounds["户主"] = RESIDENT
    frames["compounds"] = compounds
    made = plan(Layers(frames=frames, crs=layers.crs, sources=layers.sources))
    assert f"海北小区 {MOBILE}" in set(made.summary["name"])  # the plan itself is the API's
    out = tmp_path / "plan"
    export_plan(made, out)
    write_maps(made, out)
    text = output_text(out)
    assert f"海北小区 {MASKED_MOBILE}" in text
    assert MOBILE not in text
    assert RESIDENT not in text
    kept = plan(
        Layers(frames=frames, crs=layers.crs, sources=layers.sources),
        settings=Settings(include_personal=True),
    )
    out_kept = tmp_path / "plan_kept"
    export_plan(kept, out_kept)
    assert MOBILE in output_text(out_kept)
