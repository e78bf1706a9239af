"""Handler parameters read from the signature: path, query, headers, cookies, with
markers, constraints and defaults; failures answer 422 problem documents."""

import datetime
import enum
import uuid
from typing import Annotated, Any, Literal

import pytest

from levante.testing import TestClient
from levante.web import App, Cookie, Header, Path, Query, Request
from levante.web.plans import RegistrationError


class Color(enum.Enum):
    red = "red"
    blue = "blue"


app = App()


@app.get("/items/{item_id}")
async def item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.get("/constrained/{n}")
async def constrained(
    n: Annotated[int, Path(ge=1, le=5)],
    name: Annotated[str, Query(min_length=2, max_length=4, pattern="^[a-z]+$")] = "ab",
    ratio: Annotated[float, Query(gt=0, lt=1)] = 0.5,
) -> dict[str, Any]:
    return {"n": n, "name": name, "ratio": ratio}


@app.get("/kinds")
def kinds(
    color: Color,
    mode: Literal["fast", "slow"],
    ident: uuid.UUID,
    when: datetime.datetime,
    flag: bool = False,
    day: datetime.date | None = None,
) -> dict[str, Any]:
    return {
        "color": color.value,
        "mode": mode,
        "ident": str(ident),
        "when": when.isoformat(),
        "flag": flag,
        "day": None if day is None else day.isoformat(),
    }


@app.get("/lists")
async def lists(
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - defaults are copied per request
    n: Annotated[list[int] | None, Query(alias="num")] = None,
) -> dict[str, Any]:
    return {"tag": tag, "n": n}


@app.get("/required")
async def required(q: str) -> str:
    return q


@app.get("/alias")
async def alias(item_query: Annotated[str, Query(alias="item-query")] = "none") -> str:
    return item_query


@app.get("/marker-default")
async def marker_default(page: int = Query(3, ge=1)) -> int:
    return page


@app.get("/headers")
async def headers(
    user_agent: Annotated[str, Header()] = "?",
    x_token: Annotated[list[str], Header()] = [],  # noqa: B006
    strange_header: Annotated[str | None, Header(convert_underscores=False)] = None,
) -> dict[str, Any]:
    return {"ua": user_agent, "tokens": x_token, "strange": strange_header}


@app.get("/cookies")
async def cookies(
    session: Annotated[str, Cookie()], theme: Annotated[str, Cookie()] = "light"
) -> dict[str, str]:
    return {"session": session, "theme": theme}


@app.get("/with-request/{x}")
async def with_request(request: Request, x: int) -> dict[str, Any]:
    return {"x": x, "path": request.url.path}


client = TestClient(app)


def errors_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert document["status"] == 422
    assert document["title"] == "Unprocessable Content"
    return [{"loc": e["loc"], "type": e["type"]} for e in document["errors"]]


def test_path_and_query_values_arrive_converted_with_defaults() -> None:
    assert client.get("/items/42?q=hello&limit=5").json() == {
        "item_id": 42,
        "q": "hello",
        "limit": 5,
    }
    assert client.get("/items/7").json() == {"item_id": 7, "q": None, "limit": 10}


def test_unconvertible_values_list_every_error_with_its_location() -> None:
    response = client.get("/items/abc?limit=x")
    assert errors_of(response) == [
        {"loc": ["path", "item_id"], "type": "int_parsing"},
        {"loc": ["query", "limit"], "type": "int_parsing"},
    ]
    assert response.json()["errors"][0]["input"] == "abc"


def test_missing_required_query_is_reported_as_missing() -> None:
    assert errors_of(client.get("/required")) == [{"loc": ["query", "q"], "type": "missing"}]
    assert client.get("/required?q=").json() == ""


@pytest.mark.parametrize(
    ("url", "loc", "kind"),
    [
        ("/constrained/0", ["path", "n"], "greater_than_equal"),
        ("/constrained/6", ["path", "n"], "less_than_equal"),
        ("/constrained/3?name=a", ["query", "name"], "string_too_short"),
        ("/constrained/3?name=abcde", ["query", "name"], "string_too_long"),
        ("/constrained/3?name=AB", ["query", "name"], "string_pattern_mismatch"),
        ("/constrained/3?ratio=0", ["query", "ratio"], "greater_than"),
        ("/constrained/3?ratio=1", ["query", "ratio"], "less_than"),
    ],
)
def test_constraints_from_markers_answer_422_naming_the_rule(
    url: str, loc: list[str], kind: str
) -> None:
    assert errors_of(client.get(url)) == [{"loc": loc, "type": kind}]


def test_values_within_constraints_pass() -> None:
    assert client.get("/constrained/5?name=abcd&ratio=0.25").json() == {
        "n": 5,
        "name": "abcd",
        "ratio": 0.25,
    }


def test_enums_literals_uuids_dates_and_bools_from_strings() -> None:
    ident = uuid.uuid4()
    response = client.get(
        "/kinds",
        params={
            "color": "blue",
            "mode": "slow",
            "ident": str(ident),
            "when": "2026-12-02T10:00:00+00:00",
            "flag": "true",
            "day": "2026-12-02",
        },
    )
    assert response.json() == {
        "color": "blue",
        "mode": "slow",
        "ident": str(ident),
        "when": "2026-12-02T10:00:00+00:00",
        "flag": True,
        "day": "2026-12-02",
    }


def test_invalid_enum_literal_uuid_and_datetime_are_each_reported() -> None:
    response = client.get(
        "/kinds", params={"color": "green", "mode": "medium", "ident": "nope", "when": "yesterday"}
    )
    assert errors_of(response) == [
        {"loc": ["query", "color"], "type": "enum"},
        {"loc": ["query", "mode"], "type": "enum"},
        {"loc": ["query", "ident"], "type": "uuid_parsing"},
        {"loc": ["query", "when"], "type": "datetime_parsing"},
    ]


def test_repeated_query_params_fill_lists_and_aliases_apply() -> None:
    assert client.get("/lists?tag=a&tag=b&num=1&num=2").json() == {"tag": ["a", "b"], "n": [1, 2]}
    assert client.get("/lists").json() == {"tag": [], "n": None}
    assert errors_of(client.get("/lists?num=1&num=x")) == [
        {"loc": ["query", "num", 1], "type": "int_parsing"}
    ]


def test_query_alias_is_the_wire_name() -> None:
    assert client.get("/alias?item-query=yes").json() == "yes"
    assert client.get("/alias?item_query=no").json() == "none"


def test_marker_as_default_gives_the_default_and_constraints() -> None:
    assert client.get("/marker-default").json() == 3
    assert errors_of(client.get("/marker-default?page=0")) == [
        {"loc": ["query", "page"], "type": "greater_than_equal"}
    ]


def test_headers_by_converted_name_repeated_and_literal() -> None:
    response = client.get(
        "/headers",
        headers=[
            ("User-Agent", "probe"),
            ("X-Token", "a"),
            ("X-Token", "b"),
            ("strange_header", "s"),
        ],
    )
    assert response.json() == {"ua": "probe", "tokens": ["a", "b"], "strange": "s"}


def test_cookies_by_name_with_required_ones_reported() -> None:
    assert client.get("/cookies", cookies={"session": "abc"}).json() == {
        "session": "abc",
        "theme": "light",
    }
    fresh = TestClient(app)
    assert errors_of(fresh.get("/cookies")) == [{"loc": ["cookie", "session"], "type": "missing"}]


def test_request_and_typed_path_param_together() -> None:
    assert client.get("/with-request/5").json() == {"x": 5, "path": "/with-request/5"}


def test_validation_errors_never_leak_a_traceback() -> None:
    text = client.get("/items/abc").text
    assert "Traceback" not in text


# -- registration errors ---------------------------------------------------------------


def test_an_annotation_that_cannot_be_read_names_handler_and_parameter() -> None:
    other = App()

    async def broken(x: "NotAType") -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(RegistrationError, match=r"broken.*NotAType"):
        other.add_route("/b", broken)


def test_a_type_that_cannot_be_validated_names_the_parameter() -> None:
    class Opaque:
        pass

    async def handler(thing: Annotated[Opaque, Query()]) -> None:
        return None

    with pytest.raises(RegistrationError, match=r"handler.*parameter 'thing'"):
        App().add_route("/o", handler)


def test_path_marker_without_the_path_parameter_is_an_error() -> None:
    async def handler(item_id: Annotated[int, Path()]) -> None:
        return None

    with pytest.raises(RegistrationError, match=r"handler.*'item_id'.*\{item_id\}"):
        App().add_route("/items", handler)


def test_path_parameter_with_a_default_is_an_error() -> None:
    async def handler(item_id: int = 3) -> None:
        return None

    with pytest.raises(RegistrationError, match="path parameter 'item_id' cannot have a default"):
        App().add_route("/items/{item_id}", handler)


def test_a_path_parameter_nothing_declares_is_an_error_naming_it() -> None:
    async def handler(q: str = "") -> None:
        return None

    with pytest.raises(RegistrationError, match=r"handler.*\{item_id\}.*'item_id'"):
        App().add_route("/items/{item_id}", handler)


def test_a_handler_taking_the_request_may_read_path_parameters_itself() -> None:
    other = App()

    @other.get("/items/{item_id}")
    async def handler(request: Request) -> str:
        return str(request.path_params["item_id"])

    assert TestClient(other).get("/items/9").json() == "9"


def test_websocket_parameters_are_validated_and_a_bad_handshake_closes_1008() -> None:
    from levante.web import WebSocket, WebSocketDisconnect

    other = App()

    @other.websocket("/ws/{room}")
    async def chat(
        websocket: WebSocket, room: int, token: Annotated[str, Query(min_length=3)]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"room": room, "token": token})
        await websocket.close()

    ws_client = TestClient(other)
    with ws_client.websocket_connect("/ws/7?token=abc") as ws:
        assert ws.receive_json() == {"room": 7, "token": "abc"}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        ws_client.websocket_connect("/ws/x?token=a") as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1008
    assert "path.room" in closed.value.reason


def test_a_cookie_cannot_be_a_list() -> None:
    async def handler(c: Annotated[list[str], Cookie()] = []) -> None:  # noqa: B006
        return None

    with pytest.raises(RegistrationError, match="cookie parameter 'c' cannot be a list"):
        App().add_route("/", handler)
