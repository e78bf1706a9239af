"""Property: whatever a client sends to a typed handler, the answer is the declared
types (200) or a 4xx with a problem document, never a server error."""

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from levante.testing import TestClient
from tests.apps.typed_app import app

client = TestClient(app, raise_server_exceptions=True)

texts = st.text(max_size=30)
maybe = st.one_of(
    st.none(),
    texts,
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["exact", "fuzzy", "2026-12-02", "true"]),
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
item_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=60), st.integers()),
        "price": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.integers()
        ),
        "size": st.sampled_from(["small", "large", "medium", 3]),
        "tags": st.lists(st.one_of(st.text(max_size=25), st.integers()), max_size=3),
    },
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code in (400, 413, 415, 422):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == response.status_code


@SETTINGS
@given(term=maybe, when=maybe, ident=maybe, mode=maybe)
def test_query_parameters_validate_or_answer_422(
    term: Any, when: Any, ident: Any, mode: Any
) -> None:
    params = {
        k: v
        for k, v in {"term": term, "when": when, "ident": ident, "mode": mode}.items()
        if v is not None
    }
    response = client.get("/search", params=params)
    check(response)
    if response.status_code == 200:
        body = response.json()
        assert body["term"] == params["term"] and 1 <= len(body["term"]) <= 30
        assert body["mode"] in ("exact", "fuzzy")


@SETTINGS
@given(item_id=st.one_of(texts, st.integers(-5, 2_000_000).map(str)))
def test_path_parameters_validate_or_answer_422_or_404(item_id: str) -> None:
    assume(item_id not in (".", ".."))  # dot segments: the client removes them from the URL
    response = client.get("/items/" + quote(item_id, safe=""), follow_redirects=False)
    assert response.status_code in (200, 307, 404, 422), response.text
    if response.status_code == 200:
        assert response.json()["id"] == int(item_id)


@SETTINGS
@given(body=st.one_of(item_like, json_values))
def test_json_bodies_validate_or_answer_422(body: Any) -> None:
    response = client.post(
        "/items",
        content=json.dumps(body),
        headers={"authorization": "Bearer test", "content-type": "application/json"},
    )
    check(response)
    if response.status_code == 201:
        stored = response.json()
        assert isinstance(stored["name"], str) and 1 <= len(stored["name"]) <= 50
        assert isinstance(stored["price"], float) and stored["price"] > 0
        assert stored["size"] in ("small", "large")


@SETTINGS
@given(raw=st.binary(max_size=60))
def test_arbitrary_bytes_as_a_json_body_never_fail_the_server(raw: bytes) -> None:
    response = client.post("/users", content=raw, headers={"content-type": "application/json"})
    check(response)
