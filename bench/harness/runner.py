"""One measured run (fresh server, check, load, stop) and the interleaved rounds around it."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks import check_scenario
from harness.idle import MIB, IdleSettings, run_idle
from harness.loadgen import LoadGen
from harness.measure import CpuWindow, RssSampler, tree_rss, wait_quiet
from harness.scenarios import SCENARIOS, Scenario, skip_reason
from harness.targets import PortAllocator, Server, Target


@dataclass(frozen=True)
class RunSettings:
    duration: float  # measured seconds per run
    warmup: float  # discarded seconds before it
    server_cpu: int
    idle: IdleSettings
    wait_quiet: float  # seconds to wait for other processes to go quiet (0: off)
    quiet_threshold: float  # "quiet": others use less than this % of one core


def _measure(
    sc: Scenario, server: Server, loadgen: LoadGen, settings: RunSettings, sampler: RssSampler
) -> dict[str, Any]:
    port = server.port
    if sc.idle:
        return asyncio.run(run_idle(sc, server, loadgen, settings.idle))
    if sc.kind == "wrk":
        warm = loadgen.run_wrk(sc, port, settings.warmup) if settings.warmup > 0 else {}
        sampler.reset()
        with CpuWindow(server.pid) as cw:
            res = loadgen.run_wrk(sc, port, settings.duration)
        res["warmup_rps"] = warm.get("rps")
    elif sc.kind == "h2load":
        with CpuWindow(server.pid) as cw:
            res = loadgen.run_h2load(sc, port, settings.duration, settings.warmup)
    else:
        with CpuWindow(server.pid) as cw:
            res = loadgen.run_ws(sc, port, settings.duration, settings.warmup)
    res["cpu"] = cw.result
    return res


def run_one(
    target: Target,
    sc: Scenario,
    *,
    settings: RunSettings,
    ports: PortAllocator,
    loadgen: LoadGen,
    log_path: Path,
) -> dict[str, Any]:
    """Start `target` fresh, check it, load it, stop it; the record of that run."""
    server = Server(target, ports.take(), log_path, cpu=settings.server_cpu)
    rec: dict[str, Any] = {"target": target.name, "scenario": sc.name, "port": server.port}
    sampler = None
    server.start()
    try:
        rec["startup_s"] = round(server.wait_ready(), 2)
        error = check_scenario(sc, server.port)
        if error:
            rec["check_error"] = error
            return rec
        rec["rss_idle_mib"] = round(tree_rss(server.pid) / MIB, 1)
        sampler = RssSampler(server.pid)
        sampler.start()
        rec.update(_measure(sc, server, loadgen, settings, sampler))
        peak = max(sampler.stop(), int(rec.get("rss_peak_mib", 0) * MIB))
        rec["rss_peak_mib"] = round(peak / MIB, 1)
        if server.proc is not None and server.proc.poll() is not None:
            rec["error"] = f"server died during run (rc={server.proc.returncode})"
    except Exception as e:  # recorded, and the rounds go on with the next run
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        if sampler and sampler.is_alive():
            sampler.stop()
        server.stop()
    return rec


def status_line(rec: dict[str, Any], metric: str) -> str:
    problem = rec.get("check_error") or rec.get("error") or rec.get("skipped")
    if problem:
        return str(problem)
    cpu = rec.get("cpu", {})
    return (
        f"{rec.get(metric, 0):.0f} {metric} p99={rec.get('p99_ms')}ms "
        f"rss={rec.get('rss_peak_mib')}MiB srv={cpu.get('server_cpu_pct')}% "
        f"cli={cpu.get('loadgen_cpu_pct')}% foreign={cpu.get('foreign_cpu_pct')}% "
        f"waited={rec.get('quiet_wait_s')}s"
    )


@dataclass
class Rounds:
    """The whole measurement: every scenario, `rounds` interleaved rounds of its targets."""

    targets: list[Target]
    scenarios: list[str]
    rounds: int
    explicit_targets: bool  # named with --targets (then only protocol decides what is skipped)
    settings: RunSettings
    ports: PortAllocator
    loadgen: LoadGen
    log_path: Path
    on_record: Callable[[], object]  # called after every record (the caller saves)

    def run(self, runs: list[dict[str, Any]]) -> None:
        for sname in self.scenarios:
            sc = SCENARIOS[sname]
            active = self._applicable(sc, runs)
            failed: set[str] = set()
            for rnd in range(self.rounds):
                k = rnd % len(active) if active else 0
                for target in active[k:] + active[:k]:  # rotated: no target always first or last
                    runs.append(self._one(target, sc, rnd, failed))
                    self.on_record()

    def _applicable(self, sc: Scenario, runs: list[dict[str, Any]]) -> list[Target]:
        active = []
        for target in self.targets:
            reason = skip_reason(target, sc, self.explicit_targets)
            if reason:
                runs.append({"target": target.name, "scenario": sc.name, "not_applicable": reason})
            else:
                active.append(target)
        return active

    def _one(self, target: Target, sc: Scenario, rnd: int, failed: set[str]) -> dict[str, Any]:
        t0 = time.monotonic()
        if target.name in failed:
            rec = {
                "target": target.name,
                "scenario": sc.name,
                "skipped": "failed its check earlier",
            }
        else:
            waited, before = 0.0, None
            if self.settings.wait_quiet > 0:
                waited, before = wait_quiet(self.settings.wait_quiet, self.settings.quiet_threshold)
            rec = run_one(
                target,
                sc,
                settings=self.settings,
                ports=self.ports,
                loadgen=self.loadgen,
                log_path=self.log_path,
            )
            rec["quiet_wait_s"], rec["foreign_before_pct"] = waited, before
            if "check_error" in rec:
                failed.add(target.name)
        rec["round"] = rnd
        rec["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        took = time.monotonic() - t0
        print(
            f"[{sc.name} r{rnd + 1}/{self.rounds}] {target.name:20s} "
            f"{status_line(rec, sc.metric)}  ({took:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        return rec
