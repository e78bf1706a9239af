"""Default limits and timeouts, each with the precedent it follows.

`Config` uses these as its defaults; every one is also a CLI flag.
"""

from __future__ import annotations

#: Longest request line (method, target, version). nginx answers 414 past its
#: 8 KiB `large_client_header_buffers`; gunicorn's `limit_request_line` is 4094.
MAX_REQUEST_LINE = 8190

#: Most header fields in one request (gunicorn `limit_request_fields`: 100;
#: Node's `maxHeadersCount` is 2000 but Node also caps the total size).
MAX_REQUEST_FIELDS = 100

#: Longest single header field, name and value (nginx 8 KiB per line,
#: gunicorn `limit_request_field_size` 8190).
MAX_REQUEST_FIELD_SIZE = 8190

#: Total size of the request head: request line plus all fields. nginx allows
#: 4 x 8 KiB buffers; Node's `maxHeaderSize` is 16 KiB, which large cookie sets
#: outgrow. Also bounds what is buffered before the head is complete (h11's
#: `max_incomplete_event_size` plays this role).
MAX_REQUEST_HEAD = 32 * 1024

#: Largest request body: generous but finite, so a big upload works while a
#: runaway client cannot stream forever (nginx's 1 MiB default is too small for
#: APIs; Cloudflare's smallest plan allows 100 MB).
MAX_REQUEST_BODY = 1024 * 1024 * 1024

#: Request body bytes buffered for the app before reading from the socket
#: pauses (uvicorn's flow control high-water mark is 64 KiB).
REQUEST_BUFFER = 64 * 1024

#: Seconds an idle keep-alive connection stays open (uvicorn: 5; nginx: 75).
KEEP_ALIVE_TIMEOUT = 5.0

#: Seconds a client has to send a complete request head, against slowloris
#: (Apache mod_reqtimeout `header=20-40`; Node's `headersTimeout` is 60).
REQUEST_HEADER_TIMEOUT = 20.0

#: Seconds in-flight requests get to finish on shutdown (gunicorn's
#: `graceful_timeout` is 30; Kubernetes waits 30 s before SIGKILL).
GRACEFUL_SHUTDOWN_TIMEOUT = 30.0

#: Listen backlog (uvicorn and gunicorn: 2048).
BACKLOG = 2048

#: Seconds to drain unread request bytes after answering with an error or an
#: early response, before closing (nginx `lingering_timeout`: 5 s).
LINGER_TIMEOUT = 5.0

#: Largest WebSocket message (uvicorn's `--ws-max-size` default: 16 MiB).
WS_MAX_SIZE = 16 * 1024 * 1024

#: WebSocket messages queued for the app before reading pauses (uvicorn: 32).
WS_MAX_QUEUE = 32

#: Seconds between WebSocket keep-alive pings, and how long a silent peer is
#: kept after one (uvicorn and the websockets library: 20 and 20).
WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0

#: Seconds to wait for the peer's close frame after sending ours (the
#: websockets library's `close_timeout`: 10).
WS_CLOSE_TIMEOUT = 10.0

#: A worker whose event loop has not ticked for this long is replaced. Its tick
#: runs every second; uvicorn waits 5 s, gunicorn's --timeout is 30 s: 10 s leaves
#: room for a busy loop without keeping a stuck worker long.
WORKER_HEALTHCHECK_TIMEOUT = 10.0

#: On shutdown, a connection accepted just before the listener closed gets this many
#: seconds (plus up to one tick) to send its first request; a client sends it at once.
SHUTDOWN_FIRST_REQUEST = 2.0

#: Concurrent HTTP/2 streams a client may open on one connection (hypercorn and
#: h2o: 100, nginx: 128, Go: 250). Past it: RST_STREAM(REFUSED_STREAM).
H2_MAX_CONCURRENT_STREAMS = 100

#: Streams a client may reset before their response ended, per `H2_RESET_WINDOW`
#: seconds, before GOAWAY(ENHANCE_YOUR_CALM): the "rapid reset" attack
#: (CVE-2023-44487) opens and cancels streams to run app calls without bound.
#: Netty's fix allows 200 in 30 s; a browser cancels a few per page.
H2_MAX_RESET_STREAMS = 200
H2_RESET_WINDOW = 30.0

#: SETTINGS, PING, PRIORITY and empty DATA frames a client may send per
#: `H2_CONTROL_WINDOW` seconds (each costs work and carries no request: the
#: 2019 "ping flood", "settings flood", "empty frames" attacks). A client pings
#: every few seconds at most.
H2_MAX_CONTROL_FRAMES = 1000
H2_CONTROL_WINDOW = 10.0

#: CONTINUATION frames in one header block (the 2024 "CONTINUATION flood"
#: sends endless small or empty ones); the block's size is bounded by
#: --limit-request-head too.
H2_MAX_CONTINUATIONS = 64

#: The young-generation threshold of CPython's cyclic garbage collector while serving
#: (the interpreter's default is 700 on 3.11 and 3.12). Each request in flight holds
#: about ten tracked objects (scope, stream, task, coroutine...), so a few hundred
#: connections answered in one loop pass reach 700 several times over: every
#: collection then walks all of them and moves them to the older generations, which
#: are walked again later. Measured here, 256 connections served ~10% more requests
#: per second at 7000. Unreachable garbage waits for up to that many allocations.
GC_THRESHOLD = 7000

#: A response body (or WebSocket payload) larger than this is handed to the transport
#: as its own buffer instead of being joined to its head (a copy of it).
WRITE_JOIN_LIMIT = 16 * 1024
