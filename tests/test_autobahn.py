"""Autobahn|Testsuite's fuzzing client against Levante, through scripts/autobahn.

The script creates the suite's Python 2.7 environment on first use (.venv-autobahn),
serves tests/apps/autobahn_echo.py on 127.0.0.1 and summarises the report. It exits
77 when that environment cannot be created (no Python 2.7, no package index): the
tests skip then, and fail on any FAILED case otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "autobahn"
UNAVAILABLE = 77


def run_autobahn(*args: str, outdir: str, timeout: float) -> str:
    env = dict(os.environ)
    env["AUTOBAHN_TIMEOUT"] = str(int(timeout) - 120)
    result = subprocess.run(
        [str(SCRIPT), *args, "--outdir", outdir],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout
    if result.returncode == UNAVAILABLE:
        pytest.skip(f"Autobahn|Testsuite's Python 2.7 environment is unavailable: {output.strip()}")
    summary = re.findall(r"^autobahn: (\d+) passed, (\d+) failed", output, re.MULTILINE)
    assert summary, f"scripts/autobahn printed no summary (exit {result.returncode}):\n{output}"
    passed, failed = (int(n) for n in summary[-1])
    assert failed == 0 and "FAILED cases" not in output, f"Autobahn cases FAILED:\n{output}"
    assert passed > 0, output
    assert result.returncode == 0, f"scripts/autobahn exited {result.returncode}:\n{output}"
    return output


@pytest.mark.timeout(900)
def test_autobahn_quick_subset_has_no_failed_case(tmp_path: Path) -> None:
    run_autobahn("--quick", outdir=str(tmp_path / "reports"), timeout=840)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_autobahn_full_suite_has_no_failed_case(tmp_path: Path) -> None:
    run_autobahn(outdir=str(tmp_path / "reports"), timeout=3540)
