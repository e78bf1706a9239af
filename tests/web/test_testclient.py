"""`levante.testing`: the in-process httpx test client, driven with small raw ASGI apps."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from levante.testing import (
    AppTimeoutError,
    AppTransport,
    ASGIAppError,
    LifespanFailure,
    LifespanManager,
    TestClient,
    UnexpectedMessage,
    WebSocketDenialResponse,
    WebSocketDisconnect,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


# -- small apps and helpers --------------------------------------------------------


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(send: Send, body: bytes = b"", status: int = 200, headers: Any = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def scope_recorder() -> tuple[Any, list[Scope]]:
    """An app that answers 200 and keeps every scope it was called with."""
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        scopes.append(scope)
        await respond(send, b"ok")

    return app, scopes


class LifespanApp:
    """Records lifespan events; startup stores a value in the state."""

    def __init__(self, fail_with: str | None = None) -> None:
        self.events: list[str] = []
        self.fail_with = fail_with

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            await respond(send, repr(sorted(scope["state"].items())).encode())

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            self.events.append(message["type"])
            if message["type"] == "lifespan.startup" and self.fail_with is not None:
                await send({"type": "lifespan.startup.failed", "message": self.fail_with})
                return
            if message["type"] == "lifespan.startup":
                scope["state"]["db"] = "connected"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


# -- lifespan ---------------------------------------------------------------------


def test_lifespan_startup_runs_on_enter_and_shutdown_on_exit() -> None:
    app = LifespanApp()
    with TestClient(app):
        assert app.events == ["lifespan.startup"]
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_state_reaches_requests_as_a_shallow_copy() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["items"] = []
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope["state"])
        scope["state"]["per_request"] = True  # a key set here stays in this request
        scope["state"]["items"].append(len(seen))  # the objects themselves are shared
        await respond(send)

    with TestClient(app) as client:
        client.get("/")
        client.get("/")
        assert client.app_state == {"items": [1, 2]}
    assert seen[0] is not seen[1]


def test_lifespan_startup_failed_raises_with_the_app_message() -> None:
    app = LifespanApp(fail_with="database unreachable")
    with pytest.raises(LifespanFailure, match="database unreachable") as caught:
        with TestClient(app):
            pytest.fail("the block must not run when startup failed")
    assert caught.value.phase == "startup"
    assert caught.value.message == "database unreachable"


def test_lifespan_startup_reraises_the_exception_the_app_raised_after_failing() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "Traceback ..."})
        raise ConnectionError("cache init exploded")

    with pytest.raises(ConnectionError, match="cache init exploded"), TestClient(app):
        pass


def test_lifespan_shutdown_failed_raises_on_exit() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    with pytest.raises(LifespanFailure, match="lifespan shutdown failed: flush failed"):
        with TestClient(app):
            pass


def test_app_without_lifespan_support_is_served_inside_with() -> None:
    app, scopes = scope_recorder()  # raises on the lifespan scope without receiving
    with TestClient(app) as client:
        assert client.get("/").text == "ok"
    assert len(scopes) == 1


def test_requests_without_with_do_not_run_the_lifespan() -> None:
    app = LifespanApp()
    client = TestClient(app)
    assert client.get("/").text == "[]"
    client.close()
    assert app.events == []


def test_client_can_be_entered_again_after_exit() -> None:
    app = LifespanApp()
    client = TestClient(app)
    with client:
        pass
    with client:
        assert client.get("/").status_code == 200
    assert app.events == ["lifespan.startup", "lifespan.shutdown"] * 2


# -- the HTTP scope ---------------------------------------------------------------


def test_http_scope_carries_the_asgi_3_fields() -> None:
    app, scopes = scope_recorder()
    TestClient(app).get("/caf%C3%A9/a%2Fb?x=1&y=%20")
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a/b"
    assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == ""
    assert scope["server"] == ("testserver", 80)
    assert scope["state"] == {}
    assert scope["extensions"] == {
        "http.response.trailers": {},
        "http.response.pathsend": {},
        "http.response.debug": {},
    }


def test_http_scope_headers_are_lower_case_bytes_including_host() -> None:
    app, scopes = scope_recorder()
    TestClient(app, headers={"X-Team": "blue"}).get("/", headers={"X-Request-Id": "7"})
    headers = scopes[0]["headers"]
    assert all(name == name.lower() and isinstance(value, bytes) for name, value in headers)
    assert (b"host", b"testserver") in headers
    assert (b"user-agent", b"testclient") in headers
    assert (b"x-team", b"blue") in headers
    assert (b"x-request-id", b"7") in headers


def test_https_base_url_gives_scheme_and_port_443() -> None:
    app, scopes = scope_recorder()
    TestClient(app, base_url="https://example.org").get("/")
    assert scopes[0]["scheme"] == "https"
    assert scopes[0]["server"] == ("example.org", 443)


def test_root_path_is_put_in_front_of_the_path_as_the_server_does() -> None:
    app, scopes = scope_recorder()
    TestClient(app, root_path="/api").get("/items")
    assert scopes[0]["root_path"] == "/api"
    assert scopes[0]["path"] == "/api/items"
    assert scopes[0]["raw_path"] == b"/api/items"


def test_client_address_is_configurable() -> None:
    app, scopes = scope_recorder()
    TestClient(app).get("/")
    TestClient(app, client=("10.0.0.7", 4242)).get("/")
    assert scopes[0]["client"] == ("testclient", 50000)
    assert scopes[1]["client"] == ("10.0.0.7", 4242)


# -- the request body -------------------------------------------------------------


def test_request_body_reaches_receive_in_chunks() -> None:
    events: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            events.append(await receive())
            if not events[-1]["more_body"]:
                break
        await respond(send)

    def chunks() -> Iterator[bytes]:
        yield b"one,"
        yield b"two,"
        yield b"three"

    TestClient(app).post("/", content=chunks())
    assert [(e["type"], e["body"], e["more_body"]) for e in events] == [
        ("http.request", b"one,", True),
        ("http.request", b"two,", True),
        ("http.request", b"three", False),
    ]


def test_json_body_arrives_in_one_message() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, await read_body(receive))

    assert TestClient(app).post("/", json={"a": 1}).json() == {"a": 1}


def test_receive_after_the_response_is_complete_returns_http_disconnect() -> None:
    after: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send, b"done")
        after.append(await receive())

    assert TestClient(app).get("/").text == "done"
    assert after == [{"type": "http.disconnect"}]


# -- streamed responses -----------------------------------------------------------


def test_streamed_response_arrives_as_the_app_sends_it() -> None:
    # The app sends its second chunk only once the test has read the first: a
    # client that buffered the body would time out here.
    go_on: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        go_on["loop"], go_on["event"] = asyncio.get_running_loop(), asyncio.Event()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await go_on["event"].wait()
        await send({"type": "http.response.body", "body": b"second"})

    with TestClient(app, timeout=5).stream("GET", "/") as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first"
        go_on["loop"].call_soon_threadsafe(go_on["event"].set)
        assert next(chunks) == b"second"
        assert list(chunks) == []


def test_closing_a_streamed_response_makes_receive_return_http_disconnect() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        seen.append(await receive())

    with TestClient(app).stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"partial"
    assert seen == [{"type": "http.disconnect"}]


def test_endless_event_stream_is_read_event_by_event_then_closed() -> None:
    stopped_by: list[str] = []

    async def sse(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        number = 0
        try:
            while True:
                number += 1
                event = f"data: {number}\n\n".encode()
                await send({"type": "http.response.body", "body": event, "more_body": True})
        except OSError as exc:  # ASGI 2.4: send raises an OSError once the client left
            stopped_by.append(type(exc).__name__)

    with TestClient(sse).stream("GET", "/events") as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = response.iter_lines()
        events: list[str] = []
        for line in lines:
            if line:
                events.append(line)
            if len(events) == 3:
                break
    assert events == ["data: 1", "data: 2", "data: 3"]
    assert stopped_by == ["ClientDisconnected"]


def test_app_ignoring_the_disconnect_is_cancelled_after_a_grace_period() -> None:
    cancelled: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        try:
            await asyncio.Event().wait()  # never checks receive(), never sends again
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with TestClient(app).stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"tick"
    assert cancelled == [True]


def test_work_after_the_response_finishes_before_the_call_returns() -> None:
    # Like background tasks under Starlette's TestClient.
    done: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"accepted")
        await asyncio.sleep(0)
        done.append("emailed")

    assert TestClient(app).post("/signup").text == "accepted"
    assert done == ["emailed"]


def test_pathsend_sends_the_file_contents(tmp_path: Path) -> None:
    file = tmp_path / "report.csv"
    file.write_bytes(b"a,b\n1,2\n")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(file)})

    assert TestClient(app).get("/report").content == b"a,b\n1,2\n"


def test_trailers_are_exposed_in_response_extensions() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"payload"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"abc")],
                "more_trailers": True,
            }
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-rows", b"2")]})

    response = TestClient(app).get("/")
    assert response.content == b"payload"
    assert response.extensions["trailers"] == httpx.Headers({"x-checksum": "abc", "x-rows": "2"})


def test_head_response_has_no_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"body the server drops", headers=[(b"content-length", b"21")])

    response = TestClient(app).head("/")
    assert response.headers["content-length"] == "21"
    assert response.content == b""


# -- cookies and redirects --------------------------------------------------------


def test_cookies_persist_across_requests() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/login":
            await respond(send, headers=[(b"set-cookie", b"session=s3cr3t; Path=/")])
        else:
            cookie = dict(scope["headers"]).get(b"cookie", b"")
            await respond(send, cookie)

    client = TestClient(app)
    client.post("/login")
    assert client.get("/me").text == "session=s3cr3t"


def test_redirects_are_followed_by_default() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/old":
            await respond(send, status=307, headers=[(b"location", b"/new")])
        else:
            await respond(send, scope["path"].encode())

    response = TestClient(app).get("/old")
    assert response.text == "/new"
    assert [r.status_code for r in response.history] == [307]
    not_followed = TestClient(app, follow_redirects=False).get("/old")
    assert not_followed.status_code == 307


# -- app errors -------------------------------------------------------------------


async def crashing_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise ZeroDivisionError("division by zero in the handler")


def test_app_exception_is_reraised_at_the_call_site() -> None:
    with pytest.raises(ZeroDivisionError, match="in the handler"):
        TestClient(crashing_app).get("/")


def test_app_exception_before_the_response_gives_500_when_not_raising() -> None:
    response = TestClient(crashing_app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_app_exception_in_the_middle_of_the_body_is_reraised() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise KeyError("row 2")

    with pytest.raises(KeyError, match="row 2"):
        TestClient(app).get("/")


def test_app_returning_without_a_response_raises_asgi_app_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    with pytest.raises(ASGIAppError, match=r"without sending 'http.response.start'"):
        TestClient(app).get("/")


def test_body_before_start_raises_asgi_app_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.body", "body": b"oops"})

    with pytest.raises(ASGIAppError, match=r"send 'http.response.start' first"):
        TestClient(app).get("/")


def test_app_returning_in_the_middle_of_the_body_raises_asgi_app_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})

    with pytest.raises(ASGIAppError, match="more_body=True"):
        TestClient(app).get("/")


def test_str_headers_raise_asgi_app_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, headers=[("content-type", "text/plain")])

    with pytest.raises(ASGIAppError, match=r"\(bytes, bytes\) pairs"):
        TestClient(app).get("/")


def test_hung_app_fails_with_app_timeout_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.Event().wait()

    with pytest.raises(AppTimeoutError, match=r"GET /slow: the app sent no 'http.response.start'"):
        TestClient(app, timeout=0.1).get("/slow")


def test_websocket_urls_are_refused_by_the_http_transport() -> None:
    app, _ = scope_recorder()
    with pytest.raises(httpx.UnsupportedProtocol, match="websocket_connect"):
        TestClient(app).get("ws://testserver/ws")


# -- WebSocket --------------------------------------------------------------------


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then echoes every message back until the client disconnects."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        reply = {key: message[key] for key in ("text", "bytes") if message.get(key) is not None}
        await send({"type": "websocket.send", **reply})


def test_websocket_text_round_trip() -> None:
    with TestClient(echo).websocket_connect("/ws") as ws:
        ws.send_text("héllo")
        assert ws.receive_text() == "héllo"


def test_websocket_bytes_round_trip() -> None:
    with TestClient(echo).websocket_connect("/ws") as ws:
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_bytes() == b"\x00\xff"


def test_websocket_json_round_trip_in_text_mode() -> None:
    with TestClient(echo).websocket_connect("/ws") as ws:
        ws.send_json({"n": [1, 2], "ü": None})
        assert ws.receive() == {"type": "websocket.send", "text": '{"n":[1,2],"ü":null}'}
        ws.send_json({"again": True})
        assert ws.receive_json() == {"again": True}


def test_websocket_json_round_trip_in_binary_mode() -> None:
    with TestClient(echo).websocket_connect("/ws") as ws:
        ws.send_json({"ü": 1}, mode="binary")
        assert ws.receive() == {"type": "websocket.send", "bytes": '{"ü":1}'.encode()}
        ws.send_json({"again": True}, mode="binary")
        assert ws.receive_json(mode="binary") == {"again": True}


def test_receive_text_on_a_binary_message_raises_unexpected_message() -> None:
    with TestClient(echo).websocket_connect("/ws") as ws:
        ws.send_bytes(b"raw")
        with pytest.raises(UnexpectedMessage, match="expected a text message"):
            ws.receive_text()


def test_websocket_scope_carries_the_asgi_fields() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    client = TestClient(app, base_url="https://testserver", root_path="/v1")
    with client.websocket_connect("/chat/room%201?token=t", subprotocols=["a", "b"]):
        pass
    scope = scopes[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "wss"
    assert scope["path"] == "/v1/chat/room 1"
    assert scope["raw_path"] == b"/v1/chat/room%201"
    assert scope["query_string"] == b"token=t"
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["client"] == ("testclient", 50000)
    assert (b"upgrade", b"websocket") in scope["headers"]


def test_websocket_subprotocol_and_extra_headers_from_accept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        chosen = scope["subprotocols"][-1]
        await send(
            {"type": "websocket.accept", "subprotocol": chosen, "headers": [(b"x-room", b"1")]}
        )
        await receive()

    with TestClient(app).websocket_connect("/", subprotocols=["v1", "v2"]) as ws:
        assert ws.accepted_subprotocol == "v2"
        assert ws.extra_headers == [(b"x-room", b"1")]


def test_app_closing_before_accept_raises_websocket_disconnect_with_its_code() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 4403, "reason": "no token"})

    with pytest.raises(WebSocketDisconnect) as caught:
        with TestClient(app).websocket_connect("/ws"):
            pytest.fail("the block must not run for a refused connection")
    assert (caught.value.code, caught.value.reason) == (4403, "no token")


def test_denial_response_is_raised_with_status_headers_and_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"log in ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"first"})

    with pytest.raises(WebSocketDenialResponse) as caught:
        with TestClient(app).websocket_connect("/ws"):
            pass
    denial = caught.value
    assert isinstance(denial, httpx.Response)
    assert isinstance(denial, WebSocketDisconnect)
    assert denial.status_code == 401
    assert denial.headers["content-type"] == "text/plain"
    assert denial.text == "log in first"


def test_app_close_after_accept_makes_receive_raise_with_code_and_reason() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})

    with TestClient(app).websocket_connect("/ws") as ws:
        assert ws.receive_text() == "bye"
        with pytest.raises(WebSocketDisconnect) as caught:
            ws.receive_text()
        assert (caught.value.code, caught.value.reason) == (4000, "done")
        with pytest.raises(WebSocketDisconnect):
            ws.receive()  # nothing more will come: raises at once, without waiting


def test_leaving_the_block_sends_disconnect_1000_and_waits_for_the_app() -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())
        await asyncio.sleep(0)
        received.append({"type": "cleanup done"})

    with TestClient(app).websocket_connect("/ws"):
        pass
    assert received == [
        {"type": "websocket.disconnect", "code": 1000, "reason": None},
        {"type": "cleanup done"},
    ]


def test_client_close_sends_its_code_and_reason_to_the_app() -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())

    with TestClient(app).websocket_connect("/ws") as ws:
        ws.close(code=4001, reason="going away")
    assert received == [{"type": "websocket.disconnect", "code": 4001, "reason": "going away"}]


def test_websocket_app_exception_is_reraised() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("bad frame handling")

    with pytest.raises(ValueError, match="bad frame handling"):
        with TestClient(app).websocket_connect("/ws") as ws:
            ws.send_text("boom")
            ws.receive_text()


def test_websocket_app_exception_closes_with_1011_when_not_raising() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise ValueError("bad frame handling")

    client = TestClient(app, raise_server_exceptions=False)
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as caught:
        ws.receive_text()
    assert caught.value.code == 1011


def test_websocket_send_before_accept_raises_asgi_app_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.send", "text": "too early"})

    with pytest.raises(ASGIAppError, match="before accepting the WebSocket"):
        with TestClient(app).websocket_connect("/ws"):
            pass


def test_framework_websocket_disconnect_after_close_is_not_an_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        raise WebSocketDisconnect(message["code"])  # what a framework's receive_text does

    with TestClient(app).websocket_connect("/ws"):
        pass


# -- async tests: AppTransport with httpx.AsyncClient -----------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_app_transport_serves_httpx_async_client_with_lifespan() -> None:
    app = LifespanApp()
    async with LifespanManager(app) as lifespan:
        transport = AppTransport(app, state=lifespan.state)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/")
    assert response.text == "[('db', 'connected')]"
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.anyio
async def test_app_transport_streams_and_closes_in_async_tests() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"event 1\n", "more_body": True})
        seen.append(await receive())

    transport = AppTransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        async with client.stream("GET", "/") as response:
            chunks: AsyncIterator[bytes] = response.aiter_raw()
            assert await anext(chunks) == b"event 1\n"
    assert seen == [{"type": "http.disconnect"}]


@pytest.mark.anyio
async def test_app_transport_reraises_app_exceptions() -> None:
    transport = AppTransport(crashing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(ZeroDivisionError):
            await client.get("/")


# -- packaging --------------------------------------------------------------------


def test_testing_package_does_not_import_the_server() -> None:
    code = (
        "import sys, levante.testing; "
        "print(sorted(m for m in sys.modules if m.startswith('levante.server')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
