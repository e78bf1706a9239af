"""Jinja2 templates: rendering, autoescaping, `url_for`, the response's fields, and
the ``http.response.debug`` extension through which the test client sees the
template and context."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from levante.testing import ASGIAppError, TestClient
from levante.web import App, Request
from levante.web.templating import Jinja2Templates


@pytest.fixture
def templates(tmp_path: Path) -> Jinja2Templates:
    files = {
        "hello.html": "<p>Hello {{ name }} at {{ request.url.path }}</p>",
        "escape.html": "<p>{{ text }}</p>",
        "escape.txt": "{{ text }}",
        "link.html": "<a href=\"{{ url_for('item', item_id=7) }}\">item</a>",
        "processed.html": "{{ site }} / {{ user }}",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return Jinja2Templates(tmp_path)


def app_rendering(
    templates: Jinja2Templates, name: str, context: dict[str, object] | None = None, **options
) -> App:
    app = App()

    @app.get("/page")
    def page(request: Request):
        return templates.TemplateResponse(request, name, context, **options)

    @app.get("/items/{item_id:int}")
    def item(item_id: int) -> int:
        return item_id

    return app


def test_template_renders_with_the_context_and_the_request(templates):
    client = TestClient(app_rendering(templates, "hello.html", {"name": "Ada"}))
    response = client.get("/page")
    assert response.status_code == 200
    assert response.text == "<p>Hello Ada at /page</p>"


def test_html_templates_escape_values(templates):
    client = TestClient(app_rendering(templates, "escape.html", {"text": "<b>&</b>"}))
    assert client.get("/page").text == "<p>&lt;b&gt;&amp;&lt;/b&gt;</p>"


def test_txt_templates_are_not_escaped(templates):
    client = TestClient(app_rendering(templates, "escape.txt", {"text": "<b>&</b>"}))
    assert client.get("/page").text == "<b>&</b>"


def test_url_for_in_a_template_builds_a_routes_url(templates):
    client = TestClient(app_rendering(templates, "link.html"))
    assert client.get("/page").text == '<a href="http://testserver/items/7">item</a>'


def test_template_response_sets_status_headers_and_media_type(templates):
    app = app_rendering(
        templates,
        "hello.html",
        {"name": "Ada"},
        status_code=201,
        headers={"x-page": "hello"},
        media_type="application/xhtml+xml",
    )
    response = TestClient(app).get("/page")
    assert response.status_code == 201
    assert response.headers["x-page"] == "hello"
    assert response.headers["content-type"] == "application/xhtml+xml"  # charset: text/* only
    assert response.headers["content-length"] == str(len(response.content))


def test_template_response_is_html_by_default(templates):
    response = TestClient(app_rendering(templates, "hello.html", {"name": "Ada"})).get("/page")
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_context_processors_add_values_and_the_given_context_wins(tmp_path, templates):
    def site(request: Request) -> dict[str, str]:
        return {"site": f"site of {request.url.path}", "user": "anonymous"}

    with_processor = Jinja2Templates(tmp_path, context_processors=[site])
    client = TestClient(app_rendering(with_processor, "processed.html", {"user": "ada"}))
    assert client.get("/page").text == "site of /page / ada"


def test_a_missing_template_raises_template_not_found(templates):
    client = TestClient(app_rendering(templates, "absent.html"))
    with pytest.raises(jinja2.TemplateNotFound, match=r"absent\.html"):
        client.get("/page")


def test_a_missing_template_is_a_500_for_the_client(templates):
    client = TestClient(app_rendering(templates, "absent.html"), raise_server_exceptions=False)
    assert client.get("/page").status_code == 500


def test_template_response_takes_the_request_first(templates):
    with pytest.raises(TypeError, match="takes the request first"):
        templates.TemplateResponse("hello.html", {})  # type: ignore[arg-type]


def test_templates_take_a_directory_or_an_environment_not_both(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        Jinja2Templates(tmp_path, env=jinja2.Environment())


# -- http.response.debug: the template and context seen by the test client -----------


def test_test_client_records_the_template_and_context(templates):
    app = app_rendering(templates, "hello.html", {"name": "Ada"})
    response = TestClient(app).get("/page")
    assert response.template.name == "hello.html"
    assert response.context["name"] == "Ada"
    assert response.context["request"].url.path == "/page"
    assert response.extensions["http.response.debug"]["template"] is response.template


def recording(app: App) -> tuple[object, list[str]]:
    kinds: list[str] = []

    async def recorder(scope, receive, send) -> None:
        async def recording_send(message) -> None:
            kinds.append(message["type"])
            await send(message)

        await app(scope, receive, recording_send)

    return recorder, kinds


def test_template_response_sends_debug_info_only_when_the_extension_is_offered(templates):
    recorder, kinds = recording(app_rendering(templates, "hello.html", {"name": "Ada"}))
    response = TestClient(recorder, response_debug=False).get("/page")
    assert kinds == ["http.response.start", "http.response.body"]
    assert not hasattr(response, "template")
    kinds.clear()
    TestClient(recorder).get("/page")
    assert kinds == ["http.response.debug", "http.response.start", "http.response.body"]


def test_debug_message_the_client_did_not_offer_is_a_named_error():
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.debug", "info": {}})

    with pytest.raises(ASGIAppError, match="did not offer"):
        TestClient(app, response_debug=False).get("/")


def test_debug_message_after_the_response_started_is_a_named_error():
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.debug", "info": {}})

    with pytest.raises(ASGIAppError, match=r"belongs before 'http\.response\.start'"):
        TestClient(app).get("/")
