"""The OpenAPI 3.1 and AsyncAPI 3.0 documents, validated by their public validators,
and the offline documentation pages."""

# No `from __future__ import annotations`: handlers defined in tests are read at registration.

import json
import subprocess
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import msgspec
import pytest
from openapi_spec_validator import validate as validate_openapi

from levante.testing import TestClient
from levante.web import App, Depends, Form, Query, Request
from tests.apps.typed_app import app
from tests.conftest import ROOT

client = TestClient(app)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)


def test_info_tags_and_hidden_routes(document: dict[str, Any]) -> None:
    assert document["info"] == {
        "title": "Example API",
        "version": "1.2.3",
        "description": "An example of typed handlers.",
    }
    assert document["tags"] == [{"name": "items", "description": "Things for sale"}]
    assert "/hidden" not in document["paths"]
    assert "/openapi.json" not in document["paths"]
    assert "/docs" not in document["paths"]


def test_operations_have_ids_summaries_descriptions_and_tags(document: dict[str, Any]) -> None:
    listing = document["paths"]["/items"]["get"]
    assert listing["operationId"] == "list_items_items_get"
    assert listing["summary"] == "List the items."
    assert listing["description"] == "Filter by size and by a text in the name."
    assert listing["tags"] == ["items"]
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_parameters_carry_location_requirement_constraints_and_docs(
    document: dict[str, Any],
) -> None:
    params = {p["name"]: p for p in document["paths"]["/items"]["get"]["parameters"]}
    assert params["offset"]["in"] == "query"
    assert params["offset"]["required"] is False
    assert params["offset"]["description"] == "Items to skip"
    assert params["offset"]["example"] == 20
    assert params["offset"]["schema"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10000,
        "default": 0,
        "description": "Items to skip",
        "examples": [20],
    }
    assert params["limit"]["schema"]["maximum"] == 100
    path = document["paths"]["/items/{item_id}"]["get"]["parameters"][0]
    assert path["in"] == "path" and path["required"] is True and path["name"] == "item_id"
    search = {p["name"]: p for p in document["paths"]["/search"]["get"]["parameters"]}
    assert search["term"]["required"] is True
    assert search["user-agent"]["in"] == "header"
    assert search["session"]["in"] == "cookie"


def test_request_bodies_json_embedded_and_multipart(document: dict[str, Any]) -> None:
    create = document["paths"]["/items"]["post"]["requestBody"]
    assert create["required"] is True
    assert create["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Item"}
    users = document["paths"]["/users"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert set(users["properties"]) == {"user", "note"}
    assert users["required"] == ["user"]
    upload = document["paths"]["/upload"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"
    ]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}
    token = document["paths"]["/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in token


def test_responses_status_models_extra_and_validation(document: dict[str, Any]) -> None:
    create = document["paths"]["/items"]["post"]["responses"]
    # The handler's answer, and the framework's refusals before it runs: no or a bad
    # token (401), a body that is not JSON (400, 415) or too large (413), or invalid (422).
    assert set(create) == {"201", "401", "400", "413", "415", "422"}
    assert create["413"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert create["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StoredItem"
    }
    assert create["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationProblem"
    }
    one = document["paths"]["/items/{item_id}"]["get"]["responses"]
    assert one["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotFound"
    }
    schemas = document["components"]["schemas"]
    assert {"Item", "StoredItem", "NotFound", "User", "Size", "ValidationProblem"} <= set(schemas)
    assert schemas["Item"]["properties"]["price"]["exclusiveMinimum"] == 0


def test_security_schemes_and_requirements(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Any non-empty token",
    }
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "name": "X-API-Key", "in": "header"}
    assert schemes["HTTPBasic"] == {"type": "http", "scheme": "basic"}
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/token"
    assert document["paths"]["/items"]["post"]["security"] == [{"HTTPBearer": []}]
    assert document["paths"]["/me"]["get"]["security"] == [{"OAuth2PasswordBearer": ["items:read"]}]
    assert document["paths"]["/admin"]["get"]["deprecated"] is True


def test_root_path_is_the_server_url() -> None:
    behind_proxy = TestClient(app, root_path="/api")
    document = behind_proxy.get("/openapi.json").json()
    assert document["servers"] == [{"url": "/api"}]


def test_documents_can_be_turned_off() -> None:
    bare = TestClient(App(openapi_url=None, asyncapi_url=None))
    for url in ("/openapi.json", "/docs", "/redoc", "/asyncapi.json"):
        assert bare.get(url).status_code == 404


# -- pages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "assets"),
    [("/docs", ["swagger-ui-bundle.js", "swagger-ui.css"]), ("/redoc", ["redoc.standalone.js"])],
)
def test_documentation_pages_load_their_assets_from_the_app(page: str, assets: list[str]) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text
    for asset in assets:
        assert f"{page}/assets/{asset}" in response.text
        served = client.get(f"{page}/assets/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 10_000


# -- AsyncAPI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi_schema() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 JSON Schema from the npm package @asyncapi/specs
    (`scripts/asyncapi-schema` fetches it once)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "asyncapi-schema")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/asyncapi-schema failed:\n{result.stdout}{result.stderr}")
    return json.loads(Path(result.stdout.strip()).read_text())


def test_asyncapi_document_describes_websocket_and_sse_routes(
    asyncapi_schema: dict[str, Any],
) -> None:
    document = client.get("/asyncapi.json").json()
    jsonschema.validate(document, asyncapi_schema)
    assert document["asyncapi"] == "3.0.0"
    chat = document["channels"]["chat_room"]
    assert chat["address"] == "/chat/{room}"
    assert chat["parameters"] == {"room": {"description": "path parameter room"}}
    assert chat["messages"]["receiveMessage"]["payload"] == {"$ref": "#/components/schemas/Message"}
    ticks = document["channels"]["ticks"]
    assert ticks["messages"]["sendMessage"]["contentType"] == "text/event-stream"
    actions = {name: op["action"] for name, op in document["operations"].items()}
    assert actions == {
        "chat_room_receive": "receive",
        "chat_room_send": "send",
        "ticks_send": "send",
    }
    assert document["servers"]["websocket"]["protocol"] == "ws"


def test_an_app_without_websocket_or_sse_routes_has_no_asyncapi_document() -> None:
    assert TestClient(App()).get("/asyncapi.json").status_code == 404


def test_tricky_apps_still_give_valid_documents() -> None:
    class Login(msgspec.Struct):
        user: str
        remember: bool = False

    tricky = App()

    @tricky.get("/users/{uid}")
    async def by_request(request: Request) -> str:
        return str(request.path_params["uid"])

    def dep(q: str = "x") -> str:
        return q

    @tricky.get("/twice")
    async def twice(d: Annotated[str, Depends(dep)], q: int = 1) -> str:
        return d

    @tricky.get("/none")
    async def none_default(
        u: Annotated[int | None, Query(gt=0)] = None, f: float = float("inf")
    ) -> str:
        return ""

    @tricky.post("/login")
    async def login(form: Annotated[Login, Form()]) -> str:
        return form.user

    sub = App()

    @sub.get("/x")
    async def x() -> str:
        return ""

    tricky.mount("/v/{version}", sub)
    test_client = TestClient(tricky)
    document = test_client.get("/openapi.json").json()
    validate_openapi(document)
    assert document["paths"]["/users/{uid}"]["get"]["parameters"][0]["name"] == "uid"
    assert [p["name"] for p in document["paths"]["/twice"]["get"]["parameters"]] == ["q"]
    form = document["paths"]["/login"]["post"]["requestBody"]["content"]
    assert form["application/x-www-form-urlencoded"]["schema"] == {
        "$ref": "#/components/schemas/Login"
    }
    assert test_client.post("/login", data={"user": "ana", "remember": "on"}).json() == "ana"
    errors = test_client.post("/login", data={}).json()["errors"]
    assert errors[0]["loc"] == ["body", "user"]
