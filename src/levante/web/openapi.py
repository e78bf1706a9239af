"""The OpenAPI 3.1 document of an app, made from its routes' plans.

Everything comes from what the framework already knows to serve a request: the
path, the methods, each handler's plan (parameters, body, dependencies, security
schemes) and response type, plus the route's documentation options (`tags`,
`summary`, `description`, `operation_id`, `deprecated`, `responses`,
`response_description`, `include_in_schema`). JSON Schemas come from msgspec
(``schema_components``), or from pydantic for its models, under
``components.schemas``.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec

from levante.web.plans import Plan, handler_name, response_type
from levante.web.validation import PROBLEM_JSON, uses_pydantic

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"
_PYDANTIC_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{([A-Za-z_]\w*)(?::[^}]*)?\}")

_PROBLEM_MEMBERS: dict[str, Any] = {
    "type": {"type": "string"},
    "title": {"type": "string"},
    "status": {"type": "integer"},
    "detail": {"type": "string"},
}
_ERROR_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
        "input": {},
    },
    "required": ["loc", "msg", "type"],
}
#: RFC 9457 problem documents: the 400/413/415 answers, and the 422 one with its errors.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem document.",
    "properties": _PROBLEM_MEMBERS,
    "required": list(_PROBLEM_MEMBERS),
}
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "type": "object",
    "description": "RFC 9457 problem document listing each validation error.",
    "properties": {**_PROBLEM_MEMBERS, "errors": {"type": "array", "items": _ERROR_ITEM}},
    "required": [*_PROBLEM_MEMBERS, "errors"],
}


#: One Server-Sent Event as a client parses it (WHATWG HTML §9.2): the schema of
#: each event of a ``text/event-stream`` response.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


@dataclass
class Operation:
    """One (path, method) of an HTTP route, with what the document needs of it."""

    path: str
    method: str
    route: Any
    plan: Plan


def openapi_path(path: str) -> str:
    """``/items/{item_id:int}`` → ``/items/{item_id}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def iter_operations(routes: list[Any], prefix: str = "") -> Iterator[Operation]:
    """Every documented operation of `routes`, mounted `App`s and routers included."""
    from levante.web.routing import Mount, Route

    for route in routes:
        if isinstance(route, Route):
            compiled = getattr(route, "compiled", None)
            if compiled is None or not route.include_in_schema:
                continue
            for method in sorted(route.declared_methods or {"GET"}):
                yield Operation(
                    openapi_path(prefix + route.path), method.lower(), route, compiled.plan
                )
        elif isinstance(route, Mount):
            inner = getattr(route.inner, "routes", None)
            if isinstance(inner, list):
                yield from iter_operations(inner, prefix + route.path)


class _Schemas:
    """Collects types, then makes all their schemas in one pass (shared components)."""

    def __init__(self) -> None:
        self.types: list[Any] = []
        self.slots: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        self.components: dict[str, Any] = {}

    def ref(self, tp: Any, target: dict[str, Any], key: str = "schema", **extra: Any) -> None:
        """Fill `target[key]` with `tp`'s schema (plus `extra` keywords, such as a
        ``default``) once `resolve` runs."""
        if uses_pydantic(tp):
            target[key] = {**self._pydantic(tp), **extra}
            return
        self.types.append(tp)
        self.slots.append((target, key, extra))

    def _pydantic(self, tp: Any) -> dict[str, Any]:
        from pydantic import TypeAdapter

        from levante.web.validation import is_pydantic_model

        schema = TypeAdapter(tp).json_schema(ref_template=_PYDANTIC_REF, mode="validation")
        self.components.update(schema.pop("$defs", {}))
        if is_pydantic_model(tp):
            # A model is a component, as msgspec's Structs are: referred to by name.
            self.components[tp.__name__] = schema
            return {"$ref": _REF.format(name=tp.__name__)}
        return schema

    def resolve(self) -> dict[str, Any]:
        schemas, components = msgspec.json.schema_components(self.types, ref_template=_REF)
        for (target, key, extra), schema in zip(self.slots, schemas, strict=True):
            target[key] = {**schema, **extra}
        self.components.update(components)
        return self.components


def openapi_document(
    routes: list[Any],
    *,
    title: str,
    version: str,
    description: str | None = None,
    servers: list[dict[str, Any]] | None = None,
    tags: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    schemas = _Schemas()
    security_schemes: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for op in iter_operations(routes):
        operation = _operation(op, schemas, security_schemes, used_ids)
        paths.setdefault(op.path, {})[op.method] = operation
    components: dict[str, Any] = {"schemas": schemas.resolve()}
    answers = [o.get("responses", {}) for item in paths.values() for o in item.values()]
    if any("422" in a for a in answers):
        components["schemas"]["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    if any(code in a for a in answers for code in ("400", "413", "415")):
        components["schemas"]["Problem"] = PROBLEM_SCHEMA
    if security_schemes:
        components["securitySchemes"] = security_schemes
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info, "paths": paths}
    if servers:
        document["servers"] = servers
    if tags:
        document["tags"] = tags
    document["components"] = components
    return document


def _operation(
    op: Operation, schemas: _Schemas, security_schemes: dict[str, Any], used_ids: set[str]
) -> dict[str, Any]:
    route, plan = op.route, op.plan
    options: dict[str, Any] = route.options
    doc = inspect.getdoc(plan.handler) or ""
    summary, _, rest = doc.partition("\n\n")
    operation: dict[str, Any] = {}
    if options.get("tags"):
        operation["tags"] = list(options["tags"])
    operation["summary"] = options.get("summary") or summary.replace("\n", " ") or _title(plan)
    description = options.get("description") or (rest.strip() if summary else "")
    if description:
        operation["description"] = description
    operation["operationId"] = _operation_id(op, options, used_ids)
    parameters = _parameters(op, schemas)
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(plan, schemas)
    if body is not None and op.method not in ("get", "head", "delete"):
        operation["requestBody"] = body
    operation["responses"] = _responses(op, schemas)
    security = _security(plan, security_schemes)
    if security:
        operation["security"] = security
    if options.get("deprecated"):
        operation["deprecated"] = True
    return operation


def _title(plan: Plan) -> str:
    name = getattr(plan.handler, "__name__", "operation")
    return name.replace("_", " ").strip().title()


def _operation_id(op: Operation, options: dict[str, Any], used: set[str]) -> str:
    given = options.get("operation_id")
    if given:
        base = str(given)
    else:
        name = getattr(op.plan.handler, "__name__", "operation")
        base = re.sub(r"\W", "_", f"{name}{op.path}") + f"_{op.method}"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}_{n}"
    used.add(candidate)
    return candidate


def _parameters(op: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    parameters: dict[tuple[str, str], dict[str, Any]] = {}
    for item in op.plan.inputs:
        param = item.param
        if param is not None and not param.include_in_schema:
            continue
        seen = parameters.get((item.alias, item.location))
        if seen is not None:  # asked for twice (handler and a dependency): one parameter
            seen["required"] = seen["required"] or item.required
            continue
        entry: dict[str, Any] = {
            "name": item.alias,
            "in": item.location,
            "required": item.location == "path" or item.required,
        }
        if param is not None and param.description:
            entry["description"] = param.description
        if param is not None and param.deprecated:
            entry["deprecated"] = True
        extra: dict[str, Any] = {}
        if not item.required and item.default_factory is None and _jsonable(item.default):
            extra["default"] = _plain(item.default)
        schemas.ref(item.annotation, entry, **extra)
        if param is not None and param.examples:
            entry["example"] = param.examples[0]
        parameters[(item.alias, item.location)] = entry
    # Path parameters the handler reads from the request itself (or a mount's): text.
    for name in re.findall(r"\{(\w+)\}", op.path):
        parameters.setdefault(
            (name, "path"),
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}},
        )
    return list(parameters.values())


def _plain(value: Any) -> Any:
    """`value` as JSON would give it back (an enum as its value, a UUID as text)."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _jsonable(value: Any) -> bool:
    """A default worth showing: not None (an `int` parameter defaulting to None would
    contradict its own schema) and encodable as finite JSON."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return False
    try:
        msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _request_body(plan: Plan, schemas: _Schemas) -> dict[str, Any] | None:
    if not plan.body:
        return None
    first = plan.body[0]
    if first.location == "body" and not plan.body_embedded:
        media = getattr(first.param, "media_type", "application/json")
        content: dict[str, Any] = {}
        schemas.ref(first.annotation, content)
        return {"required": first.required, "content": {media: content}}
    whole = next((b for b in plan.body if b.whole_form), None)
    if whole is not None:  # a model read from every form field: its schema is the form's
        content = {}
        schemas.ref(whole.annotation, content)
        media = (
            "multipart/form-data"
            if any(b.location == "file" for b in plan.body)
            else ("application/x-www-form-urlencoded")
        )
        return {"required": whole.required, "content": {media: content}}
    properties: dict[str, Any] = {}
    for body in plan.body:
        if body.location == "file":
            binary = {"type": "string", "format": "binary"}
            properties[body.alias] = {"type": "array", "items": binary} if body.many else binary
        else:
            schemas.ref(body.annotation, properties, body.alias)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [b.alias for b in plan.body if b.required]
    if required:
        schema["required"] = required
    if first.location == "body":
        media = "application/json"
    elif any(b.location == "file" for b in plan.body):
        media = "multipart/form-data"
    else:
        media = "application/x-www-form-urlencoded"
    return {"required": bool(required), "content": {media: {"schema": schema}}}


def _responses(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    route, plan = op.route, op.plan
    options: dict[str, Any] = route.options
    status = str(route.status_code or 200)
    success: dict[str, Any] = {
        "description": options.get("response_description", "Successful Response")
    }
    if int(status) not in (204, 304):
        success["content"] = _success_content(plan, options, schemas)
    responses: dict[str, Any] = {status: success}
    for code, extra in (options.get("responses") or {}).items():
        responses[str(code)] = _extra_response(code, extra, schemas)
    for code, description in _refusals(plan):
        responses.setdefault(code, _problem_response(code, description))
    return responses


def _success_content(plan: Plan, options: dict[str, Any], schemas: _Schemas) -> dict[str, Any]:
    """JSON of the response type, or what a declared `Response` class sends."""
    from levante.web.responses import JSONResponse, Response

    model = response_type(plan.handler, options.get("response_model", _unset()))
    media: dict[str, Any] = {}
    if model is not None:
        schemas.ref(model, media)
        return {"application/json": media}
    declared = _signature_return(plan.handler)
    if not isinstance(declared, type) or not issubclass(declared, Response):
        return {"application/json": {"schema": {}}}
    if declared.media_type == "text/event-stream":
        return {declared.media_type: {"schema": SSE_EVENT_SCHEMA}}
    if not issubclass(declared, JSONResponse) and declared.media_type:
        return {declared.media_type: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": {}}}


def _signature_return(handler: Any) -> Any:
    try:
        return inspect.signature(handler, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return None


def _refusals(plan: Plan) -> list[tuple[str, str]]:
    """The answers the framework itself may give before the handler runs."""
    from levante.web.security import SecurityBase, _APIKey

    codes: list[tuple[str, str]] = []
    schemes = [c.original for c in plan.calls if isinstance(c.original, SecurityBase)]
    if any(not isinstance(s, _APIKey) for s in schemes):
        codes.append(("401", "Not authenticated"))
    if any(isinstance(s, _APIKey) for s in schemes):
        codes.append(("403", "Not authenticated"))
    if plan.body:
        codes.append(("400", "Malformed body"))
        codes.append(("413", "Body too large"))
        if plan.body[0].location == "body":
            codes.append(("415", "Not a JSON body"))
    if plan.inputs or plan.body:
        codes.append(("422", "Validation Error"))
    return codes


def _problem_response(code: str, description: str) -> dict[str, Any]:
    if code in ("401", "403"):  # HTTPException's default answer: its detail as text
        return {
            "description": description,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    name = "ValidationProblem" if code == "422" else "Problem"
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(name=name)}}},
    }


def _extra_response(code: Any, extra: dict[str, Any], schemas: _Schemas) -> dict[str, Any]:
    phrase = HTTPStatus(int(code)).phrase if str(code).isdigit() else "Response"
    response: dict[str, Any] = {"description": extra.get("description", phrase)}
    if "model" in extra:
        media: dict[str, Any] = {}
        schemas.ref(extra["model"], media)
        response["content"] = {"application/json": media}
    elif "content" in extra:
        response["content"] = extra["content"]
    return response


def _unset() -> Any:
    from levante.web.plans import UNSET

    return UNSET


def _security(plan: Plan, schemes: dict[str, Any]) -> list[dict[str, list[str]]]:
    from levante.web.security import SecurityBase

    requirements: list[dict[str, list[str]]] = []
    for call in plan.calls:
        scheme = call.original
        if isinstance(scheme, SecurityBase):
            existing = schemes.get(scheme.scheme_name)
            made = scheme.openapi_scheme()
            if existing is not None and existing != made:
                raise ValueError(
                    f"two security schemes are named {scheme.scheme_name!r} "
                    f"(in {handler_name(plan.handler)}); give one a scheme_name"
                )
            schemes[scheme.scheme_name] = made
            requirement = {scheme.scheme_name: list(call.scopes)}
            if requirement not in requirements:
                requirements.append(requirement)
    return requirements
