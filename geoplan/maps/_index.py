"""What every map page of one plan shares, worked out once: scores, colours, each compound's rows.

A compound page shows the compound's features, the trenches its cables run in and the
supply points that feed it or stand in it. Finding those by filtering the whole plan for
every page costs a pass over every layer per page, which is quadratic at city scale
(thousands of pages, a million trench sections); :class:`PlanIndex` groups the rows of
each layer by compound and matches trenches and supply points with spatial indexes, once.
The frames it returns are the ones the per-page filters gave (same rows, same order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan._geometry import _in_threads

from ._planmap import TRENCH_BUFFER_M, TRENCH_MIN_M, cable_colours, wire_scores

if TYPE_CHECKING:
    from geoplan.plan import Plan

_BY_COMPOUND = {
    "compounds": ("layers", "compounds"),
    "buildings": ("layers", "buildings"),
    "storage_blocks": ("layers", "storage_blocks"),
    "flying_wires": ("layers", "flying_wires"),
    "cables": ("plan", "cables"),
    "meter_boxes": ("plan", "meter_boxes"),
    "unserved": ("plan", "unserved"),
}

Groups = dict[str, np.ndarray] | None  # compound id -> row positions; None: not by compound


def _groups(frame: pd.DataFrame) -> Groups:
    """Return the row positions of each compound id (text), or None without the column."""
    if "compound_id" not in frame.columns:
        return None
    keys = frame["compound_id"].astype(str).to_numpy()
    if not len(keys):
        return {}
    return {str(k): v for k, v in pd.Series(keys).groupby(keys, sort=False).indices.items()}


def _rows(frame: pd.DataFrame, groups: Groups, compound_id: str) -> pd.DataFrame:
    if groups is None:
        return frame
    found = groups.get(compound_id)
    return frame.iloc[found] if found is not None else frame.iloc[:0]


def _geoms(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(frame.geometry.array, dtype=object)


class PlanIndex:
    """The parts of a plan that every page needs, computed once.

    Parameters
    ----------
    plan
        The plan (already redacted for the pages).

    Attributes
    ----------
    scores
        ``{wire_id: (hazard score, reasons)}`` (:func:`~geoplan.maps._planmap.wire_scores`).
    colours
        Cable type to colour, over the whole plan, so that every page agrees.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.scores = wire_scores(plan)
        self.colours = cable_colours(plan.cables)
        self._frames: dict[str, gpd.GeoDataFrame] = {
            key: plan.layers[name] if source == "layers" else getattr(plan, name)
            for key, (source, name) in _BY_COMPOUND.items()
        }
        self._groups = {key: _groups(frame) for key, frame in self._frames.items()}
        self._summary = _groups(plan.summary)
        cable_groups = self._groups["cables"]
        if cable_groups is None:  # cables without compounds: every page shows all of them
            every = np.arange(len(self._frames["cables"]))
            cable_groups = dict.fromkeys(self._compound_ids(), every)
        self._cable_rows = cable_groups
        self._box_cables = self._group_box_cables()
        self._trenches = self._group_trenches()
        self._supplies = self._group_supplies()

    def frames(self, compound_id: str) -> dict[str, gpd.GeoDataFrame]:
        """Return the frames a compound's page draws, keyed as :func:`plan_page` keys them."""
        frames = {
            key: _rows(frame, self._groups[key], compound_id) for key, frame in self._frames.items()
        }
        frames["trenches"] = self.plan.trenches.iloc[self._trenches.get(compound_id, [])]
        supplies = self.plan.layers["supply_points"]
        frames["supply_points"] = supplies.iloc[self._supplies.get(compound_id, [])]
        return frames

    def summary(self, compound_id: str) -> pd.DataFrame:
        """Return the compound's rows of ``plan.summary``."""
        return _rows(self.plan.summary, self._summary, compound_id)

    def box_cables(self, compound_id: str) -> pd.DataFrame:
        """Return the cables that feed the compound's meter boxes (for their popups)."""
        if self._box_cables is None:
            return self.plan.cables
        return self.plan.cables.iloc[self._box_cables.get(compound_id, [])]

    # ------------------------------------------------------------------ grouping

    def _group_box_cables(self) -> Groups:
        """Cables by the compound of the box they feed, in cable order."""
        boxes, cables = self._frames["meter_boxes"], self.plan.cables
        if self._groups["meter_boxes"] is None or "box_id" not in cables.columns:
            return None
        owners = pd.DataFrame(
            {"box_id": boxes["box_id"].astype(str), "cid": boxes["compound_id"].astype(str)}
        ).drop_duplicates()
        rows = pd.DataFrame(
            {"box_id": cables["box_id"].astype(str).to_numpy(), "row": np.arange(len(cables))}
        ).merge(owners, on="box_id")
        return _sorted_groups(rows["cid"].to_numpy(), rows["row"].to_numpy())

    def _group_trenches(self) -> dict[str, np.ndarray]:
        """Trenches along each compound's cables (longer than :data:`TRENCH_MIN_M`)."""
        cables, trenches = self._frames["cables"], self.plan.trenches
        groups = {cid: rows for cid, rows in self._cable_rows.items() if len(rows)}
        if not groups or not len(trenches):
            return {}
        ids = list(groups)
        geoms = _geoms(cables)
        unions = np.array([shapely.union_all(geoms[groups[c]]) for c in ids], dtype=object)
        along = _in_threads(shapely.buffer, unions, TRENCH_BUFFER_M, quad_segs=16)  # as .buffer()
        trench_geoms = _geoms(trenches)
        which, row = shapely.STRtree(trench_geoms).query(along, predicate="intersects")
        length = shapely.length(_in_threads(shapely.intersection, trench_geoms[row], along[which]))
        keep = length > TRENCH_MIN_M
        return _sorted_groups(np.asarray(ids, dtype=object)[which[keep]], row[keep])

    def _group_supplies(self) -> dict[str, np.ndarray]:
        """Supply points that feed each compound's cables or stand in the compound."""
        supplies = self.plan.layers["supply_points"]
        compounds, cables = self._frames["compounds"], self._frames["cables"]
        if not len(supplies):
            return {}
        cids: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        if len(compounds):
            polygon, row = shapely.STRtree(_geoms(supplies)).query(
                _geoms(compounds), predicate="intersects"
            )
            cids.append(compounds["compound_id"].astype(str).to_numpy()[polygon])
            rows.append(row)
        if len(cables):
            rows_of = list(self._cable_rows.values())
            cable_rows = np.concatenate(rows_of) if rows_of else np.zeros(0, dtype=np.int64)
            fed = pd.DataFrame(
                {
                    "supply_id": cables["supply_id"].astype(str).to_numpy()[cable_rows],
                    "cid": np.repeat(list(self._cable_rows), [len(r) for r in rows_of]),
                }
            ).drop_duplicates()
            found = fed.merge(
                pd.DataFrame(
                    {
                        "supply_id": supplies["supply_id"].astype(str).to_numpy(),
                        "row": np.arange(len(supplies)),
                    }
                ),
                on="supply_id",
            )
            cids.append(found["cid"].to_numpy())
            rows.append(found["row"].to_numpy())
        if not cids:
            return {}
        return _sorted_groups(np.concatenate(cids), np.concatenate(rows))

    def _compound_ids(self) -> list[str]:
        return sorted({str(c) for c in self.plan.layers["compounds"]["compound_id"]})


def _sorted_groups(keys: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Group row positions by key: unique and ascending within each key."""
    if not len(keys):
        return {}
    pairs = pd.DataFrame({"key": keys.astype(str), "row": rows.astype(np.int64)})
    pairs = pairs.drop_duplicates().sort_values(["key", "row"], kind="stable")
    return {
        str(k): v.to_numpy()
        for k, v in pairs.groupby("key", sort=False)["row"]  # type: ignore[misc]
    }
