"""Form bodies: ``application/x-www-form-urlencoded`` and ``multipart/form-data``.

python-multipart does the wire format (its streaming `QuerystringParser` and
`MultipartParser`); this module adds the limits, builds `FormData`, and keeps
uploaded files in `SpooledTemporaryFile`s, in memory until they pass
`spool_max_size`, then on disk. The parser callbacks are synchronous, so file
writes are queued in them and done after each body chunk, in the thread pool once
a file is on disk (as Starlette does), never blocking the event loop.

Limit errors are `MultiPartException`: 400 for too many files or fields, a field
part too large and malformed bodies; 413 for a file larger than `max_file_size`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote, unquote_to_bytes

from python_multipart import MultipartParser, QuerystringParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState, parse_options_header

from levante.web.concurrency import run_in_threadpool
from levante.web.datastructures import Headers, ImmutableMultiDict
from levante.web.exceptions import MultiPartException

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks, QuerystringCallbacks

    from levante.web.requests import Request

__all__ = ["FormData", "UploadFile", "parse_form"]


class UploadFile:
    """An uploaded file: its name and headers as the client sent them, and the data
    in `file`, a `SpooledTemporaryFile` (in memory, then on disk past its size).

    The async methods do file I/O in the thread pool only once the file is on
    disk; in memory they cost no thread hop. `file` can be used directly from sync
    code (``shutil.copyfileobj(upload.file, out)``).
    """

    __slots__ = ("file", "filename", "headers", "size")

    def __init__(
        self,
        file: IO[bytes],
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.file = file
        self.size = size
        self.filename = filename
        self.headers = headers if headers is not None else Headers()

    @property
    def content_type(self) -> str | None:
        """The part's Content-Type, if the client sent one."""
        value: str | None = self.headers.get("content-type")
        return value

    @property
    def _in_memory(self) -> bool:
        # SpooledTemporaryFile sets `_rolled` once its data moved to a disk file;
        # any other file object is treated as on disk (it may block).
        return not getattr(self.file, "_rolled", True)

    def _will_roll(self, size_to_add: int) -> bool:
        if not self._in_memory:
            return True
        max_size: int = getattr(self.file, "_max_size", 0)
        return bool(max_size) and self.file.tell() + size_to_add > max_size

    async def write(self, data: bytes) -> None:
        """Append `data` (and count it in `size`)."""
        if self.size is not None:
            self.size += len(data)
        if self._will_roll(len(data)):
            await run_in_threadpool(self.file.write, data)
        else:
            self.file.write(data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes from the current position (all with -1)."""
        if self._in_memory:
            return self.file.read(size)
        return await run_in_threadpool(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move to byte `offset` from the start."""
        if self._in_memory:
            self.file.seek(offset)
        else:
            await run_in_threadpool(self.file.seek, offset)

    async def close(self) -> None:
        """Close the file (and delete it from disk, if it got there)."""
        if self._in_memory:
            self.file.close()
        else:
            await run_in_threadpool(self.file.close)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(filename={self.filename!r}, size={self.size!r}, "
            f"headers={self.headers!r})"
        )


class FormData(ImmutableMultiDict[str | UploadFile]):
    """A parsed form: field names to strings, or to `UploadFile`s for file parts.

    `form["name"]` gives the last value, `form.getlist("name")` all of them.
    `close()` closes every uploaded file (`Request.close()` calls it).
    """

    __slots__ = ()

    async def close(self) -> None:
        """Close every uploaded file of the form."""
        for _, value in self.multi_items():
            if isinstance(value, UploadFile):
                await value.close()


async def parse_form(
    request: Request,
    *,
    max_files: int,
    max_fields: int,
    max_part_size: int,
    max_file_size: int | None,
    spool_max_size: int,
) -> FormData:
    """Read the request body as a form, chosen by its Content-Type.

    Urlencoded and multipart bodies are parsed as they stream in; any other
    Content-Type gives an empty `FormData` (the body is not read). Breaking a
    limit or a malformed body raises `MultiPartException`; a client that goes
    away raises `ClientDisconnect`. Files opened so far are closed on any error.
    """
    media_type, options = parse_options_header(request.headers.get("content-type"))
    if media_type == b"application/x-www-form-urlencoded":
        reader = _UrlencodedReader(max_fields=max_fields, max_part_size=max_part_size)
        return await reader.parse(request.stream())
    if media_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise MultiPartException("Missing boundary in multipart.")
        limits = _Limits(max_files, max_fields, max_part_size, max_file_size, spool_max_size)
        return await _MultipartReader(boundary, limits).parse(request.stream())
    return FormData()


def _decode(data: bytes | bytearray) -> str:
    # HTML forms send UTF-8 (HTML §4.10.21.8); anything else is kept byte for byte.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unquote_plus(data: bytes | bytearray) -> str:
    # Percent-escapes and raw bytes both decode as UTF-8, unlike unquote_plus(str).
    return _decode(unquote_to_bytes(bytes(data).replace(b"+", b" ")))


def _kib(size: int) -> str:
    return f"{size // 1024}KB" if size >= 1024 else f"{size} bytes"


class _UrlencodedReader:
    """QuerystringParser callbacks: fields bounded in number and in size."""

    def __init__(self, *, max_fields: int, max_part_size: int) -> None:
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self.items: list[tuple[str, str | UploadFile]] = []
        self._name = bytearray()
        self._value = bytearray()

    def _check_size(self, added: int) -> None:
        if len(self._name) + len(self._value) + added > self.max_part_size:
            raise MultiPartException(f"Field exceeded maximum size of {_kib(self.max_part_size)}.")

    def on_field_start(self) -> None:
        self._name = bytearray()
        self._value = bytearray()

    def on_field_name(self, data: bytes, start: int, end: int) -> None:
        self._check_size(end - start)
        self._name += data[start:end]

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        self._check_size(end - start)
        self._value += data[start:end]

    def on_field_end(self) -> None:
        if len(self.items) >= self.max_fields:
            raise MultiPartException(
                f"Too many fields. Maximum number of fields is {self.max_fields}."
            )
        self.items.append((_unquote_plus(self._name), _unquote_plus(self._value)))

    async def parse(self, stream: AsyncIterator[bytes]) -> FormData:
        callbacks: QuerystringCallbacks = {
            "on_field_start": self.on_field_start,
            "on_field_name": self.on_field_name,
            "on_field_data": self.on_field_data,
            "on_field_end": self.on_field_end,
        }
        parser = QuerystringParser(callbacks)
        try:
            async for chunk in stream:
                parser.write(chunk)
            parser.finalize()
        except FormParserError as exc:
            raise MultiPartException("Invalid urlencoded form data.") from exc
        return FormData(self.items)


class _Limits:
    __slots__ = ("max_fields", "max_file_size", "max_files", "max_part_size", "spool_max_size")

    def __init__(
        self,
        max_files: int,
        max_fields: int,
        max_part_size: int,
        max_file_size: int | None,
        spool_max_size: int,
    ) -> None:
        self.max_files = max_files
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self.max_file_size = max_file_size
        self.spool_max_size = spool_max_size


class _Part:
    """The part being parsed: its headers, then its data or its file."""

    __slots__ = ("data", "file", "file_size", "headers", "name")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.name = ""
        self.data = bytearray()
        self.file: UploadFile | None = None
        self.file_size = 0  # bytes of file data seen, written or still queued


#: `filename*=charset'language'percent-encoded` (RFC 5987 §3.2; RFC 6266 §4.3 says
#: it wins over `filename`). RFC 7578 §4.2 tells senders not to use it, and
#: python-multipart drops it, but some non-browser clients send it, so we read it.
_FILENAME_STAR = re.compile(r";\s*filename\*\s*=\s*([^;]+)", re.IGNORECASE)


def _ext_filename(disposition: bytes) -> str | None:
    match = _FILENAME_STAR.search(disposition.decode("latin-1"))
    if match is None:
        return None
    charset, sep, rest = match.group(1).strip().partition("'")
    _, sep2, encoded = rest.partition("'")
    if not (sep and sep2):
        return None
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None


class _MultipartReader:
    """MultipartParser callbacks building `FormData`, with the limits applied as
    the parts arrive, so a body that breaks one is not read further."""

    def __init__(self, boundary: bytes, limits: _Limits) -> None:
        self.boundary = boundary
        self.limits = limits
        self.items: list[tuple[str, str | UploadFile]] = []
        self.part = _Part()
        self.files = 0
        self.fields = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        # File data and finished files the callbacks queued, handled after each chunk.
        self._writes: list[tuple[UploadFile, bytes]] = []
        self._finished: list[UploadFile] = []
        self._opened: list[UploadFile] = []

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = bytes(self._header_name).lower()
        self.part.headers.append((name, bytes(self._header_value)))
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        disposition = Headers(raw=self.part.headers).get("content-disposition", "")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise MultiPartException(
                'The Content-Disposition header field "name" must be provided.'
            )
        self.part.name = _decode(options[b"name"])
        filename = _ext_filename(disposition.encode("latin-1"))
        if filename is None and b"filename" in options:
            filename = _decode(options[b"filename"])
        if filename is None:
            self._count_field()
        else:
            self._open_file(filename)

    def _count_field(self) -> None:
        self.fields += 1
        if self.fields > self.limits.max_fields:
            raise MultiPartException(
                f"Too many fields. Maximum number of fields is {self.limits.max_fields}."
            )

    def _open_file(self, filename: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise MultiPartException(
                f"Too many files. Maximum number of files is {self.limits.max_files}."
            )
        # Owned by the UploadFile, closed by FormData.close() or on a parse error.
        spooled = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_max_size)  # noqa: SIM115
        upload = UploadFile(
            spooled,
            size=0,
            filename=filename,
            headers=Headers(raw=self.part.headers),
        )
        self._opened.append(upload)
        self.part.file = upload

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if part.file is None:
            if len(part.data) + end - start > self.limits.max_part_size:
                raise MultiPartException(
                    f"Part exceeded maximum size of {_kib(self.limits.max_part_size)}."
                )
            part.data += data[start:end]
            return
        part.file_size += end - start
        limit = self.limits.max_file_size
        if limit is not None and part.file_size > limit:
            raise MultiPartException(
                f"File exceeded maximum size of {_kib(limit)}.", status_code=413
            )
        self._writes.append((part.file, data[start:end]))

    def on_part_end(self) -> None:
        part = self.part
        if part.file is None:
            self.items.append((part.name, _decode(part.data)))
        else:
            # Listed now; its queued data is written before `parse` returns.
            self.items.append((part.name, part.file))
            self._finished.append(part.file)

    async def _flush(self) -> None:
        for upload, chunk in self._writes:
            await upload.write(chunk)
        self._writes.clear()
        for upload in self._finished:
            await upload.seek(0)
        self._finished.clear()

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    async def _feed(self, stream: AsyncIterator[bytes]) -> None:
        parser = MultipartParser(self.boundary, self._callbacks())
        received = 0
        async for chunk in stream:
            received += len(chunk)
            parser.write(chunk)
            await self._flush()
        parser.finalize()
        # python-multipart's finalize() does not check that the closing boundary
        # came; a body cut short would otherwise parse as a shorter form.
        if received and parser.state != MultipartState.END:
            raise MultiPartException("Invalid multipart data: the closing boundary is missing.")

    async def parse(self, stream: AsyncIterator[bytes]) -> FormData:
        done = False
        try:
            await self._feed(stream)
            done = True
        except FormParserError as exc:
            raise MultiPartException("Invalid multipart data.") from exc
        finally:
            if not done:
                # Whatever ended the parse (a limit, a disconnect, cancellation),
                # the spooled files opened so far must not leak.
                for upload in self._opened:
                    upload.file.close()
        return FormData(self.items)
