"""Validation of request data against declared types, and how its failures read.

Types are checked by msgspec (Structs, dataclasses, TypedDicts, scalars, with
`msgspec.Meta` constraints) or, for pydantic models, by pydantic. Either way a
failure becomes a list of `ErrorItem`s (``loc``, ``msg``, ``type``; the same
shape FastAPI gives), answered as an RFC 9457 problem document.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypedDict, Union, get_args, get_origin

import msgspec

from levante.web.exceptions import HTTPException, WebError

#: The media type of RFC 9457 problem documents.
PROBLEM_JSON = "application/problem+json"


class ErrorItem(TypedDict, total=False):
    """One validation error: where (``loc``, starting with the request part:
    ``path``, ``query``, ``header``, ``cookie``, ``body``, ``form``, ``file``),
    what (``msg``) and its kind (``type``, e.g. ``missing``, ``int_parsing``,
    ``greater_than_equal``), and for unparsable input the ``input``."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any


class RequestValidationError(WebError):
    """The request does not satisfy the handler's declared parameters. Answered 422
    with an ``application/problem+json`` document listing `errors`."""

    def __init__(self, errors: Sequence[ErrorItem]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} validation error(s): {self.errors}")


class ResponseValidationError(WebError):
    """A handler returned a value that does not match its declared response type;
    the server answers 500 (it is the app's bug, not the client's)."""

    def __init__(self, handler: str, errors: Sequence[ErrorItem]) -> None:
        self.errors = list(errors)
        super().__init__(
            f"handler {handler} returned a value that does not match its response model: "
            f"{self.errors}"
        )


def problem(status: int, title: str, detail: str, **members: Any) -> dict[str, Any]:
    """An RFC 9457 problem document (``type`` "about:blank": the status says it all)."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **members}


def validation_problem(errors: Sequence[ErrorItem]) -> dict[str, Any]:
    count = len(errors)
    detail = "1 request field is invalid" if count == 1 else f"{count} request fields are invalid"
    return problem(422, "Unprocessable Content", detail, errors=list(errors))


class ProblemException(HTTPException):
    """An `HTTPException` answered by default as an RFC 9457 problem document
    (the request's body was refused: 400, 413, 415)."""

    def problem(self) -> dict[str, Any]:
        from http import HTTPStatus

        return problem(self.status_code, HTTPStatus(self.status_code).phrase, self.detail)


class MalformedBody(ProblemException):
    """The body cannot be decoded as its content type says (400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


# -- msgspec errors ------------------------------------------------------------

_PATH = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\.\.\.\]|\.`([^`]*)`")
_KINDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Object missing required field"), "missing"),
    (re.compile(r"^Object contains unknown field"), "extra_forbidden"),
    (re.compile(r"^Expected `\w+` >= "), "greater_than_equal"),
    (re.compile(r"^Expected `\w+` > "), "greater_than"),
    (re.compile(r"^Expected `\w+` <= "), "less_than_equal"),
    (re.compile(r"^Expected `\w+` < "), "less_than"),
    (re.compile(r"^Expected `\w+` that's a multiple of"), "multiple_of"),
    (re.compile(r"^Expected `str` of length >= "), "string_too_short"),
    (re.compile(r"^Expected `str` of length <= "), "string_too_long"),
    (re.compile(r"^Expected `str` matching regex"), "string_pattern_mismatch"),
    (re.compile(r"^Expected `(array|object|bytes)` of length >= "), "too_short"),
    (re.compile(r"^Expected `(array|object|bytes)` of length <= "), "too_long"),
    (re.compile(r"^Invalid enum value"), "enum"),
    (re.compile(r"^Invalid RFC3339 encoded datetime"), "datetime_parsing"),
    (re.compile(r"^Invalid ISO8601 encoded date"), "date_parsing"),
    (re.compile(r"^Invalid (RFC3339|ISO8601) encoded time"), "time_parsing"),
    (re.compile(r"^Invalid ISO8601 duration"), "timedelta_parsing"),
    (re.compile(r"^Invalid UUID"), "uuid_parsing"),
    (re.compile(r"^Invalid decimal"), "decimal_parsing"),
    (re.compile(r"^Expected `(int|float|bool|uuid|datetime|date|time|decimal)`, got `str`"), ""),
    (re.compile(r"^Expected `(\w+)`"), "type"),
]
_PARSING = {
    "int": "int_parsing",
    "float": "float_parsing",
    "bool": "bool_parsing",
    "uuid": "uuid_parsing",
    "datetime": "datetime_parsing",
    "date": "date_parsing",
    "time": "time_parsing",
    "decimal": "decimal_parsing",
}


def _kind(message: str) -> str:
    for pattern, kind in _KINDS:
        found = pattern.match(message)
        if found is None:
            continue
        if kind == "":
            return _PARSING[found.group(1)]
        if kind == "type":
            return f"{found.group(1)}_type"
        return kind
    return "value_error"


def msgspec_errors(
    exc: msgspec.ValidationError, loc: Sequence[str | int], value: Any = None
) -> list[ErrorItem]:
    """msgspec's one-error message → [ErrorItem] under `loc`.

    msgspec says ``Expected `int`, got `str` - at `$.items[0]```; the part after
    ``at`` is a path into the value (``$`` is the value itself)."""
    text = str(exc)
    message, _, where = text.partition(" - at `")
    path: list[str | int] = list(loc)
    if where:
        for name, index, quoted in _PATH.findall(where.rstrip("`")[1:]):
            if name or quoted:
                path.append(name or quoted)
            elif index:
                path.append(int(index))
    kind = _kind(message)
    if kind == "missing":
        field = message.rsplit("`", 2)[-2] if message.endswith("`") else ""
        if field:
            path.append(field)
        message = "Field required"
    item: ErrorItem = {"loc": path, "msg": message, "type": kind}
    if kind.endswith("_parsing") and not where and isinstance(value, str):
        item["input"] = value
    return [item]


# -- types ---------------------------------------------------------------------

SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    uuid.UUID,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
)
_SEQUENCES = {list, set, frozenset, tuple, Sequence}


def strip_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, a, b]`` → (T, [a, b]); anything else → (tp, [])."""
    if get_origin(tp) is Annotated:
        inner, *extras = get_args(tp)
        deeper, more = strip_annotated(inner)
        return deeper, [*more, *extras]
    return tp, []


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``T | None`` → (T, True)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def is_scalar(tp: Any) -> bool:
    """A type read from one string: str, numbers, UUID, dates, Decimal, enums, Literals."""
    tp, _ = strip_annotated(tp)
    tp, _ = strip_optional(tp)
    if get_origin(tp) is Literal:
        return True
    if get_origin(tp) in (Union, types.UnionType):
        return all(is_scalar(arg) for arg in get_args(tp))
    return isinstance(tp, type) and (issubclass(tp, SCALARS) or issubclass(tp, enum.Enum))


def sequence_item(tp: Any) -> Any | None:
    """For ``list[T]`` (set, tuple[T, ...], Sequence) of a scalar T: T; else None."""
    tp, _ = strip_annotated(tp)
    tp, _ = strip_optional(tp)
    origin = get_origin(tp)
    if origin not in _SEQUENCES:
        return None
    args = [a for a in get_args(tp) if a is not Ellipsis]
    if len(args) != 1 or not is_scalar(args[0]):
        return None
    return args[0]


def is_pydantic_model(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def uses_pydantic(tp: Any) -> bool:
    """True if `tp` is or contains a pydantic model (validated by pydantic then)."""
    if "pydantic" not in sys.modules:
        return False
    tp, _ = strip_annotated(tp)
    if is_pydantic_model(tp):
        return True
    return any(uses_pydantic(arg) for arg in get_args(tp) if arg is not Ellipsis)


def is_model(tp: Any) -> bool:
    """Struct, dataclass, TypedDict or pydantic model: read from a JSON object."""
    tp, _ = strip_annotated(tp)
    tp, _ = strip_optional(tp)
    if not isinstance(tp, type):
        return False
    return (
        issubclass(tp, msgspec.Struct)
        or dataclasses.is_dataclass(tp)
        or typing.is_typeddict(tp)
        or is_pydantic_model(tp)
    )


# -- validators --------------------------------------------------------------------

Convert = Callable[[Any], Any]


def check_type(tp: Any) -> None:
    """Raise TypeError if neither msgspec nor pydantic can validate `tp`."""
    if uses_pydantic(tp):
        from pydantic import TypeAdapter

        TypeAdapter(tp)
        return
    _reject_custom(msgspec.inspect.type_info(tp), set())


def _reject_custom(info: Any, seen: set[int]) -> None:
    """msgspec takes any class as a "custom type" for a `dec_hook` to build; we give
    none, so such a type could never validate: refuse it when the route is made."""
    if id(info) in seen:
        return
    seen.add(id(info))
    if isinstance(info, msgspec.inspect.CustomType) and info.cls is not object:
        raise TypeError(f"{info.cls!r} is not a type msgspec or pydantic can validate")
    if isinstance(info, msgspec.inspect.Field):
        _reject_custom(info.type, seen)
        return
    if not isinstance(info, msgspec.inspect.Type):
        return
    for name in info.__struct_fields__:
        value = getattr(info, name)
        for part in value if isinstance(value, tuple | list) else (value,):
            if isinstance(part, msgspec.inspect.Type | msgspec.inspect.Field):
                _reject_custom(part, seen)


def converter(tp: Any, loc: Sequence[str | int], *, strict: bool = False) -> Convert:
    """A function that returns the value as `tp` or raises `RequestValidationError`.
    Lax by default, as for query strings: ``"5"`` is an int, ``"true"`` a bool."""
    if uses_pydantic(tp):
        return _pydantic_converter(tp, loc)
    where = list(loc)

    def convert(value: Any) -> Any:
        try:
            return msgspec.convert(value, tp, strict=strict, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise RequestValidationError(msgspec_errors(exc, where, value)) from None

    return convert


def _pydantic_converter(tp: Any, loc: Sequence[str | int]) -> Convert:
    from pydantic import TypeAdapter
    from pydantic import ValidationError as PydanticError

    adapter = TypeAdapter(tp)
    where = list(loc)

    def convert(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except PydanticError as exc:
            raise RequestValidationError(pydantic_errors(exc, where)) from None

    return convert


def pydantic_errors(exc: Any, loc: Sequence[str | int]) -> list[ErrorItem]:
    items: list[ErrorItem] = []
    for error in exc.errors(include_url=False, include_context=False):
        item: ErrorItem = {
            "loc": [*loc, *error["loc"]],
            "msg": error["msg"],
            "type": error["type"],
        }
        if error["type"] != "missing":
            item["input"] = _jsonable(error.get("input"))
        items.append(item)
    return items


def _jsonable(value: Any) -> Any:
    """`value` if it encodes as JSON (the input echoed in an error), else its repr."""
    try:
        msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return repr(value)
    return value


def json_decoder(tp: Any, loc: Sequence[str | int]) -> Callable[[bytes], Any]:
    """bytes of JSON → a value of `tp`: 400 `MalformedBody` if it is not JSON,
    `RequestValidationError` if it does not match."""
    where = list(loc)
    if uses_pydantic(tp):
        from pydantic import TypeAdapter
        from pydantic import ValidationError as PydanticError

        adapter = TypeAdapter(tp)

        def decode_pydantic(body: bytes) -> Any:
            try:
                return adapter.validate_json(body)
            except PydanticError as exc:
                errors = pydantic_errors(exc, where)
                if any(e["type"] == "json_invalid" for e in errors):
                    raise MalformedBody(f"the body is not valid JSON: {errors[0]['msg']}") from None
                raise RequestValidationError(errors) from None

        return decode_pydantic

    decoder = msgspec.json.Decoder(tp, strict=False)

    def decode(body: bytes) -> Any:
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise RequestValidationError(msgspec_errors(exc, where)) from None
        except msgspec.DecodeError as exc:
            raise MalformedBody(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise MalformedBody("the body's JSON is nested too deeply") from None

    return decode
