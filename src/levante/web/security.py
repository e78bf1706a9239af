"""Security schemes as dependencies: HTTP Bearer and Basic, API keys, OAuth2 password.

Each scheme is a callable object used with `Depends` (or `Security`, to require
OAuth2 scopes). It reads the credentials from the request and answers 401 (or 403
for an API key, as FastAPI does) when they are missing or malformed, unless made
with ``auto_error=False``, in which case the handler gets None. Checking that the
credentials are *right* is the app's job, in a dependency of its own. Each
scheme also describes itself for OpenAPI (`openapi_scheme`), so the documents
list the schemes the routes use.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

from levante.web.exceptions import HTTPException
from levante.web.requests import Request

__all__ = [
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "HTTPAuthorizationCredentials",
    "HTTPBasic",
    "HTTPBasicCredentials",
    "HTTPBearer",
    "OAuth2PasswordBearer",
    "OAuth2PasswordRequestForm",
    "SecurityBase",
]


class SecurityBase:
    """A security scheme: `scheme_name` names it in OpenAPI's ``components.securitySchemes``."""

    scheme_name: str
    description: str | None
    auto_error: bool

    def openapi_scheme(self) -> dict[str, Any]:
        raise NotImplementedError


def _unauthorized(detail: str, challenge: str) -> HTTPException:
    # RFC 9110 §11.6.1: a 401 carries a WWW-Authenticate challenge.
    return HTTPException(401, detail, headers={"www-authenticate": challenge})


def _authorization(
    request: Request, scheme: str, challenge: str, auto_error: bool
) -> tuple[str, str] | None:
    """``Authorization: <scheme> <credentials>`` split (scheme matched without regard
    to case, RFC 9110 §11.1); otherwise 401 with `challenge`, or None."""
    header = request.headers.get("authorization") or ""
    given, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if given.lower() == scheme and credentials:
        return given, credentials
    if auto_error:
        raise _unauthorized("Not authenticated", challenge)
    return None


# -- HTTP authentication (RFC 9110 §11) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class HTTPAuthorizationCredentials:
    """The ``Authorization`` header split: ``Bearer abc`` → `scheme` ``Bearer``,
    `credentials` ``abc``."""

    scheme: str
    credentials: str


@dataclass(frozen=True, slots=True)
class HTTPBasicCredentials:
    """A user name and password from ``Authorization: Basic`` (RFC 7617)."""

    username: str
    password: str


class HTTPBearer(SecurityBase):
    """``Authorization: Bearer <token>`` (RFC 6750): gives `HTTPAuthorizationCredentials`."""

    def __init__(
        self,
        *,
        bearer_format: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        self.bearer_format = bearer_format
        self.scheme_name = scheme_name or type(self).__name__
        self.description = description
        self.auto_error = auto_error

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        parts = _authorization(request, "bearer", "Bearer", self.auto_error)
        if parts is None:
            return None
        return HTTPAuthorizationCredentials(scheme=parts[0], credentials=parts[1])

    def openapi_scheme(self) -> dict[str, Any]:
        scheme: dict[str, Any] = {"type": "http", "scheme": "bearer"}
        if self.bearer_format:
            scheme["bearerFormat"] = self.bearer_format
        return _described(scheme, self.description)


class HTTPBasic(SecurityBase):
    """``Authorization: Basic`` (RFC 7617): gives `HTTPBasicCredentials`. A 401 asks
    the browser for a login with ``realm``."""

    def __init__(
        self,
        *,
        realm: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        self.realm = realm
        self.scheme_name = scheme_name or type(self).__name__
        self.description = description
        self.auto_error = auto_error

    @property
    def _challenge(self) -> str:
        return f'Basic realm="{self.realm}"' if self.realm else "Basic"

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:
        parts = _authorization(request, "basic", self._challenge, self.auto_error)
        if parts is None:
            return None
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("Invalid authentication credentials", self._challenge) from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise _unauthorized("Invalid authentication credentials", self._challenge)
        return HTTPBasicCredentials(username=username, password=password)

    def openapi_scheme(self) -> dict[str, Any]:
        return _described({"type": "http", "scheme": "basic"}, self.description)


# -- API keys ------------------------------------------------------------------------


class _APIKey(SecurityBase):
    location: Literal["header", "query", "cookie"]

    def __init__(
        self,
        *,
        name: str,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        self.name = name
        self.scheme_name = scheme_name or type(self).__name__
        self.description = description
        self.auto_error = auto_error

    def _read(self, request: Request) -> str | None:
        raise NotImplementedError

    async def __call__(self, request: Request) -> str | None:
        key = self._read(request)
        if not key:
            if self.auto_error:
                raise HTTPException(403, "Not authenticated")
            return None
        return key

    def openapi_scheme(self) -> dict[str, Any]:
        scheme = {"type": "apiKey", "name": self.name, "in": self.location}
        return _described(scheme, self.description)


class APIKeyHeader(_APIKey):
    """An API key in the header `name` (``APIKeyHeader(name="X-API-Key")``)."""

    location = "header"

    def _read(self, request: Request) -> str | None:
        value: str | None = request.headers.get(self.name)
        return value


class APIKeyQuery(_APIKey):
    """An API key in the query parameter `name`."""

    location = "query"

    def _read(self, request: Request) -> str | None:
        return request.query_params.get(self.name)


class APIKeyCookie(_APIKey):
    """An API key in the cookie `name`."""

    location = "cookie"

    def _read(self, request: Request) -> str | None:
        return request.cookies.get(self.name)


# -- OAuth2 --------------------------------------------------------------------------


class OAuth2PasswordBearer(SecurityBase):
    """OAuth2 password flow (RFC 6749 §4.3): the client posts a user name and
    password to `token_url` and sends the token it got as ``Authorization: Bearer``.
    Gives the token string. `scopes` documents the scopes the app knows."""

    def __init__(
        self,
        token_url: str,
        *,
        scheme_name: str | None = None,
        scopes: dict[str, str] | None = None,
        description: str | None = None,
        auto_error: bool = True,
        refresh_url: str | None = None,
    ) -> None:
        self.token_url = token_url
        self.refresh_url = refresh_url
        self.scopes = dict(scopes or {})
        self.scheme_name = scheme_name or type(self).__name__
        self.description = description
        self.auto_error = auto_error

    async def __call__(self, request: Request) -> str | None:
        parts = _authorization(request, "bearer", "Bearer", self.auto_error)
        return None if parts is None else parts[1]

    def openapi_scheme(self) -> dict[str, Any]:
        flow: dict[str, Any] = {"tokenUrl": self.token_url, "scopes": self.scopes}
        if self.refresh_url:
            flow["refreshUrl"] = self.refresh_url
        return _described({"type": "oauth2", "flows": {"password": flow}}, self.description)


class OAuth2PasswordRequestForm:
    """The form a client posts to the token URL (RFC 6749 §4.3.2): use it as
    ``form: Annotated[OAuth2PasswordRequestForm, Depends()]``. ``scope`` is split
    into `scopes`."""

    def __init__(
        self,
        username: str,
        password: str,
        grant_type: str | None = None,
        scope: str = "",
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        if grant_type is not None and grant_type != "password":
            raise HTTPException(400, "grant_type must be 'password'")
        self.grant_type = grant_type
        self.username = username
        self.password = password
        self.scopes = scope.split()
        self.client_id = client_id
        self.client_secret = client_secret


def _form_signature() -> Any:
    """`OAuth2PasswordRequestForm`'s parameters read from the form body."""
    import inspect
    from typing import Annotated

    from levante.web.params import Form

    fields = [
        ("username", str, inspect.Parameter.empty),
        ("password", str, inspect.Parameter.empty),
        ("grant_type", str | None, None),
        ("scope", str, ""),
        ("client_id", str | None, None),
        ("client_secret", str | None, None),
    ]
    return inspect.Signature(
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[tp, Form()],
            )
            for name, tp, default in fields
        ]
    )


OAuth2PasswordRequestForm.__signature__ = _form_signature()  # type: ignore[attr-defined]


def _described(scheme: dict[str, Any], description: str | None) -> dict[str, Any]:
    if description:
        scheme["description"] = description
    return scheme
