"""The fast search for personal numbers misses none (geoplan.privacy).

Texts are searched for runs of digits with numpy before the regular expressions run; the
search may flag texts that hold no number, never miss one that does, and redacting gives
what masking every text one by one gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from geoplan.privacy import Masker, _maybe_personal, personal_numbers, redact_frames

# digits of several scripts (ASCII, full-width, Arabic-Indic, Devanagari), separators and
# the characters around numbers in real ids and names
ALPHABET = "0123456789" * 3 + "０１９٣٤५६" + " -+86Xx/_@\n\t" + "ABC楼号室 "
NUMBERS = st.sampled_from(
    [
        "13912345678",
        "+86 138 0013 8000",
        "138-0013-8000",
        "11010519491231002X",
        "１３９１２３４５６７８",
    ]
)
TEXTS = st.one_of(
    st.text(alphabet=ALPHABET, max_size=40),
    st.builds(
        lambda a, n, b: a + n + b,
        st.text(ALPHABET, max_size=6),
        NUMBERS,
        st.text(ALPHABET, max_size=6),
    ),
)
VALUES = st.one_of(TEXTS, st.none(), st.integers(), st.floats(allow_nan=True))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(VALUES, max_size=30))
def test_no_text_with_a_number_is_missed(values: list[object]) -> None:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    flagged = _maybe_personal(array)
    for value, maybe in zip(values, flagged, strict=True):
        if isinstance(value, str) and personal_numbers(value):
            assert maybe, value
        if not isinstance(value, str):
            assert not maybe


def test_ids_without_numbers_are_not_flagged() -> None:
    ids = np.array(["F00000@C00130036/B0001772-M1", "K0000000", "TR00001", "海北小区"], object)
    assert not _maybe_personal(ids).any()


def _masked_one_by_one(frame: pd.DataFrame, masker: Masker) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [masker(v) for v in out[column]]
    return out


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=15))
def test_redacting_masks_as_masking_every_text(rows: list[tuple[str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["block_id", "note"])
    frame["units"] = range(len(frame))
    texts = [t for row in rows for t in row]
    masker = Masker.from_texts(texts)
    # every number a text holds, found text by text by the plain regexes
    assert set(masker.masks) == {n for t in texts for n in personal_numbers(t)}
    redacted = redact_frames({"blocks": frame}, masker=masker, drop=False)[0]["blocks"]
    pd.testing.assert_frame_equal(redacted, _masked_one_by_one(frame, masker))
