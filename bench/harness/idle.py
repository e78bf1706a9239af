"""Held connections: what a server keeps per idle connection, and whether it still serves.

An in-process asyncio client (pinned with the harness to the client CPU) opens N
keep-alive HTTP/1.1 connections (one request each) or N WebSocket connections,
holds them, reads the server tree's RSS and ESTABLISHED count, runs a wrk of new
connections while they are held, and at the end sends one more request (or
echo) on each held connection to see how many the server kept.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from harness.loadgen import LoadGen, parse_wrk
from harness.measure import CpuWindow, tree_established, tree_rss
from harness.scenarios import Scenario
from harness.targets import HOST, Server

MIB = 2**20
WS_HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class IdleSettings:
    conns: int  # how many connections to hold (0: the scenario's)
    concurrency: int  # connects in flight while opening them
    hold: float  # seconds from opening to the reuse probe
    wrk_seconds: float  # the wrk run of new connections while they are held


def masked_text_frame(payload: bytes) -> bytes:
    """A client text frame (RFC 6455 section 5.2: clients mask), payload under 126 bytes."""
    if len(payload) >= 126:
        raise ValueError("masked_text_frame builds 7-bit lengths only")
    mask = b"\x11\x22\x33\x44"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


async def read_http_response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length or chunked body) and return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def read_ws_data_frame(reader: asyncio.StreamReader) -> bytes:
    """The payload of the next text or binary frame (control frames other than close skipped)."""
    while True:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        if b1 & 0x80:
            await reader.readexactly(4)
        data = await reader.readexactly(n)
        opcode = b0 & 0x0F
        if opcode == 0x8:
            raise ConnectionError("close frame")
        if opcode in (0x1, 0x2):
            return data


def _opening_request(port: int, ws: bool) -> bytes:
    if ws:
        return WS_HANDSHAKE.format(path="/ws", host=HOST, port=port).encode()
    return f"GET /plaintext HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


async def _open_one(port: int, request: bytes, ws: bool) -> Conn:
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port, limit=2**16), 10)
    try:
        w.write(request)
        if ws:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                raise ConnectionError("no 101")
        else:
            status = await asyncio.wait_for(read_http_response(r), 10)
            if status != 200:
                raise ConnectionError(f"status {status}")
    except BaseException:
        w.close()
        raise
    return r, w


async def open_idle(
    port: int, n: int, ws: bool, concurrency: int, deadline: float = 30.0
) -> tuple[list[Conn], int, list[str]]:
    """Open `n` connections; returns them, the number that failed, and up to 5 kinds of error."""
    conns: list[Conn] = []
    errors: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    request = _opening_request(port, ws)

    async def one() -> None:
        async with sem:
            try:
                conns.append(await _open_one(port, request, ws))
            except Exception as e:  # counted, and the kinds reported
                errors.append(f"{type(e).__name__} {e}"[:80])

    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending)
        errors.extend(["not opened before the deadline"] * len(pending))
    return conns, len(errors), sorted(set(errors))[:5]


async def probe_reuse(conns: list[Conn], ws: bool, port: int) -> tuple[int, int]:
    """One more request (or echo) on every held connection: (answered, closed)."""
    ok = 0
    sem = asyncio.Semaphore(256)
    if ws:
        request = masked_text_frame(b"still-there?")
    else:
        request = f"GET /plaintext HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()

    async def one(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal ok
        async with sem:
            try:
                w.write(request)
                if ws:
                    good = await asyncio.wait_for(read_ws_data_frame(r), 5) == b"still-there?"
                else:
                    good = await asyncio.wait_for(read_http_response(r), 5) == 200
            except Exception:  # a closed or silent connection counts as closed
                return
            ok += good

    tasks = [asyncio.ensure_future(one(r, w)) for r, w in conns]
    _, pending = await asyncio.wait(tasks, timeout=30)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending)
    return ok, len(conns) - ok


async def _held_footprint(server: Server, res: dict[str, Any]) -> None:
    await asyncio.sleep(1.0)  # let the server finish accepting and settle
    established = await asyncio.to_thread(tree_established, server.pid, server.port)
    rss_held = await asyncio.to_thread(tree_rss, server.pid)
    res["server_established"] = established
    res["rss_held_mib"] = round(rss_held / MIB, 1)
    if established:
        grown_kib = rss_held / 1024 - res["rss_before_mib"] * 1024
        res["kib_per_conn"] = round(grown_kib / established, 1)


async def _wrk_while_held(
    server: Server, loadgen: LoadGen, seconds: float, res: dict[str, Any]
) -> None:
    """Fresh connections (wrk -c64 on /plaintext) while the idle ones are held."""
    cmd = loadgen.wrk_cmd(Scenario("held", "wrk", "/plaintext", conns=64), server.port, seconds)
    with CpuWindow(server.pid) as cw:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), seconds + 60)
    w = parse_wrk(out.decode())
    res.update(
        held_rps=w["rps"],
        p50_ms=w.get("p50_ms"),
        p99_ms=w.get("p99_ms"),
        non2xx=w["non2xx"],
        socket_errors=w["socket_errors"],
        cpu=cw.result,
        command=" ".join(cmd),
    )
    if proc.returncode != 0 or "Requests/sec" not in out.decode():
        res["error"] = f"wrk while held failed rc={proc.returncode}: {err.decode()[-200:]}"


async def run_idle(
    sc: Scenario, server: Server, loadgen: LoadGen, settings: IdleSettings
) -> dict[str, Any]:
    ws = sc.kind == "idle-ws"
    n = settings.conns or sc.conns
    res: dict[str, Any] = {"conns_target": n}
    res["rss_before_mib"] = round(tree_rss(server.pid) / MIB, 1)
    t0 = time.monotonic()
    conns, n_err, err_kinds = await open_idle(server.port, n, ws, settings.concurrency)
    res["open_s"] = round(time.monotonic() - t0, 2)
    if not conns:
        raise RuntimeError(f"no idle connection could be opened: {err_kinds}")
    res.update(opened=len(conns), open_errors=n_err)
    if err_kinds:
        res["open_error_kinds"] = err_kinds
    try:
        await _held_footprint(server, res)
        await _wrk_while_held(server, loadgen, settings.wrk_seconds, res)
        await asyncio.sleep(max(0.0, settings.hold - (time.monotonic() - t0)))
        res["held_s_before_reuse"] = round(time.monotonic() - t0, 1)
        res["established_before_reuse"] = await asyncio.to_thread(
            tree_established, server.pid, server.port
        )
        res["reuse_ok"], res["reuse_closed"] = await probe_reuse(conns, ws, server.port)
    finally:
        for _, w in conns:
            w.close()
        await asyncio.sleep(0.5)
    return res
