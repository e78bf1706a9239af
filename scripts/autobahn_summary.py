"""Summarise an Autobahn|Testsuite fuzzingclient report (its index.json).

Usage: autobahn_summary.py INDEX_JSON [--agent NAME]

Prints the count of cases per behavior (OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED, FAILED) and per closing behavior, every FAILED case with its
description and Autobahn's expectation and result (from the per-case report),
and a last line ``autobahn: N passed, M failed``. OK, NON-STRICT and
INFORMATIONAL count as passed, FAILED (or a behavior this script does not know)
as failed; UNIMPLEMENTED cases are neither and appear as ``, K skipped``.

Exit status: 0 when no case failed, 1 when one did, 2 when the report is
missing or unreadable.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
PASSED = {"OK", "NON-STRICT", "INFORMATIONAL"}
SKIPPED = {"UNIMPLEMENTED"}
CLOSE_BEHAVIORS = ("OK", "INFORMATIONAL", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT", "FAILED")
CLOSE_FINE = {"OK", "INFORMATIONAL"}
TEXT_LIMIT = 600


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort ``9.10.2`` after ``9.2.1``: by the numbers, not the text."""
    return tuple(int(part) if part.isdigit() else 0 for part in case_id.split("."))


def plain(text: Any, limit: int = TEXT_LIMIT) -> str:
    """Autobahn's descriptions hold some HTML: show it as one line of text."""
    text = re.sub(r"<br\s*/?>", " ", str(text))
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def counts_line(label: str, counter: Counter[str], known: tuple[str, ...]) -> str:
    names = list(known) + sorted(set(counter) - set(known))
    return f"{label:<15}" + ", ".join(f"{name} {counter.get(name, 0)}" for name in names)


def case_report(index_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    name = entry.get("reportfile")
    if not name:
        return {}
    try:
        return json.loads((index_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"description": f"(per-case report {name} unreadable: {exc})"}


def show_case(case_id: str, entry: dict[str, Any], report: dict[str, Any]) -> None:
    print(f"  {case_id}: {plain(report.get('description', '(no description)'))}")
    reason = report.get("remoteCloseReason")
    print(
        f"      behavior {entry.get('behavior')}, close {entry.get('behaviorClose')},"
        f" server's close code {entry.get('remoteCloseCode')}"
        + (f" ({plain(reason, 100)!r})" if reason else "")
        + f", {entry.get('duration')} ms"
    )
    if "expectation" in report:
        print(f"      expected: {plain(report['expectation'])}")
    if "expected" in report:
        print(f"      expected events: {plain(json.dumps(report['expected']))}")
    if "received" in report:
        print(f"      observed events: {plain(json.dumps(report['received']))}")
    if "result" in report:
        print(f"      result: {plain(report['result'])}")
    if "resultClose" in report:
        print(f"      close: {plain(report['resultClose'])}")
    if report.get("wasNotCleanReason"):
        print(f"      not clean: {plain(report['wasNotCleanReason'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="the report's index.json")
    parser.add_argument("--agent", help="the agent to summarise (default: every agent)")
    args = parser.parse_args(argv)

    try:
        index = json.loads(args.index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"autobahn: cannot read {args.index}: {exc}", file=sys.stderr)
        return 2
    agents = [args.agent] if args.agent else sorted(index)
    missing = [agent for agent in agents if agent not in index]
    if missing or not agents:
        print(
            f"autobahn: no agent {', '.join(missing) or '(none)'} in {args.index}", file=sys.stderr
        )
        return 2

    index_dir = args.index.parent
    passed = failed = skipped = 0
    for agent in agents:
        cases = index[agent]
        ids = sorted(cases, key=case_key)
        behavior = Counter(cases[case_id].get("behavior", "?") for case_id in ids)
        close = Counter(cases[case_id].get("behaviorClose", "?") for case_id in ids)
        print(f"Autobahn|Testsuite report {args.index} (agent {agent}, {len(ids)} cases)")
        print(counts_line("behavior:", behavior, BEHAVIORS))
        print(counts_line("behaviorClose:", close, CLOSE_BEHAVIORS))

        bad = [case_id for case_id in ids if cases[case_id].get("behavior") not in PASSED | SKIPPED]
        if bad:
            print(f"FAILED cases ({len(bad)}):")
            for case_id in bad:
                show_case(case_id, cases[case_id], case_report(index_dir, cases[case_id]))
        odd_close = [
            case_id
            for case_id in ids
            if case_id not in bad and cases[case_id].get("behaviorClose") not in CLOSE_FINE
        ]
        if odd_close:
            print(
                f"closing behavior not OK, case not failed ({len(odd_close)}): "
                + ", ".join(
                    f"{case_id} ({cases[case_id].get('behaviorClose')})" for case_id in odd_close
                )
            )
        passed += sum(behavior[name] for name in PASSED)
        skipped += sum(behavior[name] for name in SKIPPED)
        failed += len(bad)

    line = f"autobahn: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
