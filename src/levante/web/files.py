"""Files: `FileResponse` sends one file, `StaticFiles` serves a directory of them.

`FileResponse` answers conditional requests (RFC 9110 §13) and range requests
(RFC 9110 §14) itself, from the request headers in the scope, so every handler
that returns a file gets 304s, 206s and 416s without doing anything. The
decisions are pure functions of headers and sizes; only sending touches the file.

`StaticFiles` maps a URL path below its mount to a file below its directory and
refuses anything that would resolve outside it (see `StaticFiles.lookup_path`).
"""

from __future__ import annotations

import importlib.util
import mimetypes
import os
import posixpath
import re
import secrets
import stat
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from typing import IO, TypeAlias
from urllib.parse import quote

from levante.asgi import AnyScope, Message, Receive, Send
from levante.web.background import BackgroundTask
from levante.web.concurrency import run_in_threadpool
from levante.web.datastructures import Headers
from levante.web.exceptions import HTTPException
from levante.web.responses import (
    BODYLESS_STATUSES,
    PlainTextResponse,
    RedirectResponse,
    Response,
    _until_disconnect,
)
from levante.web.routing import route_path

#: Bytes read from the file per thread-pool call and sent per body message
#: (Starlette's chunk size; big enough that the thread hop is noise).
CHUNK_SIZE = 64 * 1024

#: More ranges than this in one Range header and the header is ignored (the whole
#: file is sent). Starlette's limit; many tiny ranges are the "Apache Killer"
#: denial of service (CVE-2011-3192), which RFC 9110 §14.2 lets a server refuse.
MAX_RANGES = 100

#: The fields a 304 carries over from the 200 it stands for (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)

#: Characters RFC 5987 §3.2.1 lets through unencoded in ``filename*`` (attr-char).
_ATTR_CHARS = "!#$&+-.^_`|~"

#: An entity-tag (RFC 9110 §8.8.3): optional ``W/`` then a quoted opaque string.
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')

#: One byte range spec (RFC 9110 §14.1.2): ``first-last``, ``first-`` or ``-suffix``.
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")

_SAFE_METHODS = ("GET", "HEAD")

ByteRange: TypeAlias = tuple[int, int]
"""A range of the file as ``(start, stop)``, `stop` exclusive."""

BodyPiece: TypeAlias = bytes | ByteRange
"""Part of a body: literal bytes (multipart framing) or a range of the file."""

PathLike: TypeAlias = "str | os.PathLike[str]"


# -- Validators (RFC 9110 §8.8) ----------------------------------------------


def make_etag(stat_result: os.stat_result) -> str:
    """A strong ETag from modification time and size, ``"<hex mtime ns>-<hex size>"``.

    nginx builds its strong ETags the same way (in seconds); nanoseconds make two
    same-size writes within one second differ too.
    """
    mtime_ns = stat_result.st_mtime_ns
    if mtime_ns is None:  # a stat_result built by hand from a 10-tuple
        mtime_ns = int(stat_result.st_mtime * 1_000_000_000)
    return f'"{mtime_ns:x}-{stat_result.st_size:x}"'


def http_date(timestamp: float) -> str:
    """`timestamp` as an IMF-fixdate, the HTTP-date form to send (RFC 9110 §5.6.7)."""
    return formatdate(timestamp, usegmt=True)


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch for any of the three HTTP-date forms; None if invalid."""
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # asctime has no zone; HTTP-dates are all GMT
        return int(parsed.replace(tzinfo=UTC).timestamp())
    return int(parsed.timestamp())


def _tags(field: str) -> list[tuple[bool, str]]:
    return [(weak == "W/", opaque) for weak, opaque in _ENTITY_TAG.findall(field)]


def etag_matches(field: str, etag: str | None, *, weak: bool) -> bool:
    """Whether an If-Match / If-None-Match list matches `etag` (RFC 9110 §8.8.3.2).

    ``*`` matches any current representation. Weak comparison ignores ``W/``;
    strong comparison needs both tags strong and equal.
    """
    if field.strip() == "*":
        return True
    if etag is None:
        return False
    current = _tags(etag)
    if not current:
        return False
    current_weak, current_opaque = current[0]
    for tag_weak, opaque in _tags(field):
        if opaque == current_opaque and (weak or not (tag_weak or current_weak)):
            return True
    return False


# -- Preconditions (RFC 9110 §13.2.2) ----------------------------------------


def _list_field(request: Headers, name: str) -> str | None:
    # If-Match and If-None-Match are lists and may arrive as several field lines.
    values = request.getlist(name)
    return ", ".join(values) if values else None


def _write_precondition_failed(
    request: Headers, etag: str | None, last_modified: int | None
) -> bool:
    # Steps 1 and 2: If-Match, or If-Unmodified-Since when there is no If-Match.
    if_match = _list_field(request, "if-match")
    if if_match is not None:
        return not etag_matches(if_match, etag, weak=False)
    since = parse_http_date(request.get("if-unmodified-since"))
    return since is not None and last_modified is not None and last_modified > since


def _unchanged(request: Headers, etag: str | None, last_modified: int | None, method: str) -> bool:
    # Steps 3 and 4: If-None-Match, or If-Modified-Since (GET/HEAD only) without it.
    if_none_match = _list_field(request, "if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag, weak=True)
    if method not in _SAFE_METHODS:
        return False
    since = parse_http_date(request.get("if-modified-since"))
    return since is not None and last_modified is not None and last_modified <= since


def evaluate_preconditions(
    request: Headers, etag: str | None, last_modified: int | None, method: str
) -> int | None:
    """The status a conditional request gets instead of the file, or None to send it.

    412 when If-Match / If-Unmodified-Since fail; 304 when If-None-Match /
    If-Modified-Since say the client's copy is current (412 for methods other
    than GET and HEAD). If-None-Match takes precedence over If-Modified-Since.
    """
    if _write_precondition_failed(request, etag, last_modified):
        return 412
    if _unchanged(request, etag, last_modified, method):
        return 304 if method in _SAFE_METHODS else 412
    return None


def if_range_holds(field: str, etag: str | None, last_modified: int | None) -> bool:
    """Whether If-Range still names the current file (RFC 9110 §13.1.5).

    An entity-tag must match strongly; a date must equal Last-Modified exactly.
    """
    field = field.strip()
    if field.startswith(('"', "W/")):
        return etag is not None and etag_matches(field, etag, weak=False)
    date = parse_http_date(field)
    return date is not None and date == last_modified


# -- Ranges (RFC 9110 §14) ---------------------------------------------------


class _MalformedRange(ValueError):
    pass


def _parse_range_spec(spec: str, size: int) -> ByteRange | None:
    # A satisfiable spec gives its range; an unsatisfiable one None (§14.1.1).
    match = _RANGE_SPEC.fullmatch(spec)
    if match is None:
        raise _MalformedRange(spec)
    first, last = match.groups()
    if not first:
        if not last:
            raise _MalformedRange(spec)
        suffix = int(last)
        return (max(size - suffix, 0), size) if suffix > 0 else None
    start = int(first)
    if last and int(last) < start:
        raise _MalformedRange(spec)
    if start >= size:
        return None
    return (start, min(int(last) + 1, size) if last else size)


def coalesce_ranges(ranges: Sequence[ByteRange]) -> list[ByteRange]:
    """Sort ranges and merge those that overlap or touch (RFC 9110 §14.2 allows it)."""
    merged: list[ByteRange] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def parse_range(field: str, size: int) -> list[ByteRange] | None:
    """The ranges a Range field asks of a file of `size` bytes.

    None means "ignore the field and send the whole file": another unit than
    bytes, a malformed field (RFC 9110 §14.2 lets a server ignore it) or more
    than `MAX_RANGES` ranges. An empty list means none is satisfiable (416).
    """
    unit, equals, range_set = field.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    # A list may hold empty elements and whitespace around commas (RFC 9110 §5.6.1).
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if not specs or len(specs) > MAX_RANGES:
        return None
    try:
        parsed = [_parse_range_spec(spec, size) for spec in specs]
    except ValueError:  # malformed, or a number too long for int()
        return None
    return coalesce_ranges([byte_range for byte_range in parsed if byte_range is not None])


def multipart_pieces(
    ranges: Sequence[ByteRange], size: int, content_type: bytes | None, boundary: bytes
) -> list[BodyPiece]:
    """A multipart/byteranges body (RFC 9110 §14.6) as framing bytes and file ranges."""
    pieces: list[BodyPiece] = []
    for index, (start, stop) in enumerate(ranges):
        head = b"\r\n--" + boundary if index else b"--" + boundary
        if content_type is not None:
            head += b"\r\ncontent-type: " + content_type
        head += b"\r\ncontent-range: bytes %d-%d/%d\r\n\r\n" % (start, stop - 1, size)
        pieces += [head, (start, stop)]
    pieces.append(b"\r\n--" + boundary + b"--\r\n")
    return pieces


def body_length(pieces: Sequence[BodyPiece]) -> int:
    """How many bytes `pieces` add up to."""
    return sum(len(p) if isinstance(p, bytes) else p[1] - p[0] for p in pieces)


# -- Content-Disposition (RFC 6266) ------------------------------------------


def _quotable(name: str) -> bool:
    return all(" " <= char <= "~" and char not in '"\\' for char in name)


def _ascii_fallback(name: str) -> str:
    # "résumé €.pdf" -> "resume _.pdf" for user agents that ignore filename*:
    # accents dropped, anything else outside printable ASCII (or a quote) -> "_".
    decomposed = unicodedata.normalize("NFKD", name)
    kept = [char for char in decomposed if not unicodedata.combining(char)]
    safe = "".join(char if _quotable(char) else "_" for char in kept)
    return safe if safe.strip("._ ") else "download"


def content_disposition(disposition_type: str, filename: str) -> str:
    """A Content-Disposition value naming `filename`.

    Printable ASCII names go in ``filename="..."``. Other names get an ASCII
    fallback there plus the exact name, UTF-8 and percent-encoded, in
    ``filename*`` (RFC 6266 §4.3, RFC 5987), which modern browsers prefer.
    """
    if _quotable(filename):
        return f'{disposition_type}; filename="{filename}"'
    encoded = quote(filename, safe=_ATTR_CHARS)
    fallback = _ascii_fallback(filename)
    return f"{disposition_type}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# -- FileResponse ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to send: status, headers and the body as pieces (empty: no body)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    pieces: list[BodyPiece]
    whole_file: bool = False


def _replaced(raw: list[tuple[bytes, bytes]], **fields: str) -> list[tuple[bytes, bytes]]:
    # `raw` with the named fields (underscores for dashes) set to new values.
    names = {name.replace("_", "-").encode(): value for name, value in fields.items()}
    kept = [(k, v) for k, v in raw if k not in names]
    return kept + [(k, v.encode("latin-1")) for k, v in names.items()]


def _without_body_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in raw if k in NOT_MODIFIED_HEADERS]


def _read_chunk(file: IO[bytes], offset: int, size: int) -> bytes:
    file.seek(offset)
    return file.read(size)


def _open(path: str) -> IO[bytes]:
    return open(path, "rb", buffering=0)


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class FileResponse(Response):
    """A file from disk, with conditional and range requests handled.

    Content-Type is guessed from `filename` or `path` unless `media_type` is
    given. `filename` adds a Content-Disposition (``attachment`` unless
    `content_disposition_type` says ``inline``). Pass `stat_result` when you
    have it, to save a ``stat`` call.

    When sent, it answers from the request headers in the scope: 304 or 412
    for If-None-Match, If-Modified-Since, If-Match and If-Unmodified-Since;
    206 for a satisfiable Range (one part, or multipart/byteranges for
    several) honouring If-Range; 416 for an unsatisfiable one; headers only for
    HEAD. A whole file goes to the server as ``http.response.pathsend`` when
    the server offers that extension, else it is read in `chunk_size` pieces in
    the thread pool. A file that is missing when the response is sent gets 404.
    """

    def __init__(
        self,
        path: PathLike,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        method: str | None = None,
        content_disposition_type: str = "attachment",
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.path = os.fspath(path)
        self._absolute_path = os.path.abspath(self.path)  # pathsend wants it absolute
        self.status_code = status_code
        self.filename = filename
        self.media_type = media_type or _guess_type(filename or self.path)
        self.background = background
        self.stat_result = stat_result
        self.method = method
        self.chunk_size = chunk_size
        self.body = b""
        raw = self._make_headers(headers)
        self.raw_headers = [(k, v) for k, v in raw if k != b"content-length"]
        if filename is not None:
            self._set_default(
                "content-disposition", content_disposition(content_disposition_type, filename)
            )
        if stat_result is not None:
            self.set_stat_headers(stat_result)

    def _set_default(self, name: str, value: str) -> None:
        key = name.encode("latin-1")
        if all(k != key for k, _ in self.raw_headers):
            self.raw_headers.append((key, value.encode("latin-1")))

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        """Add Content-Length, Last-Modified, ETag and Accept-Ranges from `stat_result`.

        Headers given to the constructor win, except Content-Length, which is the
        file's.
        """
        self.raw_headers[:] = _replaced(self.raw_headers, content_length=str(stat_result.st_size))
        self._set_default("last-modified", http_date(stat_result.st_mtime))
        self._set_default("etag", make_etag(stat_result))
        self._set_default("accept-ranges", "bytes")

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            send = _websocket_denial(send)
        stat_result = self.stat_result
        if stat_result is None:
            stat_result = await run_in_threadpool(_stat_or_none, self.path)
            if stat_result is None or not stat.S_ISREG(stat_result.st_mode):
                await _not_found()(scope, receive, send)
                return
            self.set_stat_headers(stat_result)
        plan = self._plan(scope, stat_result.st_size)
        sent = await self._send(plan, scope, receive, send)
        if sent and self.background is not None:
            await self.background()

    def _plan(self, scope: AnyScope, size: int) -> _Plan:
        whole = _Plan(self.status_code, self.raw_headers, [(0, size)] if size else [], True)
        if scope["type"] != "http" or not 200 <= self.status_code < 300:
            # Preconditions apply only to what would be a 2xx (RFC 9110 §13.2.1).
            return whole
        request = Headers(scope=scope)
        method = self._method(scope)
        headers = Headers(raw=self.raw_headers)
        etag = headers.get("etag")
        last_modified = parse_http_date(headers.get("last-modified"))
        status = evaluate_preconditions(request, etag, last_modified, method)
        if status == 304:
            return _Plan(304, _without_body_headers(self.raw_headers), [])
        if status is not None:
            return _Plan(status, [(b"content-length", b"0")], [])
        field = request.get("range")
        if field is None or method != "GET" or self.status_code != 200 or size == 0:
            # Range is defined for GET only (RFC 9110 §14.2); an empty file has no bytes.
            return whole
        if_range = request.get("if-range")
        if if_range is not None and not if_range_holds(if_range, etag, last_modified):
            return whole
        ranges = parse_range(field, size)
        if ranges is None:
            return whole
        return self._range_plan(ranges, size)

    def _range_plan(self, ranges: list[ByteRange], size: int) -> _Plan:
        if not ranges:
            headers = [(b"content-range", b"bytes */%d" % size), (b"content-length", b"0")]
            return _Plan(416, headers, [])
        if len(ranges) == 1:
            start, stop = ranges[0]
            headers = _replaced(
                self.raw_headers,
                content_range=f"bytes {start}-{stop - 1}/{size}",
                content_length=str(stop - start),
            )
            return _Plan(206, headers, [ranges[0]])
        boundary = secrets.token_hex(13).encode()  # ~100 bits, as browsers use
        content_type = Headers(raw=self.raw_headers).get("content-type")
        part_type = None if content_type is None else content_type.encode("latin-1")
        pieces = multipart_pieces(ranges, size, part_type, boundary)
        headers = _replaced(
            self.raw_headers,
            content_type=f"multipart/byteranges; boundary={boundary.decode()}",
            content_length=str(body_length(pieces)),
        )
        return _Plan(206, headers, pieces)

    def _method(self, scope: AnyScope) -> str:
        method: str = self.method or scope.get("method", "GET")
        return method.upper()

    async def _send(self, plan: _Plan, scope: AnyScope, receive: Receive, send: Send) -> bool:
        # True unless the client went away before the body was all sent.
        await send({"type": "http.response.start", "status": plan.status, "headers": plan.headers})
        method = self._method(scope)
        if not plan.pieces or method == "HEAD" or plan.status in BODYLESS_STATUSES:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        if scope["type"] != "http":
            await self._stream(plan.pieces, send)
            return True
        if plan.whole_file and _offers_pathsend(scope):
            await send({"type": "http.response.pathsend", "path": self._absolute_path})
            return True
        return not await _until_disconnect(self._stream(plan.pieces, send), receive)

    async def _stream(self, pieces: list[BodyPiece], send: Send) -> None:
        file = await run_in_threadpool(_open, self.path)
        try:
            for piece in pieces:
                if isinstance(piece, bytes):
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                else:
                    await self._stream_range(file, piece, send)
        finally:
            file.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream_range(self, file: IO[bytes], byte_range: ByteRange, send: Send) -> None:
        offset, stop = byte_range
        while offset < stop:
            chunk = await run_in_threadpool(
                _read_chunk, file, offset, min(self.chunk_size, stop - offset)
            )
            if not chunk:
                # Content-Length is already sent: the server must cut the response short.
                raise RuntimeError(f"File at path {self.path} shrank while it was being sent")
            offset += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


def _offers_pathsend(scope: AnyScope) -> bool:
    extensions = scope.get("extensions") or {}
    return "http.response.pathsend" in extensions


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _websocket_denial(send: Send) -> Send:
    # Before `accept`, a response is the handshake's denial (websocket.http.response).
    async def denial_send(message: Message) -> None:
        if message["type"] == "http.response.pathsend":
            raise RuntimeError("pathsend is not available for a WebSocket denial response")
        await send({**message, "type": "websocket." + message["type"]})

    return denial_send


def _not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


# -- StaticFiles -------------------------------------------------------------


#: Characters that separate path components here besides "/" (none on POSIX,
#: where a backslash is an ordinary character of a file name).
_OTHER_SEPARATORS = frozenset({os.sep, os.altsep or os.sep}) - {"/"}


def _safe_segment(segment: str) -> bool:
    if segment == ".." or any(sep in segment for sep in _OTHER_SEPARATORS):
        return False
    return not os.path.splitdrive(segment)[0] and not os.path.isabs(segment)


def url_path_segments(path: str) -> list[str] | None:
    """The names a URL path walks down, or None if it may not be looked up.

    Empty and ``.`` segments are dropped (so ``//etc/passwd`` walks ``etc``,
    ``passwd`` below the directory). ``..``, NUL bytes, and on Windows
    backslashes and drive letters refuse the whole path: clients resolve dot
    segments before sending (RFC 3986 §5.2.4), so only an attack carries them.
    """
    if "\x00" in path:
        return None
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    if not all(_safe_segment(segment) for segment in segments):
        return None
    return segments


def _package_directory(package: str | tuple[str, str]) -> str:
    name, subdirectory = package if isinstance(package, tuple) else (package, "statics")
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        raise RuntimeError(f"StaticFiles: package {name!r} could not be found")
    directory = os.path.normpath(os.path.join(spec.origin, "..", subdirectory))
    if not os.path.isdir(directory):
        raise RuntimeError(f"StaticFiles: package {name!r} has no directory {subdirectory!r}")
    return directory


class StaticFiles:
    """An ASGI app that serves the files below `directory` (and `packages`).

    Mount it under a prefix; it looks up the path below the mount. GET and HEAD
    only (405 otherwise). `packages` adds ``statics`` directories of packages,
    or ``(package, subdirectory)`` pairs; the first directory holding a file wins.

    With ``html=True``, a directory URL ending in ``/`` serves its
    ``index.html``, one without the slash is redirected to it, and a miss serves
    the root's ``404.html`` (with status 404) if there is one.

    Nothing outside the directories is ever served: see `lookup_path`.
    ``follow_symlink=True`` serves symlinks found inside the directory wherever
    they point; set it only when you control every link in there.
    """

    def __init__(
        self,
        directory: PathLike | None = None,
        packages: Sequence[str | tuple[str, str]] | None = None,
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        self.directory = directory
        self.packages = packages
        self.html = html
        self.follow_symlink = follow_symlink
        if check_dir and directory is not None and not os.path.isdir(directory):
            raise RuntimeError(f"StaticFiles directory {os.fspath(directory)!r} does not exist")
        self.all_directories = self.get_directories(directory, packages)
        self._roots = self._resolve_roots()
        self.config_checked = False

    def get_directories(
        self,
        directory: PathLike | None = None,
        packages: Sequence[str | tuple[str, str]] | None = None,
    ) -> list[str]:
        """The directories to serve from, `directory` first, then each package's."""
        directories = [] if directory is None else [os.fspath(directory)]
        return directories + [_package_directory(package) for package in packages or ()]

    def _resolve_roots(self) -> list[str]:
        resolve: Callable[[str], str] = os.path.abspath if self.follow_symlink else os.path.realpath
        return [resolve(directory) for directory in self.all_directories]

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # nothing to start: the caller sees an app without a lifespan
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        if not self.config_checked:
            await run_in_threadpool(self.check_config)
        try:
            response = await self.get_response(self.get_path(scope), scope)
        except HTTPException as exc:
            response = PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
        await response(scope, receive, send)

    def check_config(self) -> None:
        """On the first request, fail loudly if `directory` is still missing.

        (``check_dir=False`` lets the directory appear after construction.)
        """
        if self.directory is not None and not os.path.isdir(self.directory):
            raise RuntimeError(
                f"StaticFiles directory {os.fspath(self.directory)!r} does not exist"
            )
        self._roots = self._resolve_roots()
        self.config_checked = True

    def get_path(self, scope: AnyScope) -> str:
        """The URL path to look up: the request path below the mount."""
        return route_path(scope)

    async def get_response(self, path: str, scope: AnyScope) -> Response:
        """The response for URL `path`; raises `HTTPException` for 404 and 405."""
        if scope.get("method") not in _SAFE_METHODS:
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        full_path, stat_result = await run_in_threadpool(self.lookup_path, path)
        if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
            return self.file_response(full_path, stat_result, scope)
        if stat_result is not None and stat.S_ISDIR(stat_result.st_mode) and self.html:
            response = await self._index_response(path, scope)
            if response is not None:
                return response
        if self.html:
            full_path, stat_result = await run_in_threadpool(self.lookup_path, "404.html")
            if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
                return self.file_response(full_path, stat_result, scope, status_code=404)
        raise HTTPException(404)

    async def _index_response(self, path: str, scope: AnyScope) -> Response | None:
        index = posixpath.join(path, "index.html")
        full_path, stat_result = await run_in_threadpool(self.lookup_path, index)
        if stat_result is None or not stat.S_ISREG(stat_result.st_mode):
            return None
        if not path.endswith("/"):
            return _slash_redirect(scope)
        return self.file_response(full_path, stat_result, scope)

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """The file a URL path names and its stat, or ``("", None)``.

        The check comes before any ``stat`` or ``open`` of the candidate: the
        path is split on ``/`` only (`url_path_segments` refuses ``..`` and NUL),
        joined below each directory, resolved with ``os.path.realpath`` (every
        symlink followed) and kept only if the result still lies inside the
        directory's own realpath, by ``os.path.commonpath`` on whole components,
        never a string prefix (``/srv/static-secret`` is not inside ``/srv/static``).
        With ``follow_symlink=True`` the containment check is on the path as
        written, so links inside the directory may lead out of it.
        """
        segments = url_path_segments(path)
        if segments is None:
            return "", None
        for root in self._roots:
            candidate = self._contained(root, segments)
            if candidate is None:
                continue
            try:
                return candidate, os.stat(candidate)
            except OSError:  # missing, not a directory, name too long, loop, denied
                continue
        return "", None

    def _contained(self, root: str, segments: list[str]) -> str | None:
        joined = os.path.join(root, *segments)
        candidate = os.path.abspath(joined) if self.follow_symlink else os.path.realpath(joined)
        try:
            inside = os.path.commonpath([root, candidate]) == root
        except ValueError:  # different drives on Windows
            return None
        return candidate if inside else None

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: AnyScope,
        status_code: int = 200,
    ) -> Response:
        """The response for a file found by `lookup_path` (304/206/416 handled by it)."""
        return FileResponse(full_path, status_code=status_code, stat_result=stat_result)


def _slash_redirect(scope: AnyScope) -> Response:
    # Location is an absolute path (RFC 9110 §10.2.2) with one leading slash, so a
    # request for "//evil.example" cannot become a redirect to another host.
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    full_path = path if path.startswith(root_path) else root_path + path
    location = quote("/" + full_path.lstrip("/") + "/")
    query: bytes = scope.get("query_string", b"")
    if query:
        location += "?" + query.decode("latin-1")
    return RedirectResponse(location, status_code=307)
