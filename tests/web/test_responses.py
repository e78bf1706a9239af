"""Responses: content types, JSON encoding, redirects, cookies, streaming."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import threading
import uuid

import msgspec
import pytest

from levante.testing import TestClient
from levante.web import (
    App,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
)


def serve(response_factory) -> TestClient:
    app = App()
    app.add_route("/", lambda request: response_factory(), methods=["GET", "POST"])
    app.add_route("/target", lambda request: PlainTextResponse("target"))
    return TestClient(app)


def test_plain_text_and_html_carry_charset():
    text = serve(lambda: PlainTextResponse("héllo")).get("/")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-length"] == str(len("héllo".encode()))
    html = serve(lambda: HTMLResponse("<p>x</p>")).get("/")
    assert html.headers["content-type"] == "text/html; charset=utf-8"


def test_response_with_bytes_status_and_custom_media_type():
    response = serve(lambda: Response(b"\x00\x01", 202, {"X-A": "1"}, "application/x-thing")).get(
        "/"
    )
    assert response.status_code == 202
    assert response.content == b"\x00\x01"
    assert response.headers["content-type"] == "application/x-thing"
    assert response.headers["x-a"] == "1"


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_statuses_have_no_content_length(status):
    response = serve(lambda: Response(status_code=status)).get("/")
    assert response.status_code == status
    assert "content-length" not in response.headers


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Item(msgspec.Struct):
    name: str


def test_json_encodes_dataclasses_datetimes_uuids_decimals_enums_structs():
    value = {
        "point": Point(1, 2),
        "when": datetime.datetime(2026, 11, 25, 8, 0, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 11, 25),
        "id": uuid.UUID("0b8e3c5a-8d2d-4c55-9c56-2ad1c1d6b3f1"),
        "price": decimal.Decimal("9.99"),
        "color": Color.RED,
        "item": Item("x"),
        "tags": ("a",),
    }
    response = serve(lambda: JSONResponse(value)).get("/")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "point": {"x": 1, "y": 2},
        "when": "2026-11-25T08:00:00Z",
        "day": "2026-11-25",
        "id": "0b8e3c5a-8d2d-4c55-9c56-2ad1c1d6b3f1",
        "price": "9.99",
        "color": "red",
        "item": {"name": "x"},
        "tags": ["a"],
    }


def test_json_of_an_unknown_type_is_a_clear_error():
    with pytest.raises(TypeError, match="not JSON serializable"):
        JSONResponse({"x": object()})


def test_json_uses_pydantic_models_dump():
    pydantic = pytest.importorskip("pydantic")

    class User(pydantic.BaseModel):
        name: str
        joined: datetime.date

    response = serve(lambda: JSONResponse(User(name="a", joined=datetime.date(2026, 1, 2)))).get(
        "/"
    )
    assert response.json() == {"name": "a", "joined": "2026-01-02"}


def test_redirect_defaults_to_307_and_quotes_the_location():
    client = serve(lambda: RedirectResponse("/target?q=a b"))
    response = client.post("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/target?q=a%20b"
    assert client.get("/", follow_redirects=True).text == "target"


def test_set_cookie_with_all_attributes_and_delete():
    def make() -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie(
            "session",
            "abc",
            max_age=60,
            expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
            path="/app",
            domain="example.org",
            secure=True,
            httponly=True,
            samesite="strict",
            partitioned=True,
        )
        response.delete_cookie("old")
        return response

    cookies = serve(make).get("/").headers.get_list("set-cookie")
    first = cookies[0]
    for part in (
        "session=abc",
        "Max-Age=60",
        "expires=Tue, 01 Jan 2030 00:00:00 GMT",
        "Path=/app",
        "Domain=example.org",
        "Secure",
        "HttpOnly",
        "SameSite=strict",
        "Partitioned",
    ):
        assert part in first
    assert cookies[1].startswith('old=""') and "Max-Age=0" in cookies[1]


def test_bad_samesite_is_refused():
    with pytest.raises(ValueError, match="samesite"):
        PlainTextResponse("x").set_cookie("a", "b", samesite="sometimes")  # type: ignore[arg-type]


def test_streaming_response_async_iterator_arrives_chunk_by_chunk():
    async def numbers():
        for n in range(3):
            yield f"{n}\n"

    client = serve(lambda: StreamingResponse(numbers(), media_type="text/plain"))
    with client.stream("GET", "/") as response:
        assert "content-length" not in response.headers
        assert [chunk for chunk in response.iter_bytes() if chunk] == [b"0\n", b"1\n", b"2\n"]


def test_streaming_response_sync_iterator_runs_off_the_loop():
    threads: list[int] = []

    def numbers():
        for n in range(3):
            threads.append(threading.get_ident())
            yield str(n).encode()

    response = serve(lambda: StreamingResponse(numbers())).get("/")
    assert response.content == b"012"
    assert threading.get_ident() not in threads


def test_streaming_response_ends_and_cleans_up_when_the_client_leaves():
    ended = threading.Event()

    async def forever():
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0)
        finally:
            ended.set()

    app = App()
    app.add_route("/", lambda request: StreamingResponse(forever()))
    with TestClient(app) as client:
        with client.stream("GET", "/") as response:
            iterator = response.iter_bytes()
            assert next(iterator).startswith(b"tick")
        assert ended.wait(10)


def test_background_runs_after_a_streamed_body():
    from levante.web import BackgroundTask

    order: list[str] = []

    async def body():
        order.append("body")
        yield b"x"

    response = serve(
        lambda: StreamingResponse(body(), background=BackgroundTask(order.append, "task"))
    ).get("/")
    assert response.content == b"x"
    assert order == ["body", "task"]


def test_handler_may_return_a_response_for_a_request_it_reads():
    app = App()

    @app.post("/upper")
    async def upper(request: Request) -> Response:
        return Response((await request.body()).upper(), media_type="text/plain")

    assert TestClient(app).post("/upper", content=b"abc").text == "ABC"
