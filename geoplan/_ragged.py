"""Lines held as coordinates: a city's million pieces without a geometry object each.

Noding splits most corridor lines with numpy, and numbering the nodes rewrites every
piece's ends; building shapely geometries in between (a microsecond or two each) and
reading their coordinates back cost more than the work itself. :class:`Ragged` keeps the
pieces as one coordinate array until :meth:`Ragged.geometries` builds them, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from ._geometry import FloatArray, GeomArray, IntArray


@dataclass(frozen=True)
class Ragged:
    """Lines as coordinates: line ``index[k]`` has vertex ``coords[k]``, in order.

    ``index`` ascends and holds every line from 0 to ``n - 1``.
    """

    coords: FloatArray
    index: IntArray
    n: int

    @classmethod
    def of(cls, lines: GeomArray) -> Ragged:
        """Read the coordinates of non-empty LineStrings."""
        coords, index = shapely.get_coordinates(lines, return_index=True)
        return cls(coords, index, len(lines))

    def __len__(self) -> int:
        return self.n

    def geometries(self) -> GeomArray:
        """Make the lines into shapely LineStrings."""
        if not self.n:
            return np.zeros(0, dtype=object)
        return shapely.linestrings(self.coords, indices=self.index)

    def first_last(self) -> tuple[IntArray, IntArray]:
        """Positions in ``coords`` of each line's first and last vertex."""
        first = np.searchsorted(self.index, np.arange(self.n))
        return first, np.concatenate([first[1:], [len(self.coords)]]) - 1

    def lengths(self) -> FloatArray:
        """Each line's length, as :func:`shapely.length` gives it.

        GEOS adds the segments' lengths, ``sqrt(dx * dx + dy * dy)``, in turn from 0;
        :func:`numpy.bincount` does the same additions in the same order.
        """
        seg = np.flatnonzero(self.index[1:] == self.index[:-1])
        d = self.coords[seg + 1] - self.coords[seg]
        step = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
        return np.bincount(self.index[seg], weights=step, minlength=self.n)

    def inner_points(self) -> FloatArray:
        """Return a point inside each line: the middle of its first segment of non-zero length."""
        step = np.diff(self.coords, axis=0)
        usable = (self.index[1:] == self.index[:-1]) & np.any(step != 0, axis=1)
        at = np.flatnonzero(usable)
        owner = self.index[at]  # ascending: the first of each line starts its run
        at = at[np.r_[True, owner[1:] != owner[:-1]]] if len(at) else at
        return self.coords[at] + step[at] / 2

    def subset(self, rows: IntArray) -> Ragged:
        """Return the lines ``rows`` (ascending, distinct), numbered afresh."""
        keep = np.zeros(self.n, dtype=bool)
        keep[rows] = True
        mask = keep[self.index]
        renumber = np.cumsum(keep) - 1
        return Ragged(self.coords[mask], renumber[self.index[mask]], len(rows))

    @staticmethod
    def concat(parts: list[Ragged]) -> Ragged:
        """Join the parts' lines, in order."""
        offsets = np.cumsum([0] + [part.n for part in parts])
        return Ragged(
            np.concatenate([part.coords for part in parts]).reshape(-1, 2),
            np.concatenate([part.index + at for part, at in zip(parts, offsets, strict=False)]),
            int(offsets[-1]),
        )
