"""Request: URL, headers, query, cookies, client, body, json, stream, disconnects."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from levante.testing import TestClient
from levante.web import URL, App, Headers, Mount, PlainTextResponse, QueryParams, Request
from levante.web.datastructures import MutableHeaders
from levante.web.exceptions import ClientDisconnect
from levante.web.middleware import HTTPSRedirectMiddleware, Middleware, TrustedHostMiddleware
from levante.web.requests import parse_cookies


def echo_app(read):
    app = App()

    @app.route("/{rest:path}", methods=["GET", "POST", "PUT"])
    async def handler(request: Request):
        return await read(request)

    return TestClient(app)


def test_method_url_and_parts():
    async def read(request: Request):
        url = request.url
        return {
            "method": request.method,
            "url": str(url),
            "path": url.path,
            "query": url.query,
            "scheme": url.scheme,
            "host": url.hostname,
            "port": url.port,
            "base": str(request.base_url),
        }

    body = echo_app(read).get("http://example.org:8080/a/b?x=1&y=2").json()
    assert body == {
        "method": "GET",
        "url": "http://example.org:8080/a/b?x=1&y=2",
        "path": "/a/b",
        "query": "x=1&y=2",
        "scheme": "http",
        "host": "example.org",
        "port": 8080,
        "base": "http://example.org:8080/",
    }


def test_headers_are_case_insensitive_and_multi_valued():
    async def read(request: Request):
        headers = request.headers
        return {
            "one": headers["X-Thing"],
            "all": headers.getlist("x-thing"),
            "has": "X-THING" in headers,
            "missing": headers.get("x-missing", "default"),
        }

    client = echo_app(read)
    response = client.get("/", headers=[("X-Thing", "a"), ("x-thing", "b")])
    assert response.json() == {"one": "a", "all": ["a", "b"], "has": True, "missing": "default"}


def test_query_params_keep_repeats_and_blanks():
    async def read(request: Request):
        query = request.query_params
        return {"last": query["tag"], "all": query.getlist("tag"), "blank": query["empty"]}

    response = echo_app(read).get("/?tag=a&tag=b&empty=")
    assert response.json() == {"last": "b", "all": ["a", "b"], "blank": ""}


def test_cookies_and_client_address():
    async def read(request: Request):
        return {"cookies": request.cookies, "client": list(request.client or ())}

    client = echo_app(read)
    response = client.get("/", headers={"cookie": 'session=abc; theme="dark"; flag'})
    assert response.json() == {
        "cookies": {"session": "abc", "theme": "dark", "": "flag"},
        "client": ["testclient", 50000],
    }


def test_body_json_and_reading_twice():
    async def read(request: Request):
        first = await request.body()
        data = await request.json()
        return {"raw": first.decode(), "data": data, "again": (await request.body()).decode()}

    response = echo_app(read).post("/", json={"a": [1, 2]})
    assert response.json() == {"raw": '{"a":[1,2]}', "data": {"a": [1, 2]}, "again": '{"a":[1,2]}'}


def test_stream_yields_chunks_as_they_come():
    async def read(request: Request):
        return {"chunks": [len(chunk) async for chunk in request.stream()]}

    def body():
        yield b"a" * 10
        yield b"b" * 20

    response = echo_app(read).post("/", content=body())
    assert sum(response.json()["chunks"]) == 30


def test_stream_twice_is_a_clear_error():
    async def read(request: Request):
        async for _ in request.stream():
            pass
        try:
            async for _ in request.stream():
                pass
        except Exception as exc:
            return {"error": type(exc).__name__, "message": str(exc)}
        return {}

    result = echo_app(read).post("/", content=b"x").json()
    assert result["error"] == "ASGIUsageError"
    assert "read once" in result["message"]


def test_path_params_and_scope_access():
    async def read(request: Request):
        return {"params": request.path_params, "type": request["type"]}

    assert echo_app(read).get("/deep/path").json() == {
        "params": {"rest": "deep/path"},
        "type": "http",
    }


# request.url: `path` is the whole path, `root_path` a prefix of it (ASGI, uvicorn).


def url_app(**options) -> App:
    app = App(**options)
    app.add_route("/{rest:path}", lambda request: PlainTextResponse(str(request.url)))
    return app


def test_request_url_in_a_mounted_app_names_the_mount_path_once():
    sub = App()
    sub.add_route("/here", lambda request: PlainTextResponse(str(request.url)))
    client = TestClient(App(routes=[Mount("/m", sub)]))
    assert client.get("/m/here").text == "http://testserver/m/here"


def test_request_url_under_a_root_path_names_it_once():
    client = TestClient(App(routes=[Mount("/m", url_app())]), root_path="/rp")
    assert client.get("/m/x?q=1").text == "http://testserver/rp/m/x?q=1"


def test_encoded_question_mark_and_hash_stay_in_the_url_path():
    url = URL(TestClient(url_app()).get("/f/a%3Fb%23c?q=1").text)
    assert (url.path, url.query, url.fragment) == ("/f/a%3Fb%23c", "q=1", "")


def test_https_redirect_under_a_root_path_names_it_once():
    app = url_app(middleware=[Middleware(HTTPSRedirectMiddleware)])
    response = TestClient(app, root_path="/rp").get("/x", follow_redirects=False)
    assert response.headers["location"] == "https://testserver/rp/x"


def test_www_redirect_under_a_root_path_names_it_once():
    trusted = Middleware(TrustedHostMiddleware, allowed_hosts=["www.example.com"])
    client = TestClient(url_app(middleware=[trusted]), root_path="/rp")
    response = client.get("http://example.com/x", follow_redirects=False)
    assert response.headers["location"] == "http://www.example.com/rp/x"


# In-process, with hand-made receive: disconnect while reading, and peeking.


def run(coro):
    return asyncio.run(coro)


def scope(**extra):
    base = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"h")],
        "scheme": "http",
    }
    return {**base, **extra}


def test_client_disconnect_while_reading_the_body():
    messages = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    async def main():
        request = Request(scope(), receive)
        with pytest.raises(ClientDisconnect):
            await request.body()
        assert await request.is_disconnected()

    run(main())


def test_is_disconnected_peeks_without_losing_body():
    queue: asyncio.Queue = asyncio.Queue()

    async def main():
        await queue.put({"type": "http.request", "body": b"kept", "more_body": False})
        request = Request(scope(), queue.get)
        assert await request.is_disconnected() is False
        assert await request.body() == b"kept"
        assert await request.is_disconnected() is False  # nothing pending: does not wait
        await queue.put({"type": "http.disconnect"})
        assert await request.is_disconnected() is True

    run(main())


# Data structures


def test_url_replace_and_query_helpers():
    url = URL("https://example.org:8443/a?x=1")
    assert str(url.replace(path="/b")) == "https://example.org:8443/b?x=1"
    assert str(url.replace(port=None)) == "https://example.org/a?x=1"
    assert str(url.include_query_params(y=2)) == "https://example.org:8443/a?x=1&y=2"
    assert str(url.remove_query_params("x")) == "https://example.org:8443/a"
    assert url.is_secure


def test_url_from_scope_without_host_header_uses_server():
    url = URL.from_scope(
        {
            "scheme": "https",
            "server": ("::1", 8443),
            "path": "/p",
            "headers": [],
            "query_string": b"",
        }
    )
    assert str(url) == "https://[::1]:8443/p"


def test_mutable_headers_set_append_delete_and_vary():
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"a", b"2")])
    headers["A"] = "3"
    headers.append("set-cookie", "x=1")
    headers.append("set-cookie", "y=2")
    headers.add_vary_header("Origin")
    headers.add_vary_header("origin")
    headers.add_vary_header("Accept-Encoding")
    del headers["missing"]
    assert headers.raw == [
        (b"a", b"3"),
        (b"set-cookie", b"x=1"),
        (b"set-cookie", b"y=2"),
        (b"vary", b"Origin, Accept-Encoding"),
    ]


def test_headers_from_a_mapping_and_equality():
    assert Headers({"X-A": "1"}) == Headers(raw=[(b"x-a", b"1")])
    assert QueryParams("a=1&a=2") == QueryParams([("a", "1"), ("a", "2")])
    assert str(QueryParams({"q": "a b"})) == "q=a+b"


def test_parse_cookies_is_lenient():
    assert parse_cookies("a=1; b = 2 ;; c") == {"a": "1", "b": "2", "": "c"}


def test_form_limits_answer_400_and_oversized_files_413():
    app = App()

    @app.post("/fields")
    async def fields(request: Request) -> dict[str, int]:
        return {"n": len(await request.form(max_fields=1))}

    @app.post("/files")
    async def files(request: Request) -> dict[str, int]:
        return {"n": len(await request.form(max_file_size=10))}

    client = TestClient(app)
    response = client.post("/fields", data={"a": "1", "b": "2"})
    assert (response.status_code, response.text) == (
        400,
        "Too many fields. Maximum number of fields is 1.",
    )
    assert client.post("/files", files={"f": ("f.txt", b"x" * 11)}).status_code == 413
    assert client.post("/files", files={"f": ("f.txt", b"x" * 10)}).json() == {"n": 1}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "a=1",
        "a=1&b=2&a=3",
        "a",
        "a=&b",
        "&&a=1&",
        "x=a+b%20c&y=%E2%9C%93",
        "k%3D=v%26",
        "=v",
        "a=1=2",
        "bad=%zz&%",
    ],
)
def test_query_parsing_matches_the_standard_library(query: str) -> None:
    from urllib.parse import parse_qsl

    from levante.web.datastructures import parse_query

    assert parse_query(query) == parse_qsl(query, keep_blank_values=True)


@given(st.text(alphabet="ab=&%+2C9 ;\u00e9", max_size=40))
def test_query_parsing_matches_the_standard_library_for_any_string(query: str) -> None:
    from urllib.parse import parse_qsl

    from levante.web.datastructures import parse_query

    assert parse_query(query) == parse_qsl(query, keep_blank_values=True)
