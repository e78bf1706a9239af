"""An SSE demo for the browser test: a page whose `EventSource` reconnects with
``Last-Event-ID`` after the server ends the stream.

- ``GET /`` is a page that opens ``new EventSource('/events')`` and records each
  message's ``data`` and ``lastEventId`` in ``window.received`` and in a list.
- ``GET /events`` without ``Last-Event-ID`` sends events 1 to 3 with
  ``retry: 100`` and ends the stream; the browser reconnects 100 ms later sending
  ``Last-Event-ID: 3``. Then the endpoint sends the events after that id (one,
  "resumed from 3") and stays open, pinging, until the client goes away.

`make_app()` returns the app; `app.state.last_event_ids` lists the header each
``/events`` request came with (None when absent), in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from levante.web import App, HTMLResponse, Request
from levante.web.sse import EventSourceResponse, ServerSentEvent, last_event_id

#: Reconnection delay the stream asks for (ms): short, so the test is quick.
RETRY_MS = 100
FIRST_BATCH = 3

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>SSE demo</title></head>
<body>
<h1>Events</h1>
<ol id="log"></ol>
<script>
window.received = [];
window.errors = 0;
const source = new EventSource("/events");
source.onmessage = (event) => {
  window.received.push({data: event.data, id: event.lastEventId});
  const item = document.createElement("li");
  item.textContent = `${event.lastEventId}: ${event.data}`;
  document.getElementById("log").append(item);
};
source.onerror = () => { window.errors += 1; };
</script>
</body>
</html>
"""


async def first_batch() -> AsyncIterator[ServerSentEvent]:
    for n in range(1, FIRST_BATCH + 1):
        yield ServerSentEvent(f"event {n}", id=str(n), retry=RETRY_MS if n == 1 else None)


async def resumed(last: str) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(f"resumed from {last}", id=str(int(last) + 1))
    # Stay open, pinging, until the client leaves, so the browser does not
    # reconnect again.
    await asyncio.Event().wait()


def make_app() -> App[None]:
    app: App[None] = App()
    app.state.last_event_ids = []

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        last = last_event_id(request)
        app.state.last_event_ids.append(last)
        source = first_batch() if last is None else resumed(last)
        return EventSourceResponse(source, ping_interval=1.0)

    return app


app = make_app()
