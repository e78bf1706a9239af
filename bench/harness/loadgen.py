"""Load generators: wrk (HTTP/1.1), h2load (HTTP/2), ws_load (WebSocket echo, bench/ws_load.c).

Each runs under ``taskset -c CLIENT_CPU`` and its output is parsed into a record:
throughput (`rps` or `msgs_per_s`), latency percentiles in ms, socket errors,
non-2xx responses, and the exact command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from harness.scenarios import UPLOAD_SIZE, Scenario
from harness.targets import BENCH_DIR, HOST

WS_LOAD_SOURCE = BENCH_DIR / "ws_load.c"
# Built by scripts/bench (or here, on first use); bench/build/ is not committed.
WS_LOAD = Path(os.environ.get("LEVANTE_BENCH_BUILD", BENCH_DIR / "build")) / "ws_load"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ensure_ws_load() -> Path:
    """Build ws_load with gcc when it is missing or older than its source."""
    if not WS_LOAD.exists() or WS_LOAD.stat().st_mtime < WS_LOAD_SOURCE.stat().st_mtime:
        WS_LOAD.parent.mkdir(parents=True, exist_ok=True)
        command = ["gcc", "-O2", "-o", str(WS_LOAD), str(WS_LOAD_SOURCE)]
        subprocess.run(command, check=True)
    return WS_LOAD


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """The numbers of a `wrk --latency` report."""
    res: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out)
    if m:
        res["requests"] = int(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        if m:
            res[f"p{pct}_ms"] = round(_ms(m.group(1)), 3)
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["max_ms"] = round(_ms(m.group(3)), 3)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    if m:
        kinds = ("connect", "read", "write", "timeout")
        res["socket_errors_detail"] = dict(zip(kinds, map(int, m.groups()), strict=True))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Transfer/sec:\s+(\S+)", out)
    if m:
        res["transfer_per_s"] = m.group(1)
    return res


def parse_h2load(out: str) -> dict[str, Any]:
    """Throughput and error counts of an h2load report (latency comes from its log file)."""
    res: dict[str, Any] = {}
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    res["rps"] = float(m.group(2)) if m else 0.0
    m = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    if m:
        res["requests"] = int(m.group(4))
        res["socket_errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    res["non2xx"] = (int(m.group(3)) + int(m.group(4))) if m else 0
    return res


def h2load_latency(log: Path, warmup: float) -> dict[str, float]:
    """p50/p90/p99/max in ms from h2load's per-request log, requests of the warm-up dropped."""
    rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    if not rows:
        return {}
    cut = min(int(r[0]) for r in rows) + int(warmup * 1e6)
    lat = sorted(int(r[2]) for r in rows if int(r[0]) >= cut and r[1] != "-1")
    if not lat:
        return {}
    res = {
        f"p{pct}_ms": round(lat[min(len(lat) - 1, int(len(lat) * pct / 100))] / 1000, 3)
        for pct in (50, 90, 99)
    }
    res["max_ms"] = round(lat[-1] / 1000, 3)
    return res


class LoadGen:
    """Runs the load generators pinned to the client CPU."""

    def __init__(self, client_cpu: int, wrk_timeout: float, tmp: Path) -> None:
        self.prefix = ["taskset", "-c", str(client_cpu)]
        self.wrk_timeout = wrk_timeout
        self.tmp = tmp
        self.upload_lua = tmp / "upload.lua"
        self.upload_lua.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = string.rep("x", {UPLOAD_SIZE})\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        )

    def wrk_cmd(self, sc: Scenario, port: int, seconds: float, conns: int = 0) -> list[str]:
        cmd = [
            *self.prefix,
            "wrk",
            "-t1",
            f"-c{conns or sc.conns}",
            f"-d{seconds:g}s",
            "--latency",
            "--timeout",
            f"{self.wrk_timeout:g}s",
        ]
        if sc.method == "POST":
            cmd += ["-s", str(self.upload_lua)]
        return [*cmd, f"http://{HOST}:{port}{sc.path}"]

    def run_wrk(self, sc: Scenario, port: int, seconds: float) -> dict[str, Any]:
        cmd = self.wrk_cmd(sc, port, seconds)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        res = parse_wrk(p.stdout)
        res["command"] = " ".join(cmd)
        if p.returncode != 0 or "Requests/sec" not in p.stdout:
            res["error"] = f"wrk rc={p.returncode}: {p.stderr.strip()[-300:]}"
        return res

    def run_h2load(self, sc: Scenario, port: int, seconds: float, warmup: float) -> dict[str, Any]:
        log = self.tmp / "h2load.log"
        log.unlink(missing_ok=True)
        cmd = [
            *self.prefix,
            "h2load",
            "-t1",
            f"-c{sc.conns}",
            f"-m{sc.streams}",
            "-D",
            f"{seconds:g}",
            f"--warm-up-time={warmup:g}",
            f"--log-file={log}",
            f"http://{HOST}:{port}{sc.path}",
        ]
        timeout = seconds + warmup + 60
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        res = parse_h2load(p.stdout)
        res["command"] = " ".join(cmd)
        try:
            res.update(h2load_latency(log, warmup))
        except (OSError, ValueError, IndexError) as e:
            res["latency_error"] = str(e)
        if p.returncode != 0 or not res["rps"]:
            res["error"] = f"h2load rc={p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}"
        return res

    def run_ws(self, sc: Scenario, port: int, seconds: float, warmup: float) -> dict[str, Any]:
        cmd = [
            *self.prefix,
            str(ensure_ws_load()),
            HOST,
            str(port),
            sc.path,
            str(sc.conns),
            f"{seconds:g}",
            f"{warmup:g}",
            str(sc.ws_size),
        ]
        timeout = seconds + warmup + 60
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        try:
            res: dict[str, Any] = json.loads(p.stdout)
        except ValueError:
            error = f"ws_load rc={p.returncode}: {p.stderr.strip()[-300:]}"
            return {"command": " ".join(cmd), "msgs_per_s": 0.0, "error": error}
        res["command"] = " ".join(cmd)
        res["socket_errors"] = res.get("errors", 0)
        if res.get("handshakes_ok", 0) < sc.conns or res.get("open_at_end", 0) < sc.conns:
            opened, at_end = res.get("handshakes_ok"), res.get("open_at_end")
            res["error"] = f"only {opened} handshakes, {at_end} open at end"
        return res
