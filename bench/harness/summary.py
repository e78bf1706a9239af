"""From run records to per-scenario, per-target figures and ratios.

A ratio is always taken *within a round* (both runs close together in time) and
the reported figure is the median of the per-round ratios. Each summary row
keeps its per-round values (`by_round`, `by_round_per_core`, keyed by the round
number as a string, as in the JSON), so that the ratio of any two targets can be
computed later from the same rounds (`pair_ratio`).
"""

from __future__ import annotations

import statistics
from typing import Any

from harness.scenarios import SCENARIOS

IDLE_FIELDS = (
    "opened",
    "server_established",
    "rss_before_mib",
    "rss_held_mib",
    "kib_per_conn",
    "open_s",
    "reuse_ok",
    "reuse_closed",
    "held_s_before_reuse",
    "conns_target",
)


def valid(rec: dict[str, Any]) -> bool:
    bad = ("error", "check_error", "skipped", "not_applicable")
    return not any(key in rec for key in bad)


def per_core(rec: dict[str, Any], metric: str) -> float | None:
    """Throughput per fully used server core: metric / server CPU share."""
    pct = rec.get("cpu", {}).get("server_cpu_pct")
    if not pct or rec.get(metric) is None:
        return None
    return float(rec[metric]) / (pct / 100.0)


def ratio_of_rounds(a: dict[str, float], b: dict[str, float]) -> tuple[float, float, float] | None:
    """Median, min and max of a[r] / b[r] over the rounds both have; None if there are none."""
    ratios = [a[r] / b[r] for r in a if b.get(r)]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def pair_ratio(
    summary: dict[str, Any], scenario: str, a: str, b: str, key: str = "by_round"
) -> float | None:
    """Median per-round ratio a/b in `scenario` (key "by_round_per_core": per-core figures)."""
    rows = summary.get(scenario, {}).get("targets", {})
    ra, rb = rows.get(a, {}), rows.get(b, {})
    if not ra.get("ok") or not rb.get("ok"):
        return None
    r = ratio_of_rounds(ra.get(key) or {}, rb.get(key) or {})
    return round(r[0], 3) if r else None


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _spread(xs: list[float]) -> float | None:
    med = _median(xs)
    return round(100 * (max(xs) - min(xs)) / med, 1) if med else None


def _ratio_fields(prefix: str, r: tuple[float, float, float] | None) -> dict[str, float | None]:
    med, lo, hi = r if r else (None, None, None)
    return {
        f"{prefix}_median": _r(med, 3),
        f"{prefix}_min": _r(lo, 3),
        f"{prefix}_max": _r(hi, 3),
    }


def _failed_row(allrecs: list[dict[str, Any]]) -> dict[str, Any]:
    na = next((r["not_applicable"] for r in allrecs if "not_applicable" in r), None)
    if na:
        return {"ok": False, "na": na}
    keys = ("check_error", "error", "skipped")
    why = next((r[k] for r in allrecs for k in keys if k in r), "not run")
    return {"ok": False, "why": why}


def _row(
    recs: list[dict[str, Any]],
    allrecs: list[dict[str, Any]],
    metric: str,
    base: dict[str, float],
    base_pc: dict[str, float],
) -> dict[str, Any]:
    by_round = {str(r["round"]): float(r[metric]) for r in recs}
    by_round_pc = {str(r["round"]): v for r in recs if (v := per_core(r, metric)) is not None}
    vals = list(by_round.values())
    pcs = list(by_round_pc.values())
    row: dict[str, Any] = {
        "ok": True,
        "rounds": len(recs),
        "metric": metric,
        "median": _r(_median(vals)),
        "min": _r(min(vals)),
        "max": _r(max(vals)),
        "spread_pct": _spread(vals),
        **_ratio_fields("ratio", ratio_of_rounds(by_round, base)),
        "per_core_median": _r(_median(pcs)),
        "per_core_spread_pct": _spread(pcs) if pcs else None,
        **_ratio_fields("per_core_ratio", ratio_of_rounds(by_round_pc, base_pc)),
        "errors": sum(r.get("socket_errors", 0) + r.get("non2xx", 0) for r in recs),
        "failed_rounds": len([r for r in allrecs if "round" in r]) - len(recs),
        "by_round": {k: round(v, 1) for k, v in by_round.items()},
        "by_round_per_core": {k: round(v, 1) for k, v in by_round_pc.items()},
        "rss_peak_mib": max(r.get("rss_peak_mib", 0) for r in recs),
    }
    for k in ("p50_ms", "p99_ms"):
        row[k] = _r(_median([r[k] for r in recs if r.get(k) is not None]), 2)
    for k in ("server_cpu_pct", "loadgen_cpu_pct", "foreign_cpu_pct"):
        row[k] = _r(_median([r["cpu"][k] for r in recs if "cpu" in r]))
    return row


def _idle_fields(recs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for k in IDLE_FIELDS:
        xs = [r[k] for r in recs if r.get(k) is not None]
        out[k] = statistics.median_low(xs) if xs else None
    return out


def summarise_scenario(
    runs: list[dict[str, Any]], sname: str, targets: list[str], baseline_pref: list[str]
) -> dict[str, Any]:
    sc = SCENARIOS[sname]
    metric = sc.metric
    srun = [r for r in runs if r["scenario"] == sname]
    good = {t: [r for r in srun if r["target"] == t and valid(r)] for t in targets}
    baseline = next((b for b in baseline_pref if good.get(b)), None)
    base_recs = good.get(baseline, []) if baseline else []
    base = {str(r["round"]): float(r[metric]) for r in base_recs}
    base_pc = {str(r["round"]): v for r in base_recs if (v := per_core(r, metric)) is not None}
    rows = {}
    for t in targets:
        allrecs = [r for r in srun if r["target"] == t]
        if not good[t]:
            rows[t] = _failed_row(allrecs)
            continue
        rows[t] = _row(good[t], allrecs, metric, base, base_pc)
        if sc.idle:
            rows[t].update(_idle_fields(good[t]))
    return {
        "baseline": baseline,
        "metric": metric,
        "description": sc.description,
        "targets": rows,
    }


def summarise(
    runs: list[dict[str, Any]], scenarios: list[str], targets: list[str], baseline_pref: list[str]
) -> dict[str, Any]:
    return {s: summarise_scenario(runs, s, targets, baseline_pref) for s in scenarios}
