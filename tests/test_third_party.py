"""Real third-party apps (FastAPI, Starlette, Django), served unchanged, over real HTTP.

FastAPI and Starlette run in-process through the `serve` fixture; the Django
project runs as ``python -m levante`` in a child process, as a user would start
it. Every request goes through a loopback socket with httpx (or a raw socket
where the client itself must misbehave).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.thirdparty import fastapi_app, starlette_app
from tests.conftest import connect, read_response, spawn, wait_for, wait_for_port

TIMEOUT = httpx.Timeout(10.0)


def client(base_url: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, **kwargs)


def pattern_bytes(size: int) -> bytes:
    """Deterministic bytes that are not all alike, so offsets and lengths matter."""
    block = bytes(range(256)) * 4 + b"levante"
    return (block * (size // len(block) + 1))[:size]


# -- FastAPI -------------------------------------------------------------------


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "files"
    directory.mkdir()
    (directory / "hello.txt").write_text("hello from a file\n")
    # Many pathsend reads (256 KiB each), not a multiple of one, and enough to
    # fill the transport's buffer so the server must wait for the client.
    (directory / "big.bin").write_bytes(pattern_bytes(3_000_001))
    return directory


@pytest.fixture
def fastapi_server(serve: Any, files_dir: Path) -> Any:
    app = fastapi_app.create_app(files_dir)
    server = serve(app)
    server.app = app
    return server


def test_fastapi_path_and_query_parameters_are_typed(fastapi_server: Any) -> None:
    with client(fastapi_server.url) as http:
        response = http.get("/users/21")
        assert response.status_code == 200
        assert response.json() == {"user_id": 21, "double": 42}

        response = http.get("/search", params={"q": "ñandú & co", "limit": "3", "exact": "true"})
        assert response.status_code == 200
        assert response.json() == {"q": "ñandú & co", "limit": 3, "exact": True}

        response = http.get("/search", params={"q": "x"})
        assert response.json() == {"q": "x", "limit": 10, "exact": False}

        # Wrong types and a missing required parameter are FastAPI's 422s.
        response = http.get("/users/not-a-number")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "user_id"]
        response = http.get("/search", params={"q": "x", "limit": "many"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]
        response = http.get("/search")
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "missing"


def test_fastapi_json_body_is_validated_by_pydantic(fastapi_server: Any) -> None:
    with client(fastapi_server.url) as http:
        item = {"name": "widget", "price": 2.5, "tags": ["a", "b"]}
        response = http.post("/items", json=item)
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"created": item, "total": 5.0}

        response = http.post("/items", json={"name": "", "price": -1})
        assert response.status_code == 422
        locs = sorted(tuple(error["loc"]) for error in response.json()["detail"])
        assert locs == [("body", "name"), ("body", "price")]

        response = http.post(
            "/items", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "json_invalid"

        # The connection survived the errors: one more request on it works.
        response = http.post("/items", json={"name": "again", "price": 1})
        assert response.status_code == 201


def test_fastapi_streaming_response_is_sent_chunked(fastapi_server: Any) -> None:
    with client(fastapi_server.url) as http:
        response = http.get("/stream", params={"parts": 6})
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        assert response.text == "".join(f"chunk-{i};" for i in range(6))

    # The same on the wire, read by hand: valid chunked framing, then keep-alive.
    with connect(fastapi_server.port) as sock:
        sock.sendall(b"GET /stream?parts=3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert headers[b"transfer-encoding"] == b"chunked"
        assert body == b"chunk-0;chunk-1;chunk-2;"
        sock.sendall(b"GET /users/7 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert body == b'{"user_id":7,"double":14}'


def test_fastapi_streaming_response_reaches_the_client_before_it_ends(
    fastapi_server: Any,
) -> None:
    # The generator yields a first chunk, then waits for another request to
    # release it: the client can read that chunk only if it is really streamed.
    with client(fastapi_server.url) as http, client(fastapi_server.url) as other:
        with http.stream("GET", "/stream-held") as response:
            assert response.status_code == 200
            chunks = response.iter_raw()
            first = next(chunks)
            assert first == b"first;"
            assert other.post("/release").json() == {"released": True}
            rest = b"".join(chunks)
        assert first + rest == b"first;second;"


def test_fastapi_background_task_runs_after_the_response(fastapi_server: Any) -> None:
    events: list[str] = fastapi_server.app.state.events
    gate: threading.Event = fastapi_server.app.state.gate
    with client(fastapi_server.url) as http:
        response = http.post("/tasks/tok-1")
        # The whole response arrived while the task is still waiting for us.
        assert response.status_code == 200
        assert response.json() == {"queued": "tok-1"}
        assert events == []
        gate.set()
        wait_for(lambda: bool(events))
        assert events == ["task:tok-1:after-response"]
        # The connection is still usable after the task finished.
        assert http.get("/users/1").json()["user_id"] == 1


def test_fastapi_lifespan_state_reaches_request_state(serve: Any, files_dir: Path) -> None:
    app = fastapi_app.create_app(files_dir)
    lifespan_events: list[str] = app.state.lifespan_events
    server = serve(app)
    assert lifespan_events == ["startup"]
    with client(server.url) as http:
        for _ in range(2):
            response = http.get("/greeting")
            assert response.status_code == 200
            assert response.json() == {"greeting": "hello from lifespan"}
    server.stop()
    assert lifespan_events == ["startup", "shutdown"]


def test_fastapi_file_response_goes_through_pathsend(fastapi_server: Any, files_dir: Path) -> None:
    with client(fastapi_server.url) as http:
        # Starlette picks http.response.pathsend when the server offers it.
        assert "http.response.pathsend" in http.get("/extensions").json()["extensions"]

        response = http.get("/files/hello.txt")
        assert response.status_code == 200
        assert response.text == "hello from a file\n"
        assert response.headers["content-length"] == str(len("hello from a file\n"))
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "etag" in response.headers
        assert "last-modified" in response.headers

        big = (files_dir / "big.bin").read_bytes()
        response = http.get("/files/big.bin")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(big))
        assert "transfer-encoding" not in response.headers
        assert len(response.content) == len(big)
        assert hashlib.sha256(response.content).digest() == hashlib.sha256(big).digest()

        response = http.head("/files/big.bin")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(big))
        assert response.content == b""

        # A range request is served by Starlette itself (not pathsend).
        response = http.get("/files/big.bin", headers={"range": "bytes=300000-300009"})
        assert response.status_code == 206
        assert response.content == big[300000:300010]

        # The connection is still in sync after all of that.
        assert http.get("/files/hello.txt").text == "hello from a file\n"


def test_fastapi_http_exception_gives_404(fastapi_server: Any) -> None:
    with client(fastapi_server.url) as http:
        response = http.get("/items/1")
        assert response.status_code == 200
        response = http.get("/items/2")
        assert response.status_code == 404
        assert response.json() == {"detail": "Item not found"}
        response = http.get("/files/missing.txt")
        assert response.status_code == 404
        assert response.json() == {"detail": "no file missing.txt"}
        response = http.get("/no/such/route")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}


def test_fastapi_unhandled_exception_gives_500(fastapi_server: Any) -> None:
    with client(fastapi_server.url) as http:
        response = http.get("/boom")
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
        assert "unhandled on purpose" not in response.text
    # The server is still serving.
    with client(fastapi_server.url) as http:
        assert http.get("/users/3").json() == {"user_id": 3, "double": 6}
    assert not fastapi_server.errors


# -- Starlette -----------------------------------------------------------------


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "static"
    (directory / "css").mkdir(parents=True)
    (directory / "index.html").write_text("<h1>static index</h1>\n")
    (directory / "css" / "site.css").write_text("body { color: teal; }\n")
    (directory / "data.bin").write_bytes(pattern_bytes(300_000))
    return directory


@pytest.fixture
def starlette_server(serve: Any, static_dir: Path) -> Any:
    app = starlette_app.create_app(static_dir)
    server = serve(app)
    server.app = app
    return server


def test_starlette_routes(starlette_server: Any) -> None:
    with client(starlette_server.url) as http:
        response = http.get("/")
        assert response.status_code == 200
        assert response.text == "hello world"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        response = http.get("/hello/caf%C3%A9")
        assert response.text == "hello café"
        response = http.get("/nowhere")
        assert response.status_code == 404
        assert response.text == "Not Found"
        response = http.post("/")
        assert response.status_code == 405
        assert sorted(response.headers["allow"].split(", ")) == ["GET", "HEAD"]


def test_starlette_request_json(starlette_server: Any) -> None:
    payload = {"b": [1, 2, {"c": None}], "a": "ünïcode", "big": "x" * 100_000}
    with client(starlette_server.url) as http:
        response = http.post("/json", json=payload)
        assert response.status_code == 200
        assert response.json() == {"received": payload, "keys": ["a", "b", "big"]}


def test_starlette_multipart_upload(starlette_server: Any) -> None:
    content = pattern_bytes(250_000)
    with client(starlette_server.url) as http:
        response = http.post(
            "/upload",
            data={"comment": "a binary file"},
            files={"file": ("report.bin", content, "application/octet-stream")},
        )
        assert response.status_code == 200
        assert response.json() == {
            "field": "a binary file",
            "filename": "report.bin",
            "content_type": "application/octet-stream",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }


def test_starlette_streaming_response(starlette_server: Any) -> None:
    with client(starlette_server.url) as http:
        response = http.get("/stream", params={"count": 5})
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.text == "".join(f"line {i}\n" for i in range(5))


def test_starlette_static_files(starlette_server: Any, static_dir: Path) -> None:
    with client(starlette_server.url) as http:
        response = http.get("/static/css/site.css")
        assert response.status_code == 200
        assert response.text == "body { color: teal; }\n"
        assert response.headers["content-type"].startswith("text/css")
        assert response.headers["content-length"] == str(len("body { color: teal; }\n"))

        data = (static_dir / "data.bin").read_bytes()
        response = http.get("/static/data.bin")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.content == data

        # A conditional request with the file's ETag: 304 and no body.
        etag = response.headers["etag"]
        response = http.get("/static/data.bin", headers={"if-none-match": etag})
        assert response.status_code == 304
        assert response.content == b""

        response = http.head("/static/data.bin")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.content == b""

        response = http.get("/static/missing.txt")
        assert response.status_code == 404

        # The keep-alive connection is still in sync after the 304 and the HEAD.
        assert http.get("/static/index.html").text == "<h1>static index</h1>\n"


def test_starlette_gzip_middleware(starlette_server: Any) -> None:
    expected = "compress me please " * 500
    with client(starlette_server.url) as http:
        response = http.get("/big", headers={"accept-encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        wire_length = int(response.headers["content-length"])
        assert wire_length < len(expected)
        assert response.text == expected  # httpx decoded it

        with http.stream("GET", "/big", headers={"accept-encoding": "gzip"}) as raw:
            compressed = b"".join(raw.iter_raw())
        assert len(compressed) == wire_length
        assert gzip.decompress(compressed).decode() == expected

        response = http.get("/big", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in response.headers
        assert response.headers["content-length"] == str(len(expected))
        assert response.text == expected


def test_starlette_is_disconnected_ends_when_the_client_leaves(starlette_server: Any) -> None:
    disconnects: list[str] = starlette_server.app.state.disconnects
    sock = connect(starlette_server.port)
    try:
        sock.sendall(b"GET /wait?tag=gone HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # Make sure the request reached the app before leaving.
        with client(starlette_server.url) as http:
            assert http.get("/").status_code == 200
        assert disconnects == []
    finally:
        sock.close()
    wait_for(lambda: bool(disconnects))
    assert disconnects == ["gone"]


# -- Django --------------------------------------------------------------------


class DjangoServer:
    def __init__(self, proc: subprocess.Popen[str], port: int, log: list[str]) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def django_server() -> Iterator[DjangoServer]:
    proc = spawn(
        "tests.apps.thirdparty.djangoproj.asgi:application",
        "--port",
        "0",
        env={"DJANGO_SETTINGS_MODULE": "tests.apps.thirdparty.djangoproj.settings"},
    )
    drain: threading.Thread | None = None
    try:
        port, log = wait_for_port(proc)

        # Keep reading the child's log so it never blocks on a full pipe.
        def read_log() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.append(line)

        drain = threading.Thread(target=read_log, daemon=True)
        drain.start()
        yield DjangoServer(proc, port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if drain is not None:
            drain.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_django_html_view(django_server: DjangoServer) -> None:
    with client(django_server.url) as http:
        response = http.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "<h1>Django on Levante</h1>" in response.text
        assert response.headers["server"] == "levante"

        response = http.get("/hello/%3Cb%3Eworld/")
        assert response.status_code == 200
        assert response.text == "<p>Hello, &lt;b&gt;world!</p>"

        # CommonMiddleware's APPEND_SLASH redirect.
        response = http.get("/hello/world")
        assert response.status_code == 301
        assert response.headers["location"] == "/hello/world/"


def test_django_urlencoded_form_post_echoes_fields(django_server: DjangoServer) -> None:
    with client(django_server.url) as http:
        response = http.post(
            "/echo/",
            data={"name": "José", "colour": ["red", "green"], "note": "a&b=c d"},
        )
        assert response.status_code == 200
        assert response.json() == {
            "fields": {"name": ["José"], "colour": ["red", "green"], "note": ["a&b=c d"]},
            "content_type": "application/x-www-form-urlencoded",
        }


def test_django_csrf_protected_form(django_server: DjangoServer) -> None:
    with client(django_server.url) as http:
        # Without the cookie and token Django refuses the POST.
        response = http.post("/protected/", data={"name": "mallory"})
        assert response.status_code == 403

        response = http.get("/protected/")
        assert response.status_code == 200
        assert "csrftoken" in http.cookies
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        assert match is not None
        token = match.group(1)

        # A token without the cookie is still refused.
        response = httpx.post(
            django_server.url + "/protected/",
            data={"csrfmiddlewaretoken": token, "name": "mallory"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 403

        # The cookie (kept by the client) and the token: accepted.
        response = http.post("/protected/", data={"csrfmiddlewaretoken": token, "name": "alice"})
        assert response.status_code == 200
        assert response.text == "<p>Thanks, alice</p>"


def test_django_json_views(django_server: DjangoServer) -> None:
    with client(django_server.url, headers={"user-agent": "levante-tests"}) as http:
        response = http.get("/api/info/", params={"x": "1", "y": "two words"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "method": "GET",
            "path": "/api/info/",
            "query": {"x": "1", "y": "two words"},
            "host": f"127.0.0.1:{django_server.port}",
            "secure": False,
            "user_agent": "levante-tests",
        }
        response = http.get("/async-json/", params={"n": "41"})
        assert response.status_code == 200
        assert response.json() == {"async": True, "n": 42}


def test_django_unknown_url_is_404(django_server: DjangoServer) -> None:
    with client(django_server.url) as http:
        response = http.get("/definitely/not/here/")
        assert response.status_code == 404
        assert "Not Found" in response.text
        # The server keeps serving.
        assert http.get("/").status_code == 200


def test_django_rejects_a_host_outside_allowed_hosts(django_server: DjangoServer) -> None:
    with client(django_server.url) as http:
        response = http.get("/", headers={"host": "evil.example"})
        assert response.status_code == 400
        assert http.get("/").status_code == 200
