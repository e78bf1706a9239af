"""A Flask (WSGI) app for `--interface wsgi`: a GET, a POST form, a streamed response."""

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index() -> dict[str, str]:
    return {"hello": request.args.get("name", "world")}


@app.post("/form")
def form() -> dict[str, object]:
    return {
        "name": request.form["name"],
        "tags": request.form.getlist("tag"),
    }


@app.get("/stream")
def stream() -> Response:
    count = int(request.args.get("count", "3"))

    def parts():  # type: ignore[no-untyped-def]
        for n in range(count):
            yield f"part {n}\n"

    return Response(stream_with_context(parts()), mimetype="text/plain")


@app.post("/echo")
def echo() -> Response:
    return Response(request.stream.read(), mimetype="application/octet-stream")


@app.get("/hang")
def hang() -> str:
    """A WSGI call that never ends in time (its thread outlives the server)."""
    import os
    import time

    marks = os.environ.get("LEVANTE_TEST_MARKS")
    if marks:
        open(os.path.join(marks, "hanging"), "w").close()
    time.sleep(120)
    return "late"
