"""Levante's benchmark suite: our server and framework against the anchors, as ratios.

Each *target* is a shell command that starts one server process on ``{port}``;
each *scenario* is one request shape plus a load generator (wrk, h2load,
ws_load, or the in-process idle-connection client). Rounds are interleaved:
for every scenario, every target runs once per round, the order rotates
between rounds, and each throughput is divided by the baseline's throughput
*from the same round* before taking medians.

Modules: `targets` (what runs and how it is started and stopped), `scenarios`
(the load shapes and the endpoint contract), `checks` (correctness before
load), `loadgen` (wrk, h2load, ws_load), `idle` (held connections), `measure`
(CPU, RSS, quiet machine; needs psutil), `runner` (one run, the rounds),
`summary`, `goals` (the targets of issue 9), `report` (markdown), `chart`
(SVG), `machine` (what the run ran on), `cli`.

Run ``python -m harness --list`` from bench/ (or ``scripts/bench --list``).
"""
