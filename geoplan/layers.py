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

import contextlib
import difflib
import logging
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyproj
import shapely
from pandas.api.types import infer_dtype, is_object_dtype

from ._checks import (
    LONLAT,
    FeatureIds,
    check_far,
    check_location,
    check_references,
    check_values,
    fix_geometry,
    outline_bounds,
    src,
    start_lonlat,
)
from ._memory import large_stage
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
#: Layers read at once (GDAL, Arrow and GEOS let go of Python's lock while they work).
_READERS = 2
#: Formats whose GDAL drivers read two files (or layers) at once safely.
_READ_AT_ONCE = (".gpkg", ".fgb", ".geojson", ".json", ".shp")


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
        choices={"status": STATUSES, "area_class": ()},  # ()s: set from the settings
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
        choices={"surface": ()},  # set from the settings
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
#: Columns whose choices are the entries of a catalogue table: (section, key) by column.
SETTINGS_CHOICES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"surface": ("trench", "cost_cny_per_m"), "area_class": ("supply", "radius_m")}
)


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


def _short(exc: Exception, file: Path | None = None) -> str:
    """Return the first line of an error, without GDAL's repetition of the file name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _NOT_RECOGNIZED in text:
        return "not a format GDAL reads: empty, cut short, or not geodata"
    if file is not None:
        text = text.replace(f"'{file}' ", "").replace(f"{file}: ", "").replace(str(file), "it")
    return text[:200]


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
    return [Problem(msg, file=src(file), layer=spec.name)]


def _no_features(spec: LayerSpec, file: Path | None) -> list[Problem]:
    """Report a layer given without features when the contract needs some."""
    where = {"file": src(file), "layer": spec.name}
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
    where = {"file": src(file), "layer": spec.name}
    if file.suffix.lower() == ".shp" and inner is None:
        problems = _shapefile_parts(spec, file)
        if problems:
            return None, problems
    try:
        frame = _read_frame(file, inner)
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
        return (None if problems else _empty(spec, frame.crs or LONLAT)), problems
    if frame.crs is None:
        return None, [
            Problem(
                "has no coordinate reference system; declare one (e.g. a .prj file "
                "or EPSG:4326 in the GeoPackage)",
                **where,
            )
        ]
    return frame, []


def _read_frame(file: Path, inner: str | None) -> pd.DataFrame:
    """Read one layer as pyogrio reads it, through Arrow where that gives the same frame.

    Arrow reads a large layer several times faster, but hands some columns over
    differently: dates as date objects, true/false with gaps as objects rather than
    numbers. Those columns, and only those, are read again the plain way, without the
    geometries. Arrow also reads a point with one NaN coordinate (from a FlatGeobuf) as
    an empty point, and fails differently on a broken file: such a layer is read again
    whole, the plain way. So what is read, and what a failure says, never depends on
    Arrow.

    Arrow's dates cannot be converted to the plain reader's: where GDAL holds an
    impossible date (30 February) Arrow moves it to the next month, where the plain
    reader refuses the layer; and Arrow gives 1970-01-01 for a GeoPackage date it cannot
    parse, where the plain reader gives a gap.

    Binary columns (the geometries' WKB) stay Arrow's until pyogrio parses them, so
    that pandas does not look for repeats among a million WKB strings; a binary
    attribute column comes back as Arrow's, and is read again the plain way.
    """
    try:
        frame = pyogrio.read_dataframe(
            file, layer=inner, use_arrow=True, arrow_to_pandas_kwargs=_ARROW_TO_PANDAS
        )
    except Exception:  # read again below, to fail as the plain reader does
        frame = None
    if isinstance(frame, gpd.GeoDataFrame) and _geometries_as_plainly_read(frame):
        columns = _columns_read_otherwise(frame)
        if not columns:
            return frame
        with contextlib.suppress(Exception):  # read again below, to fail as plainly read
            plain = pyogrio.read_dataframe(file, layer=inner, columns=columns, read_geometry=False)
            for name in columns:
                frame[name] = plain[name].set_axis(frame.index)  # refuses another length
            return frame
    return pyogrio.read_dataframe(file, layer=inner)


def _binary_as_arrow(kind: pa.DataType) -> pd.ArrowDtype | None:
    """Keep binary columns Arrow's when Arrow hands a table to pandas (see ``_read_frame``)."""
    return pd.ArrowDtype(kind) if kind == pa.binary() else None


_ARROW_TO_PANDAS: Mapping[str, object] = MappingProxyType({"types_mapper": _binary_as_arrow})


def _columns_read_otherwise(frame: gpd.GeoDataFrame) -> list[str]:
    """Return the columns that Arrow may have handed over otherwise than the plain reader.

    That is, every column other than numbers and text (dates, true/false with gaps, a
    column of gaps only: it may be true/false, which the plain reader gives as numbers).
    """
    columns = []
    for name, dtype in frame.dtypes.items():
        if name == frame.geometry.name or (isinstance(dtype, np.dtype) and dtype.kind in "biuf"):
            continue
        # text with at least one value (pandas infers a column of gaps only as "empty")
        values = frame[name]
        if not is_object_dtype(dtype) or infer_dtype(values, skipna=True) != "string":
            columns.append(str(name))
    return columns


def _geometries_as_plainly_read(frame: gpd.GeoDataFrame) -> bool:
    """Whether the geometries of a layer read through Arrow are surely as read plainly.

    That is, each feature has a geometry with finite coordinates (a missing, empty or NaN
    one may have come through Arrow otherwise).
    """
    geoms = np.asarray(frame.geometry.array, dtype=object)
    if (shapely.is_missing(geoms) | shapely.is_empty(geoms)).any():
        return False
    deep = shapely.has_z(geoms)
    return bool(
        np.isfinite(shapely.get_coordinates(geoms[~deep])).all()
        and np.isfinite(shapely.get_coordinates(geoms[deep], include_z=True)).all()
    )


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
                    file=src(file),
                    layer=spec.name,
                )
            )
    return problems


def _lonlat_bounds(frame: gpd.GeoDataFrame, outline: np.ndarray | None) -> np.ndarray:
    """Return the layer's bounds in lon/lat, from ``outline_bounds`` where it gave them."""
    return frame.to_crs(LONLAT).total_bounds if outline is None else outline


def _utm_zone(bounds: list[np.ndarray]) -> pyproj.CRS:
    """Return the UTM zone of the middle of the layers' lon/lat bounds."""
    if not bounds:
        raise CRSError("the layers hold no features to place a working CRS; set [plan] crs")
    stacked = np.vstack(bounds)
    box = (stacked[:, 0].min(), stacked[:, 1].min(), stacked[:, 2].max(), stacked[:, 3].max())
    probe = gpd.GeoSeries([shapely.box(*box)], crs=LONLAT)
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
    with large_stage():
        return _read_and_validate(path, settings)


def _read_and_validate(path: str | Path, settings: Settings) -> Layers:
    """Do what :func:`read_layers` says."""
    found, problems = find_layer_files(path)
    wanted = [spec for spec in SPECS if spec.name in found]
    # corridors first: the largest layer of a city, read while the others are
    biggest_first = sorted(wanted, key=lambda spec: spec.name != "corridors")
    at_once = all(file.suffix.lower() in _READ_AT_ONCE for file, _ in found.values())
    readers = _READERS if at_once else 1
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=readers) as pool:
        warnings.simplefilter("ignore")  # GDAL's warnings; what matters is a problem below
        reading = {
            spec.name: pool.submit(_read_one, spec, *found[spec.name]) for spec in biggest_first
        }
        read = {name: future.result() for name, future in reading.items()}
    raw: dict[str, gpd.GeoDataFrame] = {}
    files: dict[str, Path] = {}
    for spec in wanted:
        frame, read_problems = read[spec.name]
        problems += read_problems
        if frame is not None:
            raw[spec.name] = frame
            files[spec.name] = found[spec.name][0]
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
            frame = _empty(spec, frame.crs or LONLAT)
        elif frame.crs is None:
            problems.append(Problem("has no coordinate reference system; set one", layer=spec.name))
            continue
        raw[spec.name] = frame
    with large_stage():
        return _validate(raw, {}, settings=settings, problems=problems, given=set(frames))


@dataclass
class _Checked:
    """The layers checked one by one, and what the checks of the layer set need of them."""

    frames: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ids: dict[str, FeatureIds] = field(default_factory=dict)
    #: Which features have a sound geometry, in a place that fits the layer's CRS.
    sound: dict[str, np.ndarray] = field(default_factory=dict)
    #: What waits for a lon/lat point on each sound feature.
    lonlat: dict[str, Callable[[], np.ndarray]] = field(default_factory=dict)
    #: The lon/lat bounds of each layer with features (see ``outline_bounds``).
    outlines: dict[str, Future[np.ndarray | None]] = field(default_factory=dict)


def _check_layers(
    helper: Executor,
    raw: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    *,
    settings: Settings,
) -> _Checked:
    """Check each layer: columns, geometry, location, values; reproject on ``helper``.

    The helper places every layer's features before it bounds the layers: the checks of
    location wait for the points, only the working CRS for the bounds.
    """
    checked = _Checked()
    found: dict[str, list[Problem]] = {}  # by layer: columns, or geometry, location, values
    values_found: dict[str, list[Problem]] = {}
    outlined: dict[str, tuple[np.ndarray, pyproj.CRS]] = {}  # the geometries to bound, by layer
    from_settings = {
        column: tuple(map(str, settings.catalogue.value(*figure)))
        for column, figure in SETTINGS_CHOICES.items()
    }
    for contract in SPECS:
        if contract.name not in raw:
            continue
        spec = replace(
            contract,
            choices={c: from_settings.get(c, allowed) for c, allowed in contract.choices.items()},
        )
        frame = raw[spec.name]
        file = files.get(spec.name)
        found[spec.name] = _check_columns(frame, spec, file)
        if found[spec.name]:
            continue
        ids = checked.ids[spec.name] = FeatureIds(frame, spec)
        frame, found[spec.name], repairs, sound = fix_geometry(frame, spec, file, ids)
        checked.sound[spec.name] = sound
        checked.lonlat[spec.name] = start_lonlat(helper, frame, sound)
        if settings.crs is None and len(frame):
            outlined[spec.name] = (np.asarray(frame.geometry.array), frame.crs)
        frame, values_found[spec.name] = check_values(frame, spec, file, ids)
        checked.notes += repairs
        checked.frames[spec.name] = frame
    for name, (geoms, crs) in outlined.items():  # queued after every layer's points
        checked.outlines[name] = helper.submit(outline_bounds, geoms, crs)
    for name, frame in checked.frames.items():  # once the helper has had time to place them
        location_problems = check_location(
            frame,
            SPEC_BY_NAME[name],
            files.get(name),
            checked.ids[name],
            sound=checked.sound[name],
            lonlat=checked.lonlat[name],
        )
        if location_problems:
            checked.sound[name] = np.zeros(len(frame), dtype=bool)
        found[name] += location_problems + values_found[name]
    checked.problems = [problem for name in found for problem in found[name]]
    return checked


def _validate(
    raw: Mapping[str, gpd.GeoDataFrame],
    files: Mapping[str, Path],
    *,
    settings: Settings,
    problems: list[Problem],
    given: Collection[str],
) -> Layers:
    """Check every layer read, then the layer set; return it in the working CRS.

    The reprojections to lon/lat (a point on every feature, the bounds of every layer)
    run on a helper thread while the tables are checked: GEOS and PROJ let go of
    Python's lock, so on two cores they cost little time.
    """
    with ThreadPoolExecutor(max_workers=1) as helper:
        try:
            checked = _check_layers(helper, raw, files, settings=settings)
            frames, notes, ids = checked.frames, checked.notes, checked.ids
            problems += checked.problems
            problems += check_references(frames, files, specs=SPECS, given=given, ids=ids)
            problems += check_far(frames, files, checked.sound, checked.lonlat, ids)
            if problems:
                crs_only = all("coordinate reference system" in p.message for p in problems)
                raise (CRSError if crs_only else LayerError)(problems)
            if not settings.include_personal:
                frames, redactions = redact_frames(
                    frames, id_columns={spec.name: spec.id_column for spec in SPECS}
                )
                for redaction in redactions:
                    file = files.get(redaction.layer)
                    layer = f"layer {redaction.layer}"
                    notes += redaction.lines(layer if file is None else f"{file}, {layer}")
            # sorted while the helper may still be bounding the layers for the UTM zone
            by_id = {
                spec.name: _sorted_by(frames[spec.name], spec.id_column)
                for spec in SPECS
                if spec.name in frames
            }
            crs = (
                pyproj.CRS.from_user_input(settings.crs)
                if settings.crs is not None
                else _utm_zone(
                    [
                        _lonlat_bounds(frame, checked.outlines[name].result())
                        for name, frame in frames.items()
                        if len(frame)
                    ]
                )
            )
        finally:
            helper.shutdown(cancel_futures=True)
    out = {}
    for spec in SPECS:
        frame = by_id.get(spec.name)
        out[spec.name] = _empty(spec, crs) if frame is None else frame.to_crs(crs)
    for note in notes:  # returned in Layers.warnings, which the command line prints
        logger.debug(note)
    return Layers(
        frames=MappingProxyType(out),
        crs=crs,
        sources=MappingProxyType({k: str(v) for k, v in files.items()}),
        warnings=tuple(notes),
    )


def _sorted_by(frame: gpd.GeoDataFrame, column: str) -> gpd.GeoDataFrame:
    """Return the layer in the (stable) order of a column, indexed 0, 1, 2 ...

    A layer whose ids come in order already (as exported from most GIS) is not sorted
    again: a stable sort would leave it as it is.
    """
    if frame[column].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values(column, kind="stable").reset_index(drop=True)


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
