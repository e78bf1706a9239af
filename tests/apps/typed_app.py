"""An example API with typed handlers: what the OpenAPI, AsyncAPI, schemathesis and
browser tests read. Served by `levante tests.apps.typed_app:app`."""

# No `from __future__ import annotations`: handlers are read from real annotations.

import asyncio
import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import msgspec
import pydantic

from levante.web import (
    App,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    JSONResponse,
    Path,
    Query,
    Router,
    Security,
    SecurityScopes,
    UploadFile,
    WebSocket,
)
from levante.web.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
    OAuth2PasswordRequestForm,
)
from levante.web.sse import EventSourceResponse, ServerSentEvent


class Size(enum.Enum):
    small = "small"
    large = "large"


class Item(msgspec.Struct):
    """An item for sale."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    price: Annotated[float, msgspec.Meta(gt=0, lt=1_000_000)]
    size: Size = Size.small
    tags: list[Annotated[str, msgspec.Meta(max_length=20)]] = []


class StoredItem(msgspec.Struct):
    id: int
    name: str
    price: float
    size: Size
    tags: list[str]


class User(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1, max_length=40)
    age: int = pydantic.Field(ge=0, le=150)


class Message(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(max_length=200)]


class Token(msgspec.Struct):
    access_token: str
    token_type: str


class NotFound(msgspec.Struct):
    detail: str


bearer = HTTPBearer(description="Any non-empty token")
api_key = APIKeyHeader(name="X-API-Key")
basic = HTTPBasic(realm="example")
oauth2 = OAuth2PasswordBearer("/token", scopes={"items:read": "Read items"})

ITEMS: dict[int, StoredItem] = {
    1: StoredItem(id=1, name="pen", price=1.5, size=Size.small, tags=["office"]),
}


#: The one token, key and password this example accepts.
TOKEN, API_KEY, PASSWORD = "test", "key", "secret"


def verified_token(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> str:
    if credentials.credentials != TOKEN:
        raise HTTPException(401, "invalid token", headers={"www-authenticate": "Bearer"})
    return credentials.credentials


def verified_key(key: Annotated[str, Depends(api_key)]) -> str:
    if key != API_KEY:
        raise HTTPException(403, "invalid API key")
    return key


def verified_login(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
    if credentials.password != PASSWORD:
        raise HTTPException(
            401, "invalid login", headers={"www-authenticate": 'Basic realm="example"'}
        )
    return credentials.username


def pagination(
    offset: Annotated[int, Query(ge=0, le=10_000, description="Items to skip", examples=[20])] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> tuple[int, int]:
    return offset, limit


app = App(
    title="Example API",
    version="1.2.3",
    description="An example of typed handlers.",
    openapi_tags=[{"name": "items", "description": "Things for sale"}],
)
items = Router()


@items.get("/items", tags=["items"])
async def list_items(
    page: Annotated[tuple[int, int], Depends(pagination)],
    size: Size | None = None,
    q: Annotated[str | None, Query(max_length=50)] = None,
) -> list[StoredItem]:
    """List the items.

    Filter by size and by a text in the name."""
    offset, limit = page
    found = [i for i in ITEMS.values() if size is None or i.size == size]
    found = [i for i in found if q is None or q in i.name]
    return found[offset : offset + limit]


@items.get("/items/{item_id}", tags=["items"], responses={404: {"model": NotFound}})
async def get_item(item_id: Annotated[int, Path(ge=1, le=1_000_000)]) -> StoredItem | JSONResponse:
    """Get one item."""
    if item_id not in ITEMS:
        return JSONResponse({"detail": "no such item"}, 404)
    return ITEMS[item_id]


@items.post("/items", tags=["items"], status_code=201)
async def create_item(item: Item, _: Annotated[str, Depends(verified_token)]) -> StoredItem:
    """Create an item (needs a bearer token)."""
    stored = StoredItem(
        id=len(ITEMS) + 1, name=item.name, price=item.price, size=item.size, tags=item.tags
    )
    return stored


app.include_router(items)


@app.get("/search")
def search(
    term: Annotated[str, Query(min_length=1, max_length=30)],
    when: datetime.date | None = None,
    ident: uuid.UUID | None = None,
    mode: Literal["exact", "fuzzy"] = "exact",
    user_agent: Annotated[str | None, Header(max_length=200)] = None,
    session: Annotated[str | None, Cookie(max_length=64)] = None,
) -> dict[str, str | None]:
    """Search with every kind of parameter."""
    return {
        "term": term,
        "when": None if when is None else when.isoformat(),
        "ident": None if ident is None else str(ident),
        "mode": mode,
        "agent": user_agent,
        "session": session,
    }


@app.post("/users")
async def create_user(user: User, note: Annotated[str, Body(max_length=100)] = "") -> User:
    """Create a user (a pydantic model, with a note beside it)."""
    return user


@app.post("/upload")
async def upload(
    file: Annotated[UploadFile, File(description="Any file")],
    title: Annotated[str, Form(max_length=50)] = "",
) -> dict[str, str | int]:
    """Upload one file with a title."""
    data = await file.read()
    return {"title": title, "filename": file.filename or "", "size": len(data)}


@app.post(
    "/token",
    responses={
        400: {
            "description": "Wrong user name or password",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """Log in with the OAuth2 password flow."""
    if form.password != PASSWORD:
        raise HTTPException(400, "wrong user name or password")
    return Token(access_token=f"token-{form.username}", token_type="bearer")


def scoped_user(scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]) -> str:
    if not token.startswith("token-"):
        raise HTTPException(401, "invalid token", headers={"www-authenticate": "Bearer"})
    return f"{token} with {scopes.scope_str}"


@app.get("/me")
async def me(user: Annotated[str, Security(scoped_user, scopes=["items:read"])]) -> dict[str, str]:
    """Who holds the OAuth2 token."""
    return {"user": user}


@app.get("/admin", deprecated=True)
async def admin(
    user: Annotated[str, Depends(verified_login)], key: Annotated[str, Depends(verified_key)]
) -> dict[str, str]:
    """An old admin page (HTTP Basic and an API key)."""
    return {"user": user}


@app.get("/hidden", include_in_schema=False)
async def hidden() -> str:
    return "not documented"


@app.websocket("/chat/{room}", messages={"receive": Message, "send": Message})
async def chat(websocket: WebSocket, room: str) -> None:
    """Chat in a room: every message is echoed back."""
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


@app.get("/ticks")
async def ticks() -> EventSourceResponse:
    """Three ticks as Server-Sent Events."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        for n in range(3):
            yield ServerSentEvent(data=str(n), id=str(n))
            await asyncio.sleep(0)

    return EventSourceResponse(events())
