"""A deterministic, synthetic sample district in Haibowan, Wuhai.

The sample plays out the field story geoplan was written for: 80-odd old residential
compounds (小区) on a city grid, each with rows of apartment buildings and rows of
storage-room sheds (凉房) behind them, flying wires (飞线) strung from windows to sheds,
and the existing low-voltage network (transformers, branch boxes, overhead lines) the
new underground cables will be fed from. A few compounds are named after the branch's
progress report: 团结小区 (the pilot, under construction), 法院住宅小区 (done, 11
households), 园林楼 and 机械楼 (two buildings, 120 households, boxes installed) and
建新小区 (384 households, still being surveyed).

Everything is laid out in a metric CRS (UTM zone 48N) and converted to EPSG:4326 at the
end. The only source of randomness is ``numpy.random.default_rng(seed)`` and every loop
runs in a defined order, so the same seed gives the same layers and byte-identical files.
The data are synthetic: they are not a survey.

Layout of a compound, in local metres from its south-west corner (y grows north)::

    y = h - 4    north green strip ──────────────────────────────
                 ...
    band k + 29  walkway B (only north of a storage block)
    band k + 20  storage block, 4 m deep, rooms 3 m wide
    band k + 16  walkway A (north of the building)
    band k       apartment building, 12 m deep
    y = 6        internal south road
    y = 0        compound edge; the central road leaves through the gate to the street

Bands are ``BAND_PITCH_M`` apart; a compound has one column of buildings west of its
central road, or two columns, one on each side.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box, mapping
from shapely.geometry.polygon import orient

DEFAULT_SEED = 20261126
METRIC_CRS = "EPSG:32648"
OUTPUT_CRS = "EPSG:4326"
CENTRE_LON_LAT = (106.82, 39.66)
COORDINATE_DECIMALS = 7

# City grid: streets every CELL_WIDTH_M (east-west) and CELL_HEIGHT_M (north-south).
GRID_COLUMNS = 12
GRID_ROWS = 10
CELL_WIDTH_M = 290.0
CELL_HEIGHT_M = 300.0
RESIDENTIAL_CELLS = 82  # the other cells hold schools, markets, offices, parks
STREET_SETBACK_M = (15.0, 25.0)  # street centre line to the compound's south edge
CELL_MARGIN_M = 15.0  # street centre line to the compound's west/east/north edges
OUTLYING_OFFSET_M = 700.0  # the outlying compound lies this far east of the grid

# Compound interior (local metres from the south-west corner).
EDGE_CLEARANCE_M = 8.0  # compound edge to buildings and storage blocks
ROAD_CLEARANCE_M = 6.0  # central road centre line to buildings and storage blocks
GREEN_INSET_M = 4.0  # green strips run this far inside the compound edge
SOUTH_ROAD_Y_M = 6.0
FIRST_BAND_Y_M = 14.0
BAND_PITCH_M = 34.0
BUILDING_DEPTH_M = 12.0
WALKWAY_A_OFFSET_M = 16.0
BLOCK_OFFSET_M = 20.0
BLOCK_DEPTH_M = 4.0
WALKWAY_B_OFFSET_M = 29.0
ROOM_WIDTH_M = 3.0
STAIRWELL_LENGTH_M = 13.5  # building length per stairwell (two flats a floor)
NEAR_MISS_GAP_M = 0.3
TWO_COLUMN_WIDTH_M = (180.0, 250.0)
ONE_COLUMN_WIDTH_M = (100.0, 170.0)
MIN_COMPOUND_SIDE_M = 100.0
MAX_COMPOUND_SIDE_M = 250.0

UNITS_RANGE = (6, 40)  # rooms in a storage block
UNITS_MODE = 16  # most rows are short; about one in ten has more than 30 rooms
TARGET_APPLICANTS = (735, 795)  # applicants in compounds not yet energized
PILOT_APPLICANT_SHARE = 0.6  # share of rooms whose owners applied in the pilot compound
COMPOUND_STATUSES = ("surveyed", "applied", "planned")
COMPOUND_STATUS_P = (0.45, 0.45, 0.10)

# Supply network.
COMPOUNDS_PER_TRANSFORMER = 3
TRANSFORMER_SPAN_CELLS = 2
TRANSFORMER_KVA = (200.0, 250.0, 315.0, 400.0, 500.0, 630.0)
TRANSFORMER_KVA_P = (0.08, 0.14, 0.26, 0.24, 0.18, 0.10)
TRANSFORMER_LOAD_FRACTION = (0.40, 0.90)
NEARLY_FULL_TRANSFORMERS = 2
NEARLY_FULL_FRACTION = (0.91, 0.97)
TRANSFORMER_CIRCUITS = 8
BRANCH_BOX_KVA = 100.0
BRANCH_BOX_CIRCUITS = (4, 6)
BRANCH_BOX_FROM_TRANSFORMER_M = 160.0  # host compounds deeper than this get a branch box
POLE_KVA = 50.0
POLE_CIRCUITS = 2
POLE_SPACING_M = 40.0
OVERHEAD_FEEDERS = 6
OVERHEAD_OFFSET_M = -10.0  # overhead lines run on the far side of the street
CABLE_OFFSET_M = 5.0  # cable feeders run under the pavement on the compound side
TRANSFORMER_OFFSET_M = (6.0, 9.0)  # east of the gate road, north of the street

# Flying wires.
WIRE_HOUSEHOLDS = (1, 2, 3, 4)
WIRE_HOUSEHOLDS_P = (0.4, 0.3, 0.2, 0.1)
CROSS_ROAD_WIRE_WEIGHT = 0.12
WIRE_SPREAD_M = 10.0
WIRE_NULL_HEIGHT_P = 0.05
WIRE_INSULATED_P = 0.6
SURVEY_START = dt.date(2026, 3, 2)
COURT_SURVEY_START = dt.date(2026, 1, 5)

DISALLOWED_GREEN_STRIPS = 6
THROUGH_WALKWAY_COMPOUNDS = 5
NEAR_MISS_COMPOUNDS = 5
OBSTACLE_KINDS = (
    ("tree_protection", "古树保护区"),
    ("tree_protection", "古树保护区"),
    ("tree_protection", "古树保护区"),
    ("tree_protection", "古树保护区"),
    ("gas_pipe_zone", "燃气管道保护区"),
    ("gas_pipe_zone", "燃气管道保护区"),
    ("heating_pipe_zone", "供热管沟"),
    ("pavilion", "凉亭"),
    ("pavilion", "凉亭"),
)

LAYER_COLUMNS: dict[str, tuple[str, ...]] = {
    "compounds": ("compound_id", "name", "name_en", "households", "status", "area_class"),
    "buildings": ("building_id", "compound_id", "name", "households", "floors"),
    "storage_blocks": ("block_id", "compound_id", "units", "applicants", "status"),
    "supply_points": (
        "supply_id",
        "kind",
        "name",
        "capacity_kva",
        "load_kva",
        "max_circuits",
    ),
    "feeders": ("feeder_id", "supply_id", "kind", "spare_kva"),
    "corridors": ("corridor_id", "kind", "surface", "allowed", "name"),
    "flying_wires": (
        "wire_id",
        "compound_id",
        "from_building_id",
        "to_block_id",
        "households",
        "height_m",
        "insulated",
        "surveyed_on",
        "status",
    ),
    "obstacles": ("obstacle_id", "kind", "name"),
}

# Names. Streets: east-west from south to north, north-south from west to east.
EAST_WEST_STREETS = (
    "迎宾街",
    "人民街",
    "育才街",
    "海达街",
    "卫生街",
    "林荫街",
    "公园街",
    "民族街",
    "团结街",
    "黄河街",
    "新华街",
)
NORTH_SOUTH_STREETS = (
    "滨河大道",
    "人民路",
    "海拉路",
    "巴音路",
    "千里山路",
    "甘德尔路",
    "狮城路",
    "光明路",
    "乌海路",
    "胜利路",
    "矿区路",
    "桌子山路",
    "东环路",
)
OUTLYING_ROAD = "乌兰淖尔路"

TUANJIE = ("团结小区", "Tuanjie Compound")
COURT = ("法院住宅小区", "Court Residential Compound")
YUANLIN = ("园林楼", "Yuanlin Building")
JIXIE = ("机械楼", "Jixie Building")
JIANXIN = ("建新小区", "Jianxin Compound")
OUTLYING = ("千里山矿工新村", "Qianlishan Miners' Village")

_PLAIN_NAMES = (
    ("滨河", "Binhe"),
    ("电力", "Dianli"),
    ("新华", "Xinhua"),
    ("人民", "Renmin"),
    ("胜利", "Shengli"),
    ("光明", "Guangming"),
    ("幸福", "Xingfu"),
    ("和平", "Heping"),
    ("友谊", "Youyi"),
    ("建设", "Jianshe"),
    ("东风", "Dongfeng"),
    ("红旗", "Hongqi"),
    ("向阳", "Xiangyang"),
    ("朝阳", "Chaoyang"),
    ("育才", "Yucai"),
    ("铁路", "Tielu"),
    ("邮电", "Youdian"),
    ("黄河", "Huanghe"),
    ("民族", "Minzu"),
    ("公园", "Gongyuan"),
    ("迎宾", "Yingbin"),
    ("安居", "Anju"),
    ("康乐", "Kangle"),
    ("富民", "Fumin"),
    ("兴业", "Xingye"),
    ("金桥", "Jinqiao"),
    ("银河", "Yinhe"),
    ("绿洲", "Lüzhou"),
    ("雪莲", "Xuelian"),
    ("紫荆", "Zijing"),
    ("丽景", "Lijing"),
    ("明珠", "Mingzhu"),
    ("佳和", "Jiahe"),
    ("阳光", "Yangguang"),
    ("长青", "Changqing"),
    ("长城", "Changcheng"),
    ("振兴", "Zhenxing"),
    ("文化", "Wenhua"),
    ("新星", "Xinxing"),
    ("五一", "Wuyi"),
    ("前进", "Qianjin"),
    ("工农", "Gongnong"),
    ("林荫", "Linyin"),
    ("卫生", "Weisheng"),
    ("海达", "Haida"),
    ("金地", "Jindi"),
    ("滨湖", "Binhu"),
    ("北苑", "Beiyuan"),
    ("东升", "Dongsheng"),
    ("百合", "Baihe"),
)
_HAIBOWAN_NAMES = (
    ("春晖", "Chunhui"),
    ("秋实", "Qiushi"),
    ("翠柳", "Cuiliu"),
    ("桃园", "Taoyuan"),
    ("杏林", "Xinglin"),
    ("松鹤", "Songhe"),
    ("怡和", "Yihe"),
    ("锦绣", "Jinxiu"),
)
_BUREAU_NAMES = (
    ("粮食局", "Grain Bureau"),
    ("供销社", "Supply Cooperative"),
    ("教育局", "Education Bureau"),
    ("卫生局", "Health Bureau"),
    ("税务局", "Tax Bureau"),
    ("交通局", "Transport Bureau"),
    ("水利局", "Water Bureau"),
    ("商业局", "Commerce Bureau"),
)
_WORKS_NAMES = (
    ("化工厂", "Chemical Plant"),
    ("电厂", "Power Plant"),
    ("焦化厂", "Coking Plant"),
    ("机务段", "Locomotive Depot"),
)
_CHINESE_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class _BuildingSpec:
    """An apartment building in a compound's band grid."""

    col: int
    band: int
    floors: int
    stairwells: int

    @property
    def households(self) -> int:
        """Households: two flats a floor per stairwell."""
        return self.floors * 2 * self.stairwells

    @property
    def length_m(self) -> float:
        """Length of the building along its row."""
        return self.stairwells * STAIRWELL_LENGTH_M + 2.0


@dataclass(frozen=True)
class _BlockSpec:
    """A row of storage rooms in the gap north of band ``band``."""

    col: int
    band: int
    units: int

    @property
    def length_m(self) -> float:
        """Length of the row of rooms."""
        return self.units * ROOM_WIDTH_M


@dataclass
class _Compound:
    """One compound: what it is, where it is and what is in it (metric CRS)."""

    name: str
    name_en: str
    status: str
    area_class: str
    width_m: float
    height_m: float
    n_cols: int
    buildings: list[_BuildingSpec]
    blocks: list[_BlockSpec]
    row: int  # grid row of the street the gate opens on
    col: float  # grid column (fractional for the outlying compound)
    x0_m: float = 0.0
    y0_m: float = 0.0
    street_y_m: float = 0.0
    road_surface: str = "concrete"
    green_surface: str = "lawn"
    through_walkway: bool = False
    near_miss: bool = False
    survey_start: dt.date = SURVEY_START
    compound_id: str = ""
    building_ids: list[str] = field(default_factory=list)
    block_ids: list[str] = field(default_factory=list)

    @property
    def road_x_m(self) -> float:
        """Local x of the central road."""
        if self.n_cols == 2:
            return self.width_m / 2.0
        return self.width_m - EDGE_CLEARANCE_M

    @property
    def gate_x_m(self) -> float:
        """Absolute x where the central road meets the street."""
        return self.x0_m + self.road_x_m

    @property
    def households(self) -> int:
        """Total households of the compound."""
        return sum(b.households for b in self.buildings)

    def polygon(self) -> Polygon:
        """Return the compound outline."""
        return box(self.x0_m, self.y0_m, self.x0_m + self.width_m, self.y0_m + self.height_m)

    def local_rect(
        self, col: int, band: int, y_offset_m: float, depth_m: float, length_m: float
    ) -> Rect:
        """Return the absolute rectangle of an object in a band, flush with the road side."""
        road_x = self.road_x_m
        if self.n_cols == 2 and col == 1:
            x0, x1 = road_x + ROAD_CLEARANCE_M, road_x + ROAD_CLEARANCE_M + length_m
        else:
            x0, x1 = road_x - ROAD_CLEARANCE_M - length_m, road_x - ROAD_CLEARANCE_M
        y0 = FIRST_BAND_Y_M + band * BAND_PITCH_M + y_offset_m
        return (self.x0_m + x0, self.y0_m + y0, self.x0_m + x1, self.y0_m + y0 + depth_m)

    def building_rect(self, spec: _BuildingSpec) -> Rect:
        """Return the absolute footprint of a building."""
        return self.local_rect(spec.col, spec.band, 0.0, BUILDING_DEPTH_M, spec.length_m)

    def block_rect(self, spec: _BlockSpec) -> Rect:
        """Return the absolute footprint of a storage block."""
        return self.local_rect(spec.col, spec.band, BLOCK_OFFSET_M, BLOCK_DEPTH_M, spec.length_m)


# --------------------------------------------------------------------------- names


def _generic_names() -> list[tuple[str, str]]:
    """Return the pool of ordinary compound names with their aliases, in a fixed order."""
    names = [(f"{zh}小区", f"{en} Compound") for zh, en in _PLAIN_NAMES]
    names += [(f"海勃湾{zh}小区", f"Haibowan {en} Compound") for zh, en in _HAIBOWAN_NAMES]
    names += [(f"{zh}家属院", f"{en} Staff Compound") for zh, en in _BUREAU_NAMES]
    names += [
        (f"矿务局{zh}号院", f"Mining Bureau Compound No. {n}")
        for n, zh in enumerate(_CHINESE_NUMERALS, start=1)
    ]
    names += [(f"{zh}生活区", f"{en} Living Quarter") for zh, en in _WORKS_NAMES]
    return names


# ------------------------------------------------------------------ compound planning


def _plan_rows(
    rng: np.random.Generator,
    *,
    n_buildings: int,
    n_cols: int,
    n_blocks: int,
    width_m: float,
    floors_stairwells: tuple[int, int] | None = None,
) -> tuple[float, list[_BuildingSpec], list[_BlockSpec]]:
    """Draw a compound's height, buildings and storage blocks in bands.

    Returns
    -------
    tuple
        ``(height_m, buildings, blocks)``.
    """
    rows = math.ceil(n_buildings / n_cols)
    height_min_m = max(MIN_COMPOUND_SIDE_M, FIRST_BAND_Y_M + BAND_PITCH_M * rows + 4.0)
    height_m = float(
        np.round(rng.uniform(height_min_m, min(MAX_COMPOUND_SIDE_M, height_min_m + 80.0)))
    )
    buildings = []
    for index in range(n_buildings):
        if floors_stairwells is None:
            floors = int(rng.choice([5, 6]))
            if floors == 5:
                stairwells = int(rng.choice([3, 4, 5], p=[0.3, 0.4, 0.3]))
            else:
                stairwells = int(rng.choice([2, 3, 4, 5], p=[0.1, 0.25, 0.35, 0.3]))
        else:
            floors, stairwells = floors_stairwells
        buildings.append(_BuildingSpec(index % n_cols, index // n_cols, floors, stairwells))
    occupied = {(b.col, b.band) for b in buildings}
    n_bands = (
        int((height_m - 10.0 - FIRST_BAND_Y_M - BLOCK_OFFSET_M - BLOCK_DEPTH_M) // BAND_PITCH_M) + 1
    )
    slots = [
        (col, band)
        for band in range(n_bands)
        for col in range(n_cols)
        if (col, band) in occupied or (col, band + 1) in occupied
    ]
    chosen = sorted(rng.choice(len(slots), size=min(n_blocks, len(slots)), replace=False))
    if n_cols == 2:
        column_length_m = width_m / 2.0 - ROAD_CLEARANCE_M - EDGE_CLEARANCE_M
    else:
        column_length_m = width_m - 2.0 * EDGE_CLEARANCE_M - ROAD_CLEARANCE_M
    max_units = min(UNITS_RANGE[1], int(column_length_m // ROOM_WIDTH_M))
    blocks = []
    for i in chosen:
        units = int(rng.triangular(UNITS_RANGE[0], UNITS_MODE, UNITS_RANGE[1] + 1))
        blocks.append(_BlockSpec(slots[i][0], slots[i][1], min(units, max_units)))
    return height_m, buildings, blocks


def _plan_compound(
    rng: np.random.Generator, role: str, name: tuple[str, str], row: int, col: float
) -> _Compound:
    """Draw one compound's size, buildings and blocks for its role in the story."""
    if role == "court":
        return _Compound(
            *name,
            "energized",
            "B",
            110.0,
            100.0,
            1,
            [_BuildingSpec(0, 0, 5, 3)],
            [_BlockSpec(0, 0, 12)],
            row,
            col,
        )
    if role == "single_building":
        return _Compound(
            *name,
            "planned",
            "B",
            120.0,
            100.0,
            1,
            [_BuildingSpec(0, 1, 6, 5)],
            [_BlockSpec(0, 0, 32), _BlockSpec(0, 1, 30)],
            row,
            col,
        )
    presets = {  # role: (n_buildings, two columns, n_blocks, floors_stairwells, status)
        "tuanjie": (6, True, 4, None, "under_construction"),
        "jianxin": (8, True, 4, (6, 4), "surveyed"),
        "outlying": (2, False, 2, None, "surveyed"),
    }
    if role in presets:
        n_buildings, two_cols, n_blocks, floors_stairwells, status = presets[role]
    else:
        n_buildings = int(rng.integers(2, 9))
        two_cols = n_buildings >= 5 or bool(rng.random() < 0.4)
        n_blocks = int(rng.integers(1, 5))
        floors_stairwells = None
        status = str(rng.choice(COMPOUND_STATUSES, p=COMPOUND_STATUS_P))
    n_cols = 2 if two_cols else 1
    width_range = TWO_COLUMN_WIDTH_M if two_cols else ONE_COLUMN_WIDTH_M
    width_m = float(np.round(rng.uniform(*width_range)))
    height_m, buildings, blocks = _plan_rows(
        rng,
        n_buildings=n_buildings,
        n_cols=n_cols,
        n_blocks=n_blocks,
        width_m=width_m,
        floors_stairwells=floors_stairwells,
    )
    area_class = "C" if role == "outlying" else "B"
    return _Compound(
        *name, status, area_class, width_m, height_m, n_cols, buildings, blocks, row, col
    )


def _plan_district(rng: np.random.Generator, grid_x0_m: float, grid_y0_m: float) -> list[_Compound]:
    """Choose residential cells, name and plan every compound and place it on the grid."""
    n_cells = GRID_COLUMNS * GRID_ROWS
    cells = sorted(int(c) for c in rng.choice(n_cells, size=RESIDENTIAL_CELLS, replace=False))
    roles = dict.fromkeys(cells, "generic")
    special = rng.choice(len(cells), size=4, replace=False)
    for role, index in zip(("tuanjie", "court", "pair", "jianxin"), special, strict=True):
        roles[cells[int(index)]] = role
    pool = _generic_names()
    n_generic = sum(role == "generic" for role in roles.values())
    generic_names = iter(pool[int(i)] for i in rng.permutation(len(pool))[:n_generic])
    named = {"tuanjie": TUANJIE, "court": COURT, "jianxin": JIANXIN}

    compounds: list[_Compound] = []
    for cell in cells:
        row, col = divmod(cell, GRID_COLUMNS)
        cell_x0 = grid_x0_m + col * CELL_WIDTH_M
        street_y = grid_y0_m + row * CELL_HEIGHT_M
        role = roles[cell]
        if role == "pair":
            x_m = cell_x0 + CELL_MARGIN_M
            for name in (YUANLIN, JIXIE):
                compound = _plan_compound(rng, "single_building", name, row, col)
                _place(compound, x_m, street_y, STREET_SETBACK_M[0] + 3.0)
                compounds.append(compound)
                x_m += compound.width_m + 12.0
            continue
        name = named.get(role) or next(generic_names)
        compound = _plan_compound(rng, role, name, row, col)
        if role == "generic" and col in (0, GRID_COLUMNS - 1) and rng.random() < 0.25:
            compound.area_class = "C"
        free_x_m = CELL_WIDTH_M - 2 * CELL_MARGIN_M - compound.width_m
        x_m = cell_x0 + CELL_MARGIN_M + float(np.round(rng.uniform(0.0, free_x_m) * 2) / 2)
        setback_m = float(np.round(rng.uniform(*STREET_SETBACK_M) * 2) / 2)
        _place(compound, x_m, street_y, setback_m)
        compounds.append(compound)

    row = int(rng.integers(2, GRID_ROWS - 2))
    outlying = _plan_compound(rng, "outlying", OUTLYING, row, GRID_COLUMNS + 2.0)
    _place(
        outlying,
        grid_x0_m + GRID_COLUMNS * CELL_WIDTH_M + OUTLYING_OFFSET_M,
        grid_y0_m + row * CELL_HEIGHT_M,
        20.0,
    )
    compounds.sort(key=lambda c: (-c.row, c.x0_m))
    compounds.append(outlying)

    for compound in compounds:
        compound.road_surface = str(rng.choice(["concrete", "asphalt"], p=[0.7, 0.3]))
        compound.green_surface = str(rng.choice(["lawn", "soil"]))
        if compound.status == "energized":
            compound.survey_start = COURT_SURVEY_START + dt.timedelta(days=int(rng.integers(0, 20)))
        else:
            compound.survey_start = SURVEY_START + dt.timedelta(days=int(rng.integers(0, 180)))
    _assign_ids(compounds)
    _choose_quirks(rng, compounds)
    return compounds


def _place(compound: _Compound, x0_m: float, street_y_m: float, setback_m: float) -> None:
    """Set a compound's position: south edge ``setback_m`` north of its street."""
    compound.x0_m = x0_m
    compound.street_y_m = street_y_m
    compound.y0_m = street_y_m + setback_m


def _assign_ids(compounds: list[_Compound]) -> None:
    """Give compounds, buildings (by band, then column) and blocks their ids in map order."""
    for number, compound in enumerate(compounds, start=1):
        compound.compound_id = f"C{number:03d}"
        compound.buildings.sort(key=lambda b: (b.band, b.col))
        compound.blocks.sort(key=lambda b: (b.band, b.col))
        compound.building_ids = [
            f"{compound.compound_id}-B{i:02d}" for i in range(1, len(compound.buildings) + 1)
        ]
        compound.block_ids = [
            f"{compound.compound_id}-S{i:02d}" for i in range(1, len(compound.blocks) + 1)
        ]


def _choose_quirks(rng: np.random.Generator, compounds: list[_Compound]) -> None:
    """Pick the compounds whose corridors a real GIS layer would leave un-noded."""
    two_col = [i for i, c in enumerate(compounds) if c.n_cols == 2 and len(c.buildings) >= 2]
    for i in rng.choice(two_col, size=THROUGH_WALKWAY_COMPOUNDS, replace=False):
        compounds[int(i)].through_walkway = True
    rest = [i for i, c in enumerate(compounds) if not c.through_walkway]
    for i in rng.choice(rest, size=NEAR_MISS_COMPOUNDS, replace=False):
        compounds[int(i)].near_miss = True


# ------------------------------------------------------------------------ corridors


def _walkways(compound: _Compound) -> list[tuple[int, float, float]]:
    """Return the walkways of a compound as ``(col, local y, far local x)``.

    Walkway A runs along the north side of a building (and the south side of the storage
    block behind it); walkway B runs north of a storage block. Both start at the road.
    """
    buildings = {(b.col, b.band): b for b in compound.buildings}
    blocks = {(s.col, s.band): s for s in compound.blocks}
    n_bands = max(k for _, k in (*buildings, *blocks)) + 1
    walkways = []
    for band in range(n_bands):
        base = FIRST_BAND_Y_M + band * BAND_PITCH_M
        for col in range(compound.n_cols):
            here = [o for o in (buildings.get((col, band)), blocks.get((col, band))) if o]
            north = [o for o in (blocks.get((col, band)), buildings.get((col, band + 1))) if o]
            rows = [(base + WALKWAY_A_OFFSET_M, here)]
            if blocks.get((col, band)) and base + WALKWAY_B_OFFSET_M <= compound.height_m - 9.0:
                rows.append((base + WALKWAY_B_OFFSET_M, north))
            for y_m, objects in rows:
                if not objects:
                    continue
                reach_m = max(o.length_m for o in objects) - 1.0
                side = 1.0 if compound.n_cols == 2 and col == 1 else -1.0
                far_x = compound.road_x_m + side * (ROAD_CLEARANCE_M + reach_m)
                walkways.append((col, y_m, far_x))
    return walkways


def _compound_corridors(compound: _Compound) -> list[dict]:
    """Return the internal roads, walkways and green strips of a compound (metric).

    The central road leaves through the gate and ends on the street centre line. In a
    compound with ``through_walkway`` one walkway crosses the road as a single line
    without a shared vertex; with ``near_miss`` one walkway stops 0.3 m short of it.
    """
    x0, y0 = compound.x0_m, compound.y0_m
    w, h = compound.width_m, compound.height_m
    road_x = compound.road_x_m
    walkways = _walkways(compound)
    by_y: dict[float, list[tuple[int, float]]] = {}
    for col, y_m, far_x in walkways:
        by_y.setdefault(y_m, []).append((col, far_x))
    through_y = None
    if compound.through_walkway:
        through_y = min((y for y, items in by_y.items() if len(items) == 2), default=None)
    near_miss_y = None
    if compound.near_miss:
        near_miss_y = min(y for y in by_y if y != through_y)

    def line(points: list[tuple[float, float]]) -> LineString:
        return LineString([(x0 + x, y0 + y) for x, y in points])

    corridors: list[dict] = []
    junctions = sorted(y for y in by_y if y not in (through_y, near_miss_y))
    road = [(road_x, compound.street_y_m - y0), (road_x, SOUTH_ROAD_Y_M)]
    road += [(road_x, y) for y in junctions] + [(road_x, h - GREEN_INSET_M)]
    corridors.append({"geometry": line(road), "kind": "road", "surface": compound.road_surface})
    south = [(GREEN_INSET_M, SOUTH_ROAD_Y_M), (road_x, SOUTH_ROAD_Y_M)]
    if compound.n_cols == 2:
        south.append((w - GREEN_INSET_M, SOUTH_ROAD_Y_M))
    corridors.append({"geometry": line(south), "kind": "road", "surface": "concrete"})

    for y_m in sorted(by_y):
        items = sorted(by_y[y_m])
        if y_m == through_y:
            (_, west_x), (_, east_x) = items
            corridors.append(_walkway_record(line([(west_x, y_m), (east_x, y_m)])))
            continue
        for _, far_x in items:
            gap = NEAR_MISS_GAP_M if y_m == near_miss_y else 0.0
            start_x = road_x + math.copysign(gap, far_x - road_x)
            corridors.append(_walkway_record(line([(start_x, y_m), (far_x, y_m)])))

    top = h - GREEN_INSET_M
    west = [(GREEN_INSET_M, SOUTH_ROAD_Y_M), (GREEN_INSET_M, top)]
    north = [(GREEN_INSET_M, top), (road_x, top)]
    greens = [west, north]
    if compound.n_cols == 2:
        greens[1] = [*north, (w - GREEN_INSET_M, top)]
        greens.append([(w - GREEN_INSET_M, top), (w - GREEN_INSET_M, SOUTH_ROAD_Y_M)])
    corridors += [
        {"geometry": line(g), "kind": "green", "surface": compound.green_surface} for g in greens
    ]
    return corridors


def _walkway_record(geometry: LineString) -> dict:
    """Return a paved walkway corridor record."""
    return {"geometry": geometry, "kind": "walkway", "surface": "paving"}


def _street_corridors(compounds: list[_Compound], grid_x0_m: float, grid_y0_m: float) -> list[dict]:
    """Return the street grid (asphalt roads) split at crossings, with vertices at gates."""
    xs = [grid_x0_m + i * CELL_WIDTH_M for i in range(GRID_COLUMNS + 1)]
    ys = [grid_y0_m + j * CELL_HEIGHT_M for j in range(GRID_ROWS + 1)]
    gates: dict[int, list[float]] = {}
    for compound in compounds[:-1]:
        gates.setdefault(compound.row, []).append(compound.gate_x_m)
    streets = []
    for j, y_m in enumerate(ys):
        for xa, xb in itertools.pairwise(xs):
            inner = sorted(x for x in gates.get(j, []) if xa < x < xb)
            points = [(x, y_m) for x in (xa, *inner, xb)]
            streets.append({"geometry": LineString(points), "name": EAST_WEST_STREETS[j]})
    for i, x_m in enumerate(xs):
        for ya, yb in itertools.pairwise(ys):
            streets.append(
                {"geometry": LineString([(x_m, ya), (x_m, yb)]), "name": NORTH_SOUTH_STREETS[i]}
            )
    outlying = compounds[-1]
    access = LineString([(xs[-1], outlying.street_y_m), (outlying.gate_x_m, outlying.street_y_m)])
    streets.append({"geometry": access, "name": OUTLYING_ROAD})
    for street in streets:
        street.update(kind="road", surface="asphalt")
    return streets


def _corridors(
    rng: np.random.Generator, compounds: list[_Compound], grid_x0_m: float, grid_y0_m: float
) -> list[dict]:
    """Return every corridor with its id, streets first, then compounds in id order."""
    corridors = _street_corridors(compounds, grid_x0_m, grid_y0_m)
    for compound in compounds:
        corridors += _compound_corridors(compound)
    greens = [i for i, c in enumerate(corridors) if c["kind"] == "green"]
    closed = {int(i) for i in rng.choice(greens, size=DISALLOWED_GREEN_STRIPS, replace=False)}
    for number, corridor in enumerate(corridors, start=1):
        corridor["corridor_id"] = f"K{number:05d}"
        corridor["allowed"] = number - 1 not in closed
        corridor.setdefault("name", None)
    return corridors


# --------------------------------------------------------------------- applicants


def _applicants(rng: np.random.Generator, compounds: list[_Compound]) -> dict[str, int]:
    """Share the district's applicants among storage blocks.

    The named compounds have fixed figures (法院住宅小区 11; 园林楼 and 机械楼 30 a block;
    团结小区, the pilot, ``PILOT_APPLICANT_SHARE`` of its rooms);
    the rest of a target total drawn from ``TARGET_APPLICANTS`` goes to the other blocks,
    at least one each, in proportion to their rooms and how far along their compound is.
    """
    fixed = {COURT[0]: 11, YUANLIN[0]: 30, JIXIE[0]: 30}
    applicants: dict[str, int] = {}
    free: list[tuple[str, int, float]] = []
    status_weight = {"surveyed": 1.0, "applied": 2.0, "planned": 1.5, "under_construction": 3.0}
    for compound in compounds:
        for block_id, block in zip(compound.block_ids, compound.blocks, strict=True):
            if compound.name in fixed:
                applicants[block_id] = min(fixed[compound.name], block.units)
            elif compound.name == TUANJIE[0]:
                applicants[block_id] = round(PILOT_APPLICANT_SHARE * block.units)
            else:
                weight = block.units * status_weight[compound.status] * rng.uniform(0.3, 1.0)
                free.append((block_id, block.units, weight))
    fixed_open = sum(
        applicants[b]
        for c in compounds
        if c.status != "energized"
        for b in c.block_ids
        if b in applicants
    )
    remaining = int(rng.integers(TARGET_APPLICANTS[0], TARGET_APPLICANTS[1] + 1)) - fixed_open
    units = np.array([u for _, u, _ in free])
    weights = np.array([w for _, _, w in free])
    counts = np.ones(len(free), dtype=np.int64)
    left = remaining - len(free)
    while left > 0:
        room = units - counts
        p = np.where(room > 0, weights, 0.0)
        counts += np.minimum(rng.multinomial(left, p / p.sum()), room)
        left = remaining - int(counts.sum())
    applicants.update({block_id: int(n) for (block_id, _, _), n in zip(free, counts, strict=True)})
    return applicants


# ------------------------------------------------------------------------- supplies


def _supplies(
    rng: np.random.Generator, compounds: list[_Compound], grid_x0_m: float
) -> tuple[list[dict], list[dict]]:
    """Place transformers, branch boxes and poles, and the feeders between them.

    Compounds along the same street are grouped in twos and threes; each group has a
    box-type transformer beside the gate of its middle compound, and every other
    compound of the group (and the host itself when it is deep) gets a branch box on its
    central road fed by a cable from that transformer. A few transformers also feed an
    overhead line with poles along the far side of the street. The outlying compound gets
    nothing: it is beyond every supply radius.
    """
    groups: list[list[_Compound]] = []
    for compound in compounds[:-1]:
        group = groups[-1] if groups else None
        if (
            group is None
            or group[0].row != compound.row
            or compound.col - group[0].col > TRANSFORMER_SPAN_CELLS
            or len(group) == COMPOUNDS_PER_TRANSFORMER
        ):
            groups.append([compound])
        else:
            group.append(compound)

    transformers, boxes, feeders = [], [], []
    for group in groups:
        host = group[len(group) // 2]
        tx = host.gate_x_m + TRANSFORMER_OFFSET_M[0]
        ty = host.street_y_m + TRANSFORMER_OFFSET_M[1]
        capacity = float(rng.choice(TRANSFORMER_KVA, p=TRANSFORMER_KVA_P))
        transformer = {
            "supply_id": f"T{len(transformers) + 1:03d}",
            "kind": "transformer",
            "name": f"{host.name}箱变",
            "capacity_kva": capacity,
            "load_kva": capacity * rng.uniform(*TRANSFORMER_LOAD_FRACTION),
            "max_circuits": TRANSFORMER_CIRCUITS,
            "geometry": Point(tx, ty),
            "street_y_m": host.street_y_m,
            "street": EAST_WEST_STREETS[host.row],
        }
        transformers.append(transformer)
        for compound in group:
            deepest_m = max(compound.block_rect(s)[3] for s in compound.blocks) - host.street_y_m
            if compound is host and deepest_m <= BRANCH_BOX_FROM_TRANSFORMER_M:
                continue
            centre_y = float(np.mean([(compound.block_rect(s)[1]) for s in compound.blocks]))
            bx = compound.gate_x_m + 3.0
            by = float(np.round(centre_y - (BLOCK_OFFSET_M - WALKWAY_A_OFFSET_M) / 2.0, 1))
            boxes.append(
                {
                    "supply_id": f"BB{len(boxes) + 1:03d}",
                    "kind": "branch_box",
                    "name": f"{compound.name}分支箱",
                    "capacity_kva": BRANCH_BOX_KVA,
                    "load_kva": rng.uniform(15.0, 60.0),
                    "max_circuits": int(rng.choice(BRANCH_BOX_CIRCUITS)),
                    "geometry": Point(bx, by),
                    "transformer": transformer,
                }
            )
            cable_y = host.street_y_m + CABLE_OFFSET_M
            route = [(tx, ty), (tx, cable_y), (bx, cable_y), (bx, by)]
            feeders.append({"geometry": LineString(_dedupe(route)), "box": boxes[-1]})

    nearly_full = rng.choice(len(transformers), size=NEARLY_FULL_TRANSFORMERS, replace=False)
    for i in nearly_full:
        t = transformers[int(i)]
        t["load_kva"] = t["capacity_kva"] * rng.uniform(*NEARLY_FULL_FRACTION)
    for t in transformers:
        t["load_kva"] = round(float(t["load_kva"]), 1)
    for b in boxes:
        b["load_kva"] = round(float(b["load_kva"]), 1)

    records = []
    for number, feeder in enumerate(feeders, start=1):
        box_record = feeder.pop("box")
        t = box_record.pop("transformer")
        spare = min(
            box_record["capacity_kva"] - box_record["load_kva"], t["capacity_kva"] - t["load_kva"]
        )
        records.append(
            {
                "feeder_id": f"F{number:03d}",
                "supply_id": t["supply_id"],
                "kind": "cable",
                "spare_kva": round(max(spare, 0.0), 1),
                "geometry": feeder["geometry"],
            }
        )
    poles, overhead = _overhead_lines(rng, transformers, grid_x0_m, len(records))
    records += overhead
    for t in transformers:
        del t["street_y_m"], t["street"]
    return transformers + boxes + poles, records


def _overhead_lines(
    rng: np.random.Generator, transformers: list[dict], grid_x0_m: float, n_feeders: int
) -> tuple[list[dict], list[dict]]:
    """Run a few overhead lines with poles from transformers along their street."""
    grid_x1_m = grid_x0_m + GRID_COLUMNS * CELL_WIDTH_M
    street_xs = [grid_x0_m + i * CELL_WIDTH_M for i in range(GRID_COLUMNS + 1)]
    poles, feeders = [], []
    chosen: dict[float, dict] = {}  # one overhead line per street at most
    for i in rng.permutation(len(transformers)):
        t = transformers[int(i)]
        if len(chosen) < OVERHEAD_FEEDERS and t["street_y_m"] not in chosen:
            chosen[t["street_y_m"]] = t
    for t in sorted(chosen.values(), key=lambda t: t["supply_id"]):
        tx, ty = t["geometry"].x, t["geometry"].y
        line_y = t["street_y_m"] + OVERHEAD_OFFSET_M
        direction = 1.0 if rng.random() < 0.5 else -1.0
        end_x = tx + direction * 2 * CELL_WIDTH_M
        if not grid_x0_m + 5.0 <= end_x <= grid_x1_m - 5.0:
            direction = -direction
            end_x = tx + direction * 2 * CELL_WIDTH_M
        end_x = min(max(end_x, grid_x0_m + 5.0), grid_x1_m - 5.0)
        n_poles = int(abs(end_x - tx) // POLE_SPACING_M)
        for k in range(1, n_poles + 1):
            px = tx + direction * k * POLE_SPACING_M
            if min(abs(px - sx) for sx in street_xs) < 5.0:
                continue
            poles.append(
                {
                    "supply_id": f"P{len(poles) + 1:03d}",
                    "kind": "pole",
                    "name": f"{t['street']}{len(poles) + 1}号杆",
                    "capacity_kva": POLE_KVA,
                    "load_kva": round(float(rng.uniform(5.0, 30.0)), 1),
                    "max_circuits": POLE_CIRCUITS,
                    "geometry": Point(px, line_y),
                }
            )
        spare = min(rng.uniform(15.0, 50.0), t["capacity_kva"] - t["load_kva"])
        feeders.append(
            {
                "feeder_id": f"F{n_feeders + len(feeders) + 1:03d}",
                "supply_id": t["supply_id"],
                "kind": "overhead",
                "spare_kva": round(max(float(spare), 0.0), 1),
                "geometry": LineString([(tx, ty), (tx, line_y), (end_x, line_y)]),
            }
        )
    return poles, feeders


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drop consecutive repeated points."""
    out = [points[0]]
    for p in points[1:]:
        if p != out[-1]:
            out.append(p)
    return out


# -------------------------------------------------------------------- flying wires


def _wire_height_m(rng: np.random.Generator) -> float:
    """Draw the lowest clearance of a flying wire (NaN when the survey missed it)."""
    if rng.random() < WIRE_NULL_HEIGHT_P:
        return math.nan
    u = rng.random()
    if u < 0.2:
        height = rng.uniform(1.9, 2.5)
    elif u < 0.85:
        height = rng.uniform(2.5, 6.0)
    else:
        height = rng.uniform(6.0, 8.5)
    return round(float(height), 1)


def _wire_candidates(compound: _Compound, block: _BlockSpec) -> list[tuple[int, str, float]]:
    """Return the buildings facing a block as ``(building index, face, weight)``."""
    candidates = []
    for index, b in enumerate(compound.buildings):
        same_col = b.col == block.col
        weight = 1.0 if same_col else CROSS_ROAD_WIRE_WEIGHT
        if b.band == block.band:
            candidates.append((index, "north", weight))
        elif b.band == block.band + 1:
            candidates.append((index, "south", weight))
    return candidates


def _wires(
    rng: np.random.Generator, compounds: list[_Compound], applicants: dict[str, int]
) -> list[dict]:
    """Draw the flying wires: one per group of 1-4 applicants of a block.

    Each wire runs from a window on the face of a building that looks onto the block to
    a room of the block near the window's x; wires across the central road are long.
    """
    wires: list[dict] = []
    for compound in compounds:
        for block_id, block in zip(compound.block_ids, compound.blocks, strict=True):
            left = applicants[block_id]
            candidates = _wire_candidates(compound, block)
            weights = np.array([w for _, _, w in candidates])
            bx0, by0, bx1, by1 = compound.block_rect(block)
            while left > 0:
                households = min(left, int(rng.choice(WIRE_HOUSEHOLDS, p=WIRE_HOUSEHOLDS_P)))
                left -= households
                index, face, _ = candidates[
                    int(rng.choice(len(candidates), p=weights / weights.sum()))
                ]
                fx0, fy0, fx1, fy1 = compound.building_rect(compound.buildings[index])
                window_x = float(rng.uniform(fx0 + 1.0, fx1 - 1.0))
                shed_x = float(
                    np.clip(window_x + rng.normal(0.0, WIRE_SPREAD_M), bx0 + 0.5, bx1 - 0.5)
                )
                start = (window_x, fy1 if face == "north" else fy0)
                end = (shed_x, by0 if face == "north" else by1)
                surveyed_on = compound.survey_start + dt.timedelta(days=int(rng.integers(0, 4)))
                wires.append(
                    {
                        "wire_id": f"W{len(wires) + 1:04d}",
                        "compound_id": compound.compound_id,
                        "from_building_id": compound.building_ids[index],
                        "to_block_id": block_id,
                        "households": households,
                        "height_m": _wire_height_m(rng),
                        "insulated": bool(rng.random() < WIRE_INSULATED_P),
                        "surveyed_on": surveyed_on.isoformat(),
                        "status": "removed" if compound.status == "energized" else "present",
                        "geometry": LineString([start, end]),
                    }
                )
    return wires


# ------------------------------------------------------------------------ obstacles


def _obstacle_shape(rng: np.random.Generator, kind: str, x_m: float, y_m: float) -> Polygon:
    """Return an obstacle outline of ``kind`` centred on a point."""
    if kind == "tree_protection":
        return Point(x_m, y_m).buffer(float(rng.uniform(3.0, 5.0)), quad_segs=3)
    if kind == "pavilion":
        return Point(x_m, y_m).buffer(4.0, quad_segs=2)
    half_length = float(rng.uniform(15.0, 25.0))
    return box(x_m - half_length, y_m - 1.5, x_m + half_length, y_m + 1.5)


def _obstacles(
    rng: np.random.Generator, compounds: list[_Compound], blocked: list[shapely.Geometry]
) -> list[dict]:
    """Place obstacles inside compounds where no corridor, building or block runs.

    Parameters
    ----------
    rng
        The sample's random generator.
    compounds
        The compounds (the outlying one is left out).
    blocked
        Geometries obstacles must keep clear of (already buffered).
    """
    tree = shapely.STRtree(blocked)
    placed: list[dict] = []
    for kind, name in OBSTACLE_KINDS:
        while True:
            compound = compounds[int(rng.integers(0, len(compounds)))]
            x_m = compound.x0_m + rng.uniform(10.0, compound.width_m - 10.0)
            y_m = compound.y0_m + rng.uniform(10.0, compound.height_m - 10.0)
            shape = _obstacle_shape(rng, kind, float(x_m), float(y_m))
            inside = compound.polygon().buffer(-2.0).contains(shape)
            clear = len(tree.query(shape, predicate="intersects")) == 0
            apart = all(shape.distance(o["geometry"]) > 10.0 for o in placed)
            if inside and clear and apart:
                break
        placed.append(
            {
                "obstacle_id": f"O{len(placed) + 1:03d}",
                "kind": kind,
                "name": name,
                "geometry": shape,
            }
        )
    return placed


# ---------------------------------------------------------------------- assembling


def _feature_records(
    compounds: list[_Compound], applicants: dict[str, int]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Return the compound, building and storage-block records (metric geometry)."""
    compound_rows, building_rows, block_rows = [], [], []
    for c in compounds:
        compound_rows.append(
            {
                "compound_id": c.compound_id,
                "name": c.name,
                "name_en": c.name_en,
                "households": c.households,
                "status": c.status,
                "area_class": c.area_class,
                "geometry": c.polygon(),
            }
        )
        for number, (building_id, b) in enumerate(zip(c.building_ids, c.buildings, strict=True), 1):
            building_rows.append(
                {
                    "building_id": building_id,
                    "compound_id": c.compound_id,
                    "name": f"{number}号楼",
                    "households": b.households,
                    "floors": b.floors,
                    "geometry": box(*c.building_rect(b)),
                }
            )
        for block_id, s in zip(c.block_ids, c.blocks, strict=True):
            block_rows.append(
                {
                    "block_id": block_id,
                    "compound_id": c.compound_id,
                    "units": s.units,
                    "applicants": applicants[block_id],
                    "status": c.status,
                    "geometry": box(*c.block_rect(s)),
                }
            )
    return compound_rows, building_rows, block_rows


def _round_coordinates(geometry: object) -> object:
    """Round coordinates to ``COORDINATE_DECIMALS`` and orient polygons counter-clockwise."""
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, COORDINATE_DECIMALS))
    if isinstance(rounded, Polygon):
        return orient(rounded, sign=1.0)
    return rounded


def _frame(layer: str, records: list[dict]) -> gpd.GeoDataFrame:
    """Build one output layer in EPSG:4326 with its columns in contract order."""
    id_column = LAYER_COLUMNS[layer][0]
    records = sorted(records, key=lambda r: r[id_column])
    columns = list(LAYER_COLUMNS[layer])
    data = {c: [r[c] for r in records] for c in columns}
    frame = gpd.GeoDataFrame(
        data, geometry=[r["geometry"] for r in records], crs=METRIC_CRS
    ).to_crs(OUTPUT_CRS)
    frame["geometry"] = [_round_coordinates(g) for g in frame.geometry]
    return frame.set_geometry("geometry", crs=OUTPUT_CRS)


def make_sample(*, seed: int = DEFAULT_SEED) -> dict[str, gpd.GeoDataFrame]:
    """Return the sample district's layers.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same layers.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``{layer name: GeoDataFrame in EPSG:4326}`` for the eight input layers, features
        sorted by id, coordinates rounded to 7 decimals.
    """
    rng = np.random.default_rng(seed)
    centre = gpd.GeoSeries([Point(*CENTRE_LON_LAT)], crs=OUTPUT_CRS).to_crs(METRIC_CRS)[0]
    grid_x0_m = float(np.round(centre.x - GRID_COLUMNS * CELL_WIDTH_M / 2.0))
    grid_y0_m = float(np.round(centre.y - GRID_ROWS * CELL_HEIGHT_M / 2.0))

    compounds = _plan_district(rng, grid_x0_m, grid_y0_m)
    corridors = _corridors(rng, compounds, grid_x0_m, grid_y0_m)
    applicants = _applicants(rng, compounds)
    supply_points, feeders = _supplies(rng, compounds, grid_x0_m)
    wires = _wires(rng, compounds, applicants)
    compound_rows, building_rows, block_rows = _feature_records(compounds, applicants)
    blocked = (
        [c["geometry"].buffer(1.5) for c in corridors]
        + [r["geometry"].buffer(1.0) for r in building_rows + block_rows]
        + [s["geometry"].buffer(2.0) for s in supply_points]
        + [f["geometry"].buffer(1.5) for f in feeders]
    )
    obstacles = _obstacles(rng, compounds[:-1], blocked)

    records = {
        "compounds": compound_rows,
        "buildings": building_rows,
        "storage_blocks": block_rows,
        "supply_points": supply_points,
        "feeders": feeders,
        "corridors": corridors,
        "flying_wires": wires,
        "obstacles": obstacles,
    }
    return {layer: _frame(layer, records[layer]) for layer in LAYER_COLUMNS}


# -------------------------------------------------------------------------- writing


def _json_value(value: object) -> object:
    """Convert a cell to a JSON value: NaN/None to null, numpy scalars to Python."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return str(value)


def _geojson_text(frame: gpd.GeoDataFrame, layer: str) -> str:
    """Serialise one sample layer as deterministic RFC 7946 GeoJSON, one feature a line.

    Parameters
    ----------
    frame
        A layer from :func:`make_sample` (EPSG:4326, coordinates already rounded).
    layer
        The layer name; it also fixes the column order.

    Returns
    -------
    str
        The FeatureCollection, UTF-8 text ending with a newline.
    """
    columns = LAYER_COLUMNS[layer]
    features = []
    for row in frame.itertuples(index=False):
        properties = {c: _json_value(getattr(row, c)) for c in columns}
        feature = {"type": "Feature", "properties": properties, "geometry": mapping(row.geometry)}
        features.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    head = json.dumps({"type": "FeatureCollection", "name": layer}, ensure_ascii=False)[:-1]
    return head + ', "features": [\n' + ",\n".join(features) + "\n]}\n"


def write_sample(directory: str | os.PathLike, *, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write one ``<layer>.geojson`` per layer of the sample into ``directory``.

    Parameters
    ----------
    directory
        Output folder, created if missing.
    seed
        Seed of the sample (see :func:`make_sample`).

    Returns
    -------
    list of pathlib.Path
        The files written, in layer order.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for layer, frame in make_sample(seed=seed).items():
        path = out / f"{layer}.geojson"
        path.write_bytes(_geojson_text(frame, layer).encode("utf-8"))
        paths.append(path)
    return paths
