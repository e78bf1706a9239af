"""A handler's signature, read once into a plan of what to do per request.

`make_plan` walks the handler's parameters and, through `Depends`, those of its
dependencies, and flattens them into:

- `inputs`: every value read from the path, query, headers or cookies, validated
  per request by one `msgspec.convert` into a Struct made for this route (a
  value asked for twice, by the handler and a dependency, is read once);
- `body`: what to read from the body (one JSON value, several embedded ones, or
  form fields and files);
- `calls`: the dependencies, each once however often it is asked for (unless
  ``use_cache=False``), in an order where each comes after what it needs, and
  the handler last.

Per request, `Plan.solve` fills those in; only a failure takes the slow path that
checks each value on its own to list every error.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import operator
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Union, get_args, get_origin

import msgspec

from levante.native import chained
from levante.web.background import BackgroundTasks
from levante.web.dependencies import Depends, Security, SecurityScopes, call_kind, enter
from levante.web.exceptions import RegistrationError
from levante.web.params import Param, Path, Required
from levante.web.requests import MAX_FORM_PART_SIZE, HTTPConnection, Request
from levante.web.responses import Response
from levante.web.validation import (
    ErrorItem,
    MalformedBody,
    ProblemException,
    RequestValidationError,
    ResponseValidationError,
    check_type,
    converter,
    is_model,
    is_scalar,
    json_decoder,
    msgspec_errors,
    pydantic_errors,
    sequence_item,
    strip_annotated,
    strip_optional,
    uses_pydantic,
)
from levante.web.websockets import WebSocket

#: A JSON or form body larger than this answers 413 (Litestar's default is 10 MB;
#: `Route(max_body_size=...)` changes it for one route).
MAX_BODY_SIZE: Final = 10 * 1024 * 1024

#: The lifespan-state key of the app-scoped dependency values.
APP_DEPENDENCIES_KEY: Final = "levante.app_dependencies"

_MISSING: Final[Any] = object()


def handler_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", "?")
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


# -- what a parameter is ---------------------------------------------------------

# Where an argument comes from.
INPUT, BODY, CALL, APP, CONNECTION, TASKS, RESPONSE, SCOPES = range(8)


@dataclass(eq=False)
class Input:
    """One value read from the path, query, headers or cookies."""

    key: str  # field of the route's params Struct
    location: str  # path | query | header | cookie
    alias: str  # the name on the wire
    annotation: Any  # what to validate against (constraints as msgspec.Meta)
    many: bool  # a list of every repeated value
    required: bool
    default: Any
    default_factory: Callable[[], Any] | None
    param: Param | None
    owner: str


@dataclass(eq=False)
class BodyField:
    """One value of the body: the whole JSON body, a member of it, or a form field/file."""

    key: str
    location: str  # body | form | file
    alias: str
    annotation: Any
    required: bool
    default: Any
    default_factory: Callable[[], Any] | None
    param: Param | None
    many: bool = False
    whole_form: bool = False  # a model type read from every form field
    convert: Callable[[Any], Any] | None = None  # set when the plan is finished


@dataclass(eq=False)
class Call:
    """A dependency or the handler, and where each of its arguments comes from."""

    func: Callable[..., Any]
    original: Callable[..., Any]  # the function the user named (key for overrides)
    kind: str  # async | sync | async_gen | sync_gen
    args: list[tuple[str, int, Any]]  # (parameter, source, what)
    scope: str  # request | app
    scopes: list[str]
    slot: int


@dataclass(eq=False)
class Plan:
    handler: Callable[..., Any]
    connection: type[HTTPConnection]
    inputs: list[Input] = field(default_factory=list)
    body: list[BodyField] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)  # the handler is the last
    params_type: Any = None
    #: The inputs by location: [(location, [(key, alias, many)])], read in one pass each.
    sources: list[tuple[str, list[tuple[str, str, bool]]]] = field(default_factory=list)
    #: Inputs typed bool: "on"/"off", "yes"/"no" are read as true/false.
    bool_keys: list[str] = field(default_factory=list)
    body_decoder: Callable[[bytes], Any] | None = None
    body_embedded: bool = False
    max_body_size: int = MAX_BODY_SIZE
    has_generators: bool = False
    has_app_calls: bool = False
    reads_form: bool = False
    #: Generator dependencies or uploaded files: something to clean up after the response.
    needs_stack: bool = False
    app_calls: list[Call] = field(default_factory=list)
    uses_tasks: bool = False
    uses_response: bool = False
    #: No body and no dependencies: `solve_now` does it all without awaiting.
    immediate: bool = False

    @property
    def endpoint(self) -> Call:
        return self.calls[-1]


class _Planner:
    def __init__(
        self,
        handler: Callable[..., Any],
        path_names: set[str],
        connection: type[HTTPConnection],
        overrides: Mapping[Callable[..., Any], Callable[..., Any]],
    ) -> None:
        self.plan = Plan(handler, connection)
        self.path_names = path_names
        self.overrides = overrides
        self.inputs: dict[tuple[Any, ...], Input] = {}
        self.keys: set[str] = set()
        self.cache: dict[tuple[Any, ...], Call] = {}
        self.visiting: list[Callable[..., Any]] = []

    # -- calls ---------------------------------------------------------------

    def add_call(
        self,
        original: Callable[..., Any],
        *,
        scope: str = "request",
        scopes: list[str] | None = None,
        use_cache: bool = True,
        is_endpoint: bool = False,
    ) -> Call:
        func = self.overrides.get(original, original)
        cache_key = (original, tuple(scopes or ()))
        if use_cache and not is_endpoint and cache_key in self.cache:
            return self.cache[cache_key]
        if original in self.visiting:
            chain = " -> ".join(handler_name(f) for f in [*self.visiting, original])
            raise RegistrationError(f"dependency cycle: {chain}")
        self.visiting.append(original)
        try:
            call = self._build_call(func, original, scope, list(scopes or ()), is_endpoint)
        finally:
            self.visiting.pop()
        call.slot = len(self.plan.calls)
        self.plan.calls.append(call)
        if use_cache and not is_endpoint:
            self.cache[cache_key] = call
        return call

    def _build_call(
        self,
        func: Callable[..., Any],
        original: Callable[..., Any],
        scope: str,
        scopes: list[str],
        is_endpoint: bool,
    ) -> Call:
        kind = "async" if is_endpoint and _is_async(func) else call_kind(func)
        if kind.endswith("_gen"):
            if is_endpoint:
                raise RegistrationError(
                    f"handler {handler_name(func)} is a generator; return a "
                    f"StreamingResponse or an EventSourceResponse instead"
                )
            self.plan.has_generators = True
        call = Call(func, original, kind, [], scope, scopes, -1)
        for param in _signature(func).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.kind is param.POSITIONAL_ONLY:
                raise RegistrationError(
                    f"{_who(func, is_endpoint)}: parameter {param.name!r} is positional-only; "
                    f"parameters are passed by name"
                )
            source, what = self._argument(func, param, call, is_endpoint)
            if source == -1:
                continue
            call.args.append((param.name, source, what))
        return call

    def _argument(
        self, func: Callable[..., Any], param: inspect.Parameter, call: Call, is_endpoint: bool
    ) -> tuple[int, Any]:
        annotation, extras = strip_annotated(param.annotation)
        marker = _marker(extras, param.default)
        who = _who(func, is_endpoint)
        if isinstance(marker, Depends):
            return self._dependency(func, param, annotation, marker, call, who)
        if call.scope == "app":
            raise RegistrationError(
                f"{who}: parameter {param.name!r} reads the request, but an app-scoped "
                f"dependency runs once at start-up; give it only other app-scoped dependencies"
            )
        special = self._special(param, annotation, call)
        if special is not None:
            return special
        if annotation is inspect.Parameter.empty and marker is None:
            if param.name in self.path_names:
                # Unannotated: the path convertor's value as it is ({id:int} gives an int).
                return self._value(func, param, Any, None, who)
            elif param.default is not inspect.Parameter.empty:
                return -1, None  # an optional parameter the request does not fill
            else:
                raise RegistrationError(
                    f"{who}: parameter {param.name!r} has no annotation; annotate it "
                    f"(int, str, a model, Request...) or name it after a path parameter "
                    f"{sorted(self.path_names)}"
                )
        return self._value(func, param, param.annotation, marker, who)

    def _dependency(
        self,
        func: Callable[..., Any],
        param: inspect.Parameter,
        annotation: Any,
        marker: Depends,
        call: Call,
        who: str,
    ) -> tuple[int, Any]:
        dependency = marker.dependency
        if dependency is None:
            if not callable(annotation) or annotation is inspect.Parameter.empty:
                raise RegistrationError(
                    f"{who}: parameter {param.name!r} is Depends() with no function and no "
                    f"callable annotation to call"
                )
            dependency = annotation
        if call.scope == "app" and marker.scope != "app":
            raise RegistrationError(
                f"{who}: app-scoped dependency cannot depend on request-scoped "
                f"{handler_name(dependency)} (parameter {param.name!r})"
            )
        scopes = [*call.scopes, *(marker.scopes if isinstance(marker, Security) else ())]
        sub = self.add_call(
            dependency, scope=marker.scope, scopes=scopes, use_cache=marker.use_cache
        )
        if sub.scope == "app":
            return APP, sub
        return CALL, sub

    def _special(
        self, param: inspect.Parameter, annotation: Any, call: Call
    ) -> tuple[int, Any] | None:
        if isinstance(annotation, type):
            if issubclass(annotation, BackgroundTasks):
                self.plan.uses_tasks = True
                return TASKS, None
            if issubclass(annotation, HTTPConnection):
                return CONNECTION, None
            if issubclass(annotation, SecurityScopes):
                return SCOPES, SecurityScopes(call.scopes)
            if issubclass(annotation, Response):
                self.plan.uses_response = True
                return RESPONSE, None
        if annotation is inspect.Parameter.empty and param.name in ("request", "websocket"):
            return CONNECTION, None
        return None

    # -- values ----------------------------------------------------------------

    def _value(
        self,
        func: Callable[..., Any],
        param: inspect.Parameter,
        annotation: Any,
        marker: Param | None,
        who: str,
    ) -> tuple[int, Any]:
        bare, _ = strip_annotated(annotation)
        if bare is inspect.Parameter.empty:
            annotation = bare = str
        location = self._location(param, bare, marker, who)
        typed = _with_meta(annotation, marker)
        try:
            if not (location == "file" and _is_upload(bare)):
                check_type(typed)
        except (TypeError, ValueError) as exc:
            raise chained(
                RegistrationError(
                    f"{who}: cannot validate parameter {param.name!r} of type {bare!r}: {exc}"
                ),
                None,
            )
        default, factory, required = _default(param, marker)
        if location == "path" and not required:
            raise RegistrationError(f"{who}: path parameter {param.name!r} cannot have a default")
        alias = self._alias(param, marker, location)
        if location in ("body", "form", "file"):
            body = BodyField(
                self._key(param.name),
                location,
                alias,
                typed,
                required,
                default,
                factory,
                marker,
                many=sequence_item(bare) is not None or _is_file_list(bare),
                whole_form=location == "form" and is_model(bare),
            )
            self.plan.body.append(body)
            return BODY, body.key
        return INPUT, self._input(
            param, location, alias, typed, bare, required, default, factory, marker, who
        ).key

    def _input(
        self,
        param: inspect.Parameter,
        location: str,
        alias: str,
        typed: Any,
        bare: Any,
        required: bool,
        default: Any,
        factory: Callable[[], Any] | None,
        marker: Param | None,
        who: str,
    ) -> Input:
        many = sequence_item(bare) is not None
        if location in ("path", "cookie") and many:
            raise RegistrationError(
                f"{who}: {location} parameter {param.name!r} cannot be a list: it has one value"
            )
        key = (location, alias, repr(typed), required, repr(default), factory)
        found = self.inputs.get(key)
        if found is not None:
            return found
        item = Input(
            self._key(param.name),
            location,
            alias,
            typed,
            many,
            required,
            default,
            factory,
            marker,
            who,
        )
        self.inputs[key] = item
        self.plan.inputs.append(item)
        return item

    def _location(self, param: inspect.Parameter, bare: Any, marker: Param | None, who: str) -> str:
        if marker is not None:
            if (
                isinstance(marker, Path)
                and param.name not in self.path_names
                and (marker.alias or param.name) not in self.path_names
            ):
                raise RegistrationError(
                    f"{who}: parameter {param.name!r} is marked Path() but the route's path "
                    f"has no {{{marker.alias or param.name}}}"
                )
            return marker.location
        if param.name in self.path_names:
            return "path"
        if is_scalar(bare) or sequence_item(bare) is not None:
            return "query"
        if self.plan.connection is WebSocket:
            raise RegistrationError(
                f"{who}: parameter {param.name!r} of type {bare!r} would be read from the "
                f"body, and a WebSocket handshake has none"
            )
        return "body"

    def _alias(self, param: inspect.Parameter, marker: Param | None, location: str) -> str:
        alias = marker.alias if marker is not None and marker.alias else None
        if alias is None:
            alias = param.name
            if location == "header" and getattr(marker, "convert_underscores", True):
                alias = alias.replace("_", "-")
        return alias.lower() if location == "header" else alias

    def _key(self, name: str) -> str:
        key, n = name, 1
        while key in self.keys:
            n += 1
            key = f"{name}_{n}"
        self.keys.add(key)
        return key

    # -- finishing -----------------------------------------------------------------

    def _check_path_names(self) -> None:
        """Every path parameter is declared somewhere, or the request is at hand to
        read it: otherwise the route's path and the handler disagree (a typo)."""
        declared = {item.alias for item in self.plan.inputs if item.location == "path"}
        takes_connection = any(
            source == CONNECTION for call in self.plan.calls for _, source, _ in call.args
        )
        missing = sorted(self.path_names - declared)
        if missing and not takes_connection:
            raise RegistrationError(
                f"handler {handler_name(self.plan.handler)}: the path has {{{missing[0]}}} but "
                f"no parameter {missing[0]!r}; declare it (e.g. {missing[0]}: int) or take the "
                f"Request and read request.path_params"
            )

    def finish(self, max_body_size: int) -> Plan:
        plan = self.plan
        self._check_path_names()
        plan.max_body_size = max_body_size
        plan.app_calls = [call for call in plan.calls if call.scope == "app"]
        plan.has_app_calls = bool(plan.app_calls)
        plan.reads_form = any(b.location != "body" for b in plan.body)
        plan.needs_stack = plan.has_generators or plan.reads_form
        plan.immediate = not plan.body and len(plan.calls) == 1 and not plan.needs_stack
        for body in plan.body:
            # A whole-form model's fields are the form's: errors at ["body", field].
            loc: list[str | int] = ["body"] if body.whole_form else ["body", body.alias]
            if body.location == "file" and not _wants_bytes(body):
                body.convert = _file_check(body, loc)
            else:
                body.convert = converter(body.annotation, loc)
        plan.params_type = _params_struct(plan.inputs)
        by_location: dict[str, list[tuple[str, str, bool]]] = {}
        for item in plan.inputs:
            by_location.setdefault(item.location, []).append((item.key, item.alias, item.many))
        plan.sources = list(by_location.items())
        plan.bool_keys = [item.key for item in plan.inputs if _is_bool(item.annotation)]
        fields = [b for b in plan.body if b.location == "body"]
        forms = [b for b in plan.body if b.location != "body"]
        if fields and forms:
            raise RegistrationError(
                f"handler {handler_name(plan.handler)}: declares both JSON body parameters "
                f"{[b.key for b in fields]} and form fields {[b.key for b in forms]}; a request "
                f"has one body"
            )
        if len(fields) == 1 and not getattr(fields[0].param, "embed", False):
            plan.body_decoder = json_decoder(fields[0].annotation, ["body"])
        elif fields:
            plan.body_embedded = True
            aliases = [b.alias for b in fields]
            if len(set(aliases)) != len(aliases):
                raise RegistrationError(
                    f"handler {handler_name(plan.handler)}: two body parameters are both "
                    f"named {sorted(a for a in aliases if aliases.count(a) > 1)[0]!r} in the "
                    f"JSON object; give one an alias"
                )
        return plan


def make_plan(
    handler: Callable[..., Any],
    *,
    path_names: set[str],
    connection: type[HTTPConnection] = Request,
    dependencies: list[Depends] | None = None,
    overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
    max_body_size: int = MAX_BODY_SIZE,
) -> Plan:
    """Read `handler` (and `dependencies`, run first for their effects) into a Plan;
    RegistrationError names the handler and the parameter when it cannot."""
    planner = _Planner(handler, path_names, connection, overrides or {})
    for marker in dependencies or ():
        if marker.dependency is None:
            raise RegistrationError(
                f"handler {handler_name(handler)}: dependencies=[Depends()] needs a function"
            )
        scopes = marker.scopes if isinstance(marker, Security) else None
        planner.add_call(
            marker.dependency, scope=marker.scope, scopes=scopes, use_cache=marker.use_cache
        )
    planner.add_call(handler, is_endpoint=True)
    return planner.finish(max_body_size)


# -- signature helpers ---------------------------------------------------------------


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(func, eval_str=True)
    except (NameError, TypeError, SyntaxError) as exc:
        raise chained(
            RegistrationError(
                f"cannot read the annotations of {handler_name(func)}: {exc}. Import the names "
                f"the annotations use at module level (not only under TYPE_CHECKING)."
            ),
            None,
        )
    except ValueError as exc:
        raise chained(
            RegistrationError(f"cannot read the signature of {handler_name(func)}: {exc}"), None
        )


def _who(func: Callable[..., Any], is_endpoint: bool) -> str:
    return f"{'handler' if is_endpoint else 'dependency'} {handler_name(func)}"


def _is_async(func: Callable[..., Any]) -> bool:
    from levante.web.concurrency import is_async_callable

    return is_async_callable(func)


def _marker(extras: list[Any], default: Any) -> Any:
    found = None
    for extra in extras:
        if isinstance(extra, Param | Depends):
            found = extra
    if isinstance(default, Param | Depends):
        found = default
    return found


def _default(
    param: inspect.Parameter, marker: Param | None
) -> tuple[Any, Callable[[], Any] | None, bool]:
    if isinstance(param.default, Param):
        marker = param.default
        signature_default = Required
    else:
        signature_default = Required if param.default is inspect.Parameter.empty else param.default
    if marker is not None and not marker.required:
        return marker.default, marker.default_factory, False
    if signature_default is not Required:
        return signature_default, None, False
    _, optional = strip_optional(strip_annotated(param.annotation)[0])
    if optional and marker is None:
        return None, None, False  # FastAPI: `q: int | None` alone means optional
    return Required, None, True


def _with_meta(annotation: Any, marker: Param | None) -> Any:
    """`annotation` without our markers, with the marker's constraints as msgspec.Meta."""
    from typing import Annotated, Union

    bare, extras = strip_annotated(annotation)
    kept = [e for e in extras if not isinstance(e, Param | Depends)]
    meta = marker.meta() if marker is not None else None
    if meta is not None:
        inner, optional = strip_optional(bare)
        bare = operator.getitem(Annotated, (inner, meta))
        if optional:
            bare = operator.getitem(Union, (bare, type(None)))
    if kept:
        return operator.getitem(Annotated, (bare, *kept))
    return bare


def _is_upload(tp: Any) -> bool:
    """`UploadFile`, a list of them, or either optional: checked by `_file_check`."""
    from levante.web.forms import UploadFile

    tp, _ = strip_optional(strip_annotated(tp)[0])
    return tp is UploadFile or (get_origin(tp) is list and get_args(tp)[:1] == (UploadFile,))


def _is_file_list(tp: Any) -> bool:
    from typing import get_args, get_origin

    from levante.web.forms import UploadFile

    tp, _ = strip_optional(strip_annotated(tp)[0])
    return get_origin(tp) is list and get_args(tp)[:1] in ((UploadFile,), (bytes,))


def _params_struct(inputs: list[Input]) -> Any:
    if not inputs:
        return None
    fields: list[tuple[str, Any, Any]] = []
    for item in inputs:
        tp = item.annotation
        if item.required:
            fields.append((item.key, tp, msgspec.NODEFAULT))
        elif item.default_factory is not None:
            fields.append((item.key, tp, msgspec.field(default_factory=item.default_factory)))
        else:
            fields.append((item.key, tp, _struct_default(item.default)))
    # Required fields first: msgspec wants defaults last unless kw_only.
    return msgspec.defstruct("Params", fields, kw_only=True)


def _struct_default(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return msgspec.field(default_factory=lambda: copy.deepcopy(value))
    return value


# -- per request -------------------------------------------------------------------


class Solved:
    """What one request's plan produced: the handler's arguments, and what must
    happen after the response (generator cleanup, background tasks, the
    `Response` parameter's headers)."""

    __slots__ = ("kwargs", "response", "stack", "tasks")

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}
        self.stack: contextlib.AsyncExitStack | None = None
        self.tasks: BackgroundTasks | None = None
        self.response: Response | None = None


def read_inputs(plan: Plan, conn: HTTPConnection, errors: list[ErrorItem]) -> dict[str, Any]:
    """The path/query/header/cookie values, validated; failures go to `errors`."""
    raw: dict[str, Any] = {}
    for location, items in plan.sources:
        source = _source(location, conn)
        for key, alias, many in items:
            if many:
                values = source.getlist(alias)
                if values:
                    raw[key] = values
            else:
                value = source.get(alias, _MISSING)
                if value is not _MISSING:
                    raw[key] = value
    for key in plan.bool_keys:
        if key in raw:
            raw[key] = _lax_bool(raw[key])
    try:
        return msgspec.structs.asdict(msgspec.convert(raw, plan.params_type, strict=False))
    except msgspec.ValidationError:
        errors.extend(_each_input_error(plan, raw))
        return {}


#: The words HTML forms and people use for booleans (pydantic's set; a checkbox sends "on").
_TRUE: Final = frozenset({"on", "yes", "y", "t", "true", "1"})
_FALSE: Final = frozenset({"off", "no", "n", "f", "false", "0"})


def _lax_bool(value: Any) -> Any:
    if isinstance(value, list):
        return [_lax_bool(v) for v in value]
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return "true"
        if word in _FALSE:
            return "false"
    return value


@functools.cache
def _bool_fields(model: Any) -> frozenset[str]:
    """The names of a model's bool fields (a form read into it sends "on" for true)."""
    model, _ = strip_optional(strip_annotated(model)[0])
    fields = getattr(model, "model_fields", None)  # pydantic
    if isinstance(fields, dict):
        return frozenset(n for n, f in fields.items() if _is_bool(f.annotation))
    try:
        info = msgspec.inspect.type_info(model)
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(
        f.encode_name
        for f in getattr(info, "fields", ())
        if isinstance(f.type, msgspec.inspect.BoolType)
        or (
            isinstance(f.type, msgspec.inspect.UnionType)
            and any(isinstance(t, msgspec.inspect.BoolType) for t in f.type.types)
        )
    )


def _is_bool(tp: Any) -> bool:
    from typing import get_args

    tp, _ = strip_optional(strip_annotated(tp)[0])
    item = sequence_item(tp)
    return tp is bool or item is bool or (item is None and get_args(tp)[:1] == (bool,))


def _source(location: str, conn: HTTPConnection) -> Any:
    if location == "query":
        return conn.query_params
    if location == "path":
        return conn.scope.get("path_params") or _NOTHING
    if location == "header":
        return conn.headers
    return conn.cookies


def _each_input_error(plan: Plan, raw: dict[str, Any]) -> list[ErrorItem]:
    """Check each value alone, to list every error (msgspec stops at the first)."""
    errors: list[ErrorItem] = []
    for item in plan.inputs:
        loc: list[str | int] = [item.location, item.alias]
        if item.key not in raw:
            if item.required:
                errors.append({"loc": loc, "msg": "Field required", "type": "missing"})
            continue
        value = raw[item.key]
        try:
            msgspec.convert(value, item.annotation, strict=False)
        except msgspec.ValidationError as exc:
            errors.extend(msgspec_errors(exc, loc, value))
    return errors


async def read_body(plan: Plan, request: Request, errors: list[ErrorItem]) -> dict[str, Any]:
    """The body parameters, validated; failures go to `errors`. 400 for a body that
    is not what its content type says, 413 past `max_body_size`, 415 for a content
    type the handler does not read."""
    if not plan.body:
        return {}
    if plan.body[0].location != "body":
        return await _read_form(plan, request, errors)
    _check_json_type(request)
    data = await read_limited(request, plan.max_body_size)
    if not data:
        return _absent_body(plan, errors)
    try:
        if plan.body_decoder is not None:
            return {plan.body[0].key: plan.body_decoder(data)}
        return _embedded(plan, data, errors)
    except RequestValidationError as exc:
        errors.extend(exc.errors)
        return {}


def _check_json_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # FastAPI reads a body without a type as JSON too
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise ProblemException(415, f"expected a JSON body (application/json), got {media or 'none'}")


def _check_declared_size(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemException(413, f"the body is larger than {limit} bytes")


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes."""
    _check_declared_size(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemException(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # `await request.body()` still works (an error handler may read it)
    return body


def _absent_body(plan: Plan, errors: list[ErrorItem]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for body in plan.body:
        if body.required:
            loc: list[str | int] = ["body"] if not plan.body_embedded else ["body", body.alias]
            errors.append({"loc": loc, "msg": "Field required", "type": "missing"})
        else:
            values[body.key] = _default_of(body.default, body.default_factory)
    return values


def _embedded(plan: Plan, data: bytes, errors: list[ErrorItem]) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise chained(MalformedBody(f"the body is not valid JSON: {exc}"), None)
    except RecursionError:
        raise chained(MalformedBody("the body's JSON is nested too deeply"), None)
    if not isinstance(document, dict):
        errors.append(
            {
                "loc": ["body"],
                "msg": "Expected `object`, got another JSON value",
                "type": "object_type",
            }
        )
        return {}
    return _fields(plan.body, document, errors)


def _fields(
    fields: list[BodyField], document: Mapping[str, Any], errors: list[ErrorItem]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for body in fields:
        if body.alias not in document:
            if body.required:
                errors.append(
                    {"loc": ["body", body.alias], "msg": "Field required", "type": "missing"}
                )
            else:
                values[body.key] = _default_of(body.default, body.default_factory)
            continue
        convert = body.convert
        try:
            value = document[body.alias]
            values[body.key] = convert(value) if convert is not None else value
        except RequestValidationError as exc:
            errors.extend(exc.errors)
    return values


async def _read_form(plan: Plan, request: Request, errors: list[ErrorItem]) -> dict[str, Any]:
    from levante.web.forms import UploadFile

    _check_form_type(request)
    _check_declared_size(request, plan.max_body_size)
    form = await request.form(
        max_part_size=min(MAX_FORM_PART_SIZE, plan.max_body_size), max_file_size=plan.max_body_size
    )
    values: dict[str, Any] = {}
    document: dict[str, Any] = {}
    for body in plan.body:
        if body.whole_form:
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                if key in fields:
                    previous = fields[key]
                    fields[key] = (
                        [*previous, value] if isinstance(previous, list) else [previous, value]
                    )
                else:
                    fields[key] = value
            for key in _bool_fields(body.annotation).intersection(fields):
                fields[key] = _lax_bool(fields[key])
            document[body.alias] = fields
            continue
        found = form.getlist(body.alias)
        if not found or (found == [""] and body.location == "file"):
            continue
        values_: list[Any] = list(found)
        if _is_bool(body.annotation):
            values_ = [_lax_bool(v) for v in values_]
        if body.location == "file" and _wants_bytes(body):
            values_ = [await f.read() if isinstance(f, UploadFile) else f for f in found]
        document[body.alias] = values_ if body.many else values_[-1]
    values.update(_fields(plan.body, document, errors))
    return values


_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


def _check_form_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # read as an empty form: the required fields are reported missing
    media = content_type.partition(";")[0].strip().lower()
    if media not in _FORM_TYPES:
        raise ProblemException(
            415, f"expected a form body ({' or '.join(_FORM_TYPES)}), got {media}"
        )


def _wants_bytes(body: BodyField) -> bool:
    from typing import get_args

    tp, _ = strip_optional(strip_annotated(body.annotation)[0])
    return tp is bytes or get_args(tp)[:1] == (bytes,)


def _file_check(body: BodyField, loc: list[str | int]) -> Callable[[Any], Any]:
    from levante.web.forms import UploadFile

    def check(value: Any) -> Any:
        items = value if body.many else [value]
        for index, item in enumerate(items):
            if not isinstance(item, UploadFile):
                where = [*loc, index] if body.many else loc
                error: ErrorItem = {
                    "loc": where,
                    "msg": "Expected an uploaded file",
                    "type": "file_type",
                }
                raise RequestValidationError([error])
        return value

    return check


def _default_of(default: Any, factory: Callable[[], Any] | None) -> Any:
    if factory is not None:
        return factory()
    return copy.copy(default) if isinstance(default, list | dict | set) else default


def solve_now(plan: Plan, conn: HTTPConnection) -> Solved:
    """`solve` for an `immediate` plan (no body, no dependencies: the common case),
    as a plain call: nothing in it waits."""
    errors: list[ErrorItem] = []
    inputs = read_inputs(plan, conn, errors) if plan.inputs else _NOTHING
    if errors:
        raise RequestValidationError(errors)
    solved = _solved(plan)
    solved.kwargs = _kwargs(plan.calls[-1], conn, inputs, _NOTHING, (), _NOTHING, solved)
    return solved


def _solved(plan: Plan) -> Solved:
    solved = Solved()
    if plan.uses_tasks:
        solved.tasks = BackgroundTasks()
    if plan.uses_response:
        solved.response = Response()
        solved.response.status_code = None  # type: ignore[assignment]
    return solved


async def solve(plan: Plan, conn: HTTPConnection) -> Solved:
    """Read and validate the request, run the dependencies; the handler's arguments
    are in `Solved.kwargs`. Raises `RequestValidationError` listing every error."""
    if plan.immediate:
        return solve_now(plan, conn)
    errors: list[ErrorItem] = []
    inputs = read_inputs(plan, conn, errors) if plan.inputs else _NOTHING
    body = await read_body(plan, conn, errors) if plan.body else _NOTHING  # type: ignore[arg-type]
    if errors:
        raise RequestValidationError(errors)
    solved = _solved(plan)
    endpoint = plan.calls[-1]
    if len(plan.calls) == 1 and not plan.needs_stack:  # no dependencies
        solved.kwargs = _kwargs(endpoint, conn, inputs, body, (), _NOTHING, solved)
        return solved
    if plan.needs_stack:
        solved.stack = contextlib.AsyncExitStack()
        if plan.reads_form:
            solved.stack.push_async_callback(conn.close)  # type: ignore[attr-defined]
    slots: list[Any] = [None] * len(plan.calls)
    app_values = await _app_values(plan, conn) if plan.has_app_calls else _NOTHING
    try:
        for call in plan.calls:
            if call.scope == "app":
                continue
            kwargs = _kwargs(call, conn, inputs, body, slots, app_values, solved)
            if call is endpoint:
                solved.kwargs = kwargs
                break
            slots[call.slot] = await enter(call.kind, call.func, kwargs, solved.stack)  # type: ignore[arg-type]
    except BaseException as exc:
        if solved.stack is not None:
            await close_stack(solved.stack, exc)
        raise
    return solved


async def close_stack(stack: contextlib.AsyncExitStack, exc: BaseException | None) -> None:
    """Run the cleanups on `stack`, raising `exc` into generator dependencies at their
    ``yield`` (so they roll back, not commit); what one raises instead propagates."""
    if exc is None:
        await stack.aclose()
        return
    await stack.__aexit__(type(exc), exc, exc.__traceback__)


_NOTHING: Final[dict[Any, Any]] = {}


def _kwargs(
    call: Call,
    conn: HTTPConnection,
    inputs: dict[str, Any],
    body: dict[str, Any],
    slots: Sequence[Any],
    app_values: dict[Any, Any],
    solved: Solved,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, source, what in call.args:
        if source == INPUT:
            kwargs[name] = inputs[what]
        elif source == BODY:
            kwargs[name] = body[what]
        elif source == CALL:
            kwargs[name] = slots[what.slot]
        elif source == CONNECTION:
            kwargs[name] = conn
        elif source == APP:
            kwargs[name] = app_values[what.original]
        elif source == TASKS:
            kwargs[name] = solved.tasks
        elif source == RESPONSE:
            kwargs[name] = solved.response
        else:
            kwargs[name] = what
    return kwargs


# -- app-scoped dependencies -------------------------------------------------------------


class AppDependencies:
    """The values of app-scoped dependencies for one run of an app (start-up to
    shutdown), keyed by the function the user named."""

    def __init__(self) -> None:
        self.values: dict[Callable[..., Any], Any] = {}
        self.stack = contextlib.AsyncExitStack()
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    @property
    def lock(self) -> asyncio.Lock:
        """A lock for the running loop (a test suite may drive one app from several)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def start(self, plans: list[Plan]) -> None:
        for plan in plans:
            for call in plan.app_calls:
                await self.resolve(call)

    async def resolve(self, call: Call) -> Any:
        if call.original in self.values:
            return self.values[call.original]
        kwargs: dict[str, Any] = {}
        for name, source, what in call.args:
            kwargs[name] = await self.resolve(what) if source == APP else what
        value = await enter(call.kind, call.func, kwargs, self.stack)
        self.values[call.original] = value
        return value

    async def aclose(self) -> None:
        await self.stack.aclose()


async def _app_values(plan: Plan, conn: HTTPConnection) -> dict[Any, Any]:
    state = conn.scope.get("state")
    registry: AppDependencies | None = state.get(APP_DEPENDENCIES_KEY) if state else None
    if registry is None:
        registry = _registry_without_lifespan(conn.scope.get("app"))
    for call in plan.app_calls:
        if call.original not in registry.values:
            async with registry.lock:
                await registry.resolve(call)
    return registry.values


def _registry_without_lifespan(app: Any) -> AppDependencies:
    """Where the server runs no lifespan (daphne, a TestClient used without ``with``):
    the app's own registry, values made at first use, living as long as the app."""
    registry: AppDependencies | None = getattr(app, "_app_dependencies", None)
    if registry is None:
        registry = AppDependencies()
        # Not an App (no attribute to hold it): a registry per request is all there is.
        with contextlib.suppress(AttributeError):
            app._app_dependencies = registry
    return registry


# -- what the handler returns -------------------------------------------------------------

#: `response_model=` not given: the return annotation decides.
UNSET: Final[Any] = object()


def response_type(handler: Callable[..., Any], response_model: Any = UNSET) -> Any:
    """The declared type of what `handler` returns (`response_model=` or the return
    annotation), or None when there is nothing to validate against: no annotation,
    `Any`, `None`, or a `Response`."""
    model = response_model
    if model is UNSET:
        model = _signature(handler).return_annotation
    if model in (None, inspect.Signature.empty, Any, type(None)):
        return None
    bare, _ = strip_annotated(model)
    candidates = get_args(bare) if get_origin(bare) in (Union, types.UnionType) else (bare,)
    # A Response is sent as it is; the rest of a union (``Item | JSONResponse``) is the type.
    rest = [c for c in candidates if not (isinstance(c, type) and issubclass(c, Response))]
    if len(rest) == len(candidates):
        return model
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else operator.getitem(Union, tuple(rest))


def response_encoder(handler: Callable[..., Any], model: Any) -> Callable[[Any], Any] | None:
    """A function that turns the handler's return value into the declared type
    (dropping fields the type does not declare: ``response_model=UserOut`` for a
    ``User`` with a password), or raises `ResponseValidationError`."""
    if model is None:
        return None
    name = handler_name(handler)
    try:
        check_type(model)
    except (TypeError, ValueError) as exc:
        raise chained(
            RegistrationError(f"handler {name}: cannot use {model!r} as the response type: {exc}"),
            None,
        )
    if uses_pydantic(model):
        return _pydantic_encoder(model, name)
    # A value of this type is sent as it is: the declared class itself, or the
    # container of a `dict`/`list` of JSON scalars.
    exact = _json_container(model) or (model if isinstance(model, type) else None)

    def encode(value: Any) -> Any:
        if exact is not None and type(value) is exact:
            return value
        try:
            return msgspec.convert(value, model, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise chained(ResponseValidationError(name, msgspec_errors(exc, ["response"])), None)

    return encode


_JSON_SCALARS: Final = (str, int, float, bool, type(None))


def _json_container(model: Any) -> type | None:
    """For ``dict[str, <JSON scalar>]`` or ``list[<JSON scalar>]``: dict or list; else None.

    Such a value has no fields to drop and encodes the same whether or not it is
    checked first, so a value of the right container type is sent as it is."""
    origin = get_origin(model)
    args = get_args(model)
    if origin is dict and len(args) == 2 and args[0] is str:
        item = args[1]
    elif origin is list and len(args) == 1:
        item = args[0]
    else:
        return None
    parts = get_args(item) if get_origin(item) in (Union, types.UnionType) else (item,)
    if all(part in _JSON_SCALARS or part is Any for part in parts):
        return origin  # type: ignore[no-any-return]
    return None


def _pydantic_encoder(model: Any, name: str) -> Callable[[Any], Any]:
    from pydantic import TypeAdapter
    from pydantic import ValidationError as PydanticError

    adapter = TypeAdapter(model)

    def encode(value: Any) -> Any:
        try:
            checked = adapter.validate_python(value, from_attributes=True)
        except PydanticError as exc:
            raise chained(ResponseValidationError(name, pydantic_errors(exc, ["response"])), None)
        return adapter.dump_python(checked, mode="json")

    return encode
