"""Where a handler parameter comes from, and what it must satisfy.

Used in `Annotated` (``q: Annotated[int, Query(ge=1)] = 10``) or as the default
(``q: int = Query(10, ge=1)``), with FastAPI's names and meanings. The
constraints become `msgspec.Meta` on the parameter's type, so they are checked by
the same validator as the type, and appear in the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import msgspec

#: The default of a parameter that has none: it is required.
Required: Any = ...

_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern")
_DOCS = ("title", "description", "examples")


class Param:
    """Base of the parameter markers. `location` says where the value is read."""

    location: ClassVar[str] = ""

    def __init__(
        self,
        default: Any = Required,
        *,
        default_factory: Callable[[], Any] | None = None,
        alias: str | None = None,
        title: str | None = None,
        description: str | None = None,
        examples: Sequence[Any] | None = None,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        multiple_of: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        deprecated: bool | None = None,
        include_in_schema: bool = True,
    ) -> None:
        if default is not Required and default_factory is not None:
            raise TypeError("give a parameter either a default or a default_factory, not both")
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.title = title
        self.description = description
        self.examples = list(examples) if examples is not None else None
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le
        self.multiple_of = multiple_of
        self.min_length, self.max_length = min_length, max_length
        self.pattern = pattern
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema

    @property
    def required(self) -> bool:
        return self.default is Required and self.default_factory is None

    def meta(self) -> msgspec.Meta | None:
        """The constraints and docs as `msgspec.Meta`, or None when there are none."""
        options = {name: getattr(self, name) for name in _CONSTRAINTS + _DOCS}
        options = {name: value for name, value in options.items() if value is not None}
        return msgspec.Meta(**options) if options else None

    def __repr__(self) -> str:
        default = "" if self.default is Required else repr(self.default)
        return f"{type(self).__name__}({default})"


class Path(Param):
    """A path parameter: ``/items/{item_id}`` with ``item_id: Annotated[int, Path(ge=1)]``.
    Always required."""

    location = "path"


class Query(Param):
    """A query parameter; a `list[...]` type reads every repeated value."""

    location = "query"


class Header(Param):
    """A request header. By default ``user_agent`` reads ``user-agent``
    (`convert_underscores`); header names are matched without regard to case."""

    location = "header"

    def __init__(
        self, default: Any = Required, *, convert_underscores: bool = True, **options: Any
    ) -> None:
        super().__init__(default, **options)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    """A cookie, by name."""

    location = "cookie"


class Body(Param):
    """A part of the JSON body. A single body parameter is the whole body unless
    ``embed=True``; several are read as the members of one JSON object, by name."""

    location = "body"

    def __init__(
        self,
        default: Any = Required,
        *,
        embed: bool = False,
        media_type: str = "application/json",
        **options: Any,
    ) -> None:
        super().__init__(default, **options)
        self.embed = embed
        self.media_type = media_type


class Form(Body):
    """A field of an ``application/x-www-form-urlencoded`` or ``multipart/form-data``
    body. A model type (Struct, dataclass, TypedDict) reads the whole form."""

    location = "form"

    def __init__(
        self,
        default: Any = Required,
        *,
        media_type: str = "application/x-www-form-urlencoded",
        **options: Any,
    ) -> None:
        super().__init__(default, embed=True, media_type=media_type, **options)


class File(Form):
    """An uploaded file of a ``multipart/form-data`` body: type it `UploadFile`,
    `bytes`, or a list of either for several files under one name."""

    location = "file"

    def __init__(
        self, default: Any = Required, *, media_type: str = "multipart/form-data", **options: Any
    ) -> None:
        super().__init__(default, media_type=media_type, **options)
