"""FileResponse: validators, conditional requests (RFC 9110 §13), ranges (§14), pathsend."""

from __future__ import annotations

import asyncio
import email.parser
import itertools
import os
import re
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from levante.testing import TestClient
from levante.web.background import BackgroundTask
from levante.web.files import (
    MAX_RANGES,
    FileResponse,
    coalesce_ranges,
    content_disposition,
    etag_matches,
    parse_range,
)

DATA = b"".join(b"%04d\n" % i for i in range(2000))  # 10,000 bytes
SIZE = len(DATA)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_bytes(DATA)
    return path


def serve(path: Path, **options: Any) -> Any:
    """An ASGI app answering every request with a fresh FileResponse for `path`."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await FileResponse(path, **options)(scope, receive, send)

    return app


@pytest.fixture
def client_for() -> Iterator[Callable[[Any], TestClient]]:
    """Make test clients for apps; each is closed (its loop thread stopped) afterwards."""
    clients: list[TestClient] = []

    def make(app: Any) -> TestClient:
        clients.append(TestClient(app))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


@pytest.fixture
def client(data_file: Path, client_for: Callable[[Any], TestClient]) -> TestClient:
    return client_for(serve(data_file))


def validators(client: TestClient) -> tuple[str, str]:
    response = client.head("/")
    return response.headers["etag"], response.headers["last-modified"]


# -- whole file ---------------------------------------------------------------


def test_file_is_sent_with_length_type_and_validators(client: TestClient, data_file: Path) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["last-modified"] == formatdate(data_file.stat().st_mtime, usegmt=True)
    assert re.fullmatch(r'"[0-9a-f]+-2710"', response.headers["etag"])  # 0x2710 == 10000


def test_media_type_is_guessed_from_the_file_name(
    tmp_path: Path, client_for: Callable[[Any], TestClient]
) -> None:
    path = tmp_path / "logo.png"
    path.write_bytes(b"\x89PNG")
    response = client_for(serve(path)).get("/")
    assert response.headers["content-type"] == "image/png"


def test_unknown_extension_is_octet_stream(
    tmp_path: Path, client_for: Callable[[Any], TestClient]
) -> None:
    path = tmp_path / "blob.levante-unknown"
    path.write_bytes(b"x")
    response = client_for(serve(path)).get("/")
    assert response.headers["content-type"] == "application/octet-stream"


def test_head_sends_the_headers_without_the_body(client: TestClient) -> None:
    response = client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(SIZE)


def test_etag_changes_when_the_file_changes(client: TestClient, data_file: Path) -> None:
    before = client.head("/").headers["etag"]
    data_file.write_bytes(DATA + b"more")
    assert client.head("/").headers["etag"] != before


def test_missing_file_gets_404(tmp_path: Path, client_for: Callable[[Any], TestClient]) -> None:
    response = client_for(serve(tmp_path / "gone.txt")).get("/")
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_directory_gets_404(tmp_path: Path, client_for: Callable[[Any], TestClient]) -> None:
    assert client_for(serve(tmp_path)).get("/").status_code == 404


def test_empty_file_is_sent_empty(tmp_path: Path, client_for: Callable[[Any], TestClient]) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    response = client_for(serve(path)).get("/", headers={"Range": "bytes=0-10"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


def test_background_task_runs_after_the_file_is_sent(
    data_file: Path, client_for: Callable[[Any], TestClient]
) -> None:
    ran: list[str] = []
    task = BackgroundTask(ran.append, "done")
    response = client_for(serve(data_file, background=task)).get("/")
    assert response.content == DATA
    assert ran == ["done"]


# -- conditional requests -----------------------------------------------------


def test_if_none_match_with_the_current_etag_gives_304(client: TestClient) -> None:
    etag, _ = validators(client)
    response = client.get("/", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "content-length" not in response.headers


def test_if_none_match_compares_weakly_in_a_list(client: TestClient) -> None:
    etag, _ = validators(client)
    response = client.get("/", headers={"If-None-Match": f'"other", W/{etag}'})
    assert response.status_code == 304


def test_if_none_match_star_gives_304(client: TestClient) -> None:
    assert client.get("/", headers={"If-None-Match": "*"}).status_code == 304


def test_if_none_match_with_another_etag_sends_the_file(client: TestClient) -> None:
    response = client.get("/", headers={"If-None-Match": '"not-it"'})
    assert response.status_code == 200
    assert response.content == DATA


def test_if_modified_since_last_modified_gives_304(client: TestClient) -> None:
    _, last_modified = validators(client)
    response = client.get("/", headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304


def test_if_modified_since_an_older_date_sends_the_file(client: TestClient) -> None:
    response = client.get("/", headers={"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"})
    assert response.status_code == 200


def test_if_modified_since_that_is_not_a_date_is_ignored(client: TestClient) -> None:
    response = client.get("/", headers={"If-Modified-Since": "yesterday"})
    assert response.status_code == 200


def test_if_none_match_takes_precedence_over_if_modified_since(client: TestClient) -> None:
    _, last_modified = validators(client)
    headers = {"If-None-Match": '"not-it"', "If-Modified-Since": last_modified}
    assert client.get("/", headers=headers).status_code == 200


def test_if_match_with_another_etag_gives_412(client: TestClient) -> None:
    assert client.get("/", headers={"If-Match": '"not-it"'}).status_code == 412


def test_if_match_compares_strongly(client: TestClient) -> None:
    etag, _ = validators(client)
    assert client.get("/", headers={"If-Match": etag}).status_code == 200
    assert client.get("/", headers={"If-Match": "W/" + etag}).status_code == 412


def test_if_unmodified_since_an_older_date_gives_412(client: TestClient) -> None:
    headers = {"If-Unmodified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}
    assert client.get("/", headers=headers).status_code == 412


def test_if_none_match_on_post_gives_412(client: TestClient) -> None:
    etag, _ = validators(client)
    assert client.post("/", headers={"If-None-Match": etag}).status_code == 412


def test_preconditions_are_ignored_for_a_non_2xx_status(
    data_file: Path, client_for: Callable[[Any], TestClient]
) -> None:
    client = client_for(serve(data_file, status_code=404))
    response = client.get("/", headers={"If-None-Match": "*"})
    assert response.status_code == 404
    assert response.content == DATA


# -- ranges ---------------------------------------------------------------------


def test_single_range_gives_206_with_those_bytes(client: TestClient) -> None:
    response = client.get("/", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == DATA[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{SIZE}"
    assert response.headers["content-length"] == "10"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_suffix_range_gives_the_last_bytes(client: TestClient) -> None:
    response = client.get("/", headers={"Range": "bytes=-500"})
    assert response.status_code == 206
    assert response.content == DATA[-500:]
    assert response.headers["content-range"] == f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}"


def test_open_range_runs_to_the_end(client: TestClient) -> None:
    response = client.get("/", headers={"Range": "bytes=500-"})
    assert response.status_code == 206
    assert response.content == DATA[500:]


def test_range_past_the_end_is_cut_to_the_file(client: TestClient) -> None:
    response = client.get("/", headers={"Range": f"bytes={SIZE - 3}-{SIZE * 9}"})
    assert response.content == DATA[-3:]
    assert response.headers["content-range"] == f"bytes {SIZE - 3}-{SIZE - 1}/{SIZE}"


def test_multiple_ranges_give_multipart_byteranges(client: TestClient) -> None:
    response = client.get("/", headers={"Range": "bytes=0-9, 100-109,-5"})
    assert response.status_code == 206
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert response.headers["content-length"] == str(len(response.content))
    message = email.parser.BytesParser().parsebytes(
        b"content-type: " + content_type.encode() + b"\r\n\r\n" + response.content
    )
    parts = [
        (part["content-range"], part["content-type"], part.get_payload(decode=True))
        for part in message.get_payload()
    ]
    assert parts == [
        (f"bytes 0-9/{SIZE}", "text/plain; charset=utf-8", DATA[0:10]),
        (f"bytes 100-109/{SIZE}", "text/plain; charset=utf-8", DATA[100:110]),
        (f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}", "text/plain; charset=utf-8", DATA[-5:]),
    ]


def test_overlapping_ranges_are_merged_into_one(client: TestClient) -> None:
    response = client.get("/", headers={"Range": "bytes=0-9,5-19"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-19/{SIZE}"
    assert response.content == DATA[:20]


def test_unsatisfiable_range_gives_416(client: TestClient) -> None:
    response = client.get("/", headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.content == b""


@pytest.mark.parametrize(
    "field",
    [
        "bytes=abc",
        "bytes=5-2",
        "items=0-5",
        "bytes=",
        "bytes=--5",
        "bytes=0-5;",
        "0-5",
        "bytes=+1-2",
    ],
)
def test_malformed_range_is_ignored(client: TestClient, field: str) -> None:
    response = client.get("/", headers={"Range": field})
    assert response.status_code == 200
    assert response.content == DATA


def test_too_many_ranges_are_ignored(client: TestClient) -> None:
    field = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(MAX_RANGES + 1))
    assert client.get("/", headers={"Range": field}).status_code == 200


def test_range_with_a_matching_if_range_is_honoured(client: TestClient) -> None:
    etag, last_modified = validators(client)
    for validator in (etag, last_modified):
        response = client.get("/", headers={"Range": "bytes=0-0", "If-Range": validator})
        assert response.status_code == 206
        assert response.content == DATA[:1]


def test_range_with_a_stale_if_range_sends_the_whole_file(client: TestClient) -> None:
    for validator in ('"stale"', "Sun, 06 Nov 1994 08:49:37 GMT"):
        response = client.get("/", headers={"Range": "bytes=0-0", "If-Range": validator})
        assert response.status_code == 200
        assert response.content == DATA


def test_range_on_head_is_ignored(client: TestClient) -> None:
    # RFC 9110 §14.2: GET is the only method that defines range handling.
    response = client.head("/", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)


@pytest.mark.parametrize(
    ("field", "size", "expected"),
    [
        ("bytes=0-0", 10, [(0, 1)]),
        ("bytes=0-", 10, [(0, 10)]),
        ("bytes=-3", 10, [(7, 10)]),
        ("bytes=-30", 10, [(0, 10)]),
        ("bytes=-0", 10, []),
        ("bytes=10-", 10, []),
        ("bytes=8-100", 10, [(8, 10)]),
        ("BYTES = 1-2", 10, [(1, 3)]),
        ("bytes=1-2, ,3-4", 10, [(1, 5)]),
        ("bytes=0-1,4-5", 10, [(0, 2), (4, 6)]),
        ("bytes=10-,0-0", 10, [(0, 1)]),
        ("bytes=1 - 2", 10, None),
        ("bytes=1-2-3", 10, None),
        ("bytes=" + "9" * 5000 + "-", 10, None),
        ("bytes=٣-٤", 10, None),  # Arabic-Indic digits are not DIGIT
    ],
)
def test_parse_range(field: str, size: int, expected: list[tuple[int, int]] | None) -> None:
    assert parse_range(field, size) == expected


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20))), st.integers(1, 80))
def test_parsed_ranges_are_sorted_disjoint_and_inside_the_file(
    specs: list[tuple[int, int]], size: int
) -> None:
    field = "bytes=" + ",".join(f"{start}-{start + length - 1}" for start, length in specs)
    ranges = parse_range(field, size)
    if not specs or len(specs) > MAX_RANGES:
        assert ranges is None
        return
    assert ranges is not None
    assert ranges == coalesce_ranges(ranges)
    assert all(0 <= start < stop <= size for start, stop in ranges)
    assert all(earlier[1] < later[0] for earlier, later in itertools.pairwise(ranges))


@pytest.mark.parametrize(
    ("field", "etag", "weak", "expected"),
    [
        ('"a"', '"a"', False, True),
        ('W/"a"', '"a"', False, False),
        ('W/"a"', '"a"', True, True),
        ('"a"', 'W/"a"', True, True),
        ('"b", "a"', '"a"', False, True),
        ('"a,b"', '"a"', True, False),
        ("*", None, False, True),
        ('"a"', None, True, False),
        ("a", '"a"', True, False),
    ],
)
def test_etag_matches(field: str, etag: str | None, weak: bool, expected: bool) -> None:
    assert etag_matches(field, etag, weak=weak) is expected


# -- sending ----------------------------------------------------------------------


def test_pathsend_is_used_when_the_server_offers_it(
    data_file: Path, client_for: Callable[[Any], TestClient]
) -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def recording_send(message: dict[str, Any]) -> None:
            sent.append(message)
            await send(message)

        await FileResponse(data_file)(scope, receive, recording_send)

    response = client_for(app).get("/")
    assert response.content == DATA
    assert [message["type"] for message in sent] == [
        "http.response.start",
        "http.response.pathsend",
    ]
    assert sent[1]["path"] == os.path.abspath(data_file)


def http_scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """A scope as a server without the pathsend extension would build it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": None,
        "server": None,
    }


async def call_without_pathsend(
    response: FileResponse, send_blocks_after: int | None = None
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if send_blocks_after is not None and len(sent) > send_blocks_after:
            await never.wait()

    await response(http_scope(), receive, send)
    return sent


def test_file_is_streamed_in_chunks_without_pathsend(data_file: Path) -> None:
    sent = asyncio.run(call_without_pathsend(FileResponse(data_file, chunk_size=4096)))
    assert sent[0]["type"] == "http.response.start"
    bodies = sent[1:]
    assert all(message["type"] == "http.response.body" for message in bodies)
    assert [len(message["body"]) for message in bodies] == [4096, 4096, 1808, 0]
    assert [message["more_body"] for message in bodies] == [True, True, True, False]
    assert b"".join(message["body"] for message in bodies) == DATA


def test_client_disconnect_ends_the_stream_without_the_background_task(
    data_file: Path,
) -> None:
    ran: list[str] = []
    response = FileResponse(data_file, chunk_size=100, background=BackgroundTask(ran.append, "x"))

    async def main() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        stalled = asyncio.Event()
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await stalled.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body":
                stalled.set()
                await gone.wait()  # the peer stops reading, then goes away

        await response(http_scope(), receive, send)
        return sent

    sent = asyncio.run(main())
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert ran == []


# -- Content-Disposition -------------------------------------------------------


def test_filename_gives_an_attachment_disposition(
    data_file: Path, client_for: Callable[[Any], TestClient]
) -> None:
    response = client_for(serve(data_file, filename="report.csv")).get("/")
    assert response.headers["content-disposition"] == 'attachment; filename="report.csv"'
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


def test_non_ascii_filename_is_sent_as_rfc_5987_filename_star(
    data_file: Path, client_for: Callable[[Any], TestClient]
) -> None:
    response = client_for(serve(data_file, filename="résumé 2024 €.pdf")).get("/")
    assert response.headers["content-disposition"] == (
        'attachment; filename="resume 2024 _.pdf"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%202024%20%E2%82%AC.pdf"
    )


def test_inline_disposition_type(data_file: Path, client_for: Callable[[Any], TestClient]) -> None:
    app = serve(data_file, filename="a.txt", content_disposition_type="inline")
    response = client_for(app).get("/")
    assert response.headers["content-disposition"] == 'inline; filename="a.txt"'


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            'say "hi".txt',
            "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt",
        ),
        ("a\r\nb.txt", "attachment; filename=\"a__b.txt\"; filename*=UTF-8''a%0D%0Ab.txt"),
        ("日本.txt", "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        ("日本", "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
    ],
)
def test_content_disposition_never_lets_quotes_or_newlines_through(
    filename: str, expected: str
) -> None:
    assert content_disposition("attachment", filename) == expected
