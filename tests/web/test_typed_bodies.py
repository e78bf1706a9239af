"""Bodies from type hints (msgspec Structs, dataclasses, TypedDicts, pydantic models),
forms and files, and the response type driving encoding and filtering."""

import dataclasses
from typing import Annotated, Any, TypedDict

import msgspec
import pydantic
import pytest

from levante.testing import TestClient
from levante.web import App, Body, File, Form, JSONResponse, Request, Response, UploadFile
from levante.web.plans import RegistrationError


class Item(msgspec.Struct):
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


class User(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0)


class UserOut(msgspec.Struct):
    name: str


class Secret(msgspec.Struct):
    name: str
    password: str


app = App()


@app.post("/struct")
async def struct_body(item: Item) -> Item:
    return item


@app.post("/dataclass")
async def dataclass_body(point: Point) -> dict[str, int]:
    return {"sum": point.x + point.y}


@app.post("/typeddict")
async def typeddict_body(movie: Movie) -> Movie:
    return movie


@app.post("/pydantic")
async def pydantic_body(user: User) -> User:
    return user


@app.post("/embedded")
async def embedded(item: Item, point: Point, note: Annotated[str, Body()] = "") -> dict[str, Any]:
    return {"item": item.name, "x": point.x, "note": note}


@app.post("/embed-one")
async def embed_one(item: Annotated[Item, Body(embed=True)]) -> str:
    return item.name


@app.post("/optional-body")
async def optional_body(item: Item | None = None) -> str:
    return "none" if item is None else item.name


@app.post("/small", max_body_size=64)
async def small(item: Item) -> str:
    return item.name


@app.post("/form")
async def form(
    username: Annotated[str, Form()],
    age: Annotated[int, Form(ge=0)],
    remember: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    return {"username": username, "age": age, "remember": remember}


@app.post("/files")
async def files(
    upload: Annotated[UploadFile, File()],
    raw: Annotated[bytes, File()],
    many: Annotated[list[UploadFile], File()],
    title: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    return {
        "upload": [upload.filename, (await upload.read()).decode()],
        "raw": raw.decode(),
        "many": [m.filename for m in many],
        "title": title,
    }


@app.get("/filtered", response_model=UserOut)
async def filtered() -> Secret:
    return Secret(name="ana", password="hunter2")


@app.get("/filtered-dict")
async def filtered_dict() -> UserOut:
    return {"name": "bo", "password": "x"}  # type: ignore[return-value]


@app.get("/wrong-return")
async def wrong_return() -> UserOut:
    return {"nom": "?"}  # type: ignore[return-value]


@app.post("/created", status_code=201)
async def created(item: Item) -> Item:
    return item


@app.get("/pydantic-out", response_model=User)
async def pydantic_out() -> dict[str, Any]:
    return {"name": "cy", "age": 3, "extra": True}


@app.get("/explicit-response")
async def explicit() -> JSONResponse:
    return JSONResponse({"a": 1}, status_code=202)


client = TestClient(app)


def errors_of(response: Any) -> list[tuple[list[Any], str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(e["loc"], e["type"]) for e in response.json()["errors"]]


def test_struct_body_is_validated_and_echoed() -> None:
    body = {"name": "pen", "price": 1.5, "tags": ["a"]}
    assert client.post("/struct", json=body).json() == body
    assert client.post("/struct", json={"name": "pen", "price": "2"}).json()["price"] == 2.0


def test_struct_body_errors_point_into_the_body() -> None:
    assert errors_of(client.post("/struct", json={"name": "pen", "price": 0})) == [
        (["body", "price"], "greater_than")
    ]
    assert errors_of(client.post("/struct", json={"price": 1})) == [(["body", "name"], "missing")]
    assert errors_of(
        client.post("/struct", json={"name": "p", "price": 1, "tags": [1, "x", 2]})
    ) == [(["body", "tags", 0], "str_type")]


def test_dataclass_typeddict_and_pydantic_bodies() -> None:
    assert client.post("/dataclass", json={"x": 1, "y": 2}).json() == {"sum": 3}
    assert client.post("/typeddict", json={"title": "M", "year": 1927}).json() == {
        "title": "M",
        "year": 1927,
    }
    assert client.post("/pydantic", json={"name": "ana", "age": 3}).json() == {
        "name": "ana",
        "age": 3,
    }
    assert errors_of(client.post("/pydantic", json={"name": "ana", "age": -1})) == [
        (["body", "age"], "greater_than_equal")
    ]


def test_several_body_parameters_are_members_of_one_object() -> None:
    body = {"item": {"name": "pen", "price": 1}, "point": {"x": 4, "y": 0}, "note": "hi"}
    assert client.post("/embedded", json=body).json() == {"item": "pen", "x": 4, "note": "hi"}
    bad = {"item": {"name": "pen", "price": -1}, "point": {"x": "a", "y": 0}}
    assert errors_of(client.post("/embedded", json=bad)) == [
        (["body", "item", "price"], "greater_than"),
        (["body", "point", "x"], "int_parsing"),
    ]
    assert client.post("/embed-one", json={"item": {"name": "cup", "price": 2}}).json() == "cup"


def test_malformed_json_is_400_and_wrong_media_type_415() -> None:
    response = client.post(
        "/struct", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.text
    response = client.post("/struct", content=b"name=pen", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_missing_body_is_422_unless_optional() -> None:
    assert errors_of(client.post("/struct")) == [(["body"], "missing")]
    assert client.post("/optional-body").json() == "none"
    assert client.post("/optional-body", json={"name": "n", "price": 1}).json() == "n"


def test_a_body_over_the_limit_is_413() -> None:
    response = client.post("/small", json={"name": "x" * 100, "price": 1})
    assert response.status_code == 413
    assert client.post("/small", json={"name": "x", "price": 1}).json() == "x"


def test_form_fields_are_converted_and_validated() -> None:
    response = client.post("/form", data={"username": "ana", "age": "30", "remember": "true"})
    assert response.json() == {"username": "ana", "age": 30, "remember": True}
    assert errors_of(client.post("/form", data={"age": "-1"})) == [
        (["body", "username"], "missing"),
        (["body", "age"], "greater_than_equal"),
    ]


def test_uploaded_files_as_upload_file_bytes_and_lists() -> None:
    response = client.post(
        "/files",
        data={"title": "t"},
        files=[
            ("upload", ("a.txt", b"alpha", "text/plain")),
            ("raw", ("b.bin", b"beta", "application/octet-stream")),
            ("many", ("c1.txt", b"1", "text/plain")),
            ("many", ("c2.txt", b"2", "text/plain")),
        ],
    )
    assert response.json() == {
        "upload": ["a.txt", "alpha"],
        "raw": "beta",
        "many": ["c1.txt", "c2.txt"],
        "title": "t",
    }
    assert (["body", "upload"], "missing") in errors_of(
        client.post("/files", files={"raw": ("b", b"x")})
    )


def test_response_model_filters_fields_the_model_does_not_declare() -> None:
    assert client.get("/filtered").json() == {"name": "ana"}
    assert client.get("/filtered-dict").json() == {"name": "bo"}
    assert client.get("/pydantic-out").json() == {"name": "cy", "age": 3}


def test_a_return_value_that_does_not_match_is_a_server_error() -> None:
    quiet = TestClient(app, raise_server_exceptions=False)
    response = quiet.get("/wrong-return")
    assert response.status_code == 500
    assert "nom" not in response.text


def test_status_code_on_the_route_and_explicit_responses() -> None:
    response = client.post("/created", json={"name": "n", "price": 1})
    assert response.status_code == 201
    explicit_response = client.get("/explicit-response")
    assert (explicit_response.status_code, explicit_response.json()) == (202, {"a": 1})


def test_json_and_form_bodies_together_are_a_registration_error() -> None:
    async def handler(item: Item, name: Annotated[str, Form()]) -> None:
        return None

    with pytest.raises(RegistrationError, match="both JSON body parameters"):
        App().add_route("/x", handler, methods=["POST"])


def test_two_body_parameters_with_one_name_are_a_registration_error() -> None:
    async def handler(
        a: Annotated[Item, Body(alias="same")], b: Annotated[Point, Body(alias="same")]
    ) -> None:
        return None

    with pytest.raises(RegistrationError, match="'same'"):
        App().add_route("/x", handler, methods=["POST"])


def test_status_204_sends_no_body_whatever_the_handler_returns() -> None:
    other = App()

    @other.delete("/items/{item_id}", status_code=204)
    async def delete(item_id: int) -> None:
        return None

    @other.post("/later")
    async def later(response: Response) -> dict[str, int]:
        response.status_code = 204
        response.set_cookie("seen", "1")
        return {"x": 1}

    test_client = TestClient(other)
    deleted = test_client.delete("/items/3")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "content-length" not in deleted.headers
    changed = test_client.post("/later")
    assert (changed.status_code, changed.content) == (204, b"")
    assert changed.cookies["seen"] == "1"


def test_the_body_can_still_be_read_after_a_json_body_parameter() -> None:
    other = App()

    @other.post("/")
    async def handler(item: Item, request: Request) -> int:
        return len(await request.body())

    body = b'{"name": "pen", "price": 1}'
    assert TestClient(other).post(
        "/", content=body, headers={"content-type": "application/json"}
    ).json() == len(body)


def test_deeply_nested_json_is_400_not_a_server_error() -> None:
    deep = b'{"a":' * 3000 + b"1" + b"}" * 3000
    response = client.post("/embedded", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400
    response = client.post("/struct", content=deep, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)


def test_forms_respect_max_body_size_and_their_media_type() -> None:
    other = App()

    @other.post("/f", max_body_size=100)
    async def handler(name: Annotated[str, Form()]) -> str:
        return name

    test_client = TestClient(other)
    assert test_client.post("/f", data={"name": "x" * 500}).status_code == 413
    assert test_client.post("/f", data={"name": "ok"}).json() == "ok"
    assert test_client.post("/f", json={"name": "ok"}).status_code == 415


def test_uploaded_files_are_closed_after_the_response() -> None:
    kept: list[UploadFile] = []
    other = App()

    @other.post("/u")
    async def handler(upload: Annotated[UploadFile, File()]) -> int:
        kept.append(upload)
        return len(await upload.read())

    assert TestClient(other).post("/u", files={"upload": ("a.bin", b"abc")}).json() == 3
    assert kept[0].file.closed


def test_checkbox_words_are_booleans_in_forms_and_queries() -> None:
    other = App()

    @other.post("/f")
    async def form_flag(
        remember: Annotated[bool, Form()] = False, flag: bool = False
    ) -> list[bool]:
        return [remember, flag]

    test_client = TestClient(other)
    assert test_client.post("/f?flag=yes", data={"remember": "on"}).json() == [True, True]
    assert test_client.post("/f?flag=off", data={"remember": "no"}).json() == [False, False]
    assert test_client.post("/f?flag=maybe").status_code == 422


def test_a_pydantic_form_model_error_holding_a_file_answers_422() -> None:
    class Upload(pydantic.BaseModel):
        title: str

        @pydantic.model_validator(mode="before")
        @classmethod
        def refuse(cls, data: Any) -> Any:
            raise ValueError("refused")

    other = App()

    @other.post("/u")
    async def handler(form: Annotated[Upload, Form()], f: Annotated[UploadFile, File()]) -> str:
        return form.title

    response = TestClient(other).post("/u", data={"title": "t"}, files={"f": ("a", b"x")})
    assert response.status_code == 422
