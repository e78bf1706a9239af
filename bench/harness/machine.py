"""What a run ran on: CPU, kernel, Python, package and tool versions, the checkout's commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from harness.targets import BENCH_DIR

PACKAGES = (
    "levante",
    "uvicorn",
    "httptools",
    "uvloop",
    "h11",
    "websockets",
    "wsproto",
    "hypercorn",
    "h2",
    "granian",
    "daphne",
    "twisted",
    "starlette",
    "fastapi",
    "pydantic",
    "litestar",
    "msgspec",
    "blacksheep",
    "orjson",
    "psutil",
)
TOOLS = (("wrk", "-v"), ("h2load", "--version"), ("gcc", "--version"))


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def tool_versions() -> dict[str, str]:
    out = {}
    for tool, flag in TOOLS:
        try:
            p = subprocess.run([tool, flag], capture_output=True, text=True, timeout=5, check=False)
            out[tool] = (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[tool] = "missing"
    return out


def commit() -> str:
    """The checkout's HEAD (read only; uncommitted changes are not shown)."""
    try:
        p = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return p.stdout.strip() or "unknown"


def levante_build() -> str:
    """ "compiled" (mypyc, what a normal install builds) or "pure Python"."""
    try:
        import levante.server
    except ImportError:
        return "not installed"
    return "compiled" if levante.server.compiled() else "pure Python"


def describe() -> dict[str, object]:
    """The `machine` block of a result's meta."""
    packages = package_versions()
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "levante": packages["levante"],
        "levante_build": levante_build(),
        "commit": commit(),
        "packages": packages,
        "tools": tool_versions(),
    }
