"""README.md is the user guide; these tests keep every command and table in it true.

Every fenced code block of README.md is run here, or skipped by a rule of ``SKIPPED``
that says why; a block of a kind without a rule fails ``test_every_block_has_a_rule``.

- ``sh``: each line (its ``# comment`` dropped) is a ``geoplan`` command, run in this
  process (see ``_run``) in one scratch folder, in README order. The scratch
  folder holds a copy of the sample district at ``layers/haibowan``, where a clone has
  it, so the README's relative paths are run as written: no path is substituted. A line
  matching a ``SKIPPED`` pattern is not run. Every other line must exit 0, and a
  ``--out DIR`` it names must exist afterwards.
- ``text`` right after an ``sh`` block: the exact output of that block's last command.
- ``python``: executed in the scratch folder after every block above it.
- ``toml``: written as ``geoplan.toml`` beside a fresh copy of the sample layers; the
  settings read from it must hold each of its values, and ``geoplan validate`` and
  ``geoplan plan --no-maps`` must accept it.
- ``json LAYER``: an example feature of an input layer. Each must be the sample's feature
  with that id, one per layer, and together they must pass the validator.

The settings reference table is generated from the code (the catalogue through
:class:`geoplan.settings.Settings`); after changing a setting, print the new table with
``python tests/test_readme.py`` and paste it between the ``settings-table`` markers.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from geoplan.cli import cli
from geoplan.layers import SPECS, read_layers
from geoplan.schema import OUTPUT_LAYERS
from geoplan.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLE = ROOT / "layers" / "haibowan"

#: Commands in ``sh`` blocks that are not run: (pattern searched in the line, why not).
SKIPPED: tuple[tuple[str, str], ...] = (
    (
        r"^make plan\b",
        "installs geoplan into .venv first (pip, network); the geoplan command it then "
        "runs is a README command (test_make_plan_runs_a_readme_command)",
    ),
    (r"^make test\b", "installs test tools and Chromium, then runs this whole suite"),
    (r"^pip install\b", "installs packages from the network"),
    (
        r"--workers\b",
        "starts a Dask cluster of local processes; tests/test_scale.py runs "
        "`geoplan plan --workers`",
    ),
    (
        r"--scheduler\b",
        "needs a running Dask cluster; tests/test_scale.py plans on one with --scheduler",
    ),
)
RULES = ("sh", "text", "python", "toml", "json")


# ----------------------------------------------------------------------- README parsing


@dataclass(frozen=True)
class Block:
    """A fenced code block of README.md."""

    index: int
    line: int  # of the opening fence, 1-based
    lang: str
    tag: str  # the info string after the language, e.g. the layer of a json block
    text: str

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang or 'plain'}{'-' + self.tag if self.tag else ''}"


def read_blocks(text: str) -> list[Block]:
    """Return the fenced code blocks of a Markdown text."""
    blocks: list[Block] = []
    fence: str | None = None
    start, info, body = 0, "", []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if fence is None:
            found = re.match(r"(`{3,}|~{3,})(.*)$", stripped)
            if found:
                fence, info, start, body = found[1], found[2].strip(), number, []
        elif stripped.startswith(fence) and not stripped.strip(fence[0]):
            lang, _, tag = info.partition(" ")
            blocks.append(Block(len(blocks), start, lang, tag.strip(), "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"README.md:{start}: a code block is never closed"
    return blocks


def section(text: str, title: str) -> str:
    """Return a section of Markdown: its heading line up to the next heading as high."""
    lines = text.splitlines()
    in_fence = False
    start = level = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else re.match(r"(#+) (.*)$", line)
        if heading is None:
            continue
        if start is None and heading[2].strip() == title:
            start, level = i, len(heading[1])
        elif start is not None and level is not None and len(heading[1]) <= level:
            return "\n".join(lines[start:i])
    assert start is not None, f"README.md has no section {title!r}"
    return "\n".join(lines[start:])


def table_rows(text: str) -> list[list[str]]:
    """Return the rows (cells stripped) of the Markdown tables in a text, header included."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or re.fullmatch(r"[|\s:-]+", line):
            continue
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([c.strip() for c in cells])
    return rows


def commands(block: Block) -> list[str]:
    """Return the command lines of an sh block, comments dropped."""
    out = []
    for line in block.text.splitlines():
        command = shlex.join(shlex.split(line, comments=True))
        if command:
            out.append(command)
    return out


def skip_reason(command: str) -> str | None:
    """Return why a README command is not run, or None to run it."""
    for pattern, reason in SKIPPED:
        if re.search(pattern, command):
            return reason
    return None


README_TEXT = README.read_text(encoding="utf-8")
BLOCKS = read_blocks(README_TEXT)


# -------------------------------------------------------------------- the settings table


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml(value: Any) -> str:
    """Write a value as TOML (scalars, arrays and inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = (f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def _default(value: Any) -> str:
    """Show a default in a Markdown cell: TOML in code, or the size of a table of rows."""
    if value is None:
        return "not set"
    if isinstance(value, tuple) and value and isinstance(value[0], Mapping):
        return f"{len(value)} rows of {', '.join(value[0])}"
    return f"`{_toml(value)}`"


def _option_docs() -> dict[str, str]:
    """Return the description of each run option from the Settings docstring."""
    doc = inspect.getdoc(Settings) or ""
    params = doc.split("----------\n", 1)[1]
    out: dict[str, str] = {}
    name = None
    for line in params.splitlines():
        if line and not line.startswith(" "):
            name = line.strip()
            out[name] = ""
        elif name is not None:
            out[name] = f"{out[name]} {line.strip()}".strip()
    return {k: re.sub(r":\w+:`([^`]*)`|``([^`]*)``", r"`\1\2`", v) for k, v in out.items()}


def _flags() -> dict[str, str]:
    """Return the command-line flag that sets each run option."""
    return {
        param.name: param.opts[0]
        for param in cli.commands["plan"].params
        if param.name and param.opts[0].startswith("--")
    }


def settings_table() -> str:
    """Return the Markdown table of every setting, its default and its source."""
    defaults = Settings()
    catalogue = defaults.catalogue
    docs, flags = _option_docs(), _flags()
    rows = ["| key | default | source |", "|---|---|---|"]
    for option in (f.name for f in fields(Settings)):
        if option in {"catalogue", "files"}:
            continue
        text = f"run option ({flags[option]}): {docs[option]}"
        rows.append(f"| `plan.{option}` | {_default(getattr(defaults, option))} | {text} |")
    for section_name, body in catalogue.data.items():
        for key in body:
            if key == "sources":
                continue
            source = catalogue.source(section_name, key).replace("|", "\\|")
            value = _default(catalogue.value(section_name, key))
            rows.append(f"| `{section_name}.{key}` | {value} | {source} |")
    return "\n".join(rows) + "\n"


SETTINGS_BEGIN = "<!-- settings-table: generated by `python tests/test_readme.py`; do not edit -->"
SETTINGS_END = "<!-- settings-table end -->"


def test_settings_table_lists_every_key_with_the_default_in_use():
    start = README_TEXT.index(SETTINGS_BEGIN) + len(SETTINGS_BEGIN)
    shown = README_TEXT[start : README_TEXT.index(SETTINGS_END)].strip() + "\n"
    expected = settings_table()
    assert shown == expected, "regenerate the README table with `python tests/test_readme.py`"


def test_settings_table_keys_are_the_keys_a_project_file_takes():
    keys = {row[0].strip("`") for row in table_rows(section(README_TEXT, "Every setting"))[1:]}
    document = {
        section_name: {k for k in body if k != "sources"}
        for section_name, body in Settings().catalogue.to_dict().items()
    }
    options = {f.name for f in fields(Settings)} - {"catalogue", "files"}
    assert keys == {f"plan.{o}" for o in options} | {
        f"{s}.{k}" for s, body in document.items() for k in body
    }


# ------------------------------------------------------------------- the command line


def _help_options(*args: str) -> list[str]:
    """Return the options listed by ``geoplan ARGS --help`` (long names, and -h, -v)."""
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="geoplan")
    assert result.exit_code == 0, result.output
    options = result.output.split("Options:", 1)[1].split("Commands:", 1)[0]
    return re.findall(r"^\s+((?:-\w, )?--[\w-]+)", options, flags=re.MULTILINE)


@pytest.mark.parametrize("command", ["", *sorted(cli.commands)])
def test_cli_reference_lists_every_option(command: str):
    title = f"`geoplan {command}`" if command else "Global options"
    text = section(README_TEXT, title)
    listed = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))
    for option in _help_options(*([command] if command else [])):
        if command and option == "-h, --help":
            continue  # listed once, under Global options
        names = set(option.split(", "))
        assert names <= listed, f"README's {title} section does not list {option}"
    if command:
        known = {n for o in _help_options(command) for n in o.split(", ")}
        known |= {n for o in _help_options() for n in o.split(", ")}
        assert listed <= known, f"README's {title} section names options that do not exist"


def test_cli_reference_has_a_section_per_command():
    documented = set(re.findall(r"^### `geoplan (\w+)`", README_TEXT, flags=re.MULTILINE))
    assert documented == set(cli.commands)


# ------------------------------------------------------------------------- the layers


def _cells(cell: str) -> set[str]:
    """Return the column names of a table cell such as ``units (rooms), status``."""
    plain = re.sub(r"\([^)]*\)", "", cell)
    return {c.strip().strip("`") for c in plain.split(",") if c.strip()}


def test_layer_table_matches_the_contract():
    rows = {row[0]: row for row in table_rows(section(README_TEXT, "Input layers"))[1:]}
    assert set(rows) == {spec.name for spec in SPECS}
    for spec in SPECS:
        _, geometry, required, optional = rows[spec.name]
        assert geometry == spec.geometry
        assert _cells(required) == set(spec.required), spec.name
        checked = {*spec.counts, *spec.amounts, *spec.references, *spec.choices}
        assert checked - set(spec.required) <= _cells(optional), spec.name


def _sample_feature(layer: str, feature_id: str) -> dict[str, Any]:
    spec = next(s for s in SPECS if s.name == layer)
    collection = json.loads((SAMPLE / f"{layer}.geojson").read_text(encoding="utf-8"))
    found = [f for f in collection["features"] if f["properties"][spec.id_column] == feature_id]
    assert len(found) == 1, f"the sample has no {layer} {feature_id}"
    return found[0]


def test_layer_examples_are_sample_features_and_pass_the_validator(tmp_path: Path):
    examples = {b.tag: b for b in BLOCKS if b.lang == "json"}
    assert sorted(examples) == sorted(spec.name for spec in SPECS), "one example per layer"
    for spec in SPECS:
        feature = json.loads(examples[spec.name].text)
        feature_id = feature["properties"][spec.id_column]
        assert feature == _sample_feature(spec.name, feature_id), spec.name
        collection = {"type": "FeatureCollection", "features": [feature]}
        (tmp_path / f"{spec.name}.geojson").write_text(json.dumps(collection), encoding="utf-8")
    layers = read_layers(tmp_path)  # raises LayerError, naming each problem, if invalid
    assert all(len(layers[spec.name]) == 1 for spec in SPECS)


# ------------------------------------------------------------------------ the outputs


def test_outputs_section_names_every_layer_and_links_the_schema():
    text = section(README_TEXT, "Outputs")
    for name in [*OUTPUT_LAYERS, "summary", "bill_of_quantities"]:
        assert re.search(rf"\b{name}\b", text), f"README's Outputs section does not name {name}"
    assert "(docs/schema.md)" in text
    assert (ROOT / "docs" / "schema.md").is_file()


# ------------------------------------------------------------------ running the blocks


def test_every_block_has_a_rule():
    unknown = [b.id for b in BLOCKS if b.lang not in RULES]
    assert unknown == [], "add a rule for these README blocks to tests/test_readme.py"
    for block in BLOCKS:
        for command in commands(block) if block.lang == "sh" else []:
            runs = command.startswith("geoplan ") or command == "geoplan"
            assert runs or skip_reason(command), f"{block.id}: {command!r} has no rule"
    for block in BLOCKS:
        if block.lang == "text":
            assert block.index > 0, f"{block.id} follows no sh block"
            assert BLOCKS[block.index - 1].lang == "sh", f"{block.id} follows no sh block"


def test_every_skip_rule_skips_a_readme_command():
    lines = [c for b in BLOCKS if b.lang == "sh" for c in commands(b)]
    for pattern, _ in SKIPPED:
        assert any(re.search(pattern, line) for line in lines), f"stale rule {pattern!r}"


def test_quick_start_is_make_plan_and_make_test():
    blocks = read_blocks(section(README_TEXT, "Quick start"))
    assert [commands(b) for b in blocks] == [["make plan", "make test"]]


def test_make_plan_runs_a_readme_command():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nplan:", 1)[1].split("\n\n", 1)[0]
    command = re.search(r"\$\(BIN\)/(geoplan .*)", recipe)
    assert command is not None
    run = [c for b in BLOCKS if b.lang == "sh" for c in commands(b) if skip_reason(c) is None]
    assert command[1].strip() in run


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _run(command: str, cwd: Path) -> tuple[int, str, str]:
    """Run a README ``geoplan`` command in ``cwd``; return its exit code, stdout and stderr.

    It runs in this process (click's runner, the words split as sh splits them), which
    saves starting Python and importing geopandas for each command.
    """
    argv = shlex.split(command)
    assert argv[0] == "geoplan", f"{command!r}: only geoplan commands run; add a rule"
    with _cwd(cwd):
        result = CliRunner().invoke(cli, argv[1:], prog_name="geoplan")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a bug: show it
    return result.exit_code, result.stdout, result.stderr


@dataclass
class Workspace:
    """The scratch folder where README's sh and python blocks run, in README order."""

    root: Path
    done: set[int] = field(default_factory=set)
    outputs: dict[int, str] = field(default_factory=dict)

    def run_through(self, block: Block) -> None:
        """Run every sh and python block up to ``block`` that has not run yet."""
        for earlier in BLOCKS[: block.index + 1]:
            if earlier.index not in self.done and earlier.lang in {"sh", "python"}:
                self.done.add(earlier.index)
                self._run(earlier)

    def _run(self, block: Block) -> None:
        if block.lang == "python":
            code = compile(block.text, f"README.md:{block.line}", "exec")
            with _cwd(self.root):
                exec(code, {"__name__": "__readme__"})
            return
        for command in commands(block):
            if skip_reason(command) is not None:
                continue
            code, stdout, stderr = _run(command, self.root)
            where = f"README.md:{block.line}: {command}"
            assert code == 0, f"{where} exited {code}:\n{stderr}"
            self.outputs[block.index] = stdout
            out = re.search(r"--out (\S+)", command)
            assert out is None or (self.root / out[1]).is_dir(), f"{where} wrote no {out[1]}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(SAMPLE, root / "layers" / "haibowan")
    return Workspace(root)


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.lang in {"sh", "python"}], ids=lambda b: b.id
)
def test_block_runs(block: Block, workspace: Workspace):
    workspace.run_through(block)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "text"], ids=lambda b: b.id)
def test_output_block_is_what_the_command_prints(block: Block, workspace: Workspace):
    command = BLOCKS[block.index - 1]
    workspace.run_through(command)
    assert workspace.outputs[command.index] == block.text


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "toml"], ids=lambda b: b.id)
def test_settings_file_is_read_and_planned_with(block: Block, tmp_path: Path):
    import tomllib

    layers = tmp_path / "layers"
    shutil.copytree(SAMPLE, layers)
    (layers / "geoplan.toml").write_text(block.text, encoding="utf-8")
    settings = load_settings(layers)
    catalogue = settings.catalogue.to_dict()
    for section_name, body in tomllib.loads(block.text).items():
        for key, value in body.items():
            if section_name == "plan":
                assert getattr(settings, key) == value
                continue
            used = catalogue[section_name][key]
            if isinstance(value, dict):  # a table overrides only the entries it names
                used = {k: used[k] for k in value}
            assert used == value, f"{section_name}.{key}"
            assert settings.catalogue.source(section_name, key).endswith("(project override)")
    where = shlex.quote(str(layers))
    for command in (f"geoplan validate {where}", f"geoplan plan {where} --out out --no-maps"):
        code, _, stderr = _run(command, tmp_path)
        assert code == 0, f"README.md:{block.line}: {command}:\n{stderr}"
    assert (tmp_path / "out" / "summary.csv").is_file()


if __name__ == "__main__":
    print(settings_table(), end="")
