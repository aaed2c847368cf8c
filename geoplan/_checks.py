"""Checks of one layer's features, a whole column or geometry array at a time.

What :mod:`geoplan.layers` finds wrong with a feature: its id, its numbers and choices,
its geometry, where it lies (for the CRS it declares, and from the rest of the layers),
the features it names in other layers. Each check reports exactly what checking the
features one by one would, in the same order, while looping only over the features it
reports. Reprojections to lon/lat can run on a helper thread (``start_lonlat``,
``outline_bounds``): they read their input and touch no warnings filter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from ._geometry import _in_threads
from .errors import Problem

if TYPE_CHECKING:
    from .layers import LayerSpec

#: A feature (or layer) this far from the rest of the layer set is misplaced.
FAR_KM = 1000.0
#: How far outside its CRS's area of use a feature may lie, in degrees.
AREA_OF_USE_MARGIN_DEG = 2.0
#: Latitudes and longitudes of China, to recognise lat/lon written as lon/lat.
CHINA_LAT = (3.0, 54.0)
CHINA_LON = (73.0, 136.0)
SWAPPED = "coordinates look like lat/lon swapped (x holds latitudes, y longitudes); swap the axes"
#: Longitude/latitude on WGS 84 (EPSG:4326): where the checks place features, and the CRS
#: of RFC 7946 GeoJSON.
LONLAT = pyproj.CRS.from_epsg(4326)
_GEOMETRY_TYPE_IDS: Mapping[str, int] = MappingProxyType(
    {
        name: int(shapely.GeometryType[name.upper()])
        for name in (
            "Point",
            "LineString",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
        )
    }
)
#: Geometry types whose bounds are not simply those of their vertices (holes do not count).
_NESTED_TYPE_IDS = (
    int(shapely.GeometryType.MULTIPOLYGON),
    int(shapely.GeometryType.GEOMETRYCOLLECTION),
)
_MEAN_EARTH_RADIUS_KM = 6371.0088
_STRIP = np.frompyfunc(str.strip, 1, 1)


def src(file: Path | str | None) -> str | None:
    """Return how a problem names a file (None for layers held in memory)."""
    return None if file is None else str(file)


def _as_id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def is_text(values: pd.Series) -> bool:
    """Whether a column holds text only (or nothing but gaps), as Python objects."""
    return pd.api.types.is_object_dtype(values.dtype) and pd.api.types.infer_dtype(
        values, skipna=True
    ) in ("string", "empty")


def _as_ids(values: pd.Series) -> np.ndarray:
    """Return ``_as_id`` of every value (None where a value is missing), column at a time.

    Text, integer and float columns are converted without a loop; a column of mixed or
    unusual values (rare: only frames built in memory hold them) value by value.
    """
    out = np.full(len(values), None, dtype=object)
    present = ~values.isna().to_numpy(dtype=bool)
    given = values if present.all() else values[present]
    dtype = given.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        out[present] = given.to_numpy().astype(str).astype(object)
    elif isinstance(dtype, np.dtype) and dtype.kind == "f":
        number = given.to_numpy(dtype=np.float64)
        whole = np.isfinite(number) & (np.floor(number) == number) & (np.abs(number) < 2.0**62)
        text = np.empty(len(number), dtype=object)
        text[whole] = number[whole].astype(np.int64).astype(str).astype(object)
        text[~whole] = [_as_id(v) for v in number[~whole].tolist()]
        out[present] = text
    elif is_text(given):
        out[present] = _STRIP(given.to_numpy(dtype=object))
    else:
        out[present] = [_as_id(v) for v in given.tolist()]
    return out


def _as_column(values: np.ndarray | None) -> np.ndarray | list[object]:
    """Return ids to assign as a column; an empty layer's as a list.

    pandas stores an empty list as a float64 column, as these columns always were.
    """
    return values if values is not None and len(values) else []


def _listed(values: pd.Series, rows: Sequence[int] | np.ndarray) -> list[object]:
    """Return the values at ``rows`` as iterating over the column gives them."""
    return values.iloc[np.asarray(rows, dtype=np.intp)].tolist()


class FeatureIds:
    """How problems name the features of a layer: by id, or ``row N`` where one has none.

    Parameters
    ----------
    frame
        The layer.
    spec
        Its contract (which column holds the ids).
    """

    def __init__(self, frame: pd.DataFrame, spec: LayerSpec) -> None:
        if spec.id_column in frame.columns:
            #: The ids as the checked layer holds them (None where one is missing).
            self.values: np.ndarray | None = _as_ids(frame[spec.id_column])
            #: Which features have no id.
            self.blank = pd.isna(self.values) | (self.values == "")
        else:
            self.values = None
            self.blank = np.ones(len(frame), dtype=bool)

    def __getitem__(self, i: int | np.integer) -> str:
        if self.values is None or self.blank[i]:
            return f"row {i + 1}"
        return str(self.values[i])


def _unfinite(geoms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return which geometries (of those at ``rows``) have NaN or infinite coordinates."""
    unfinite = np.zeros(len(geoms), dtype=bool)
    coords = shapely.get_coordinates(geoms[rows])
    if not np.isfinite(coords).all():
        coords, owner = shapely.get_coordinates(geoms[rows], return_index=True)
        unfinite[rows[owner[~np.isfinite(coords).all(axis=1)]]] = True
    return unfinite


def fix_geometry(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path | None, ids: FeatureIds
) -> tuple[gpd.GeoDataFrame, list[Problem], list[str], np.ndarray]:
    """Check each geometry; drop Z values and unwrap one-part multi-geometries.

    Returns the frame, the problems, the repairs made and which features are sound. A
    feature with a problem keeps its geometry as read; a sound one gets the repaired one.
    """
    geoms = np.asarray(frame.geometry.array, dtype=object)
    expected = _GEOMETRY_TYPE_IDS[spec.geometry]
    multi_id = _GEOMETRY_TYPE_IDS[f"Multi{spec.geometry}"]
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    flat = ~empty & shapely.has_z(geoms)
    repaired = geoms.copy()
    repaired[flat] = shapely.force_2d(geoms[flat])
    kinds = shapely.get_type_id(geoms)  # dropping Z values keeps the type
    one_part = ~empty & (kinds == multi_id)
    one_part[one_part] = shapely.get_num_geometries(repaired[one_part]) == 1
    repaired[one_part] = shapely.get_geometry(repaired[one_part], 0)
    kinds[one_part] = shapely.get_type_id(repaired[one_part])
    wrong_type = ~empty & (kinds != expected)
    unfinite = _unfinite(repaired, np.flatnonzero(~empty & ~wrong_type))
    invalid = np.zeros(len(geoms), dtype=bool)
    tested = ~empty & ~wrong_type & ~unfinite
    invalid[tested] = ~_in_threads(shapely.is_valid, repaired[tested])
    sound = tested & ~invalid

    problems: list[Problem] = []
    for i in np.flatnonzero(~sound).tolist():
        where = {"file": src(file), "layer": spec.name, "feature_id": ids[i]}
        if empty[i]:
            message = "geometry is empty; draw it or delete the feature"
        elif wrong_type[i]:
            message = (
                f"geometry is {repaired[i].geom_type}; a {spec.geometry} is expected "
                "(split multi-part features into one feature per part)"
            )
        elif unfinite[i]:
            message = "geometry has NaN or infinite coordinates"
        else:
            reason = shapely.is_valid_reason(repaired[i])
            message = f"geometry is invalid ({reason}); repair it (e.g. QGIS Fix geometries)"
        problems.append(Problem(message, **where))
    notes: list[str] = []
    for i in np.flatnonzero(flat | one_part).tolist():
        if flat[i]:
            notes.append(str(Problem("dropped Z values", src(file), spec.name, ids[i])))
        if one_part[i]:
            repair = f"one-part Multi{spec.geometry} read as {spec.geometry}"
            notes.append(str(Problem(repair, src(file), spec.name, ids[i])))
    if not (flat | one_part).any():
        return frame, problems, notes, sound  # every geometry as read: nothing to set
    kept = np.where(sound, repaired, geoms)
    frame = frame.set_geometry(gpd.GeoSeries(kept, index=frame.index, crs=frame.crs))
    return frame, problems, notes, sound


def check_values(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path | None, ids: FeatureIds
) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Check ids, numbers and choices; return the layer with ids as text, numbers as numbers."""
    problems: list[Problem] = []
    frame = frame.copy()

    def at(i: int) -> dict[str, str | None]:
        return {"file": src(file), "layer": spec.name, "feature_id": ids[i]}

    for i in np.flatnonzero(ids.blank).tolist():
        problems.append(Problem(f"{spec.id_column} is empty; give every feature an id", **at(i)))
    frame[spec.id_column] = _as_column(ids.values)
    for i in np.flatnonzero(_repeated(frame[spec.id_column])).tolist():
        problems.append(Problem(f"{spec.id_column} is used twice; ids must be unique", **at(i)))

    for column in dict.fromkeys(spec.counts + spec.amounts + spec.positive):
        if column not in frame.columns:
            continue
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if pd.api.types.is_bool_dtype(frame[column]):
            numeric = pd.Series(np.nan, index=frame.index)  # true/false is not a number
        numeric = numeric.where(np.isfinite(numeric.astype("float64")))
        top = spec.maxima.get(column, np.inf)
        for i, raw, message in _number_problems(frame[column], numeric, column, spec, top):
            problems.append(Problem(message.format(column=column, raw=raw, top=top), **at(i)))
        # values reported above (negative, fractional or absurd counts...) become NA
        numeric = numeric.where(numeric <= top)
        if column in spec.positive:
            numeric = numeric.where(numeric > 0)
        if column in spec.counts:
            numeric = numeric.where((numeric >= 0) & (numeric % 1 == 0))
        frame[column] = numeric.astype("Int64" if column in spec.counts else "float64")

    for column, allowed in spec.choices.items():
        if column not in frame.columns:
            continue
        values = frame[column]
        rows = np.flatnonzero((values.notna() & ~values.isin(allowed)).to_numpy(dtype=bool))
        for i, value in zip(rows.tolist(), _listed(values, rows), strict=True):
            problems.append(
                Problem(f"{column} = {value!r} must be one of {', '.join(allowed)}", **at(i))
            )
    return frame, problems


def _repeated(values: pd.Series) -> np.ndarray:
    """Return which values repeat an earlier one, gaps never: ``duplicated()`` of the rest.

    Ids in order (as GIS software usually writes them) can only repeat their neighbour,
    so they are compared with it instead of hashed.
    """
    present = values.notna().to_numpy(dtype=bool)
    if not values.is_monotonic_increasing:
        return values.duplicated(keep="first").to_numpy(dtype=bool) & present
    array = values.to_numpy()
    repeated = np.zeros(len(array), dtype=bool)
    repeated[1:] = array[1:] == array[:-1]
    return repeated & present


def _is_bool_value(values: pd.Series) -> np.ndarray:
    """Return which values are true/false (a bool or numpy bool), not numbers."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return np.ones(len(values), dtype=bool)
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return np.zeros(len(values), dtype=bool)
    if is_text(values.dropna()):
        return np.zeros(len(values), dtype=bool)
    return np.array([isinstance(v, bool | np.bool_) for v in values.tolist()], dtype=bool)


def _number_problems(
    raw: pd.Series, numeric: pd.Series, column: str, spec: LayerSpec, top: float
) -> Iterator[tuple[int, object, str]]:
    """Yield ``(row, raw value, message template)`` for each bad value of a number column.

    Each value gets the first message that fits it, in this order: empty, not a number,
    negative count, not above zero, negative, fractional count, too large.
    """
    missing = raw.isna().to_numpy(dtype=bool)
    number = numeric.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    count, positive = column in spec.counts, column in spec.positive
    first = np.full(len(raw), -1)  # which message fits each value first
    templates: list[str] = []

    def fits(bad: np.ndarray, template: str) -> None:
        first[bad & (first < 0)] = len(templates)
        templates.append(template)

    fits(missing & (column in spec.required or positive), "{column} is empty; give a number")
    fits(~missing & (np.isnan(number) | _is_bool_value(raw)), "{column} = {raw!r} is not a number")
    with np.errstate(invalid="ignore"):  # a comparison with NaN (no number) fits nothing
        if count:
            fits(number < 0, "{column} = {raw} must not be negative")
        if positive:
            fits(number <= 0, "{column} = {raw} must be greater than zero")
        fits(number < 0, "{column} = {raw} must not be negative")
        if count:
            fits(np.isfinite(number) & (number % 1 != 0), "{column} = {raw} must be a whole number")
        fits(
            number > top,
            "{column} = {raw} is implausibly large (at most {top:,.0f}); correct the value",
        )
    rows = np.flatnonzero(first >= 0)
    for i, value, k in zip(rows.tolist(), _listed(raw, rows), first[rows].tolist(), strict=True):
        yield i, value, templates[k]


@lru_cache(maxsize=16)
def _transformer_to_lonlat(crs: pyproj.CRS) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, LONLAT, always_xy=True)


def to_lonlat(coords: np.ndarray, crs: pyproj.CRS) -> tuple[np.ndarray, np.ndarray]:
    """Return x/y coordinates in ``crs`` as lon/lat, as geopandas' ``to_crs(4326)`` does."""
    if crs.is_exact_same(LONLAT):
        return coords[:, 0], coords[:, 1]
    # PROJ lets go of Python's lock, and a transformer may serve two threads at once
    lonlat = _in_threads(_transformed, coords[:, 0], coords[:, 1], crs=crs)
    return lonlat[:, 0], lonlat[:, 1]


def _transformed(x: np.ndarray, y: np.ndarray, *, crs: pyproj.CRS) -> np.ndarray:
    """Return the lon/lat pairs of x/y coordinates in ``crs``, one row a point."""
    with np.errstate(all="ignore"):
        lon, lat = _transformer_to_lonlat(crs).transform(x, y)
    return np.column_stack([np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)])


def _lonlat(geoms: np.ndarray, crs: pyproj.CRS, sound: np.ndarray) -> np.ndarray:
    """Return a lon/lat point on each sound feature (inf or NaN where one cannot be placed).

    The features not sound get NaN. Sound features are 2D (see ``fix_geometry``). Run
    on the helper thread: ``geoms`` is only read.
    """
    xy = np.full((len(geoms), 2), np.nan)
    idx = np.flatnonzero(sound)
    points = _in_threads(shapely.point_on_surface, geoms[idx])
    placed = ~(shapely.is_missing(points) | shapely.is_empty(points))
    rows = idx[placed]
    xy[rows, 0], xy[rows, 1] = to_lonlat(shapely.get_coordinates(points[placed]), crs)
    return xy


def start_lonlat(
    helper: Executor, frame: gpd.GeoDataFrame, sound: np.ndarray
) -> Callable[[], np.ndarray]:
    """Start placing the sound features in lon/lat; return what waits for the points."""
    crs = pyproj.CRS.from_user_input(frame.crs)
    return helper.submit(_lonlat, np.asarray(frame.geometry.array), crs, sound).result


def _layer_or_features(
    bad: np.ndarray,
    layer_message: str,
    feature_message: str | Callable[[int], str],
    where: dict[str, str | None],
    ids: Callable[[int], str],
) -> list[Problem]:
    """One problem for the layer when every feature is bad, else one per bad feature."""
    if not bad.any():
        return []
    if bad.all():
        return [Problem(layer_message, **where)]
    say = feature_message if callable(feature_message) else (lambda _i: feature_message)
    return [Problem(say(i), feature_id=ids(i), **where) for i in np.flatnonzero(bad).tolist()]


def check_location(
    frame: gpd.GeoDataFrame,
    spec: LayerSpec,
    file: Path | None,
    ids: FeatureIds,
    *,
    sound: np.ndarray,
    lonlat: Callable[[], np.ndarray],
) -> list[Problem]:
    """Check that coordinates fit the declared CRS: not swapped, inside its area of use.

    Only sound features are checked; ``lonlat`` gives a point on each in lon/lat.
    """
    crs = pyproj.CRS.from_user_input(frame.crs)
    where = {"file": src(file), "layer": spec.name}
    idx = np.flatnonzero(sound)
    if not len(idx):
        return []

    def id_of(i: int) -> str:
        return ids[idx[i]]

    bounds = shapely.bounds(np.asarray(frame.geometry.array)[idx])
    minx, miny, maxx, maxy = bounds.T
    name = crs.to_string()
    if crs.is_geographic:
        if (
            np.all(np.abs(bounds[:, [0, 2]]) <= 90)
            and np.all(np.abs(bounds[:, [1, 3]]) <= 180)
            and (
                np.any(np.abs(bounds[:, [1, 3]]) > 90)
                or (
                    np.all((minx >= CHINA_LAT[0]) & (maxx <= CHINA_LAT[1]))
                    and np.all((miny >= CHINA_LON[0]) & (maxy <= CHINA_LON[1]))
                )
            )
        ):
            return [Problem(SWAPPED, **where)]
        outside = (minx < -180) | (maxx > 180) | (miny < -90) | (maxy > 90)
        problems = _layer_or_features(
            outside,
            f"coordinates are not longitudes and latitudes (x up to "
            f"{np.abs(bounds[:, [0, 2]]).max():,.0f}) though the layer's CRS is {name}; "
            "declare the CRS the coordinates are in (e.g. EPSG:4545 or a UTM zone)",
            lambda i: (
                SWAPPED
                if abs(bounds[i, 1]) > 90 and abs(bounds[i, 0]) <= 90
                else "coordinates are outside the range of longitude and latitude; correct them"
            ),
            where,
            id_of,
        )
        if problems:
            return problems
    elif np.all(np.abs(bounds[:, [0, 2]]) <= 180) and np.all(np.abs(bounds[:, [1, 3]]) <= 90):
        return [
            Problem(
                f"coordinates look like longitudes and latitudes in degrees, but the layer's "
                f"CRS {name} is in metres; declare EPSG:4326 (or the CRS they are in)",
                **where,
            )
        ]
    area = crs.area_of_use
    if area is None:
        return []
    lon, lat = lonlat()[idx].T
    margin = AREA_OF_USE_MARGIN_DEG
    with np.errstate(invalid="ignore"):
        inside = (
            (lon >= area.west - margin)
            & (lon <= area.east + margin)
            & (lat >= area.south - margin)
            & (lat <= area.north + margin)
        )
    span = f"{area.west:g}..{area.east:g} E, {area.south:g}..{area.north:g} N"
    return _layer_or_features(
        ~inside,
        f"coordinates lie outside the area where the layer's CRS {name} is used ({span}); "
        "declare the CRS the coordinates are in",
        f"coordinates lie outside the area where the layer's CRS {name} is used ({span}); "
        "correct them",
        where,
        id_of,
    )


def _distances_km(lon0: float, lat0: float, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return which points are certainly near a centre, and the others' distance from it.

    Near is nearer than ``FAR_KM``; the distance is the geodesic one, in kilometres (NaN
    for the near points, and where a point cannot be placed). A great circle on the mean
    sphere is within 1 % of the geodesic on WGS 84, so a point less than 0.9 ``FAR_KM``
    away on the sphere is near; only the rest are measured on the ellipsoid, as precisely
    as a message naming the distance needs.
    """
    lon, lat = xy[:, 0], xy[:, 1]
    with np.errstate(invalid="ignore"):
        on_earth = (np.abs(lon - lon0) <= 360) & (np.abs(lat) <= 90) & (abs(lat0) <= 90)
        phi0, phi = np.radians(lat0), np.radians(lat)
        half = (
            np.sin((phi - phi0) / 2) ** 2
            + np.cos(phi0) * np.cos(phi) * np.sin(np.radians(lon - lon0) / 2) ** 2
        )
        sphere_km = 2 * _MEAN_EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(half, 0.0, 1.0)))
        near = on_earth & np.isfinite(lon0) & (sphere_km < 0.9 * FAR_KM)
    distance_km = np.full(len(xy), np.nan)
    measured = ~near
    count = int(measured.sum())
    with np.errstate(invalid="ignore"):
        _, _, distance_m = pyproj.Geod(ellps="WGS84").inv(
            np.full(count, lon0), np.full(count, lat0), lon[measured], lat[measured]
        )
    distance_km[measured] = np.asarray(distance_m) / 1000.0
    return near, distance_km


def check_far(
    frames: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    sound: Mapping[str, np.ndarray],
    lonlat: Mapping[str, Callable[[], np.ndarray]],
    ids: Mapping[str, FeatureIds],
) -> list[Problem]:
    """Report features (or whole layers) thousands of kilometres from the rest."""
    points: dict[str, np.ndarray] = {}
    for name in frames:
        keep = sound[name]
        if keep.any():
            points[name] = np.where(keep[:, np.newaxis], lonlat[name](), np.nan)
    centres = np.array([np.nanmedian(xy, axis=0) for xy in points.values()])
    if not len(centres) or np.isnan(centres).all():
        return []
    lon0, lat0 = np.nanmedian(centres, axis=0)
    problems: list[Problem] = []
    for name, xy in points.items():
        near, distance_km = _distances_km(lon0, lat0, xy)
        placed = sound[name] & (near | np.isfinite(distance_km))
        far = placed & ~near & (distance_km > FAR_KM)
        if not far.any():
            continue
        where = {"file": src(files.get(name)), "layer": name}
        around = f"around {lon0:.3f} E, {lat0:.3f} N"
        if far[placed].all():
            km = float(np.median(distance_km[placed]))
            msg = (
                f"the layer lies {km:,.0f} km from the other layers ({around}); check its "
                "coordinates and its CRS"
            )
            problems.append(Problem(msg, **where))
            continue
        for i in np.flatnonzero(far):
            msg = (
                f"lies {distance_km[i]:,.0f} km from the rest of the layers ({around}); "
                "correct its coordinates"
            )
            problems.append(Problem(msg, feature_id=ids[name][i], **where))
    return problems


def check_references(
    frames: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    *,
    specs: Sequence[LayerSpec],
    given: Collection[str],
    ids: Mapping[str, FeatureIds],
) -> list[Problem]:
    """Report references to features that no layer holds, and empty required references.

    Returns the problems; each reference column becomes ids as text, as the layer it
    names holds them (the frames are the checked copies, changed in place). A storage
    block with more applicants than units is reported here too.
    """
    problems: list[Problem] = []
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        frame = frames.get(spec.name)
        if frame is None:
            continue
        for column, target in spec.references.items():
            if column not in frame.columns:
                continue
            target_spec = by_name[target]
            if target not in frames and (target in given or target_spec.mandatory):
                continue  # the target layer is missing or unreadable, reported already
            known = (
                frames[target][target_spec.id_column].dropna()
                if target in frames
                else pd.Series([], dtype=object)
            )
            values = frame[column]
            named = _as_ids(values)
            empty = pd.isna(named) | values.eq("").to_numpy(dtype=bool)
            unknown = ~empty & ~pd.Series(named).isin(known).to_numpy(dtype=bool)
            rows = np.flatnonzero((empty & (column in spec.required)) | unknown)
            where = {"file": src(files.get(spec.name)), "layer": spec.name}
            for i, value in zip(rows.tolist(), _listed(values, rows), strict=True):
                if empty[i]:
                    message = f"{column} is empty"
                else:
                    message = (
                        f"{column} = {value!r} names no feature of layer {target}; "
                        f"fix the id or add that {target_spec.id_column}"
                    )
                problems.append(Problem(message, feature_id=ids[spec.name][i], **where))
            frame[column] = _as_column(named)
    blocks = frames.get("storage_blocks")
    if blocks is not None and {"units", "applicants"} <= set(blocks.columns):
        over = (blocks["applicants"] > blocks["units"]).fillna(False)
        for block_id, units, applicants in blocks.loc[
            over, ["block_id", "units", "applicants"]
        ].itertuples(index=False):
            problems.append(
                Problem(
                    f"applicants = {applicants} exceeds units = {units}; "
                    "a storage room has one applicant at most",
                    file=src(files.get("storage_blocks")),
                    layer="storage_blocks",
                    feature_id=str(block_id),
                )
            )
    return problems


def _distinct_points(xy: np.ndarray) -> np.ndarray:
    """Return the distinct x/y pairs, in order of first appearance.

    A vertex shared by lines reprojects to the same lon/lat each time, so reprojecting
    it once gives the same bounds (NaN and infinite coordinates stay, at least once).
    """
    pairs = np.ascontiguousarray(xy, dtype=np.float64).view(np.complex128).ravel()
    return pd.unique(pairs).view(np.float64).reshape(-1, 2)


def outline_bounds(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray | None:
    """Return the lon/lat bounds of 2D points, lines and polygons by their vertices alone.

    Equal to geopandas' ``to_crs(4326).total_bounds``, without rebuilding the geometries
    from the reprojected vertices. None where that shortcut does not hold: Z values,
    multi-polygons or collections, vertices that do not reproject. Run on the helper
    thread: ``geoms`` is only read.
    """
    geoms = geoms.copy()  # shapely < 2.2 marks its input read-only while it works
    kinds = shapely.get_type_id(geoms)
    if shapely.has_z(geoms).any() or np.isin(kinds, _NESTED_TYPE_IDS).any():
        return None
    holed = (kinds == _GEOMETRY_TYPE_IDS["Polygon"]) & (shapely.get_num_interior_rings(geoms) > 0)
    geoms[holed] = shapely.get_exterior_ring(geoms[holed])  # a hole does not count
    xy = shapely.get_coordinates(geoms)
    if (kinds == _GEOMETRY_TYPE_IDS["LineString"]).all() and not crs.is_exact_same(LONLAT):
        xy = _distinct_points(xy)  # lines meet at shared ends: reproject each end once
    lon, lat = to_lonlat(xy, crs)
    if not len(lon) or not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return None
    return np.array([lon.min(), lat.min(), lon.max(), lat.max()])


_NOT_ALLOWED = frozenset({"false", "0", "no", "n", "f"})


def allowed_flags(values: pd.Series) -> np.ndarray:
    """Read a corridors ``allowed`` column: which rows may carry a trench.

    Texts false, 0, no, n and f (any case, spaces around) and false values are not
    allowed; everything else is, missing values included (a corridor is usable unless
    marked). The routing graph and the meter boxes' siting read it alike.
    """

    def usable(value: object) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return True
        if isinstance(value, str):
            return value.strip().lower() not in _NOT_ALLOWED
        return bool(value)

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(bool)
    return np.fromiter((usable(v) for v in values), dtype=bool, count=len(values))
