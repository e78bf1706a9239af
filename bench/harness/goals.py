"""The targets of issue 9, evaluated on the medians of one run.

A goal is either a ratio of two targets in one scenario (the median of their
per-round ratios, from the same rounds; see summary.pair_ratio) or one field of
a target's row (e.g. KiB per held connection). A goal with a threshold is PASS
or FAIL; one without is reported (INFO) for context, such as the floor next to
Levante. A goal whose scenario or targets were not measured in the run is
MISSING, never PASS.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from harness.scenarios import HTTP1_SCENARIOS
from harness.summary import pair_ratio

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Goal:
    scenario: str
    target: str
    versus: str | None = None  # a ratio target/versus; None: `field` of the target's row
    field: str = "ratio"
    op: str | None = None  # one of _OPS; None: reported only
    threshold: float | None = None
    note: str = ""

    @property
    def label(self) -> str:
        if self.versus:
            return f"{self.target} / {self.versus}"
        return f"{self.target} {self.field}"


def _vs(
    scenario: str, target: str, versus: str, op: str | None = None, t: float | None = None
) -> Goal:
    return Goal(scenario, target, versus, op=op, threshold=t)


_UVICORN_FLOORS = {
    "plaintext": 1.4,
    "json": 1.5,
    "plaintext-c256": 2.5,
    "bytes64k": 1.15,
    "upload1m": 1.15,
    "ws-echo": 1.3,
}


def _levante_vs_uvicorn() -> list[Goal]:
    goals = []
    for scenario, threshold in _UVICORN_FLOORS.items():
        goals.append(_vs(scenario, "levante", "uvicorn", ">=", threshold))
        if scenario in ("plaintext", "plaintext-c256"):
            # The limit, next to levante's; then the limit with a task per request, and
            # with the raw app run in it (apps/floor.py --mode task, --mode app).
            goals.extend(
                _vs(scenario, floor, "uvicorn") for floor in ("floor", "floor-task", "floor-app")
            )
    return goals


def _idle(scenario: str, kib: float) -> list[Goal]:
    return [
        Goal(scenario, "levante", field="kib_per_conn", op="<=", threshold=kib),
        Goal(scenario, "levante", field="median", note="req/s of new connections while held"),
        _vs(scenario, "levante", "uvicorn"),
    ]


GOALS: list[Goal] = [
    *_levante_vs_uvicorn(),
    *(_vs(s, "levante", "granian", ">", 1.0) for s in HTTP1_SCENARIOS),
    *_idle("idle-http", 6.0),
    *_idle("idle-ws", 16.0),
    _vs("params", "levante-web", "uvicorn", ">=", 1.0),
    _vs("params", "levante-web", "fastapi", ">=", 3.0),
    _vs("h2-plaintext", "levante", "hypercorn"),
    _vs("h2-plaintext", "levante", "granian"),
]


def _measure(summary: dict[str, Any], goal: Goal) -> tuple[float | None, float | None]:
    """(measured value, per-core value or None) of one goal."""
    if goal.versus:
        raw = pair_ratio(summary, goal.scenario, goal.target, goal.versus)
        pc = pair_ratio(summary, goal.scenario, goal.target, goal.versus, "by_round_per_core")
        return raw, pc
    row = summary.get(goal.scenario, {}).get("targets", {}).get(goal.target, {})
    value = row.get(goal.field) if row.get("ok") else None
    return (None if value is None else float(value)), None


def evaluate_goal(summary: dict[str, Any], goal: Goal) -> dict[str, Any]:
    measured, per_core = _measure(summary, goal)
    if measured is None:
        status = "MISSING"
    elif goal.op is None or goal.threshold is None:
        status = "INFO"
    else:
        status = "PASS" if _OPS[goal.op](measured, goal.threshold) else "FAIL"
    return {
        "goal": goal.label,
        "scenario": goal.scenario,
        "target": goal.target,
        "versus": goal.versus,
        "field": goal.field,
        "measured": measured,
        "per_core": per_core,
        "op": goal.op,
        "threshold": goal.threshold,
        "status": status,
        "note": goal.note,
    }


def evaluate(summary: dict[str, Any], goals: list[Goal] | None = None) -> list[dict[str, Any]]:
    """Every goal of issue 9 against `summary` (see summary.summarise)."""
    return [evaluate_goal(summary, g) for g in (GOALS if goals is None else goals)]


def tally(results: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts
