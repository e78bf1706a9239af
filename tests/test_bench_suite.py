"""The benchmark suite (bench/harness), without any load generator.

Its own target-start code starts `floor` (and its two variants with a task per
request and with the raw app in it), `levante` and `levante-web` on a free
loopback port, and its correctness checks pass against each for every HTTP/1.1
scenario (and the WebSocket echo for the two Levante targets). The SVG chart is
well-formed XML, and the issue-9 evaluation gives the expected PASS/FAIL on a
synthetic summary.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.append(str(BENCH_DIR))

from harness import chart, goals, report  # noqa: E402
from harness.checks import check_scenario  # noqa: E402
from harness.scenarios import HTTP1_SCENARIOS, SCENARIOS, skip_reason  # noqa: E402
from harness.summary import pair_ratio  # noqa: E402
from harness.targets import TARGETS, Server, free_port  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(
    scope="module", params=["floor", "floor-task", "floor-app", "levante", "levante-web"]
)
def started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("bench") / "servers.log"
    server = Server(TARGETS[request.param], free_port(), log)
    server.start()
    try:
        server.wait_ready(timeout=20)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("scenario", HTTP1_SCENARIOS)
def test_target_passes_the_http_contract_check(started: Server, scenario: str) -> None:
    assert check_scenario(SCENARIOS[scenario], started.port) is None


@pytest.mark.parametrize("started", ["levante", "levante-web"], indirect=True)
def test_levante_targets_pass_the_websocket_echo_check(started: Server) -> None:
    assert check_scenario(SCENARIOS["ws-echo"], started.port) is None


def test_target_stops_with_its_process_group(tmp_path: Path) -> None:
    server = Server(TARGETS["floor"], free_port(), tmp_path / "servers.log")
    server.start()
    server.wait_ready(timeout=20)
    server.stop()
    assert server.proc is not None
    assert server.proc.poll() is not None


def test_floor_is_skipped_not_failed_where_it_has_no_protocol() -> None:
    floor = TARGETS["floor"]
    assert skip_reason(floor, SCENARIOS["ws-echo"], explicit=True) == "no WebSocket"
    assert skip_reason(floor, SCENARIOS["h2-plaintext"], explicit=True) == "no HTTP/2"
    assert skip_reason(floor, SCENARIOS["idle-ws"], explicit=False) == "no WebSocket"
    assert skip_reason(floor, SCENARIOS["plaintext"], explicit=False) is None
    assert skip_reason(TARGETS["uvicorn"], SCENARIOS["h2-plaintext"], explicit=False)


def test_floor_variants_run_only_the_plaintext_scenarios() -> None:
    for name in ("floor-task", "floor-app"):
        variant = TARGETS[name]
        for explicit in (False, True):
            assert skip_reason(variant, SCENARIOS["plaintext-c256"], explicit) is None
            assert skip_reason(variant, SCENARIOS["json"], explicit) == "not one of its scenarios"


def _row(by_round: dict[str, float], ratio: float | None = None, **extra: Any) -> dict[str, Any]:
    values = sorted(by_round.values())
    return {
        "ok": True,
        "metric": "rps",
        "by_round": by_round,
        "by_round_per_core": by_round,
        "median": values[len(values) // 2],
        "ratio_median": ratio,
        **extra,
    }


def _scenario(baseline: str, rows: dict[str, dict[str, Any]], metric: str = "rps") -> dict:
    return {"baseline": baseline, "metric": metric, "description": "synthetic", "targets": rows}


def synthetic_summary() -> dict[str, Any]:
    uvicorn = _row({"0": 100.0, "1": 100.0}, 1.0)
    return {
        "plaintext": _scenario(
            "uvicorn",
            {
                "uvicorn": uvicorn,
                "levante": _row({"0": 150.0, "1": 160.0}, 1.55),  # 1.55 >= 1.4
                "granian": _row({"0": 120.0, "1": 125.0}, 1.225),
                "floor": _row({"0": 200.0, "1": 210.0}, 2.05),
                "daphne": {"ok": False, "why": "status 500"},
            },
        ),
        "json": _scenario(
            "uvicorn",
            {"uvicorn": uvicorn, "levante": _row({"0": 140.0, "1": 145.0}, 1.425)},  # < 1.5
        ),
        # Per-round ratios 2, 0.5, 2: median 2, although the medians (1000 vs 2000) give 0.5.
        "params": _scenario(
            "uvicorn",
            {
                "uvicorn": _row({"0": 100.0, "1": 1000.0, "2": 10000.0}, 1.0),
                "levante": _row({"0": 100.0, "1": 1000.0, "2": 10000.0}, 1.0),
                "granian": _row({"0": 50.0, "1": 2000.0, "2": 5000.0}, 1.0),
                "levante-web": _row({"0": 90.0, "1": 900.0, "2": 9000.0}, 0.9),
                "fastapi": _row({"0": 28.0, "1": 280.0, "2": 2800.0}, 0.28),
            },
        ),
        "ws-echo": _scenario(
            "uvicorn",
            {"uvicorn": uvicorn, "floor": {"ok": False, "na": "no WebSocket"}},
            "msgs_per_s",
        ),
        "idle-http": _scenario(
            "uvicorn",
            {"uvicorn": uvicorn, "levante": _row({"0": 90.0}, 0.9, kib_per_conn=5.0)},
            "held_rps",
        ),
        "idle-ws": _scenario(
            "uvicorn",
            {"uvicorn": uvicorn, "levante": _row({"0": 90.0}, 0.9, kib_per_conn=20.0)},
            "held_rps",
        ),
    }


def _status(results: list[dict[str, Any]], scenario: str, goal: str) -> str:
    found = [r for r in results if r["scenario"] == scenario and r["goal"] == goal]
    assert len(found) == 1, (scenario, goal)
    return str(found[0]["status"])


@pytest.mark.parametrize(
    ("scenario", "goal", "status"),
    [
        ("plaintext", "levante / uvicorn", "PASS"),
        ("plaintext", "floor / uvicorn", "INFO"),
        ("plaintext", "levante / granian", "PASS"),
        ("json", "levante / uvicorn", "FAIL"),
        ("params", "levante / granian", "PASS"),
        ("params", "levante-web / uvicorn", "FAIL"),
        ("params", "levante-web / fastapi", "PASS"),
        ("idle-http", "levante kib_per_conn", "PASS"),
        ("idle-http", "levante median", "INFO"),
        ("idle-ws", "levante kib_per_conn", "FAIL"),
        ("ws-echo", "levante / uvicorn", "MISSING"),
        ("upload1m", "levante / uvicorn", "MISSING"),
        ("h2-plaintext", "levante / hypercorn", "MISSING"),
    ],
)
def test_issue9_goal_status_on_a_synthetic_summary(scenario: str, goal: str, status: str) -> None:
    assert _status(goals.evaluate(synthetic_summary()), scenario, goal) == status


def test_pair_ratio_is_the_median_of_per_round_ratios() -> None:
    summary = synthetic_summary()
    assert pair_ratio(summary, "params", "levante", "granian") == 2.0
    assert pair_ratio(summary, "plaintext", "levante", "uvicorn") == 1.55
    assert pair_ratio(summary, "plaintext", "daphne", "uvicorn") is None


def test_chart_is_well_formed_svg_with_a_bar_per_ratio() -> None:
    svg = chart.render_svg(synthetic_summary())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"plaintext", "json", "params", "levante", "floor", "1.55"} <= set(texts)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    ratios = sum(
        1 for s in synthetic_summary().values() for r in s["targets"].values() if r.get("ok")
    )
    assert len(bars) == ratios


def test_chart_without_ratios_is_still_svg() -> None:
    root = ET.fromstring(chart.render_svg({}))
    assert root.tag == f"{SVG}svg"


def test_markdown_has_the_issue9_section() -> None:
    summary = synthetic_summary()
    meta = {
        "started": "2026-12-02 10:00:00",
        "machine": {"cpu_model": "test CPU", "cpus": 2},
        "server_cpu": 0,
        "client_cpu": 1,
        "rounds": 2,
        "duration": 10.0,
        "warmup": 2.0,
        "targets": {"levante": "python -m levante apps.raw:app --port {port}"},
    }
    text = report.markdown(summary, meta, goals.evaluate(summary), "run.svg")
    assert "## Targets of issue 9" in text
    assert "| plaintext | levante / uvicorn | 1.550 | 1.550 | >= 1.4 | **PASS** |" in text
    assert "| floor | n/a: no WebSocket |" in text
    assert "![ratios against each scenario's baseline](run.svg)" in text
