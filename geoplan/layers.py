"""The input contract: read a layer set, validate it once, reproject it to metres.

A layer set is a folder of files named after the layers (``compounds.geojson``,
``storage_blocks.gpkg``, ``corridors.shp`` ... anything GDAL reads) or one GeoPackage
whose layers carry those names. Every problem found is collected before one
:class:`~geoplan.errors.LayerError` is raised, each naming the file, the layer, the
feature id and what to fix.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Collection, Iterator, Mapping
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
from .settings import Settings

logger = logging.getLogger(__name__)

STATUSES = ("surveyed", "applied", "planned", "under_construction", "energized")
WIRE_STATUSES = ("present", "removed")
SUPPLY_KINDS = ("transformer", "branch_box", "pole")
FEEDER_KINDS = ("overhead", "cable")
SHAPEFILE_NAME_LENGTH = 10
READABLE_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".gml", ".kml", ".sqlite")


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
        choices={"status": STATUSES},
    ),
    LayerSpec(
        "buildings",
        "Polygon",
        "building_id",
        ("building_id", "compound_id", "households"),
        counts=("households", "floors"),
        references={"compound_id": "compounds"},
    ),
    LayerSpec(
        "storage_blocks",
        "Polygon",
        "block_id",
        ("block_id", "compound_id", "units"),
        mandatory=True,
        counts=("units", "applicants"),
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
        choices={"kind": SUPPLY_KINDS},
    ),
    LayerSpec(
        "feeders",
        "LineString",
        "feeder_id",
        ("feeder_id",),
        amounts=("spare_kva",),
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
            names = ", ".join(p.name for p in matches)
            problems.append(
                Problem(
                    f"several files for one layer ({names}); keep one",
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


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _feature_ids(frame: pd.DataFrame, spec: LayerSpec) -> list[str]:
    if spec.id_column in frame.columns:
        return [
            f"row {i + 1}" if pd.isna(v) or str(v).strip() == "" else _as_id(v)
            for i, v in enumerate(frame[spec.id_column])
        ]
    return [f"row {i + 1}" for i in range(len(frame))]


def _read_one(
    spec: LayerSpec, file: Path, inner: str | None
) -> tuple[gpd.GeoDataFrame | None, list[Problem]]:
    where = {"file": str(file), "layer": spec.name}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pyogrio.read_dataframe(file, layer=inner)
    except UnicodeDecodeError:
        return None, [Problem("is not UTF-8 text; save it as UTF-8", **where)]
    except Exception as exc:
        return None, [Problem(f"cannot read ({_short(exc)}); check the file", **where)]
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return None, [Problem(f"has no geometry; a {spec.geometry} layer is expected", **where)]
    if file.suffix.lower() == ".shp":
        frame = _restore_shapefile_names(frame, spec)
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


def _check_columns(frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path) -> list[Problem]:
    problems = []
    present = [c for c in frame.columns if c != frame.geometry.name]
    for column in spec.required:
        if column not in frame.columns:
            near = difflib.get_close_matches(column, present, n=1, cutoff=0.6)
            hint = f" (found {near[0]!r}: rename it to {column!r})" if near else ""
            problems.append(
                Problem(
                    f"required column {column!r} is missing{hint}",
                    file=str(file),
                    layer=spec.name,
                )
            )
    return problems


def _fix_geometry(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path, ids: list[str]
) -> tuple[gpd.GeoDataFrame, list[Problem], list[str]]:
    problems: list[Problem] = []
    notes: list[str] = []
    geoms = np.asarray(frame.geometry.array, dtype=object).copy()
    multi = f"Multi{spec.geometry}"
    for i, raw in enumerate(geoms):
        geom = raw
        where = {"file": str(file), "layer": spec.name, "feature_id": ids[i]}
        if geom is None or geom.is_empty:
            problems.append(Problem("geometry is empty; draw it or delete the feature", **where))
            continue
        if shapely.has_z(geom):
            geom = shapely.force_2d(geom)
            notes.append(f"{file}, layer {spec.name}, feature {ids[i]}: dropped Z values")
        if geom.geom_type == multi and len(geom.geoms) == 1:
            geom = geom.geoms[0]
            notes.append(
                f"{file}, layer {spec.name}, feature {ids[i]}: one-part {multi} read as "
                f"{spec.geometry}"
            )
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
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame, problems, notes


def _check_values(
    frame: gpd.GeoDataFrame, spec: LayerSpec, file: Path, ids: list[str]
) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    problems: list[Problem] = []
    frame = frame.copy()

    def at(i: int) -> dict[str, str]:
        return {"file": str(file), "layer": spec.name, "feature_id": ids[i]}

    id_values = frame[spec.id_column]
    for i, value in enumerate(id_values):
        if pd.isna(value) or str(value).strip() == "":
            problems.append(
                Problem(f"{spec.id_column} is empty; give every feature an id", **at(i))
            )
    frame[spec.id_column] = [None if pd.isna(v) else _as_id(v) for v in id_values]
    duplicated = frame[spec.id_column].duplicated(keep="first") & frame[spec.id_column].notna()
    for i in np.flatnonzero(duplicated.to_numpy()):
        problems.append(Problem(f"{spec.id_column} is used twice; ids must be unique", **at(i)))

    for column in spec.counts + spec.amounts + spec.positive:
        if column not in frame.columns:
            continue
        numeric = pd.to_numeric(frame[column], errors="coerce")
        for i, (raw, num) in enumerate(zip(frame[column], numeric, strict=True)):
            if pd.isna(raw):
                if column in spec.required or column in spec.positive:
                    problems.append(Problem(f"{column} is empty; give a number", **at(i)))
            elif pd.isna(num) or not np.isfinite(num):
                problems.append(Problem(f"{column} = {raw!r} is not a number", **at(i)))
            elif column in spec.positive and num <= 0:
                problems.append(Problem(f"{column} = {raw} must be greater than zero", **at(i)))
            elif num < 0:
                problems.append(Problem(f"{column} = {raw} must not be negative", **at(i)))
            elif column in spec.counts and not float(num).is_integer():
                problems.append(Problem(f"{column} = {raw} must be a whole number", **at(i)))
        if column in spec.counts:
            # negative and fractional counts, reported above, become NA
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
                                file=str(files[spec.name]),
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
                            file=str(files[spec.name]),
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
                    file=str(files["storage_blocks"]),
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
    crs = probe.estimate_utm_crs()
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
        The run's settings (working CRS); defaults when omitted.

    Returns
    -------
    Layers
        Every contract layer in the working CRS; absent optional layers are empty.

    Raises
    ------
    LayerError
        With every problem found: missing layers or columns, unreadable files, a
        missing CRS, bad geometry, duplicate or dangling ids, bad counts.
    """
    settings = settings or Settings()
    found, problems = find_layer_files(path)
    frames: dict[str, gpd.GeoDataFrame] = {}
    files: dict[str, Path] = {}
    notes: list[str] = []
    surfaces = tuple(settings.catalogue.value("trench", "cost_cny_per_m"))
    for contract in SPECS:
        if contract.name not in found:
            continue
        spec = contract
        if "surface" in spec.choices:
            spec = replace(spec, choices={**spec.choices, "surface": surfaces})
        file, inner = found[spec.name]
        frame, read_problems = _read_one(spec, file, inner)
        problems += read_problems
        if frame is None:
            continue
        column_problems = _check_columns(frame, spec, file)
        problems += column_problems
        if column_problems:
            continue
        ids = _feature_ids(frame, spec)
        frame, geometry_problems, repairs = _fix_geometry(frame, spec, file, ids)
        frame, value_problems = _check_values(frame, spec, file, ids)
        problems += geometry_problems + value_problems
        notes += repairs
        frames[spec.name] = frame
        files[spec.name] = file
    problems += _check_references(frames, files, given=found)
    if problems:
        crs_only = all("coordinate reference system" in p.message for p in problems)
        raise (CRSError if crs_only else LayerError)(problems)
    crs = working_crs(frames, settings)
    out = {}
    for spec in SPECS:
        frame = frames.get(spec.name)
        out[spec.name] = (
            _empty(spec, crs)
            if frame is None
            else frame.to_crs(crs).sort_values(spec.id_column, kind="stable").reset_index(drop=True)
        )
    for note in notes:
        logger.warning(note)
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
