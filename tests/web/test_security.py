"""Security schemes as dependencies: HTTP Bearer and Basic, API keys, OAuth2 password."""

import base64

import pytest

from levante.testing import TestClient
from tests.apps.typed_app import app

client = TestClient(app)
ITEM = {"name": "cup", "price": 2.5}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_bearer_token_missing_is_401_with_a_challenge() -> None:
    response = client.post("/items", json=ITEM)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Token abc", ""])
def test_bearer_token_malformed_is_401(header: str) -> None:
    assert client.post("/items", json=ITEM, headers={"authorization": header}).status_code == 401


def test_bearer_token_present_reaches_the_handler() -> None:
    response = client.post("/items", json=ITEM, headers={"authorization": "Bearer test"})
    assert response.status_code == 201
    assert response.json()["name"] == "cup"


def test_basic_and_api_key_together() -> None:
    ok = client.get("/admin", headers={"authorization": basic("ana", "secret"), "x-api-key": "key"})
    assert (ok.status_code, ok.json()) == (200, {"user": "ana"})
    no_key = client.get("/admin", headers={"authorization": basic("ana", "secret")})
    assert no_key.status_code == 403
    no_login = client.get("/admin", headers={"x-api-key": "key"})
    assert no_login.status_code == 401
    assert no_login.headers["www-authenticate"] == 'Basic realm="example"'


@pytest.mark.parametrize(
    "credentials", ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()]
)
def test_basic_credentials_that_do_not_decode_are_401(credentials: str) -> None:
    response = client.get("/admin", headers={"authorization": credentials, "x-api-key": "key"})
    assert response.status_code == 401


def test_oauth2_password_flow_token_then_scoped_access() -> None:
    response = client.post(
        "/token", data={"username": "ana", "password": "secret", "scope": "items:read"}
    )
    assert response.json() == {"access_token": "token-ana", "token_type": "bearer"}
    token = response.json()["access_token"]
    me = client.get("/me", headers={"authorization": f"Bearer {token}"})
    assert me.json() == {"user": "token-ana with items:read"}
    assert client.get("/me").status_code == 401


def test_oauth2_form_validation_and_wrong_grant_type() -> None:
    assert client.post("/token", data={"username": "ana"}).status_code == 422
    wrong = client.post(
        "/token", data={"username": "a", "password": "secret", "grant_type": "code"}
    )
    assert wrong.status_code == 400
    assert client.post("/token", data={"username": "a", "password": "nope"}).status_code == 400


def test_a_password_with_colons_is_split_at_the_first_one() -> None:
    wrong = client.get(
        "/admin", headers={"authorization": basic("ana", "sec:ret"), "x-api-key": "key"}
    )
    assert wrong.status_code == 401
    assert (
        client.get(
            "/admin", headers={"authorization": basic("ana", "secret"), "x-api-key": "nope"}
        ).status_code
        == 403
    )
