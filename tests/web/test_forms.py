"""Form parsing: urlencoded and multipart bodies, uploaded files, and the limits.

Bodies are built by httpx (a real client's multipart encoder) or written by hand
for malformed input, and fed to `Request.form()` through an ASGI `receive`.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import tempfile
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levante.asgi import Message
from levante.web.exceptions import ClientDisconnect, MultiPartException
from levante.web.forms import FormData, UploadFile, parse_form
from levante.web.requests import Request

_T = TypeVar("_T")

BOUNDARY = "x-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"

LIMITS: dict[str, Any] = {
    "max_files": 1000,
    "max_fields": 1000,
    "max_part_size": 1024 * 1024,
    "max_file_size": None,
    "spool_max_size": 1024 * 1024,
}


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def make_request(
    chunks: list[bytes], content_type: str | None, *, disconnect: bool = False
) -> Request:
    """A POST whose body arrives as `chunks`; with `disconnect`, the client leaves
    after the last chunk instead of ending the body."""
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks
    ]
    end: Message = (
        {"type": "http.disconnect"}
        if disconnect
        else {"type": "http.request", "body": b"", "more_body": False}
    )
    messages.append(end)

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    headers = [] if content_type is None else [(b"content-type", content_type.encode("latin-1"))]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


async def parse_body(
    body: bytes, content_type: str | None, *, chunk_size: int | None = None, **limits: Any
) -> FormData:
    size = chunk_size or max(len(body), 1)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return await parse_form(make_request(chunks, content_type), **{**LIMITS, **limits})


def encode(data: dict[str, Any] | None = None, files: Any = None) -> tuple[bytes, str]:
    """A multipart body as httpx encodes it, and its Content-Type."""
    request = httpx.Request("POST", "http://test/", data=data, files=files)
    return request.read(), request.headers["content-type"]


def part(headers: str, content: bytes = b"") -> bytes:
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def closing() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()


def parse_multipart(*parts: bytes, **limits: Any) -> FormData:
    return run(parse_body(b"".join(parts) + closing(), MULTIPART, **limits))


def rejection(body: bytes, content_type: str = MULTIPART, **limits: Any) -> MultiPartException:
    with pytest.raises(MultiPartException) as info:
        run(parse_body(body, content_type, **limits))
    return info.value


# -- urlencoded ---------------------------------------------------------------


def test_urlencoded_fields_are_decoded() -> None:
    body = b"name=Jos%C3%A9+P%C3%A9rez&tag=a&tag=b&empty=&flag"
    form = run(parse_body(body, URLENCODED))
    assert form["name"] == "José Pérez"
    assert form.getlist("tag") == ["a", "b"]
    assert form["empty"] == ""
    assert form["flag"] == ""


def test_urlencoded_raw_utf8_bytes_are_decoded() -> None:
    form = run(parse_body("q=ñandú".encode(), URLENCODED))
    assert form["q"] == "ñandú"


def test_urlencoded_parses_across_chunk_boundaries() -> None:
    body = b"first=one+two&second=%E2%82%AC&third=3"
    form = run(parse_body(body, URLENCODED, chunk_size=1))
    assert form.multi_items() == [("first", "one two"), ("second", "€"), ("third", "3")]


def test_urlencoded_content_type_with_charset_parameter() -> None:
    form = run(parse_body(b"a=1", URLENCODED + "; charset=UTF-8"))
    assert form["a"] == "1"


def test_urlencoded_too_many_fields_is_400() -> None:
    error = rejection(b"a=1&b=2&c=3", URLENCODED, max_fields=2)
    assert error.status_code == 400
    assert "Too many fields" in error.message


def test_urlencoded_field_larger_than_part_size_is_400() -> None:
    error = rejection(b"a=" + b"x" * 20, URLENCODED, max_part_size=10)
    assert error.status_code == 400
    assert "maximum size" in error.message


def test_urlencoded_field_at_the_part_size_is_accepted() -> None:
    form = run(parse_body(b"a=" + b"x" * 8, URLENCODED, max_part_size=10))
    assert form["a"] == "x" * 8


# -- content types ---------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_other_content_types_give_an_empty_form(content_type: str | None) -> None:
    form = run(parse_body(b'{"a": 1}', content_type))
    assert isinstance(form, FormData)
    assert len(form) == 0


def test_multipart_without_boundary_is_400() -> None:
    error = rejection(b"--x--\r\n", "multipart/form-data")
    assert error.status_code == 400
    assert "boundary" in error.message


# -- multipart: fields and files -------------------------------------------------


def test_multipart_fields_and_files_from_httpx() -> None:
    body, content_type = encode(
        data={"title": "Report", "tag": ["a", "b"]},
        files={"upload": ("notes.txt", b"line 1\nline 2\n", "text/plain")},
    )
    form = run(parse_body(body, content_type))
    assert form["title"] == "Report"
    assert form.getlist("tag") == ["a", "b"]
    upload = form["upload"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "notes.txt"
    assert upload.content_type == "text/plain"
    assert upload.size == 14
    assert run(upload.read()) == b"line 1\nline 2\n"
    run(form.close())


def test_multipart_keeps_the_order_of_parts() -> None:
    form = parse_multipart(
        part('Content-Disposition: form-data; name="a"', b"1"),
        part('Content-Disposition: form-data; name="f"; filename="f.bin"', b"\x00\x01"),
        part('Content-Disposition: form-data; name="a"', b"2"),
    )
    names = [name for name, _ in form.multi_items()]
    assert names == ["a", "f", "a"]
    assert form.getlist("a") == ["1", "2"]
    run(form.close())


def test_multipart_file_part_headers_are_kept() -> None:
    form = parse_multipart(
        part(
            'Content-Disposition: form-data; name="doc"; filename="a.json"\r\n'
            "Content-Type: application/json\r\n"
            "X-Custom: yes",
            b"{}",
        )
    )
    upload = form["doc"]
    assert isinstance(upload, UploadFile)
    assert upload.content_type == "application/json"
    assert upload.headers["x-custom"] == "yes"
    assert upload.headers["content-disposition"].startswith("form-data")
    run(form.close())


def test_multipart_file_without_content_type() -> None:
    form = parse_multipart(part('Content-Disposition: form-data; name="f"; filename="a"', b"z"))
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.content_type is None
    run(form.close())


def test_multipart_empty_filename_is_still_a_file() -> None:
    # What a browser sends for a file input left empty.
    form = parse_multipart(part('Content-Disposition: form-data; name="f"; filename=""'))
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == ""
    assert upload.size == 0
    run(form.close())


def test_multipart_utf8_names_and_values() -> None:
    form = parse_multipart(
        part('Content-Disposition: form-data; name="título"', "canción".encode()),
        part('Content-Disposition: form-data; name="f"; filename="año.txt"', b"x"),
    )
    assert form["título"] == "canción"
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "año.txt"
    run(form.close())


def test_multipart_rfc5987_filename_star_wins() -> None:
    form = parse_multipart(
        part(
            'Content-Disposition: form-data; name="f"; filename="fallback.txt"; '
            "filename*=UTF-8''%E2%82%AC%20rates.txt",
            b"x",
        )
    )
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "€ rates.txt"
    run(form.close())


def test_multipart_filename_star_alone_makes_a_file() -> None:
    form = parse_multipart(
        part("Content-Disposition: form-data; name=\"f\"; filename*=utf-8'en'caf%C3%A9", b"x")
    )
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "café"
    run(form.close())


def test_multipart_quoted_filename_with_semicolon() -> None:
    form = parse_multipart(
        part('Content-Disposition: form-data; name="f"; filename="a;b.txt"', b"x")
    )
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "a;b.txt"
    run(form.close())


def test_multipart_non_utf8_field_falls_back_to_latin1() -> None:
    form = parse_multipart(part('Content-Disposition: form-data; name="a"', b"caf\xe9"))
    assert form["a"] == "café"


def test_multipart_empty_body_is_an_empty_form() -> None:
    form = run(parse_body(b"", MULTIPART))
    assert len(form) == 0


def test_multipart_only_closing_boundary_is_an_empty_form() -> None:
    form = run(parse_body(closing(), MULTIPART))
    assert len(form) == 0


# -- spooling ---------------------------------------------------------------------


def test_small_file_stays_in_memory() -> None:
    form = parse_multipart(
        part('Content-Disposition: form-data; name="f"; filename="s"', b"x" * 10),
        spool_max_size=100,
    )
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.file._rolled is False  # type: ignore[attr-defined]
    run(form.close())


def test_file_past_spool_size_rolls_to_disk_and_reads_back() -> None:
    content = bytes(range(256)) * 40
    form = parse_multipart(
        part('Content-Disposition: form-data; name="f"; filename="big"', content),
        spool_max_size=1000,
        chunk_size=333,
    )
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.file._rolled is True  # type: ignore[attr-defined]
    assert upload.file.fileno() >= 0
    assert upload.size == len(content)
    assert run(upload.read(5)) == content[:5]
    run(upload.seek(0))
    assert run(upload.read()) == content
    run(form.close())
    assert upload.file.closed


def test_upload_file_write_seek_read_close() -> None:
    async def scenario() -> None:
        spooled = tempfile.SpooledTemporaryFile(max_size=4)  # noqa: SIM115  # upload.close()
        upload = UploadFile(spooled, size=0, filename="w")
        await upload.write(b"ab")
        assert upload.file._rolled is False  # type: ignore[attr-defined]
        await upload.write(b"cdef")  # past max_size: written on disk, in the thread pool
        assert upload.file._rolled is True  # type: ignore[attr-defined]
        assert upload.size == 6
        await upload.seek(2)
        assert await upload.read() == b"cdef"
        await upload.close()
        assert upload.file.closed

    run(scenario())


def test_upload_file_over_a_plain_file_object() -> None:
    async def scenario() -> None:
        upload = UploadFile(io.BytesIO(b"hello"), filename="h")
        assert await upload.read() == b"hello"
        await upload.close()

    run(scenario())


# -- limits -----------------------------------------------------------------------


def file_part(name: str = "f", content: bytes = b"x") -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"; filename="{name}.txt"', content)


def field_part(name: str = "a", content: bytes = b"1") -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"', content)


def test_too_many_files_is_400() -> None:
    error = rejection(file_part("a") + file_part("b") + file_part("c") + closing(), max_files=2)
    assert error.status_code == 400
    assert "Too many files" in error.message


def test_files_up_to_the_limit_are_accepted() -> None:
    form = parse_multipart(file_part("a"), file_part("b"), max_files=2)
    assert len(form) == 2
    run(form.close())


def test_too_many_fields_is_400() -> None:
    error = rejection(field_part("a") + field_part("b") + field_part("c") + closing(), max_fields=2)
    assert error.status_code == 400
    assert "Too many fields" in error.message


def test_files_do_not_count_as_fields() -> None:
    form = parse_multipart(field_part("a"), file_part("f"), file_part("g"), max_fields=1)
    assert form["a"] == "1"
    run(form.close())


def test_field_part_larger_than_part_size_is_400() -> None:
    error = rejection(field_part("a", b"x" * 101) + closing(), max_part_size=100)
    assert error.status_code == 400
    assert "Part exceeded maximum size" in error.message


def test_part_size_does_not_bound_files() -> None:
    form = parse_multipart(file_part("f", b"x" * 500), max_part_size=100)
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.size == 500
    run(form.close())


def test_file_larger_than_max_file_size_is_413() -> None:
    error = rejection(file_part("f", b"x" * 101) + closing(), max_file_size=100, chunk_size=7)
    assert error.status_code == 413
    assert "File exceeded maximum size" in error.message


def test_file_at_max_file_size_is_accepted() -> None:
    form = parse_multipart(file_part("f", b"x" * 100), max_file_size=100, chunk_size=7)
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.size == 100
    run(form.close())


# -- malformed multipart ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not multipart at all", id="no-boundary-line"),
        pytest.param(f"--{BOUNDARY}\r\nno colon here\r\n\r\nx\r\n".encode(), id="bad-header"),
        pytest.param(field_part("a", b"1"), id="no-closing-boundary"),
        pytest.param(f"--{BOUNDARY}\r\nContent-Disposition: form-da".encode(), id="cut-in-headers"),
    ],
)
def test_malformed_multipart_is_400(body: bytes) -> None:
    error = rejection(body)
    assert error.status_code == 400
    assert "Invalid multipart data" in error.message


def test_part_without_a_name_is_400() -> None:
    error = rejection(part("Content-Disposition: form-data", b"1") + closing())
    assert error.status_code == 400
    assert '"name"' in error.message


def test_part_without_content_disposition_is_400() -> None:
    error = rejection(part("Content-Type: text/plain", b"1") + closing())
    assert error.status_code == 400


# -- files are closed when parsing fails ----------------------------------------------


class _Recorder:
    """Records every SpooledTemporaryFile the parser opens."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[Any] = []
        real = tempfile.SpooledTemporaryFile

        def spooled(*args: Any, **kwargs: Any) -> Any:
            file = real(*args, **kwargs)
            self.files.append(file)
            return file

        monkeypatch.setattr(tempfile, "SpooledTemporaryFile", spooled)


def test_files_opened_before_a_limit_error_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    body = file_part("a") + file_part("b") + field_part("x") + field_part("y") + closing()
    rejection(body, max_fields=1)
    assert len(recorder.files) == 2
    assert all(file.closed for file in recorder.files)


def test_files_opened_before_malformed_data_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    rejection(file_part("a", b"data"))  # no closing boundary
    assert len(recorder.files) == 1
    assert recorder.files[0].closed


def test_client_disconnect_closes_files_and_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    request = make_request([file_part("a", b"x" * 50)], MULTIPART, disconnect=True)
    with pytest.raises(ClientDisconnect):
        run(parse_form(request, **LIMITS))
    assert len(recorder.files) == 1
    assert recorder.files[0].closed


# -- Request.form() -------------------------------------------------------------------


def test_request_form_is_cached_and_close_closes_files() -> None:
    body, content_type = encode(files={"f": ("a.txt", b"abc", "text/plain")})

    async def scenario() -> None:
        request = make_request([body], content_type)
        form = await request.form()
        assert await request.form() is form
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        await request.close()
        assert upload.file.closed

    run(scenario())


def test_form_through_an_asgi_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            form = await request.form(max_file_size=8)
        except MultiPartException as exc:
            status, body = exc.status_code, exc.message.encode()
        else:
            upload = form["f"]
            assert isinstance(upload, UploadFile)
            status, body = 200, f"{form['name']}:{upload.filename}:{upload.size}".encode()
            await request.close()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ok = await client.post("/", data={"name": "n"}, files={"f": ("a.bin", b"12345678")})
            too_big = await client.post(
                "/", data={"name": "n"}, files={"f": ("a.bin", b"123456789")}
            )
            return ok, too_big

    ok, too_big = run(scenario())
    assert (ok.status_code, ok.text) == (200, "n:a.bin:8")
    assert too_big.status_code == 413


# -- chunk splits (property) ----------------------------------------------------------


_FORM_BODY, _FORM_TYPE = encode(
    data={"alpha": "one\r\ntwo", "beta": "--x-boundary not a boundary"},
    files={"f": ("data.bin", bytes(range(256)) * 3, "application/octet-stream")},
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(_FORM_BODY)), max_size=12))
def test_multipart_parse_is_independent_of_chunk_splits(cuts: list[int]) -> None:
    points = sorted({0, *cuts, len(_FORM_BODY)})
    chunks = [_FORM_BODY[a:b] for a, b in itertools.pairwise(points)]

    async def scenario() -> list[tuple[str, Any]]:
        form = await parse_form(
            make_request(chunks, _FORM_TYPE), **{**LIMITS, "spool_max_size": 300}
        )
        items: list[tuple[str, Any]] = []
        for name, value in form.multi_items():
            items.append((name, await value.read() if isinstance(value, UploadFile) else value))
        await form.close()
        return items

    assert run(scenario()) == [
        ("alpha", "one\r\ntwo"),
        ("beta", "--x-boundary not a boundary"),
        ("f", bytes(range(256)) * 3),
    ]


def test_form_in_an_app_route_through_the_test_client() -> None:
    testing = pytest.importorskip("levante.testing")
    from levante.web import App

    app: App[None] = App()

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        form = await request.form()
        file = form["file"]
        assert isinstance(file, UploadFile)
        content = await file.read()
        await request.close()
        return {"title": form["title"], "name": file.filename, "size": len(content)}

    with testing.TestClient(app) as client:
        response = client.post(
            "/upload", data={"title": "t"}, files={"file": ("r.csv", b"a,b\n1,2\n", "text/csv")}
        )
    assert response.status_code == 200
    assert response.json() == {"title": "t", "name": "r.csv", "size": 8}
