"""Personal data: find it in the input layers and keep it out of plans, maps and exports.

Survey layers sometimes say who lives where: a resident's or owner's name, a phone
number, an ID-card number. geoplan needs none of it, so unless the settings say
``[plan] include_personal = true``:

* a column whose name looks personal (``resident``, ``owner``, ``name_of_*``, ``phone``,
  ``tel``, ``mobile``, ``id_card``, 姓名, 户主, 电话, 手机, 身份证 ...) is dropped when the
  layers are read, and so is an extra column holding phone numbers stored as numbers;
* a Chinese mobile number (``1[3-9]`` and nine digits, with or without ``+86`` and
  separators) or an 18-character resident ID number inside a text that is kept (a name,
  an id, a note) is masked (``138****5678``, ``110***********1234``), the same number the
  same way everywhere, so that ids still match across layers.

The contract's own columns never look personal. Reading the layers does this once
(:func:`redact_frames`); maps and exports do it again on the plan they are given
(:func:`redact_plan`), so a plan built from layers assembled by hand is covered too.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

if TYPE_CHECKING:
    from .plan import Plan

#: Column-name words (lower case, split at ``_``, ``-``, spaces and camelCase) that say a
#: column is about a person, by the kind of data they hold.
PERSONAL_WORDS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "resident",
                "residents",
                "owner",
                "owners",
                "householder",
                "householders",
                "tenant",
                "tenants",
                "occupant",
                "occupants",
                "surname",
                "firstname",
                "lastname",
                "fullname",
                "contact",
                "contacts",
            ),
            "a person's name",
        ),
        **dict.fromkeys(
            (
                "phone",
                "phones",
                "telephone",
                "tel",
                "mobile",
                "cellphone",
                "fax",
                "wechat",
                "weixin",
                "email",
            ),
            "a phone number or address",
        ),
        **dict.fromkeys(
            ("idcard", "idno", "identity", "passport", "sfz", "shenfenzheng"),
            "an ID number",
        ),
    }
)
#: Word pairs that together say a column holds an ID number or a person's name.
PERSONAL_PAIRS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("id", "card"): "an ID number",
        ("id", "no"): "an ID number",
        ("id", "number"): "an ID number",
        ("applicant", "name"): "a person's name",
        ("household", "name"): "a person's name",
        ("person", "name"): "a person's name",
        ("user", "name"): "a person's name",
        ("customer", "name"): "a person's name",
    }
)
#: Chinese column-name fragments and what they hold.
PERSONAL_CJK: Mapping[str, str] = MappingProxyType(
    {
        "姓名": "a person's name",
        "户主": "a person's name",
        "业主": "a person's name",
        "房主": "a person's name",
        "申请人": "a person's name",
        "联系人": "a person's name",
        "联系方式": "a phone number or address",
        "电话": "a phone number or address",
        "手机": "a phone number or address",
        "微信": "a phone number or address",
        "邮箱": "a phone number or address",
        "身份证": "an ID number",
        "证件号": "an ID number",
    }
)

_KINDS = ("an ID number", "a phone number or address", "a person's name")

#: A Chinese mobile number: 1[3-9] and nine digits, optionally +86 and separators.
MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
#: An 18-character resident ID number: area, birth date, sequence, check character.
ID_NUMBER = re.compile(
    r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?!\d)"
)
#: Each number above holds 11 digits in a row, at most one space or hyphen between two of
#: them: a text without such a run holds no personal number (see :func:`_maybe_personal`).
_RUN_DIGITS = 11
_RUN_SEPARATORS = (ord(" "), ord("-"))
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def personal_column(name: object) -> str | None:
    """Return what a column name says it holds about a person, or None.

    Parameters
    ----------
    name
        The column name.

    Returns
    -------
    kind
        ``"a person's name"``, ``"a phone number or address"``, ``"an ID number"``, or
        None when the name does not look personal.
    """
    text = str(name)
    found = {kind for fragment, kind in PERSONAL_CJK.items() if fragment in text}
    if found:
        return next(kind for kind in _KINDS if kind in found)
    lowered = _CAMEL.sub("_", text).lower()
    if lowered.startswith("name_of") or lowered.startswith("nameof"):
        return "a person's name"
    words = {w for w in _SPLIT.split(lowered) if w}
    kinds = {PERSONAL_WORDS[w] for w in words if w in PERSONAL_WORDS}
    kinds |= {kind for (a, b), kind in PERSONAL_PAIRS.items() if a in words and b in words}
    # the most telling first: "contact_tel" holds a phone number, not a name
    return next((kind for kind in _KINDS if kind in kinds), None)


def personal_numbers(text: str) -> list[str]:
    """Return the mobile and ID numbers found in a text, in order."""
    found = [(m.start(), m.group()) for m in MOBILE.finditer(text)]
    found += [(m.start(), m.group()) for m in ID_NUMBER.finditer(text)]
    return [number for _, number in sorted(found)]


def _mask(number: str) -> str:
    digits = re.sub(r"[^\dXx]", "", number)
    if len(digits) >= 18:  # an ID number
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    digits = digits[-11:]  # a mobile number without +86
    return digits[:3] + "****" + digits[-4:]


@dataclass(frozen=True)
class Masker:
    """Masks personal numbers in texts, the same number the same way everywhere.

    Two different numbers whose masks would be equal get ``#2``, ``#3`` ... appended (in
    the order of the numbers), so that masking never makes two different ids equal.

    Parameters
    ----------
    masks
        ``{number as written: mask}``.
    """

    masks: Mapping[str, str]

    @classmethod
    def from_texts(cls, texts: Iterable[object]) -> Masker:
        """Return a masker for every personal number found in ``texts``."""
        return cls.from_arrays([np.fromiter(texts, dtype=object)])

    @classmethod
    def from_arrays(cls, arrays: Iterable[np.ndarray]) -> Masker:
        """Return a masker for every personal number in the texts of some object arrays."""
        numbers = sorted(
            {n for a in arrays for t in a[_maybe_personal(a)] for n in personal_numbers(t)}
        )
        by_mask: dict[str, list[str]] = defaultdict(list)
        for number in numbers:
            by_mask[_mask(number)].append(number)
        masks = {}
        for mask, group in by_mask.items():
            for i, number in enumerate(group, start=1):
                masks[number] = mask if i == 1 else f"{mask}#{i}"
        return cls(MappingProxyType(masks))

    def __call__(self, value: object) -> object:
        """Return a text with its personal numbers masked; other values unchanged."""
        if not isinstance(value, str) or not self.masks:
            return value
        out = MOBILE.sub(lambda m: self.masks.get(m.group(), m.group()), value)
        return ID_NUMBER.sub(lambda m: self.masks.get(m.group(), m.group()), out)


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if c != getattr(frame, "_geometry_column_name", None)
        and (pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c]))
    ]


def _text_arrays(frames: Iterable[pd.DataFrame | None]) -> Iterator[np.ndarray]:
    """Yield the values of every text column of ``frames``, as object arrays."""
    for frame in frames:
        if frame is None:
            continue
        for column in _text_columns(frame):
            yield frame[column].to_numpy(dtype=object)


def _digits(codes: np.ndarray) -> np.ndarray:
    r"""Return which Unicode code points are decimal digits (what ``\d`` matches)."""
    digit = (codes - codes.dtype.type(ord("0"))) < 10  # unsigned: below "0" wraps round
    wide = np.flatnonzero(codes > 0x7F)
    if len(wide):
        found = np.unique(codes[wide])
        decimal = np.fromiter((chr(c).isdecimal() for c in found.tolist()), bool, len(found))
        digit[wide] = np.isin(codes[wide], found[decimal])
    return digit


def _maybe_personal(values: np.ndarray) -> np.ndarray:
    """Return which values are texts that may hold a mobile or ID number.

    Every match of :data:`MOBILE` and :data:`ID_NUMBER` holds :data:`_RUN_DIGITS` digits
    with at most one space or hyphen between two of them. The texts are searched for
    such runs all at once, with numpy, so that the regular expressions need to run only
    on the few texts that have one.

    Parameters
    ----------
    values
        An object array; values that are not ``str`` are never personal.

    Returns
    -------
    mask
        A boolean array as long as ``values``.
    """
    mask = np.zeros(len(values), dtype=bool)
    if infer_dtype(values, skipna=False) == "string":
        rows = np.arange(len(values))
        texts = values.tolist()  # all of them: no copy of the array first
    else:
        rows = np.flatnonzero([isinstance(v, str) for v in values])
        texts = values[rows].tolist()
    if not len(rows):
        return mask
    if max(map(len, texts)) < _RUN_DIGITS:  # ids, codes, words: too short to hold a run
        return mask
    joined = "\n".join(texts)  # a line break ends every run
    if joined.isascii():
        codes: np.ndarray = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    digit = _digits(codes)
    # a run: digits, and single separators between two digits
    in_run = digit.copy()
    inner = codes[1:-1]
    in_run[1:-1] |= ((inner == _RUN_SEPARATORS[0]) | (inner == _RUN_SEPARATORS[1])) & (
        digit[:-2] & digit[2:]
    )
    # every number fills a window of _RUN_DIGITS characters of a run; a window may also
    # hold a few separators: a superset, which the regular expressions then sort out
    counted = np.zeros(len(codes) + 1, dtype=np.int32 if len(codes) < 2**31 else np.int64)
    np.cumsum(in_run, out=counted[1:])
    windows = np.flatnonzero(counted[_RUN_DIGITS:] - counted[:-_RUN_DIGITS] == _RUN_DIGITS)
    if len(windows):
        starts = np.cumsum([0, *(len(t) + 1 for t in texts[:-1])])
        found = np.searchsorted(starts, windows, side="right") - 1
        mask[rows[np.unique(found)]] = True
    return mask


def _numbers_as_numbers(values: pd.Series) -> bool:
    """Whether a numeric column holds whole numbers that read as mobile numbers."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    whole = numbers[(numbers >= 1.3e10) & (numbers < 2e10) & (numbers % 1 == 0)]
    return any(MOBILE.fullmatch(str(int(v))) for v in whole)


@dataclass(frozen=True)
class Redaction:
    """What :func:`redact_frames` took out of one layer.

    Parameters
    ----------
    layer
        The layer.
    dropped
        ``{column: what it looked like it held}`` for each column dropped.
    masked
        ``{column: (feature id, ...)}`` of the features whose text in that column had
        personal numbers masked (ids as masked).
    """

    layer: str
    dropped: Mapping[str, str]
    masked: Mapping[str, tuple[str, ...]]

    def lines(self, where: str, *, shown: int = 5) -> list[str]:
        """Return one warning line per dropped or masked column, starting with ``where``."""
        out = [
            f"{where}: column {column!r} looks like {kind}; left out of the plan, maps and "
            "exports (set [plan] include_personal = true to keep it)"
            for column, kind in self.dropped.items()
        ]
        for column, features in self.masked.items():
            listed = ", ".join(features[:shown]) + (", ..." if len(features) > shown else "")
            out.append(
                f"{where}: {len(features)} value(s) of column {column!r} hold phone or ID "
                f"numbers (features {listed}); masked in the plan, maps and exports "
                "(set [plan] include_personal = true to keep them)"
            )
        return out


def redact_frames(
    frames: Mapping[str, pd.DataFrame],
    *,
    id_columns: Mapping[str, str] | None = None,
    masker: Masker | None = None,
    drop: bool = True,
) -> tuple[dict[str, pd.DataFrame], list[Redaction]]:
    """Drop personal columns and mask personal numbers in every frame of a layer set.

    Parameters
    ----------
    frames
        Layers (or any tables) by name; they are not modified.
    id_columns
        The id column of each layer, to name the features masked.
    masker
        The masker to use (one built from ``frames`` by default); give one to mask
        several sets of frames the same way.
    drop
        Drop the columns that look personal (False: only mask numbers, for tables
        whose columns are fixed).

    Returns
    -------
    frames
        New frames without personal columns, personal numbers masked.
    redactions
        What was taken out, one entry per layer that had anything taken out.
    """
    id_columns = id_columns or {}
    masker = masker or Masker.from_arrays(_text_arrays(frames.values()))
    out: dict[str, pd.DataFrame] = {}
    found: list[Redaction] = []
    for name, frame in frames.items():
        geometry = getattr(frame, "_geometry_column_name", None)
        dropped = {}
        for column in frame.columns if drop else ():
            if column == geometry:
                continue
            kind = personal_column(column)
            if kind is None and _numbers_as_numbers(frame[column]):
                kind = "a phone number"
            if kind is not None:
                dropped[str(column)] = kind
        kept = frame.drop(columns=list(dropped)) if dropped else frame
        hits: dict[str, list[int]] = {}
        changes: dict[str, np.ndarray] = {}
        id_column = id_columns.get(name)
        for column in _text_columns(kept) if masker.masks else ():
            values = kept[column].to_numpy(dtype=object)
            rows = np.flatnonzero(_maybe_personal(values)).tolist()
            new = {i: masker(values[i]) for i in rows}
            hit = [i for i in rows if new[i] != values[i]]
            if hit:
                changed = values.copy()
                changed[hit] = [new[i] for i in hit]
                changes[str(column)] = changed
                hits[str(column)] = hit
        if changes:
            kept = kept.copy()
            for column, changed in changes.items():
                kept[column] = pd.Series(changed, index=kept.index, dtype=kept[column].dtype)
        masked: dict[str, tuple[str, ...]] = {}
        if hits:
            ids = (
                [str(v) for v in kept[id_column]]
                if id_column in kept.columns
                else [f"row {i + 1}" for i in range(len(kept))]
            )
            masked = {c: tuple(ids[i] for i in rows) for c, rows in hits.items()}
        out[name] = kept
        if dropped or masked:
            found.append(Redaction(name, MappingProxyType(dropped), MappingProxyType(masked)))
    return out, found


def redact_plan(plan: Plan) -> Plan:
    """Return the plan with personal data taken out, unless its settings keep it.

    Maps and exports call this on the plan they are given: the layers lose columns that
    look personal, and phone and ID numbers are masked the same way in the layers and
    in every output table.

    Parameters
    ----------
    plan
        The plan.

    Returns
    -------
    Plan
        The same plan when ``plan.settings.include_personal`` is set or nothing
        personal was found, else a redacted copy.
    """
    if plan.settings.include_personal:
        return plan
    names = ("meter_boxes", "cables", "trenches", "removals", "unserved", "summary")
    tables: dict[str, Any] = {name: getattr(plan, name) for name in names}
    if plan.power_flow is not None:
        tables["power_flow"] = plan.power_flow
    layers = dict(plan.layers.frames)
    masker = Masker.from_arrays(_text_arrays([*layers.values(), *tables.values()]))
    new_layers, found = redact_frames(layers, masker=masker)
    new_tables, found_tables = redact_frames(tables, masker=masker, drop=False)
    if not found and not found_tables:
        return plan
    frames = MappingProxyType(new_layers)
    return dataclasses.replace(
        plan, layers=dataclasses.replace(plan.layers, frames=frames), **new_tables
    )
