"""The command line: ``python -m harness`` from bench/ (scripts/bench sets it all up).

With no arguments: every scenario, every default target that applies, 3 rounds,
results in bench/results/<date>-<time>.{json,md,svg,servers.log}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import goals as goals_mod
from harness.chart import render_svg
from harness.report import markdown
from harness.scenarios import SCENARIOS, WS
from harness.summary import summarise
from harness.targets import BENCH_DIR, TARGETS, PortAllocator, Target, added_target

RESULTS_DIR = BENCH_DIR / "results"
# Settings --quick changes; the others keep their normal defaults.
NORMAL = {
    "rounds": 3,
    "duration": 10.0,
    "warmup": 2.0,
    "idle_hold": 12.0,
    "idle_wrk_seconds": 5.0,
    "wait_quiet": 10.0,
}
QUICK = {
    "rounds": 1,
    "duration": 3.0,
    "warmup": 1.0,
    "idle_hold": 6.0,
    "idle_wrk_seconds": 2.0,
    "wait_quiet": 3.0,
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Levante's benchmark suite (see bench/README.md).",
    )
    ap.add_argument("--list", action="store_true", help="list targets and scenarios and exit")
    ap.add_argument("--targets", default="", help="comma-separated (default: every default one)")
    ap.add_argument(
        "--add-target",
        "-T",
        action="append",
        default=[],
        metavar="NAME=CMD",
        help="add (and run) a target: a shell command with {port} (and {host}); repeatable",
    )
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    ap.add_argument("--quick", action="store_true", help="preset: " + _preset_text())
    ap.add_argument("--rounds", type=int, help=f"default {NORMAL['rounds']}")
    ap.add_argument("--duration", type=float, help="measured seconds per run (default 10)")
    ap.add_argument("--warmup", type=float, help="discarded seconds before it (default 2)")
    ap.add_argument(
        "--baseline",
        default="uvicorn,hypercorn",
        help="ordered preference; a scenario uses the first with valid results",
    )
    ap.add_argument("--out", help="JSON path (default: bench/results/<date>-<time>.json)")
    ap.add_argument("--server-cpu", type=int, default=0, help="default %(default)s")
    ap.add_argument("--client-cpu", type=int, default=1, help="load generator, harness")
    ap.add_argument("--port-range", default="19000-19999", help="default %(default)s")
    ap.add_argument("--wrk-timeout", type=float, default=5, help="seconds (default 5)")
    ap.add_argument("--idle-conns", type=int, default=0, help="held connections (0: 5000)")
    ap.add_argument("--idle-concurrency", type=int, default=256, help="connects in flight")
    ap.add_argument("--idle-hold", type=float, help="seconds to the reuse probe (default 12)")
    ap.add_argument("--idle-wrk-seconds", type=float, help="wrk while held (default 5)")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        help="before each run, wait up to this many seconds for other processes to go "
        "quiet (0: off; default 10)",
    )
    ap.add_argument(
        "--quiet-threshold",
        type=float,
        default=110,
        help="'quiet': others use less than this %% of one core over 0.5 s (default 110)",
    )
    return ap


def _preset_text() -> str:
    return ", ".join(f"{k.replace('_', '-')} {v:g}" for k, v in QUICK.items())


def apply_preset(args: argparse.Namespace) -> None:
    """Fill the settings not given on the command line from --quick or the normal defaults."""
    preset = QUICK if args.quick else NORMAL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, type(value)(value))


def resolve_targets(args: argparse.Namespace) -> tuple[dict[str, Target], list[str]]:
    """All known targets (built-in and -T) and the names to run, in order."""
    known = dict(TARGETS)
    names = [t for t in args.targets.split(",") if t and t != "all"]
    args.explicit_targets = bool(names)
    if not names:
        names = [t.name for t in TARGETS.values() if t.default]
    for spec in args.add_target:
        target = added_target(spec)
        known[target.name] = target
        if target.name not in names:
            names.append(target.name)
    return known, names


def print_list(known: dict[str, Target]) -> None:
    print("targets (* = in the default run; served protocols):")
    for t in known.values():
        mark = "*" if t.default else " "
        print(f" {mark} {t.name:20s} [{','.join(sorted(t.serves))}] {t.command}")
        if t.note:
            print(f"   {'':20s} {t.note}")
    print("scenarios:")
    for s in SCENARIOS.values():
        print(f"   {s.name:16s} {s.description}")


@dataclass
class Output:
    """Where one run's files go; rewritten after every record, so an interrupted run keeps data."""

    json_path: Path

    @property
    def md_path(self) -> Path:
        return self.json_path.with_suffix(".md")

    @property
    def svg_path(self) -> Path:
        return self.json_path.with_suffix(".svg")

    @property
    def log_path(self) -> Path:
        return self.json_path.with_suffix(".servers.log")

    def save(self, meta: dict[str, Any], runs: list[dict[str, Any]]) -> str:
        """Write JSON, markdown and SVG; returns the markdown."""
        names = list(meta["targets"])
        summary = summarise(runs, meta["scenarios"], names, meta["baseline_preference"])
        results = goals_mod.evaluate(summary)
        issue9 = {"results": results, "tally": goals_mod.tally(results)}
        document = {"meta": meta, "summary": summary, "issue9": issue9, "runs": runs}
        self.json_path.write_text(json.dumps(document, indent=1) + "\n")
        self.svg_path.write_text(render_svg(summary))
        text = markdown(summary, meta, results, self.svg_path.name)
        self.md_path.write_text(text + "\n")
        return text


def default_out() -> Path:
    return RESULTS_DIR / (time.strftime("%Y-%m-%d-%H%M%S") + ".json")


def prepare_process(server_cpu: int, client_cpu: int) -> None:
    """Pin the harness (and so its load generators) to the client CPU; raise the fd limit."""
    ncpu = os.cpu_count() or 1
    if max(server_cpu, client_cpu) >= ncpu or server_cpu == client_cpu:
        raise SystemExit(f"need two different CPUs below {ncpu} for server and client")
    os.sched_setaffinity(0, {client_cpu})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def warn_missing_tools(scenarios: list[str]) -> None:
    for tool in ("wrk", "h2load", "taskset"):
        if not shutil.which(tool):
            print(f"warning: {tool} not found on PATH", file=sys.stderr)
    if any(SCENARIOS[s].protocol == WS and not SCENARIOS[s].idle for s in scenarios):
        from harness.loadgen import ensure_ws_load

        ensure_ws_load()


def make_meta(
    args: argparse.Namespace, known: dict[str, Target], names: list[str]
) -> dict[str, Any]:
    from harness.machine import describe

    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "argv": sys.argv,
        "quick": args.quick,
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "idle_conns": args.idle_conns or SCENARIOS["idle-http"].conns,
        "targets": {t: known[t].command for t in names},
        "scenarios": args.scenarios_list,
        "baseline_preference": args.baseline.split(","),
        "machine": describe(),
        "loadavg_start": os.getloadavg(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def measure_all(args: argparse.Namespace, known: dict[str, Target], names: list[str]) -> int:
    # The measuring modules need psutil: imported here, so --list works without it.
    from harness.idle import IdleSettings
    from harness.loadgen import LoadGen
    from harness.runner import Rounds, RunSettings

    settings = RunSettings(
        duration=args.duration,
        warmup=args.warmup,
        server_cpu=args.server_cpu,
        idle=IdleSettings(
            args.idle_conns, args.idle_concurrency, args.idle_hold, args.idle_wrk_seconds
        ),
        wait_quiet=args.wait_quiet,
        quiet_threshold=args.quiet_threshold,
    )
    out = Output(Path(args.out).resolve() if args.out else default_out())
    out.json_path.parent.mkdir(parents=True, exist_ok=True)
    meta = make_meta(args, known, names)
    runs: list[dict[str, Any]] = []
    lo, hi = (int(x) for x in args.port_range.split("-"))
    with tempfile.TemporaryDirectory(prefix="levante-bench-") as tmp:
        rounds = Rounds(
            targets=[known[n] for n in names],
            scenarios=args.scenarios_list,
            rounds=args.rounds,
            explicit_targets=args.explicit_targets,
            settings=settings,
            ports=PortAllocator(lo, hi),
            loadgen=LoadGen(args.client_cpu, args.wrk_timeout, Path(tmp)),
            log_path=out.log_path,
            on_record=lambda: out.save(meta, runs),
        )
        rounds.run(runs)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    print(out.save(meta, runs))
    print(f"\nwrote {out.json_path}, {out.md_path.name}, {out.svg_path.name}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    apply_preset(args)
    try:
        known, names = resolve_targets(args)
    except ValueError as e:
        ap.error(str(e))
    if args.list:
        print_list(known)
        return 0
    args.scenarios_list = [s for s in args.scenarios.split(",") if s]
    unknown = [t for t in names if t not in known]
    unknown += [s for s in args.scenarios_list if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown target/scenario: {unknown} (see --list)")
    warn_missing_tools(args.scenarios_list)
    prepare_process(args.server_cpu, args.client_cpu)
    return measure_all(args, known, names)
