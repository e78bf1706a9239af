"""The markdown report: machine and settings, the targets of issue 9, one table per scenario."""

from __future__ import annotations

from typing import Any

EXPLAIN = (
    "Ratio = target / baseline in the same round (median of per-round ratios, [min-max]). "
    "Spread = (max-min)/median across rounds. CPU% columns: 100 = one core; foreign = "
    "processes that are neither the server, the load generator nor the harness. "
    "Per server core = throughput / server CPU share (what one fully used core would do; "
    "robust to CPU taken by foreign processes, blind to stalls)."
)
_THROUGHPUT_COLUMNS = (
    "{unit} median | min-max | spread | ratio vs {base} | {unit} per server core | spread | "
    "per-core ratio | p50 ms | p99 ms | errors | peak RSS MiB | server CPU% | client CPU% | "
    "foreign CPU%"
)
_IDLE_COLUMNS = (
    "held / asked | server estab. | RSS before MiB | RSS held MiB | KiB/conn | open s | "
    "req/s while held | ratio vs {base} | p99 ms | reuse ok/closed (after s)"
)


def _fmt(x: Any, spec: str = "") -> str:
    if x is None:
        return "-"
    return format(x, spec) if spec else str(x)


def header(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    return [
        f"# Levante benchmark ({meta['started']})",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs, "
        f"kernel {m.get('kernel', '?')}, Python {m.get('python', '?')}; "
        f"Levante {m.get('levante', '?')} at {m.get('commit', '?')}.",
        "",
        f"Server on CPU {meta['server_cpu']}, load generator + harness on CPU "
        f"{meta['client_cpu']}; {meta['rounds']} interleaved round(s), {meta['duration']:g}s "
        f"measured after {meta['warmup']:g}s warm-up. {EXPLAIN}",
        "",
    ]


def _goal_value(r: dict[str, Any]) -> str:
    if r["measured"] is None:
        return "-"
    spec = ".3f" if r["versus"] else ".1f"
    return format(r["measured"], spec)


def goals_section(results: list[dict[str, Any]], scenarios: list[str]) -> list[str]:
    """The goals of the scenarios that were run (all of them are in the JSON)."""
    shown = [r for r in results if r["scenario"] in scenarios]
    not_run = sorted({r["scenario"] for r in results} - set(scenarios))
    lines = [
        "## Targets of issue 9",
        "",
        "Ratios are medians of per-round ratios of the two targets (same rounds); the "
        "per-core column divides each by its server CPU share. INFO rows have no threshold; "
        "MISSING: a target was not measured (not run, or failed).",
        "",
    ]
    if not_run:
        lines += [f"Scenarios not in this run, so not evaluated: {', '.join(not_run)}.", ""]
    lines += [
        "| scenario | measure | measured | per-core | threshold | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in shown:
        threshold = f"{r['op']} {r['threshold']:g}" if r["op"] else "-"
        label = r["goal"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(
            f"| {r['scenario']} | {label} | {_goal_value(r)} | {_fmt(r['per_core'], '.3f')} | "
            f"{threshold} | **{r['status']}** |"
        )
    return [*lines, ""]


def _not_measured(name: str, r: dict[str, Any], columns: int) -> str:
    text = f"n/a: {r['na']}" if "na" in r else f"failed: {str(r['why'])[:100]}"
    return f"| {name} | {text} |" + "|" * (columns - 1)


def _ratio(r: dict[str, Any], prefix: str) -> str:
    med, lo, hi = (r.get(f"{prefix}_{k}") for k in ("median", "min", "max"))
    if med is None:
        return "-"
    if lo is None or hi is None:
        return f"{med:.2f}"
    return f"{med:.2f} [{lo:.2f}-{hi:.2f}]"


def throughput_table(s: dict[str, Any]) -> list[str]:
    unit = "msg/s" if s["metric"] == "msgs_per_s" else "req/s"
    columns = _THROUGHPUT_COLUMNS.format(unit=unit, base=s["baseline"])
    n = columns.count("|") + 1
    lines = [
        f"Baseline: **{s['baseline']}**",
        "",
        f"| target | {columns} |",
        "|---" * (n + 1) + "|",
    ]
    for name, r in s["targets"].items():
        if not r["ok"]:
            lines.append(_not_measured(name, r, n))
            continue
        failed = f" ({r['failed_rounds']} failed)" if r.get("failed_rounds") else ""
        g = r.get
        lines.append(
            f"| {name} | {_fmt(g('median'), '.0f')}{failed} | "
            f"{_fmt(g('min'), '.0f')}-{_fmt(g('max'), '.0f')} | {_fmt(g('spread_pct'))}% | "
            f"{_ratio(r, 'ratio')} | {_fmt(g('per_core_median'), '.0f')} | "
            f"{_fmt(g('per_core_spread_pct'))}% | {_ratio(r, 'per_core_ratio')} | "
            f"{_fmt(g('p50_ms'))} | {_fmt(g('p99_ms'))} | {_fmt(g('errors'))} | "
            f"{_fmt(g('rss_peak_mib'))} | {_fmt(g('server_cpu_pct'))} | "
            f"{_fmt(g('loadgen_cpu_pct'))} | {_fmt(g('foreign_cpu_pct'))} |"
        )
    return lines


def idle_table(s: dict[str, Any]) -> list[str]:
    columns = _IDLE_COLUMNS.format(base=s["baseline"])
    n = columns.count("|") + 1
    lines = [f"| target | {columns} |", "|---" * (n + 1) + "|"]
    for name, r in s["targets"].items():
        if not r["ok"]:
            lines.append(_not_measured(name, r, n))
            continue
        g = r.get
        lines.append(
            f"| {name} | {_fmt(g('opened'))}/{_fmt(g('conns_target'))} | "
            f"{_fmt(g('server_established'))} | {_fmt(g('rss_before_mib'))} | "
            f"{_fmt(g('rss_held_mib'))} | {_fmt(g('kib_per_conn'))} | {_fmt(g('open_s'))} | "
            f"{_fmt(g('median'), '.0f')} | {_ratio(r, 'ratio')} | {_fmt(g('p99_ms'))} | "
            f"{_fmt(g('reuse_ok'))}/{_fmt(g('reuse_closed'))} "
            f"({_fmt(g('held_s_before_reuse'))}) |"
        )
    return lines


def scenario_section(name: str, s: dict[str, Any]) -> list[str]:
    lines = [f"## {name}: {s['description']}", ""]
    table = idle_table(s) if s["metric"] == "held_rps" else throughput_table(s)
    return [*lines, *table, ""]


def commands_section(meta: dict[str, Any]) -> list[str]:
    lines = ["## Target commands", "", "Run from bench/ with the venv's bin/ first on PATH.", ""]
    lines += [f"- `{name}`: `{cmd}`" for name, cmd in meta["targets"].items()]
    return [*lines, ""]


def markdown(
    summary: dict[str, Any], meta: dict[str, Any], goals: list[dict[str, Any]], chart_name: str
) -> str:
    lines = header(meta)
    if chart_name:
        lines += [f"![ratios against each scenario's baseline]({chart_name})", ""]
    lines += goals_section(goals, list(summary))
    for name, s in summary.items():
        lines += scenario_section(name, s)
    lines += commands_section(meta)
    return "\n".join(lines)
