"""Scalars, arrays or Series in, the same kind out: what the vectorised formulas share.

:mod:`geoplan.electrical` and :mod:`geoplan.costs` take a scalar, a numpy array or a
pandas Series and compute on arrays; :func:`shaped_like` hands the result back as the
kind of input it came from; :func:`nonnegative` is how both take counts and lengths in.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatOrArray: TypeAlias = float | npt.NDArray[np.float64] | pd.Series
IntOrArray: TypeAlias = int | npt.NDArray[np.int64] | pd.Series


def shaped_like(result: npt.NDArray[Any], *inputs: Any) -> Any:
    """Return ``result`` shaped like the inputs: scalar, Series (with its index) or array.

    Parameters
    ----------
    result
        The computed values, an array.
    *inputs
        The inputs it was computed from; the first Series as long as ``result`` lends it
        its index.

    Returns
    -------
    shaped
        A Series with that index, a Python scalar for a 0-d result, else ``result``.
    """
    for item in inputs:
        if isinstance(item, pd.Series) and result.shape == (len(item),):
            return pd.Series(result, index=item.index)
    if result.ndim == 0:
        return result.item()
    return result


def nonnegative(values: Any, name: str) -> npt.NDArray[np.float64]:
    """Return ``values`` as a float array, refusing NaN, infinity and negative numbers."""
    out = np.asarray(values, dtype=float)
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        example = out[bad].flat[0]
        msg = f"{name} must be finite and >= 0; got {example!r}"
        raise ValueError(msg)
    return out
