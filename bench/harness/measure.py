"""What a run costs: the server tree's CPU and RSS, the load generator's CPU, everyone else's.

`psutil` is imported here only, so the rest of the harness (and its test) works
without it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from typing import Any

import psutil

Snapshot = dict[int, tuple[str, float]]


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def tree_established(pid: int, port: int) -> int:
    """Server-side ESTABLISHED TCP connections on `port` held by the tree of `pid`."""
    n = 0
    for p in _tree(pid):
        try:
            conns = p.net_connections(kind="tcp")
        except psutil.Error:
            continue
        n += sum(
            1
            for c in conns
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    return n


def proc_stat_busy() -> dict[str, float]:
    """Busy seconds per CPU line of /proc/stat (cpu, cpu0, cpu1, ...)."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            parts = line.split()
            vals = [int(v) for v in parts[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            # guest and guest_nice (fields 9, 10) are already counted in user and nice
            out[parts[0]] = (sum(vals[:8]) - idle) / hz
    return out


class RssSampler(threading.Thread):
    """Peak RSS of the server tree, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._done.wait(self.interval)

    def reset(self) -> None:
        self.peak = tree_rss(self.pid)

    def stop(self) -> int:
        self._done.set()
        self.join(2)
        return self.peak


def foreign_snapshot(exclude_root: int | None) -> Snapshot:
    """CPU seconds of every process that is neither this harness nor the server tree."""
    mine = {os.getpid()}
    if exclude_root:
        mine |= {p.pid for p in _tree(exclude_root)}
    snap = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        t = p.info["cpu_times"]
        if p.pid in mine or t is None:
            continue
        snap[p.pid] = (p.info["name"] or "?", t.user + t.system)
    return snap


def foreign_delta(before: Snapshot, after: Snapshot) -> tuple[float, list[tuple[str, float]]]:
    """Total CPU seconds used between two snapshots, and the three largest users by name."""
    total, per = 0.0, {}
    for pid, (name, cpu) in after.items():
        d = cpu - before.get(pid, (name, 0.0))[1]
        if d > 0:
            total += d
            per[name] = per.get(name, 0.0) + d
    top = sorted(per.items(), key=lambda kv: -kv[1])[:3]
    return total, top


def wait_quiet(max_wait: float, threshold_pct: float) -> tuple[float, float]:
    """Wait up to `max_wait` s until other processes use < `threshold_pct` of one core.

    Measured over 0.5 s windows. Returns (seconds waited, foreign CPU% of the last window).
    """
    t0 = time.monotonic()
    while True:
        a = foreign_snapshot(None)
        time.sleep(0.5)
        used, _ = foreign_delta(a, foreign_snapshot(None))
        pct = 100.0 * used / 0.5
        if pct < threshold_pct or time.monotonic() - t0 >= max_wait:
            return round(time.monotonic() - t0, 1), round(pct, 1)


def _rusage_seconds(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


class CpuWindow:
    """CPU use over one measured window: server tree, load generator, harness, foreign processes.

    Percentages of one core (100 = one core busy for the whole window). The load
    generator is the harness's child, so its share comes from RUSAGE_CHILDREN.
    """

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.result: dict[str, Any] = {}

    def __enter__(self) -> CpuWindow:
        self.foreign0 = foreign_snapshot(self.pid)
        self.t0 = time.monotonic()
        self.stat0 = proc_stat_busy()
        self.server0 = tree_cpu(self.pid)
        self.children0 = _rusage_seconds(resource.RUSAGE_CHILDREN)
        self.self0 = _rusage_seconds(resource.RUSAGE_SELF)
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.finish()

    def finish(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        stat1 = proc_stat_busy()
        foreign, top = foreign_delta(self.foreign0, foreign_snapshot(self.pid))
        server = tree_cpu(self.pid) - self.server0
        children = _rusage_seconds(resource.RUSAGE_CHILDREN) - self.children0
        me = _rusage_seconds(resource.RUSAGE_SELF) - self.self0
        all_busy = stat1["cpu"] - self.stat0["cpu"]

        def pct(seconds: float) -> float:
            return round(100.0 * seconds / wall, 1) if wall > 0 else 0.0

        res: dict[str, Any] = {
            "wall_s": round(wall, 2),
            "server_cpu_pct": pct(server),
            "loadgen_cpu_pct": pct(children),
            "harness_cpu_pct": pct(me),
            # every other process on the machine (e.g. someone else's test servers)
            "foreign_cpu_pct": pct(foreign),
            "foreign_top": [(name, pct(c)) for name, c in top],
            # busy time charged to none of the above (kernel threads, irq, accounting slack)
            "unaccounted_cpu_pct": pct(max(0.0, all_busy - server - children - me - foreign)),
        }
        for key, busy in stat1.items():
            if key != "cpu":
                res[f"{key}_busy_pct"] = pct(busy - self.stat0.get(key, 0.0))
        return res
