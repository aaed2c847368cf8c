"""The input contract: read a layer set, validate it once, reproject it to metres.

A layer set is a folder of files named after the layers (``compounds.geojson``,
``storage_blocks.gpkg``, ``corridors.shp`` ... anything GDAL reads) or one GeoPackage
whose layers carry those names. Every problem found is collected before one
:class:`~geoplan.errors.LayerError` is raised, each naming the file, the layer, the
feature id and what to fix.

Beyond columns, values and geometry, the checks catch the usual accidents of survey
data: lat/lon written in swapped axes, coordinates in another CRS than the one declared
(outside the declared CRS's area of use), single features thousands of kilometres from
the rest, absurd counts. Two repairs are safe and made with a warning naming the
feature: Z values are dropped, and a one-part multi-geometry is read as its part.

An optional layer given as a file without features is an empty layer, except
``corridors``: an empty corridors file is an error (a survey that forgot its corridors
would otherwise be planned over open ground); leave the file out to plan without
corridors. Columns that look personal are left out and phone and ID numbers masked
(:mod:`geoplan.privacy`) unless the settings say ``include_personal``.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from .errors import CRSError, LayerError, Problem
from .privacy import redact_frames
from .settings import Settings

logger = logging.getLogger(__name__)

STATUSES = ("surveyed", "applied", "planned", "under_construction", "energized")
WIRE_STATUSES = ("present", "removed")
SUPPLY_KINDS = ("transformer", "branch_box", "pole")
FEEDER_KINDS = ("overhead", "cable")
SHAPEFILE_NAME_LENGTH = 10
READABLE_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".gml", ".kml", ".sqlite")
SHAPEFILE_PARTS = (".shx", ".dbf")
#: A feature (or layer) this far from the rest of the layer set is misplaced.
FAR_KM = 1000.0
#: How far outside its CRS's area of use a feature may lie, in degrees.
AREA_OF_USE_MARGIN_DEG = 2.0
#: Latitudes and longitudes of China, to recognise lat/lon written as lon/lat.
CHINA_LAT = (3.0, 54.0)
CHINA_LON = (73.0, 136.0)
SWAPPED = "coordinates look like lat/lon swapped (x holds latitudes, y longitudes); swap the axes"


@dataclass(frozen=True)
class LayerSpec:
    """What the contract asks of one input layer."""

    name: str
    geometry: str
    id_column: str
    required: tuple[str, ...]
    mandatory: bool = False
    counts: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    maxima: Mapping[str, float] = field(default_factory=dict)
    references: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


SPECS: tuple[LayerSpec, ...] = (
    LayerSpec(
        "compounds",
        "Polygon",
        "compound_id",
        ("compound_id", "name"),
        mandatory=True,
        counts=("households",),
        maxima={"households": 100_000},
        choices={"status": STATUSES},
    ),
    LayerSpec(
        "buildings",
        "Polygon",
        "building_id",
        ("building_id", "compound_id", "households"),
        counts=("households", "floors"),
        maxima={"households": 10_000, "floors": 200},
        references={"compound_id": "compounds"},
    ),
    LayerSpec(
        "storage_blocks",
        "Polygon",
        "block_id",
        ("block_id", "compound_id", "units"),
        mandatory=True,
        counts=("units", "applicants"),
        positive=("units",),
        maxima={"units": 2_000, "applicants": 2_000},
        references={"compound_id": "compounds"},
        choices={"status": STATUSES},
    ),
    LayerSpec(
        "supply_points",
        "Point",
        "supply_id",
        ("supply_id", "kind", "capacity_kva"),
        mandatory=True,
        counts=("max_circuits",),
        amounts=("load_kva",),
        positive=("capacity_kva",),
        maxima={"capacity_kva": 100_000, "load_kva": 100_000, "max_circuits": 1_000},
        choices={"kind": SUPPLY_KINDS},
    ),
    LayerSpec(
        "feeders",
        "LineString",
        "feeder_id",
        ("feeder_id",),
        amounts=("spare_kva",),
        maxima={"spare_kva": 100_000},
        references={"supply_id": "supply_points"},
        choices={"kind": FEEDER_KINDS},
    ),
    LayerSpec(
        "corridors",
        "LineString",
        "corridor_id",
        ("corridor_id", "surface"),
        choices={"surface": ()},  # the catalogue's trench surfaces, set when reading
    ),
    LayerSpec(
        "flying_wires",
        "LineString",
        "wire_id",
        ("wire_id", "compound_id"),
        counts=("households",),
        amounts=("height_m",),
        maxima={"households": 10_000, "height_m": 500},
        references={
            "compound_id": "compounds",
            "from_building_id": "buildings",
            "to_block_id": "storage_blocks",
        },
        choices={"status": WIRE_STATUSES},
    ),
    LayerSpec("obstacles", "Polygon", "obstacle_id", ("obstacle_id",)),
)
SPEC_BY_NAME: Mapping[str, LayerSpec] = MappingProxyType({s.name: s for s in SPECS})
LAYER_NAMES: tuple[str, ...] = tuple(SPEC_BY_NAME)


@dataclass(frozen=True)
class Layers:
    """A validated layer set in the metric working CRS.

    Every contract layer is present; a layer absent from the input is an empty frame
    with the required columns (``has(name)`` tells which were given).

    Parameters
    ----------
    frames
        The layers by name, all in ``crs``.
    crs
        The projected working CRS.
    sources
        The file each given layer was read from.
    warnings
        Repairs made while reading (one line each, naming the feature).
    """

    frames: Mapping[str, gpd.GeoDataFrame]
    crs: pyproj.CRS
    sources: Mapping[str, str]
    warnings: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> gpd.GeoDataFrame:
        return self.frames[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.frames)

    def has(self, name: str) -> bool:
        """Return True when the layer was given in the input (it may still be empty)."""
        return name in self.sources


def _empty(spec: LayerSpec, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {c: pd.Series(dtype="object") for c in spec.required},
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )


def find_layer_files(path: str | Path) -> tuple[dict[str, tuple[Path, str | None]], list[Problem]]:
    """Locate each contract layer in a folder or a GeoPackage.

    Parameters
    ----------
    path
        A folder of files named after the layers, or one GeoPackage with those layer names.

    Returns
    -------
    found
        ``{layer: (file, layer name inside the file or None)}``.
    problems
        Missing mandatory layers, ambiguous files, a path that does not exist.
    """
    path = Path(path)
    found: dict[str, tuple[Path, str | None]] = {}
    problems: list[Problem] = []
    if not path.exists():
        return found, [Problem("no such file or folder; give the layer folder", file=str(path))]
    if path.is_file():
        try:
            names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
        except Exception as exc:
            return found, [Problem(f"cannot read ({_short(exc)})", file=str(path))]
        for spec in SPECS:
            if spec.name in names:
                found[spec.name] = (path, spec.name)
        for spec in SPECS:
            if spec.mandatory and spec.name not in found:
                problems.append(
                    Problem(
                        f"no layer named {spec.name}; rename the layer or add it "
                        f"(layers here: {', '.join(names) or 'none'})",
                        file=str(path),
                        layer=spec.name,
                    )
                )
        return found, problems
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in READABLE_SUFFIXES)
    for spec in SPECS:
        matches = [p for p in files if p.stem == spec.name]
        if len(matches) > 1:
            listed = ", ".join(p.name for p in matches)
            problems.append(
                Problem(
                    f"several files for one layer ({listed}); keep one",
                    file=str(path),
                    layer=spec.name,
                )
            )
        elif matches:
            found[spec.name] = (matches[0], None)
        elif spec.mandatory:
            near = difflib.get_close_matches(spec.name, [p.stem for p in files], n=1)
            hint = f" (is {near[0]} meant to be it? rename it)" if near else ""
            problems.append(
                Problem(
                    f"required layer missing: add {spec.name}.geojson (or .gpkg, .shp){hint}",
                    file=str(path),
                    layer=spec.name,
                )
            )
    return found, problems


_NOT_RECOGNIZED = "not recognized as being in a supported file format"


def _src(file: Path | str | None) -> str | None:
    """Return how a problem names a file (None for layers held in memory)."""
    return None if file is None else str(file)


def _short(exc: Exception, file: Path | None = None) -> str:
    """Return the first line of an error, without GDAL's repetition of the file name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _NOT_RECOGNIZED in text:
        return "not a format GDAL reads: empty, cut short, or not geodata"
    if file is not None:
        text = text.replace(f"'{file}' ", "").replace(f"{file}: ", "").replace(str(file), "it")
    return text[:200]


def _feature_ids(frame: pd.DataFrame, spec: LayerSpec) -> list[str]:
    if spec.id_column in frame.columns:
        return [
            f"row {i + 1}" if pd.isna(v) or str(v).strip() == "" else _as_id(v)
            for i, v in enumerate(frame[spec.id_column])
        ]
    return [f"row {i + 1}" for i in range(len(frame))]


def _shapefile_parts(spec: LayerSpec, file: Path) -> list[Problem]:
    """Report the files a Shapefile cannot be read without (.shx, .dbf) that are missing."""
    present = {p.name.lower() for p in file.parent.iterdir()}
    missing = [
        file.with_suffix(suffix).name
        for suffix in SHAPEFILE_PARTS
        if file.with_suffix(suffix).name.lower() not in present
    ]
    if not missing:
        return []
    msg = (
        f"the Shapefile's {' and '.join(missing)} is missing beside it; copy every part "
        f"of the Shapefile (.shp, .shx, .dbf, .prj) or export the layer as GeoPackage"
    )
    return [Problem(msg, file=_src(file), layer=spec.name)]


def _no_features(spec: LayerSpec, file: Path | None) -> list[Problem]:
    """Report a layer given without features when the contract needs some."""
    where = {"file": _src(file), "layer": spec.name}
    if spec.mandatory:
        msg = f"has no features; add the {spec.name} (at least one {spec.geometry})"
        return [Problem(msg, **where)]
    if spec.name == "corridors":
        msg = (
            "has no features; draw the corridors cables may be trenched along, or delete "
            "the file to plan cables over open ground"
        )
        return [Problem(msg, **where)]
    return []


def _read_one(
    spec: LayerSpec, file: Path, inner: str | None
) -> tuple[gpd.GeoDataFrame | None, list[Problem]]:
    where = {"file": _src(file), "layer": spec.name}
    if file.suffix.lower() == ".shp" and inner is None:
        problems = _shapefile_parts(spec, file)
        if problems:
            return None, problems
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pyogrio.read_dataframe(file, layer=inner)
    except UnicodeDecodeError:
        return None, [Problem("is not UTF-8 text; save it as UTF-8", **where)]
    except Exception as exc:
        return None, [Problem(f"cannot read ({_short(exc, file)}); check the file", **where)]
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return None, [Problem(f"has no geometry; a {spec.geometry} layer is expected", **where)]
    if file.suffix.lower() == ".shp":
        frame = _restore_shapefile_names(frame, spec)
    if not len(frame):
        problems = _no_features(spec, file)
        return (None if problems else _empty(spec, frame.crs or pyproj.CRS(4326))), problems
    if frame.crs is None:
        return None, [
            Problem(
                "has no coordinate reference system; declare one (e.g. a .prj file "
                "or EPSG:4326 in the GeoPackage)",
                **where,
            )
        ]
    return frame, []


def _restore_shapefile_names(frame: gpd.GeoDataFrame, spec: LayerSpec) -> gpd.GeoDataFrame:
    """Undo the Shapefile format's 10-character cut of the contract's column names."""
    names = {
        *spec.required,
        *spec.counts,
        *spec.amounts,
        *spec.positive,
        *spec.references,
        *spec.choices,
    }
    renames = {
        name[:SHAPEFILE_NAME_LENGTH]: name
        for name in names
        if len(name) > SHAPEFILE_NAME_LENGTH and name not in frame.columns
    }
    return frame.rename(columns={k: v for k, v in renames.items() if k in frame.columns})


def _check_columns(frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path | None) -> list[Problem]:
    problems = []
    present = [c for c in frame.columns if c != frame.geometry.name]
    for column in spec.required:
        if column not in frame.columns:
            near = difflib.get_close_matches(column, present, n=1, cutoff=0.6)
            hint = f" (found {near[0]!r}: rename it to {column!r})" if near else ""
            problems.append(
                Problem(
                    f"required column {column!r} is missing{hint}",
                    file=_src(file),
                    layer=spec.name,
                )
            )
    return problems


def _fix_geometry(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path | None, ids: list[str]
) -> tuple[gpd.GeoDataFrame, list[Problem], list[str], np.ndarray]:
    """Check each geometry; drop Z values and unwrap one-part multi-geometries.

    Returns the frame, the problems, the repairs made and which features are sound.
    """
    problems: list[Problem] = []
    notes: list[str] = []
    sound = np.zeros(len(frame), dtype=bool)
    geoms = np.asarray(frame.geometry.array, dtype=object).copy()
    multi = f"Multi{spec.geometry}"
    for i, raw in enumerate(geoms):
        geom = raw
        where = {"file": _src(file), "layer": spec.name, "feature_id": ids[i]}
        if geom is None or geom.is_empty:
            problems.append(Problem("geometry is empty; draw it or delete the feature", **where))
            continue
        if shapely.has_z(geom):
            geom = shapely.force_2d(geom)
            notes.append(str(Problem("dropped Z values", _src(file), spec.name, ids[i])))
        if geom.geom_type == multi and len(geom.geoms) == 1:
            geom = geom.geoms[0]
            repair = f"one-part {multi} read as {spec.geometry}"
            notes.append(str(Problem(repair, _src(file), spec.name, ids[i])))
        if geom.geom_type != spec.geometry:
            problems.append(
                Problem(
                    f"geometry is {geom.geom_type}; a {spec.geometry} is expected "
                    "(split multi-part features into one feature per part)",
                    **where,
                )
            )
            continue
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all():
            problems.append(Problem("geometry has NaN or infinite coordinates", **where))
            continue
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            problems.append(
                Problem(
                    f"geometry is invalid ({reason}); repair it (e.g. QGIS Fix geometries)", **where
                )
            )
            continue
        geoms[i] = geom
        sound[i] = True
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame, problems, notes, sound


def _check_values(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path | None, ids: list[str]
) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    problems: list[Problem] = []
    frame = frame.copy()

    def at(i: int) -> dict[str, str | None]:
        return {"file": _src(file), "layer": spec.name, "feature_id": ids[i]}

    id_values = frame[spec.id_column]
    for i, value in enumerate(id_values):
        if pd.isna(value) or str(value).strip() == "":
            problems.append(
                Problem(f"{spec.id_column} is empty; give every feature an id", **at(i))
            )
    frame[spec.id_column] = [None if pd.isna(v) else _as_id(v) for v in id_values]
    duplicated = frame[spec.id_column].duplicated(keep="first") & frame[spec.id_column].notna()
    for i in np.flatnonzero(duplicated.to_numpy()).tolist():
        problems.append(Problem(f"{spec.id_column} is used twice; ids must be unique", **at(i)))

    for column in dict.fromkeys(spec.counts + spec.amounts + spec.positive):
        if column not in frame.columns:
            continue
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if pd.api.types.is_bool_dtype(frame[column]):
            numeric = pd.Series(np.nan, index=frame.index)  # true/false is not a number
        numeric = numeric.where(np.isfinite(numeric.astype("float64")))
        top = spec.maxima.get(column, np.inf)
        for i, (raw, num) in enumerate(zip(frame[column], numeric, strict=True)):
            if pd.isna(raw):
                if column in spec.required or column in spec.positive:
                    problems.append(Problem(f"{column} is empty; give a number", **at(i)))
            elif pd.isna(num) or isinstance(raw, bool | np.bool_):
                problems.append(Problem(f"{column} = {raw!r} is not a number", **at(i)))
            elif num < 0 and column in spec.counts:
                problems.append(Problem(f"{column} = {raw} must not be negative", **at(i)))
            elif column in spec.positive and num <= 0:
                problems.append(Problem(f"{column} = {raw} must be greater than zero", **at(i)))
            elif num < 0:
                problems.append(Problem(f"{column} = {raw} must not be negative", **at(i)))
            elif column in spec.counts and not float(num).is_integer():
                problems.append(Problem(f"{column} = {raw} must be a whole number", **at(i)))
            elif num > top:
                problems.append(
                    Problem(
                        f"{column} = {raw} is implausibly large (at most {top:,.0f}); "
                        "correct the value",
                        **at(i),
                    )
                )
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
        for i, value in enumerate(frame[column]):
            if pd.notna(value) and value not in allowed:
                problems.append(
                    Problem(f"{column} = {value!r} must be one of {', '.join(allowed)}", **at(i))
                )
    return frame, problems


def _lonlat(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Return one lon/lat point per feature (inf or NaN where it cannot be placed)."""
    points = shapely.point_on_surface(np.asarray(frame.geometry.array))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        moved = gpd.GeoSeries(points, crs=frame.crs).to_crs(4326)
    xy = np.full((len(frame), 2), np.nan)
    placed = ~(moved.is_empty | moved.isna()).to_numpy()
    xy[placed] = shapely.get_coordinates(moved.to_numpy()[placed])
    return xy


def _layer_or_features(
    bad: np.ndarray,
    layer_message: str,
    feature_message: str | Callable[[int], str],
    where: dict[str, str | None],
    ids: list[str],
) -> list[Problem]:
    """One problem for the layer when every feature is bad, else one per bad feature."""
    if not bad.any():
        return []
    if bad.all():
        return [Problem(layer_message, **where)]
    say = feature_message if callable(feature_message) else (lambda _i: feature_message)
    return [Problem(say(i), feature_id=ids[i], **where) for i in np.flatnonzero(bad).tolist()]


def _check_location(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path | None, ids: list[str], sound: np.ndarray
) -> list[Problem]:
    """Check that coordinates fit the declared CRS: not swapped, inside its area of use."""
    crs = pyproj.CRS.from_user_input(frame.crs)
    where = {"file": _src(file), "layer": spec.name}
    idx = np.flatnonzero(sound)
    if not len(idx):
        return []
    ids = [ids[i] for i in idx]
    frame = frame.iloc[idx]
    bounds = shapely.bounds(np.asarray(frame.geometry.array))
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
            ids,
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
    lon, lat = _lonlat(frame).T
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
        ids,
    )


def _check_far(
    frames: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    sound: Mapping[str, np.ndarray],
) -> list[Problem]:
    """Report features (or whole layers) thousands of kilometres from the rest."""
    points: dict[str, np.ndarray] = {}
    for name, frame in frames.items():
        keep = sound[name]
        if keep.any():
            xy = np.full((len(frame), 2), np.nan)
            xy[keep] = _lonlat(frame.iloc[np.flatnonzero(keep)])
            points[name] = xy
    centres = np.array([np.nanmedian(xy, axis=0) for xy in points.values()])
    if not len(centres) or np.isnan(centres).all():
        return []
    lon0, lat0 = np.nanmedian(centres, axis=0)
    geod = pyproj.Geod(ellps="WGS84")
    problems: list[Problem] = []
    for name, xy in points.items():
        with np.errstate(invalid="ignore"):
            _, _, distance_m = geod.inv(
                np.full(len(xy), lon0), np.full(len(xy), lat0), xy[:, 0], xy[:, 1]
            )
        distance_km = np.asarray(distance_m) / 1000.0
        placed = sound[name] & np.isfinite(distance_km)
        far = placed & (distance_km > FAR_KM)
        if not far.any():
            continue
        spec = SPEC_BY_NAME[name]
        where = {"file": _src(files.get(name)), "layer": name}
        around = f"around {lon0:.3f} E, {lat0:.3f} N"
        if far[placed].all():
            km = float(np.median(distance_km[placed]))
            msg = (
                f"the layer lies {km:,.0f} km from the other layers ({around}); check its "
                "coordinates and its CRS"
            )
            problems.append(Problem(msg, **where))
            continue
        ids = _feature_ids(frames[name], spec)
        for i in np.flatnonzero(far):
            msg = (
                f"lies {distance_km[i]:,.0f} km from the rest of the layers ({around}); "
                "correct its coordinates"
            )
            problems.append(Problem(msg, feature_id=ids[i], **where))
    return problems


def _as_id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _check_references(
    frames: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    *,
    given: Collection[str],
) -> list[Problem]:
    problems: list[Problem] = []
    for spec in SPECS:
        frame = frames.get(spec.name)
        if frame is None:
            continue
        ids = _feature_ids(frame, spec)
        for column, target in spec.references.items():
            if column not in frame.columns:
                continue
            target_spec = SPEC_BY_NAME[target]
            if target not in frames and (target in given or target_spec.mandatory):
                continue  # the target layer is missing or unreadable, reported already
            known = (
                set(frames[target][target_spec.id_column].dropna()) if target in frames else set()
            )
            for i, value in enumerate(frame[column]):
                if pd.isna(value) or str(value) == "":
                    if column in spec.required:
                        problems.append(
                            Problem(
                                f"{column} is empty",
                                file=_src(files.get(spec.name)),
                                layer=spec.name,
                                feature_id=ids[i],
                            )
                        )
                    continue
                if _as_id(value) not in known:
                    problems.append(
                        Problem(
                            f"{column} = {value!r} names no feature of layer {target}; "
                            f"fix the id or add that {target_spec.id_column}",
                            file=_src(files.get(spec.name)),
                            layer=spec.name,
                            feature_id=ids[i],
                        )
                    )
            frame[column] = [None if pd.isna(v) else _as_id(v) for v in frame[column]]
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
                    file=_src(files.get("storage_blocks")),
                    layer="storage_blocks",
                    feature_id=str(block_id),
                )
            )
    return problems


def working_crs(frames: Mapping[str, gpd.GeoDataFrame], settings: Settings) -> pyproj.CRS:
    """Return the projected metric CRS to work in: the settings' or the local UTM zone."""
    if settings.crs is not None:
        return pyproj.CRS.from_user_input(settings.crs)
    bounds = [f.to_crs(4326).total_bounds for f in frames.values() if len(f)]
    if not bounds:
        raise CRSError("the layers hold no features to place a working CRS; set [plan] crs")
    stacked = np.vstack(bounds)
    box = (stacked[:, 0].min(), stacked[:, 1].min(), stacked[:, 2].max(), stacked[:, 3].max())
    probe = gpd.GeoSeries([shapely.box(*box)], crs=4326)
    try:
        crs = probe.estimate_utm_crs() if np.isfinite(box).all() else None
    except RuntimeError:
        crs = None
    if crs is None:
        raise CRSError("no UTM zone fits these layers; set [plan] crs in geoplan.toml")
    return crs


def read_layers(path: str | Path, *, settings: Settings | None = None) -> Layers:
    """Read, validate and reproject a layer set.

    Parameters
    ----------
    path
        A folder of layer files or one GeoPackage with the contract's layer names.
    settings
        The run's settings (working CRS, ``include_personal``); defaults when omitted.

    Returns
    -------
    Layers
        Every contract layer in the working CRS; absent optional layers are empty.

    Raises
    ------
    LayerError
        With every problem found: missing layers or columns, unreadable files, a
        missing CRS, bad geometry, misplaced coordinates, duplicate or dangling ids,
        bad counts.
    """
    settings = settings or Settings()
    found, problems = find_layer_files(path)
    raw: dict[str, gpd.GeoDataFrame] = {}
    files: dict[str, Path] = {}
    for spec in SPECS:
        if spec.name not in found:
            continue
        file, inner = found[spec.name]
        frame, read_problems = _read_one(spec, file, inner)
        problems += read_problems
        if frame is not None:
            raw[spec.name] = frame
            files[spec.name] = file
    return _validate(raw, files, settings=settings, problems=problems, given=set(found))


def validate_layers(
    frames: Mapping[str, gpd.GeoDataFrame], *, settings: Settings | None = None
) -> Layers:
    """Validate and reproject a layer set held in memory, as :func:`read_layers` does.

    Parameters
    ----------
    frames
        GeoDataFrames by contract layer name, each with its CRS; not modified.
    settings
        The run's settings; defaults when omitted.

    Returns
    -------
    Layers
        Every contract layer in the working CRS (``sources`` is empty: no files).

    Raises
    ------
    LayerError
        With every problem found, as :func:`read_layers`; problems name the layer and
        the feature but no file.
    """
    settings = settings or Settings()
    unknown = sorted(set(frames) - set(LAYER_NAMES))
    problems = [
        Problem(f"not a layer of the contract; use one of {', '.join(LAYER_NAMES)}", layer=name)
        for name in unknown
    ]
    raw: dict[str, gpd.GeoDataFrame] = {}
    for spec in SPECS:
        frame = frames.get(spec.name)
        if frame is None:
            if spec.mandatory:
                problems.append(Problem("required layer missing", layer=spec.name))
            continue
        if not len(frame):
            problems += _no_features(spec, None)
            frame = _empty(spec, frame.crs or pyproj.CRS(4326))
        elif frame.crs is None:
            problems.append(Problem("has no coordinate reference system; set one", layer=spec.name))
            continue
        raw[spec.name] = frame
    return _validate(raw, {}, settings=settings, problems=problems, given=set(frames))


def _validate(
    raw: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    *,
    settings: Settings,
    problems: list[Problem],
    given: Collection[str],
) -> Layers:
    """Check every layer read, then the layer set; return it in the working CRS."""
    frames: dict[str, gpd.GeoDataFrame] = {}
    sound: dict[str, np.ndarray] = {}
    notes: list[str] = []
    surfaces = tuple(settings.catalogue.value("trench", "cost_cny_per_m"))
    for contract in SPECS:
        if contract.name not in raw:
            continue
        spec = contract
        if "surface" in spec.choices:
            spec = replace(spec, choices={**spec.choices, "surface": surfaces})
        frame = raw[spec.name]
        file = files.get(spec.name)
        column_problems = _check_columns(frame, spec, file)
        problems += column_problems
        if column_problems:
            continue
        ids = _feature_ids(frame, spec)
        frame, geometry_problems, repairs, sound[spec.name] = _fix_geometry(frame, spec, file, ids)
        location_problems = _check_location(frame, spec, file, ids, sound[spec.name])
        frame, value_problems = _check_values(frame, spec, file, ids)
        problems += geometry_problems + location_problems + value_problems
        notes += repairs
        frames[spec.name] = frame
        if location_problems:
            sound[spec.name] = np.zeros(len(frame), dtype=bool)
    problems += _check_references(frames, files, given=given)
    problems += _check_far(frames, files, sound)
    if problems:
        crs_only = all("coordinate reference system" in p.message for p in problems)
        raise (CRSError if crs_only else LayerError)(problems)
    if not settings.include_personal:
        frames, redactions = redact_frames(
            frames, id_columns={spec.name: spec.id_column for spec in SPECS}
        )
        for redaction in redactions:
            file = files.get(redaction.layer)
            where = (
                f"layer {redaction.layer}" if file is None else f"{file}, layer {redaction.layer}"
            )
            notes += redaction.lines(where)
    crs = working_crs(frames, settings)
    out = {}
    for spec in SPECS:
        frame = frames.get(spec.name)
        out[spec.name] = (
            _empty(spec, crs)
            if frame is None
            else frame.to_crs(crs).sort_values(spec.id_column, kind="stable").reset_index(drop=True)
        )
    for note in notes:  # returned in Layers.warnings too; the command line prints those
        logger.info(note)
    return Layers(
        frames=MappingProxyType(out),
        crs=crs,
        sources=MappingProxyType({k: str(v) for k, v in files.items()}),
        warnings=tuple(notes),
    )


def summarize(layers: Layers) -> dict[str, float | int]:
    """Return the headline figures of a layer set (what ``geoplan validate`` prints)."""
    blocks = layers["storage_blocks"]
    supplies = layers["supply_points"]
    applicants = (
        blocks["applicants"].fillna(blocks["units"]) if "applicants" in blocks else blocks["units"]
    )
    compounds = layers["compounds"]
    return {
        "compounds": len(compounds),
        "households": int(compounds["households"].fillna(0).sum())
        if "households" in compounds
        else 0,
        "buildings": len(layers["buildings"]),
        "storage_blocks": len(blocks),
        "rooms": int(blocks["units"].sum()),
        "applicants": int(applicants.sum()),
        "flying_wires": len(layers["flying_wires"]),
        "supply_points": len(supplies),
        "supply_capacity_kva": float(supplies["capacity_kva"].sum()),
        "feeders": len(layers["feeders"]),
        "corridor_km": float(layers["corridors"].length.sum() / 1000.0),
        "obstacles": len(layers["obstacles"]),
    }
