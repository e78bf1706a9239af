"""Path templates: ``/users/{id:int}/files/{rest:path}`` parsed once into segments.

A template is a list of segments (the text between slashes). Each segment is a
literal, a single parameter, a pattern mixing text and parameters
(``{name}.{ext}``), or, last, a ``path`` parameter taking the rest of the path.
The router builds its trie from these; `format` builds URLs back from them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from levante.native import chained, mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)
class Convertor:
    """Turns a path segment into a value and back; `regex` says what it accepts."""

    regex: ClassVar[str] = ""

    def convert(self, value: str) -> Any:
        return value

    def to_string(self, value: Any) -> str:
        return str(value)


@mypyc_attr(allow_interpreted_subclasses=True)
class StringConvertor(Convertor):
    regex = "[^/]+"

    def to_string(self, value: Any) -> str:
        text = str(value)
        if "/" in text or not text:
            raise ValueError(f"a str path parameter cannot be empty or contain '/': {text!r}")
        return text


@mypyc_attr(allow_interpreted_subclasses=True)
class PathConvertor(Convertor):
    regex = ".*"


@mypyc_attr(allow_interpreted_subclasses=True)
class IntegerConvertor(Convertor):
    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: Any) -> str:
        number = int(value)
        if number < 0:
            raise ValueError(f"an int path parameter cannot be negative: {number}")
        return str(number)


@mypyc_attr(allow_interpreted_subclasses=True)
class FloatConvertor(Convertor):
    regex = r"[0-9]+(?:\.[0-9]+)?"

    def convert(self, value: str) -> float:
        return float(value)

    def to_string(self, value: Any) -> str:
        number = float(value)
        if number < 0 or not math.isfinite(number):
            raise ValueError(f"a float path parameter must be finite and not negative: {number}")
        return (f"{number:0.20f}").rstrip("0").rstrip(".")


@mypyc_attr(allow_interpreted_subclasses=True)
class UUIDConvertor(Convertor):
    regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)


CONVERTORS: Final[dict[str, Convertor]] = {
    "str": StringConvertor(),
    "path": PathConvertor(),
    "int": IntegerConvertor(),
    "float": FloatConvertor(),
    "uuid": UUIDConvertor(),
}

#: The order in which parameter segments are tried at one position: the narrower
#: first, so ``/items/{id:int}`` wins over ``/items/{slug}`` for ``/items/42``.
PRIORITY: Final = {"int": 0, "float": 1, "uuid": 2}
DEFAULT_PRIORITY: Final = 5
STR_PRIORITY: Final = 10


def register_convertor(name: str, convertor: Convertor) -> None:
    """Make ``{param:name}`` available in path templates."""
    CONVERTORS[name] = convertor


_PARAM: Final = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")


@mypyc_attr(allow_interpreted_subclasses=True)
class TemplateError(ValueError):
    """A path template cannot be parsed; the message names the template."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    convertor: Convertor
    kind: str
    #: The text in the template, ``{id:int}`` or ``{name}`` or ``{name:str}``,
    #: which `format` replaces.
    spec: str


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a template. `key` identifies it in the trie: two templates
    whose segments have equal keys match the same paths there."""

    text: str
    params: tuple[Param, ...]
    key: str
    regex: re.Pattern[str] | None
    is_tail: bool = False

    @property
    def is_literal(self) -> bool:
        return not self.params

    @property
    def priority(self) -> int:
        if len(self.params) != 1 or self.regex is not None:
            return 3  # text and parameters mixed: narrower than a bare str
        kind = self.params[0].kind
        return STR_PRIORITY if kind == "str" else PRIORITY.get(kind, DEFAULT_PRIORITY)

    def match(self, text: str) -> list[str] | None:
        if self.regex is None:
            return [text] if text else None
        found = self.regex.fullmatch(text)
        return None if found is None else list(found.groups())


def _segment(text: str, template: str, last: bool) -> Segment:
    params: list[Param] = []
    pattern = ""
    key = ""
    position = 0
    for found in _PARAM.finditer(text):
        name, kind = found.group(1), found.group(2) or "str"
        if kind not in CONVERTORS:
            raise TemplateError(f"unknown convertor {kind!r} in path {template!r}")
        literal = text[position : found.start()]
        pattern += re.escape(literal) + f"({CONVERTORS[kind].regex})"
        key += literal + "{" + kind + "}"
        params.append(Param(name, CONVERTORS[kind], kind, found.group(0)))
        position = found.end()
    if "{" in text[position:] or "}" in text[position:]:
        raise TemplateError(f"malformed parameter in path {template!r}: segment {text!r}")
    if not params:
        return Segment(text, (), text, None)
    pattern += re.escape(text[position:])
    key += text[position:]
    if any(p.kind == "path" for p in params):
        if not last or len(params) != 1 or key != "{path}":
            raise TemplateError(
                f"a {{name:path}} parameter must be a whole segment at the end of {template!r}"
            )
        return Segment(text, tuple(params), key, None, is_tail=True)
    simple = len(params) == 1 and key == "{" + params[0].kind + "}"
    if simple and params[0].kind == "str":
        return Segment(text, tuple(params), key, None)
    return Segment(text, tuple(params), key, re.compile(pattern))


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A parsed path template."""

    path: str
    segments: tuple[Segment, ...]

    @property
    def params(self) -> list[Param]:
        return [p for s in self.segments for p in s.params]

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def is_static(self) -> bool:
        return all(s.is_literal for s in self.segments)

    @property
    def shape(self) -> str:
        """The template with parameter names erased: equal shapes match equal paths."""
        return "/" + "/".join(s.key for s in self.segments)

    def convert(self, raw: list[str]) -> dict[str, Any]:
        return {p.name: p.convertor.convert(v) for p, v in zip(self.params, raw, strict=True)}

    def format(self, values: Mapping[str, Any]) -> str:
        """The path for these parameter values (each converted back to text)."""
        parts = []
        for segment in self.segments:
            text = segment.text
            for param in segment.params:
                text = text.replace(param.spec, param.convertor.to_string(values[param.name]), 1)
            parts.append(text)
        return "/" + "/".join(parts)


def compile_path(path: str) -> PathTemplate:
    """Parse a template. It must start with ``/`` (the empty string is allowed for
    mounts at the root) and name each parameter once."""
    if path and not path.startswith("/"):
        raise TemplateError(f"paths must start with '/': {path!r}")
    texts = path[1:].split("/") if path else []
    segments = tuple(_segment(t, path, i == len(texts) - 1) for i, t in enumerate(texts))
    names = [p.name for s in segments for p in s.params]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise TemplateError(f"path {path!r} names parameter(s) {sorted(duplicated)} twice")
    return PathTemplate(path, segments)


#: A ``str`` parameter in a host pattern is one DNS label: no dots, no port.
_HOST_LABEL: Final = r"[^/.:]+"


@dataclass(frozen=True, slots=True)
class HostTemplate:
    """A parsed host pattern, ``{tenant}.example.com`` or ``{id:int}.example.com``."""

    host: str
    regex: re.Pattern[str]
    params: tuple[Param, ...]

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def match(self, host: str) -> dict[str, Any] | None:
        """The converted parameters if `host` (without port) matches, else None."""
        found = self.regex.fullmatch(host)
        if found is None:
            return None
        return {p.name: p.convertor.convert(found.group(p.name)) for p in self.params}

    def format(self, values: Mapping[str, Any]) -> str:
        """The host for these parameter values (each converted back to text)."""
        host = self.host
        for param in self.params:
            host = host.replace(param.spec, param.convertor.to_string(values[param.name]), 1)
        return host


def compile_host(host: str) -> HostTemplate:
    """Parse a host pattern. Each parameter matches what its convertor's regex
    accepts, so ``{id:int}`` does not match ``abc`` (as in Starlette's `Host`)."""
    params: list[Param] = []
    pattern = ""
    position = 0
    for found in _PARAM.finditer(host):
        name, kind = found.group(1), found.group(2) or "str"
        if kind not in CONVERTORS:
            raise TemplateError(f"unknown convertor {kind!r} in host {host!r}")
        regex = _HOST_LABEL if kind == "str" else CONVERTORS[kind].regex
        # A named group: a convertor's own regex may hold groups of its own.
        pattern += re.escape(host[position : found.start()]) + f"(?P<{name}>{regex})"
        params.append(Param(name, CONVERTORS[kind], kind, found.group(0)))
        position = found.end()
    pattern += re.escape(host[position:])
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:  # a parameter named twice
        raise chained(TemplateError(f"bad host pattern {host!r}: {exc}"), None)
    return HostTemplate(host, compiled, tuple(params))
