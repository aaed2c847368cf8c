"""The managers' dashboard: plain HTML with inline CSS, no framework, no script.

Totals, compounds ranked by priority (every compound, each linked to its map), progress
by status as CSS bars, and the unserved blocks with what to do about them. All text
from the input layers is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from geoplan.layers import STATUSES, WIRE_STATUSES

from ._page import esc
from ._planmap import column, number

if TYPE_CHECKING:
    from geoplan.plan import Plan

CSS = """
*{box-sizing:border-box}
body{margin:0;padding:16px 24px 40px;color:#222;background:#f6f7f5;
font-family:system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','Microsoft YaHei','PingFang SC',
sans-serif;font-size:14px;line-height:1.45}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
nav a{margin-right:16px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.card{background:#fff;border:1px solid #dde1da;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#555;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #e3e6e0;padding:4px 8px;text-align:left;white-space:nowrap}
th{background:#eef1ec;position:sticky;top:0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bars{display:grid;gap:4px 10px;
grid-template-columns:minmax(150px,max-content) 1fr minmax(220px,max-content);
max-width:900px;align-items:center}
.bar{background:#e4e7e1;height:14px;border-radius:3px;overflow:hidden}
.bar span{display:block;height:100%;background:#2e7d32}
.bar.warn span{background:#d84315}
.muted{color:#666;font-size:12px}
"""

PLAN_LABEL = "区域方案图 District plan map"
OVERVIEW_LABEL = "区域概览图 District overview map"
STATUS_LABELS = {
    "surveyed": "已摸排 surveyed",
    "applied": "已申请 applied",
    "planned": "已设计 planned",
    "under_construction": "施工中 under construction",
    "energized": "已通电 energized",
}
WIRE_LABELS = {"present": "仍在 present", "removed": "已拆除 removed"}


def _sum(frame: pd.DataFrame, name: str) -> float:
    if name not in frame.columns or frame.empty:
        return 0.0
    return float(pd.to_numeric(frame[name], errors="coerce").fillna(0).sum())


def _taken_down(plan: Plan) -> pd.DataFrame:
    """Return the removals the plan really makes: those with a box to replace the wire."""
    removals = plan.removals
    if "box_id" not in removals.columns:
        return removals
    return removals[removals["box_id"].fillna("").astype(str) != ""]


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def _bars(rows: Sequence[tuple[str, float, str]], *, warn: bool = False) -> str:
    """Return CSS bars: (label, share 0-1, figure text)."""
    cls = "bar warn" if warn else "bar"
    out = []
    for label, share, text in rows:
        width = f"{max(0.0, min(1.0, share)) * 100:.1f}%"
        out.append(
            f"<div>{esc(label)}</div>"
            f'<div class="{cls}"><span style="width:{width}"></span></div>'
            f'<div class="muted">{esc(text)}</div>'
        )
    return f'<div class="bars">{"".join(out)}</div>'


def _status_bars(statuses: pd.Series, weights: pd.Series, unit: str) -> str:
    total = float(weights.sum()) or 1.0
    known = [*STATUSES, *sorted(set(statuses.dropna().astype(str)) - set(STATUSES))]
    rows = []
    for status in known:
        mask = statuses.astype(str) == status
        count = int(mask.sum())
        weight = float(weights[mask].sum())
        rows.append(
            (STATUS_LABELS.get(status, status), weight / total, f"{count} · {weight:,.0f} {unit}")
        )
    return _bars(rows)


# At city scale the ranking lists tens of thousands of compounds. A single table that long
# takes a browser tens of seconds to lay out, so the rows come in blocks of LEAN_ROWS, each
# its own fixed-layout table (the same column widths everywhere) that the browser lays out
# only when scrolled near (content-visibility); cells drop their class and end tags (both
# optional in HTML) and numbers are aligned by column instead.
LEAN_ROWS = 500
LEAN_ROW_PX = 29  # the height of a row, to reserve the room of blocks not laid out yet
LEAN_WIDTHS_EM = (4.5, 15, 8, 11, 8.5, 7.5, 5, 8, 7, 7, 8, 10, 7, 6)
LEAN_CSS = (
    f"#ranking.lean table{{table-layout:fixed;width:{sum(LEAN_WIDTHS_EM):g}em}}"
    "#ranking.lean td,#ranking.lean th{overflow:hidden;text-overflow:ellipsis}"
    "#ranking.lean th{white-space:normal;vertical-align:bottom}"
    "#ranking.lean .head{position:sticky;top:0;z-index:1}"
    "#ranking.lean .rows{content-visibility:auto}"
    "#ranking.lean td:first-child,#ranking.lean td:nth-child(n+5):not(:last-child)"
    "{text-align:right;font-variant-numeric:tabular-nums}"
) + "".join(
    f"#ranking.lean :is(td,th):nth-child({i}){{width:{w:g}em}}"
    for i, w in enumerate(LEAN_WIDTHS_EM, start=1)
)


def _ranking(plan: Plan, links: Mapping[str, str], *, lean: bool = False) -> str:
    compounds = plan.layers["compounds"].drop(columns="geometry")
    summary = plan.summary.copy()
    summary["compound_id"] = summary["compound_id"].astype(str)
    ids = pd.DataFrame({"compound_id": [str(c) for c in column(compounds, "compound_id")]})
    ids["layer_name"] = column(compounds, "name")
    ids["layer_status"] = column(compounds, "status")
    rows = summary.merge(ids, on="compound_id", how="outer")
    rank = pd.to_numeric(rows.get("priority_rank"), errors="coerce")
    rows = rows.assign(_rank=rank.fillna(float("inf"))).sort_values(
        ["_rank", "compound_id"], kind="stable"
    )
    head = (
        "<tr><th class=n>排名 rank</th><th>小区 compound</th><th>编号 id</th>"
        "<th>状态 status</th><th class=n>户数 households</th><th class=n>申请 applicants</th>"
        "<th class=n>表箱 boxes</th><th class=n>表位 used / reserved</th>"
        "<th class=n>电缆 cable m</th><th class=n>沟 trench m</th><th class=n>费用 CNY</th>"
        "<th class=n>隐患 hazard before → after</th><th class=n>削减/千元 removed per kCNY</th>"
        "<th>未供电 unserved</th></tr>"
    )
    body = []
    cells = "<td>{}" if lean else "<td class=n>{}</td>"
    text_cells = "<td>{}" if lean else "<td>{}</td>"
    for row in rows.to_dict("records"):
        cid = str(row["compound_id"])
        name = row.get("name") if isinstance(row.get("name"), str) else row.get("layer_name")
        status = (
            row.get("status") if isinstance(row.get("status"), str) else row.get("layer_status")
        )
        before = pd.to_numeric(row.get("hazard_before"), errors="coerce")
        after = pd.to_numeric(row.get("hazard_after"), errors="coerce")
        cost = pd.to_numeric(row.get("cost_cny"), errors="coerce")
        per_k = (before - after) / cost * 1000.0 if cost and cost > 0 else float("nan")
        href = links.get(cid)
        label = esc(name if isinstance(name, str) and name else cid)
        cell = f'<a href="{esc(href)}">{label}</a>' if href else label
        numbers = [
            esc(number(row.get("households"))),
            esc(number(row.get("applicants"))),
            esc(number(row.get("boxes"))),
            f"{esc(number(row.get('used')))} / {esc(number(row.get('reserved')))}",
            esc(number(row.get("cable_m"))),
            esc(number(row.get("trench_m"))),
            esc(number(cost)),
            f"{esc(number(before, 1))} → {esc(number(after, 1))}",
            esc(number(per_k, 2)),
        ]
        body.append(
            f'<tr data-compound="{esc(cid)}">'
            + cells.format(esc(number(row.get("priority_rank"))))
            + text_cells.format(cell)
            + text_cells.format(esc(cid))
            + text_cells.format(esc(STATUS_LABELS.get(str(status), status)))
            + "".join(cells.format(n) for n in numbers)
            + text_cells.format(esc(number(row.get("unserved_blocks"))))
            + ("\n" if lean else "</tr>")
        )
    if not lean:
        return f'<table id="ranking">{head}{"".join(body)}</table>'
    blocks = [body[i : i + LEAN_ROWS] for i in range(0, len(body), LEAN_ROWS)]
    return (
        f'<div id="ranking" class="lean"><div class="head"><table>{head}</table></div>\n'
        + "".join(
            f'<div class="rows" style="contain-intrinsic-size:auto {len(b) * LEAN_ROW_PX}px">'
            f"<table>\n{''.join(b)}</table></div>\n"
            for b in blocks
        )
        + "</div>"
    )


def _unserved(plan: Plan) -> str:
    unserved = plan.unserved
    if unserved.empty:
        return "<p>全部凉房已安排供电 Every storage block is served.</p>"
    head = (
        "<tr><th>凉房 block</th><th>小区 compound</th><th>表箱 box</th>"
        "<th>原因 reason</th><th>处理 what to do</th></tr>"
    )
    body = "".join(
        f"<tr><td>{esc(b)}</td><td>{esc(c)}</td><td>{esc(x)}</td><td>{esc(r)}</td>"
        f"<td>{esc(d)}</td></tr>"
        for b, c, x, r, d in zip(
            column(unserved, "block_id"),
            column(unserved, "compound_id"),
            column(unserved, "box_id"),
            column(unserved, "reason"),
            column(unserved, "detail"),
            strict=True,
        )
    )
    return f'<table id="unserved">{head}{body}</table>'


def _unserved_by_reason(plan: Plan) -> str:
    """Unserved blocks counted by reason and remedy (a city has too many to list)."""
    unserved = plan.unserved
    if unserved.empty:
        return "<p>全部凉房已安排供电 Every storage block is served.</p>"
    frame = pd.DataFrame(
        {
            "reason": [esc(v) for v in column(unserved, "reason")],
            "detail": [esc(v) for v in column(unserved, "detail")],
            "block": [str(v) for v in column(unserved, "block_id")],
            "compound": [str(v) for v in column(unserved, "compound_id")],
        }
    )
    counts = (
        frame.groupby(["reason", "detail"], sort=True)
        .agg(
            blocks=("block", "nunique"), boxes=("block", "size"), compounds=("compound", "nunique")
        )
        .reset_index()
        .sort_values(["blocks", "reason", "detail"], ascending=[False, True, True], kind="stable")
    )
    head = (
        "<tr><th>原因 reason</th><th class=n>凉房 blocks</th><th class=n>表箱 boxes</th>"
        "<th class=n>小区 compounds</th><th>处理 what to do</th></tr>"
    )
    body = "".join(
        f"<tr><td>{r}</td><td class=n>{b:,}</td><td class=n>{x:,}</td><td class=n>{c:,}</td>"
        f"<td>{d}</td></tr>"
        for r, d, b, x, c in counts[
            ["reason", "detail", "blocks", "boxes", "compounds"]
        ].itertuples(index=False)
    )
    note = (
        '<p class="muted">按原因汇总 Counted by reason: the block-by-block list is the plan\'s '
        "<code>unserved</code> layer (GeoPackage, GeoJSON, CSV); the ranking above gives "
        "each compound's count and each compound's map shows its blocks.</p>"
    )
    return f'<table id="unserved">{head}{body}</table>{note}'


def dashboard_page(
    plan: Plan,
    *,
    links: Mapping[str, str],
    district_href: str,
    heatmap_href: str,
    version: str,
    city: bool = False,
) -> str:
    """Render the managers' dashboard ``index.html``.

    Parameters
    ----------
    plan
        The plan.
    links
        ``{compound_id: relative link}`` to each compound's map.
    district_href, heatmap_href
        Relative links to the district map and the heatmap.
    version
        geoplan's version, printed in the footer.
    city
        City scale: a lean ranking table (every compound still listed) and the
        unserved blocks counted by reason instead of listed one by one.

    Returns
    -------
    html
        The page.
    """
    layers = plan.layers
    summary = plan.summary
    boxes = plan.meter_boxes
    compounds = layers["compounds"]
    blocks = layers["storage_blocks"]
    wires = layers["flying_wires"]
    used, reserved = _sum(boxes, "used"), _sum(boxes, "reserved")
    cost = _sum(summary, "cost_cny")
    cards = [
        (f"{len(compounds):,}", "小区 compounds"),
        (f"{_sum(summary, 'households'):,.0f}", "户 households"),
        (f"{_sum(summary, 'applicants'):,.0f}", "申请户 applicants"),
        (f"{len(boxes):,}", "集体表箱 meter boxes"),
        (f"{used:,.0f} / {reserved:,.0f}", "表位 positions used / reserved"),
        (f"{_sum(plan.cables, 'length_m') / 1000:,.2f} km", "电缆 cable"),
        (f"{_sum(plan.trenches, 'length_m') / 1000:,.2f} km", "电缆沟 trench"),
        (f"¥{cost:,.0f}", "总投资 cost, CNY"),
        (f"{len(plan.unserved):,}", "未供电凉房 unserved blocks"),
        (
            f"{_sum(summary, 'hazard_before'):,.0f} → {_sum(summary, 'hazard_after'):,.0f}",
            "隐患指数 hazard index before → after",
        ),
    ]

    compound_status = pd.Series(column(compounds, "status"), dtype="object").fillna("surveyed")
    households = pd.to_numeric(pd.Series(column(compounds, "households")), errors="coerce")
    block_status = pd.Series(column(blocks, "status"), dtype="object").fillna("surveyed")
    rooms = pd.to_numeric(pd.Series(column(blocks, "units")), errors="coerce").fillna(0)
    wire_status = pd.Series(column(wires, "status"), dtype="object").fillna("present")
    wire_hh = pd.to_numeric(pd.Series(column(wires, "households")), errors="coerce").fillna(1)
    n_wires = max(len(wires), 1)
    wire_rows = [
        (
            WIRE_LABELS.get(s, s),
            float((wire_status == s).sum()) / n_wires,
            f"{int((wire_status == s).sum())} 根 wires · "
            f"{float(wire_hh[wire_status == s].sum()):,.0f} 户 households",
        )
        for s in WIRE_STATUSES
    ]
    to_remove = len(_taken_down(plan))
    wire_rows.append(("方案拆除 removed by the plan", to_remove / n_wires, f"{to_remove} 根 wires"))

    title = "飞线整治 · 凉房集体表箱供电 — 管理看板"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}{LEAN_CSS if city else ''}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        '<p class="muted">Flying-wire removal and storage-room supply: managers\' dashboard</p>',
        f'<nav><a href="{esc(district_href)}">{esc(OVERVIEW_LABEL if city else PLAN_LABEL)}</a>'
        f'<a href="{esc(heatmap_href)}">隐患热力图 Hazard heatmap</a>'
        '<a href="#ranking">优先顺序 Priority</a>'
        '<a href="#unserved-list">未供电 Unserved</a></nav>',
        '<div class="cards">' + "".join(_card(v, k) for v, k in cards) + "</div>",
        "<h2>进度 Progress</h2>",
        "<h3>小区 Compounds (按户数 by households)</h3>",
        _status_bars(compound_status, households.fillna(0), "户"),
        "<h3>凉房 Storage blocks (按间数 by rooms)</h3>",
        _status_bars(block_status, rooms, "间"),
        "<h3>飞线 Flying wires</h3>",
        _bars(wire_rows, warn=True),
        "<h2>优先顺序 Compounds by priority</h2>",
        '<p class="muted">1 = most hazard removed per yuan; every compound is listed.</p>',
        _ranking(plan, links, lean=city),
        '<h2 id="unserved-list">未供电 Unserved storage blocks</h2>',
        _unserved_by_reason(plan) if city else _unserved(plan),
        f'<p class="muted">geoplan {esc(version)}</p>',
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
