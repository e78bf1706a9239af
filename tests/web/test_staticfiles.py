"""StaticFiles: serving a directory, html mode, and never anything outside it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levante.testing import TestClient
from levante.web import App, Mount
from levante.web.files import StaticFiles

SECRET = "TOP-SECRET-a5f1c9"


def build_site(tmp_path: Path) -> Path:
    """A served directory ``public`` with secrets beside it and links out of it.

    tmp_path/
      secret.txt                 outside, must never be served
      public-secret/x.txt        outside, shares "public" as a string prefix
      outside/secret.txt         outside, reached through a directory link
      public/
        hello.txt, index.html, 404.html, css/app.css, docs/index.html
        alias.txt -> hello.txt               (inside: fine)
        link.txt -> ../secret.txt            (outside)
        sneaky.txt -> ../public-secret/x.txt (outside, prefix trick)
        outdir -> ../outside                 (outside)
    """
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "public-secret").mkdir()
    (tmp_path / "public-secret" / "x.txt").write_text(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "docs").mkdir()
    (public / "hello.txt").write_text("hello")
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "404.html").write_text("<h1>no such page</h1>")
    (public / "css" / "app.css").write_text("body {}")
    (public / "docs" / "index.html").write_text("<h1>docs</h1>")
    (public / "alias.txt").symlink_to("hello.txt")
    (public / "link.txt").symlink_to(tmp_path / "secret.txt")
    (public / "sneaky.txt").symlink_to(Path("..") / "public-secret" / "x.txt")
    (public / "outdir").symlink_to(tmp_path / "outside", target_is_directory=True)
    return public


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return build_site(tmp_path)


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("shared"))


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """Clients for `StaticFiles(**options)` mounted at /static; closed afterwards."""
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        app = App([Mount("/static", StaticFiles(**options))])
        clients.append(TestClient(app, follow_redirects=False))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(site: Path, client_for: Callable[..., TestClient]) -> TestClient:
    return client_for(directory=site)


@pytest.fixture
def html_client(site: Path, client_for: Callable[..., TestClient]) -> TestClient:
    return client_for(directory=site, html=True)


def call(
    app: StaticFiles, path: str, method: str = "GET", root_path: str = ""
) -> tuple[int, bytes]:
    """Send one request with a hand-built scope; the status and body of the answer."""
    sent = exchange(app, path, method, root_path)
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return sent[0]["status"], body


def exchange(
    app: StaticFiles, path: str, method: str = "GET", root_path: str = ""
) -> list[dict[str, Any]]:
    """Send one request with a hand-built scope (no client to normalise the path)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver")],
        "client": None,
        "server": None,
    }
    sent: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        # The body once; then, as a server does, wait while the client stays connected.
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


# -- serving --------------------------------------------------------------------


def test_file_is_served_with_its_type(client: TestClient) -> None:
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert response.text == "body {}"
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert "etag" in response.headers


def test_head_gives_headers_only(client: TestClient) -> None:
    response = client.head("/static/hello.txt")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "5"


def test_conditional_request_gets_304(client: TestClient) -> None:
    etag = client.get("/static/hello.txt").headers["etag"]
    response = client.get("/static/hello.txt", headers={"If-None-Match": etag})
    assert response.status_code == 304


def test_range_request_gets_206(client: TestClient) -> None:
    response = client.get("/static/hello.txt", headers={"Range": "bytes=1-3"})
    assert response.status_code == 206
    assert response.text == "ell"


def test_symlink_inside_the_directory_is_served(client: TestClient) -> None:
    assert client.get("/static/alias.txt").text == "hello"


def test_unknown_path_is_404_plain_text(client: TestClient) -> None:
    response = client.get("/static/nope.txt")
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_directory_without_html_mode_is_404(client: TestClient) -> None:
    assert client.get("/static/docs/").status_code == 404


def test_post_is_405_with_allow(client: TestClient) -> None:
    response = client.post("/static/hello.txt")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_path_relative_to_the_mount_is_accepted(site: Path) -> None:
    # The older convention: `path` already stripped of `root_path`.
    status, body = call(StaticFiles(directory=site), "/hello.txt", root_path="/static")
    assert (status, body) == (200, b"hello")


def test_packages_serve_their_statics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "levante_statics_pkg"
    (package / "statics").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "statics" / "pkg.txt").write_text("from a package")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "levante_statics_pkg", raising=False)
    status, body = call(StaticFiles(packages=["levante_statics_pkg"]), "/pkg.txt")
    assert (status, body) == (200, b"from a package")


def test_missing_directory_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        StaticFiles(directory=tmp_path / "missing")


def test_missing_directory_with_check_dir_off_fails_on_first_request(tmp_path: Path) -> None:
    app = StaticFiles(directory=tmp_path / "later", check_dir=False)
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "a.txt").write_text("a")
    assert call(app, "/a.txt") == (200, b"a")


def test_lifespan_scope_returns_at_once(site: Path) -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("StaticFiles must not wait for lifespan events")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("StaticFiles must not answer lifespan events")

    app = StaticFiles(directory=site)
    assert asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)) is None


# -- html mode ------------------------------------------------------------------


def test_html_mode_serves_index_for_the_root(html_client: TestClient) -> None:
    response = html_client.get("/static/")
    assert response.status_code == 200
    assert response.text == "<h1>home</h1>"


def test_html_mode_serves_index_for_a_directory(html_client: TestClient) -> None:
    assert html_client.get("/static/docs/").text == "<h1>docs</h1>"


def test_html_mode_redirects_a_directory_to_its_slash(html_client: TestClient) -> None:
    response = html_client.get("/static/docs?x=1")
    assert response.status_code == 307
    assert response.headers["location"] == "/static/docs/?x=1"


def test_html_mode_redirect_never_leaves_the_host(site: Path) -> None:
    (site / "evil.example").mkdir()
    (site / "evil.example" / "index.html").write_text("x")
    app = StaticFiles(directory=site, html=True)
    sent = exchange(app, "//evil.example")
    assert sent[0]["status"] == 307
    assert dict(sent[0]["headers"])[b"location"] == b"/evil.example/"


def test_html_mode_serves_404_html_for_misses(html_client: TestClient) -> None:
    response = html_client.get("/static/nope")
    assert response.status_code == 404
    assert response.text == "<h1>no such page</h1>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"


# -- never outside the directory ------------------------------------------------

#: Request targets sent raw by the client (httpx keeps percent-encoding as is).
CLIENT_ATTACKS = [
    "/static/%2e%2e/secret.txt",  # decoded once: "/static/../secret.txt"
    "/static/%2E%2E/%2e%2e/secret.txt",
    "/static/..%2fsecret.txt",  # an encoded slash: "../secret.txt" after decoding
    "/static/%252e%252e/secret.txt",  # double-encoded: a literal name "%2e%2e"
    "/static/....//secret.txt",
    "/static/..%5csecret.txt",  # backslash: a literal character on POSIX
    "/static/%5c..%5csecret.txt",
    "/static/%00secret.txt",
    "/static/hello.txt%00.png",
    "/static/link.txt",  # symlink to a file outside
    "/static/sneaky.txt",  # symlink outside whose path shares the "public" prefix
    "/static/outdir/secret.txt",  # symlinked directory outside
]


@pytest.mark.parametrize("target", CLIENT_ATTACKS)
def test_traversal_through_the_client_is_404(client: TestClient, target: str) -> None:
    response = client.get(target)
    assert response.status_code == 404
    assert SECRET not in response.text


def scope_attacks(site: Path) -> list[str]:
    """Paths as a server might hand them over, already decoded and never normalised."""
    outside = site.parent
    return [
        "/../secret.txt",
        "/css/../../secret.txt",
        "/./../secret.txt",
        "/..",
        "/../public-secret/x.txt",
        "//" + str(outside / "secret.txt").lstrip("/"),  # "//tmp/.../secret.txt"
        str(outside / "secret.txt"),  # "/tmp/.../secret.txt"
        "/..\\secret.txt",
        "/\x00/../secret.txt",
        "/link.txt",
        "/sneaky.txt",
        "/outdir/secret.txt",
        "/outdir/../secret.txt",
    ]


def test_traversal_in_a_raw_scope_is_404(site: Path) -> None:
    for html in (False, True):
        app = StaticFiles(directory=site, html=html)
        for path in scope_attacks(site):
            status, body = call(app, path)
            assert status == 404, path
            assert SECRET.encode() not in body, path


def test_lookup_refuses_every_path_outside_before_opening_it(site: Path) -> None:
    # `lookup_path` is the only way to a file: FileResponse opens what it returns.
    # Returning no path and no stat proves nothing outside is even stat'ed as a hit.
    app = StaticFiles(directory=site)
    for path in scope_attacks(site):
        assert app.lookup_path(path) == ("", None), path


def test_follow_symlink_serves_links_out_of_the_directory(site: Path) -> None:
    # Documented: with follow_symlink=True whoever can create links inside can
    # publish any readable file. `..` still cannot climb out.
    app = StaticFiles(directory=site, follow_symlink=True)
    assert call(app, "/link.txt") == (200, SECRET.encode())
    assert call(app, "/../secret.txt")[0] == 404


#: Segments an attacker might combine: traversal, encodings, separators, names inside.
SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "...",
        "%2e%2e",
        "\\",
        "..\\..",
        "\x00",
        "css",
        "docs",
        "hello.txt",
        "link.txt",
        "sneaky.txt",
        "outdir",
        "secret.txt",
        "public",
        "public-secret",
        "x.txt",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENTS, max_size=6))
def test_lookup_never_resolves_outside_the_directory(
    shared_site: Path, segments: list[str]
) -> None:
    full_path, stat_result = StaticFiles(directory=shared_site).lookup_path("/".join(segments))
    if stat_result is not None:
        real_root = os.path.realpath(shared_site)
        assert os.path.commonpath([real_root, full_path]) == real_root
