"""Jinja2 templates rendered into HTML responses.

jinja2 is optional (``pip install 'levante[templates]'``): it is imported when a
`Jinja2Templates` is created, not when this module is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from levante.asgi import AnyScope, Receive, Send
from levante.web.background import BackgroundTask
from levante.web.responses import HTMLResponse

if TYPE_CHECKING:
    import jinja2

#: Extensions rendered without autoescaping: plain text (mails, robots.txt) where
#: ``&amp;`` would be wrong. Everything else is escaped, HTML and XML included.
PLAIN_TEXT_EXTENSIONS = ("txt", "text")

#: The ASGI extension through which the test client learns the template and context.
DEBUG_EXTENSION = "http.response.debug"

_INSTALL_HINT = "Jinja2Templates needs jinja2: pip install 'levante[templates]'"

Directory: TypeAlias = "str | os.PathLike[str] | Sequence[str | os.PathLike[str]]"
ContextProcessor: TypeAlias = Callable[[Any], Mapping[str, Any]]
"""Called with the request; returns values added to every template's context."""


def _import_jinja2() -> Any:
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return jinja2


class _TemplateResponse(HTMLResponse):
    """An HTML response rendered from `template`; keeps `template` and `context`."""

    def __init__(
        self,
        template: jinja2.Template,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.template = template
        self.context = context
        super().__init__(template.render(context), status_code, headers, media_type, background)

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if DEBUG_EXTENSION in (scope.get("extensions") or {}):
            info = {"template": self.template, "context": self.context}
            await send({"type": DEBUG_EXTENSION, "info": info})
        await super().__call__(scope, receive, send)


class Jinja2Templates:
    """Templates from `directory` (or a ready jinja2 `env`), rendered to responses.

    Templates get the `request` and a ``url_for(name, **params)`` function that
    calls ``request.url_for``. Each of `context_processors` is called with the
    request and its result added to the context (values passed to
    `TemplateResponse` win). Autoescaping is on except for ``.txt`` templates.
    """

    def __init__(
        self,
        directory: Directory | None = None,
        *,
        context_processors: Sequence[ContextProcessor] | None = None,
        env: jinja2.Environment | None = None,
    ) -> None:
        if (directory is None) == (env is None):
            raise ValueError("Jinja2Templates takes exactly one of `directory` and `env`")
        jinja = _import_jinja2()
        self.context_processors = list(context_processors or ())
        self.env = env if env is not None else self._create_env(jinja, directory)
        self.env.globals.setdefault("url_for", jinja.pass_context(_url_for))

    @staticmethod
    def _create_env(jinja: Any, directory: Directory | None) -> jinja2.Environment:
        autoescape = jinja.select_autoescape(
            disabled_extensions=PLAIN_TEXT_EXTENSIONS, default=True, default_for_string=True
        )
        env: jinja2.Environment = jinja.Environment(
            loader=jinja.FileSystemLoader(directory), autoescape=autoescape
        )
        return env

    def get_template(self, name: str) -> jinja2.Template:
        """The template called `name`."""
        return self.env.get_template(name)

    def TemplateResponse(  # Starlette's name for it
        self,
        request: Any,
        name: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> _TemplateResponse:
        """Render template `name` with `context` (plus the request) into an HTML response."""
        if isinstance(request, str):
            raise TypeError(
                "TemplateResponse takes the request first: "
                f"TemplateResponse(request, {request!r}, context), as Starlette does now"
            )
        full_context = self._context(request, context)
        template = self.get_template(name)
        return _TemplateResponse(
            template, full_context, status_code, headers, media_type, background
        )

    def _context(self, request: Any, context: Mapping[str, Any] | None) -> dict[str, Any]:
        full: dict[str, Any] = {"request": request}
        for processor in self.context_processors:
            full.update(processor(request))
        full.update(context or {})
        return full


def _url_for(context: Any, name: str, /, **path_params: Any) -> Any:
    # Duck-typed: anything with `url_for` will do, so no import of Request here.
    return context["request"].url_for(name, **path_params)
