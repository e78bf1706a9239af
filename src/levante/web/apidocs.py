"""The API documents and their pages: ``/openapi.json``, ``/asyncapi.json``,
Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

The pages load their scripts and styles from the app itself (the files of the
``openapi-ui-bundles`` package, served under ``<page>/assets``), never from a
CDN: the documentation works on a machine with no internet access.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from levante.web.requests import Request
from levante.web.responses import HTMLResponse, JSONResponse, Response

if TYPE_CHECKING:
    from levante.web.app import App


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def swagger_ui_page(title: str, openapi_url: str, assets: str, oauth2_redirect: str | None) -> str:
    config: dict[str, Any] = {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "layout": "BaseLayout",
        "showExtensions": True,
    }
    if oauth2_redirect:
        config["oauth2RedirectUrl"] = oauth2_redirect
    # json.dumps of the config, with "<" escaped so that no value can end the <script>.
    options = json.dumps(config).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - Swagger UI</title>
<link rel="stylesheet" href="{html.escape(assets)}/swagger-ui.css">
<link rel="icon" type="image/png" href="{html.escape(assets)}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{html.escape(assets)}/swagger-ui-bundle.js"></script>
<script>
const options = {options};
options.presets = [SwaggerUIBundle.presets.apis];
window.ui = SwaggerUIBundle(options);
</script>
</body>
</html>
"""


def redoc_page(title: str, openapi_url: str, assets: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - ReDoc</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{html.escape(openapi_url)}"></redoc>
<script src="{html.escape(assets)}/redoc.standalone.js"></script>
</body>
</html>
"""


def _bundle(name: str) -> str:
    """The folder of `name`'s files (``swagger_ui`` or ``redoc``) in openapi-ui-bundles."""
    import importlib

    module = importlib.import_module(f"openapi_ui_bundles.{name}")
    return str(module.static_path)


def add_documentation_routes(app: App[Any]) -> None:
    """Add the routes for the documents and pages the app was configured with
    (`openapi_url`, `asyncapi_url`, `docs_url`, `redoc_url`; None leaves one out)."""
    from levante.web.files import StaticFiles

    if app.openapi_url:

        async def openapi(request: Request) -> Response:
            return JSONResponse(app.openapi(root_path=_root(request)))

        app.add_route(app.openapi_url, openapi, include_in_schema=False, name="openapi")
    if app.asyncapi_url:

        async def asyncapi(request: Request) -> Response:
            document = app.asyncapi(
                host=request.headers.get("host", "localhost"),
                root_path=_root(request),
                secure=request.url.scheme in ("https", "wss"),
            )
            if document is None:
                return JSONResponse({"detail": "this app has no WebSocket or SSE routes"}, 404)
            return JSONResponse(document)

        app.add_route(app.asyncapi_url, asyncapi, include_in_schema=False, name="asyncapi")
    if app.openapi_url and app.docs_url:
        docs_url, openapi_url = app.docs_url, app.openapi_url

        async def swagger_ui(request: Request) -> Response:
            root = _root(request)
            page = swagger_ui_page(app.title, root + openapi_url, root + docs_url + "/assets", None)
            return HTMLResponse(page)

        app.add_route(docs_url, swagger_ui, include_in_schema=False, name="swagger_ui")
        app.mount(docs_url + "/assets", StaticFiles(directory=_bundle("swagger_ui")))
    if app.openapi_url and app.redoc_url:
        redoc_url, openapi_url = app.redoc_url, app.openapi_url

        async def redoc(request: Request) -> Response:
            root = _root(request)
            return HTMLResponse(
                redoc_page(app.title, root + openapi_url, root + redoc_url + "/assets")
            )

        app.add_route(redoc_url, redoc, include_in_schema=False, name="redoc")
        app.mount(redoc_url + "/assets", StaticFiles(directory=_bundle("redoc")))
