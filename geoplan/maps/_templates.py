"""Reuse compiled Jinja templates while a page renders (thousands of compound pages).

branca, under folium, compiles a new Jinja template for every piece of every page:
each element's rendered script becomes an ``Element(text)``, compiled again as a template
though it holds no template syntax, and each tooltip and popup compiles the same style
template twice. That compilation is over half the time of a compound page, and a city
has tens of thousands of them.

:func:`reused_templates` makes those constructions cheap for the time of one render:
an element's text without template syntax becomes a :class:`Verbatim` that renders as
Jinja would render it, and every other source is compiled once and reused. The pages are the same
bytes either way (``tests/test_city_maps.py`` checks it). The swap touches the two
module names through which branca and folium build templates, only inside the ``with``,
under a lock, and puts them back even on error.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import branca.element
import folium.features

_SYNTAX = ("{{", "{%", "{#")  # Jinja's default delimiters
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LOCK = threading.RLock()
_CACHE_SIZE = 512


class Verbatim:
    """Text without template syntax, rendered as Jinja renders it.

    Jinja writes every newline as a line feed and drops one trailing newline
    (``keep_trailing_newline=False``, the default); nothing else changes plain text.
    """

    def __init__(self, source: str) -> None:
        self.text = "\n".join(_NEWLINE.split(source)).removesuffix("\n")

    def render(self, *_args: object, **_kwargs: object) -> str:
        """Return the text."""
        return self.text


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(kind: type, source: str) -> object:
    return kind(source)


def _reusing(kind: type, *, verbatim: bool) -> object:
    """Return a stand-in for the template class ``kind``.

    With ``verbatim``, plain text becomes a :class:`Verbatim` (branca's ``Element``
    only ever renders its template); otherwise every source is compiled once.
    """

    def build(source: str, *args: object, **kwargs: object) -> object:
        if args or kwargs or not isinstance(source, str):  # not ours to guess: as asked
            return kind(source, *args, **kwargs)
        if verbatim and not any(mark in source for mark in _SYNTAX):
            return Verbatim(source)
        return _compiled(kind, source)

    return build


@contextmanager
def reused_templates() -> Iterator[None]:
    """Build branca's and folium's templates from cache (or as plain text) inside."""
    with _LOCK:
        saved = branca.element.Template, folium.features.Template
        setattr(branca.element, "Template", _reusing(saved[0], verbatim=True))  # noqa: B010
        setattr(folium.features, "Template", _reusing(saved[1], verbatim=False))  # noqa: B010
        try:
            yield
        finally:
            setattr(branca.element, "Template", saved[0])  # noqa: B010
            setattr(folium.features, "Template", saved[1])  # noqa: B010
