"""TLS on the listener: HTTPS with a certificate made in the test (trustme), the
ASGI `tls` scope extension with a client certificate, ALPN, and plain HTTP sent to
the TLS port answered without harming the server."""

from __future__ import annotations

import contextlib
import socket
import ssl
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from levante.server import Config
from levante.server.errors import ConfigError
from levante.server.tls import server_context
from tests.conftest import Running

Scopes = list[dict[str, Any]]


def recorder() -> tuple[Any, Scopes]:
    scopes: Scopes = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        scopes.append(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": scope["scheme"].encode()})

    return app, scopes


def tls_settings(files: dict[str, str], **more: Any) -> dict[str, Any]:
    return {"ssl_certfile": files["ssl_certfile"], "ssl_keyfile": files["ssl_keyfile"], **more}


def test_https_with_the_tls_extension_in_the_scope(
    serve: Callable[..., Running], server_files: dict[str, str], ca: trustme.CA
) -> None:
    app, scopes = recorder()
    server = serve(app, **tls_settings(server_files))
    context = ssl.create_default_context(cafile=server_files["ca"])
    with httpx.Client(verify=context) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/")
    assert (response.status_code, response.text) == (200, "https")
    scope = scopes[0]
    assert scope["scheme"] == "https"
    tls = scope["extensions"]["tls"]
    assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)


def alpn(port: int, ca: str, offered: list[str]) -> str | None:
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(offered)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.selected_alpn_protocol()


def test_alpn_offers_h2_then_http_1_1_and_tls_1_2_is_the_least(
    serve: Callable[..., Running], server_files: dict[str, str]
) -> None:
    app, _ = recorder()
    server = serve(app, **tls_settings(server_files))
    assert alpn(server.port, server_files["ca"], ["h2", "http/1.1"]) == "h2"
    assert alpn(server.port, server_files["ca"], ["http/1.1"]) == "http/1.1"
    h1_only = serve(app, http="h1", **tls_settings(server_files))
    assert alpn(h1_only.port, server_files["ca"], ["h2", "http/1.1"]) == "http/1.1"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        old.wrap_socket(raw, server_hostname="localhost")


def test_a_client_certificate_appears_in_the_scope(
    serve: Callable[..., Running], server_files: dict[str, str], ca: trustme.CA, tmp_path: Path
) -> None:
    app, scopes = recorder()
    server = serve(
        app, **tls_settings(server_files, ssl_cert_reqs=2, ssl_ca_certs=server_files["ca"])
    )
    client_cert = ca.issue_cert("alice@example.org", common_name="alice")
    combined = tmp_path / "client.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(combined))
    context = ssl.create_default_context(cafile=server_files["ca"])
    context.load_cert_chain(str(combined))
    with httpx.Client(verify=context) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").status_code == 200
    tls = scopes[0]["extensions"]["tls"]
    assert len(tls["client_cert_chain"]) == 1
    assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert "CN=alice" in tls["client_cert_name"]
    # Without a certificate the handshake is refused (required), and the server goes on.
    bare = ssl.create_default_context(cafile=server_files["ca"])
    with (
        httpx.Client(verify=bare) as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.get(f"https://127.0.0.1:{server.port}/")
    with httpx.Client(verify=context) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").status_code == 200


def test_plain_http_to_the_tls_port_is_closed_and_the_server_goes_on(
    serve: Callable[..., Running], server_files: dict[str, str]
) -> None:
    app, _ = recorder()
    server = serve(app, **tls_settings(server_files))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := raw.recv(4096):  # the server closes: recv returns b""
            data += chunk
    assert b"HTTP/1.1 200" not in data
    context = ssl.create_default_context(cafile=server_files["ca"])
    with httpx.Client(verify=context) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").text == "https"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ssl_keyfile": "key.pem"}, "--ssl-keyfile needs --ssl-certfile"),
        ({"ssl_certfile": "/nonexistent.pem"}, "cannot load"),
        ({"ssl_cert_reqs": 2}, "needs --ssl-ca-certs"),
        ({"ssl_cert_reqs": 5}, "0 \\(none\\), 1 \\(optional\\) or 2"),
        ({"ssl_ciphers": "NOT-A-CIPHER"}, "--ssl-ciphers"),
    ],
)
def test_tls_settings_that_cannot_work_are_named(
    settings: dict[str, Any], message: str, server_files: dict[str, str]
) -> None:
    base = {
        "ssl_certfile": server_files["ssl_certfile"],
        "ssl_keyfile": server_files["ssl_keyfile"],
    }
    if "ssl_keyfile" in settings and "ssl_certfile" not in settings:
        base = {}
    config = Config.resolve({**base, **settings}, environ={})
    with pytest.raises(ConfigError, match=message):
        server_context(config)


def test_an_encrypted_key_with_its_password(
    serve: Callable[..., Running], server_files: dict[str, str], ca: trustme.CA, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    cert = ca.issue_cert("127.0.0.1")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    keyfile, certfile = tmp_path / "key.pem", tmp_path / "cert.pem"
    keyfile.write_bytes(encrypted)
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    app, _ = recorder()
    server = serve(
        app, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile), ssl_keyfile_password="s3cret"
    )
    with httpx.Client(verify=ssl.create_default_context(cafile=server_files["ca"])) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").text == "https"
    wrong = Config.resolve(
        {
            "ssl_certfile": str(certfile),
            "ssl_keyfile": str(keyfile),
            "ssl_keyfile_password": "nope",
        },
        environ={},
    )
    with pytest.raises(ConfigError, match="cannot load"):
        server_context(wrong)


def test_websockets_over_tls_carry_the_tls_extension(
    serve: Callable[..., Running], server_files: dict[str, str]
) -> None:
    from websockets.sync.client import connect

    scopes: Scopes = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scopes.append(scope)
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

    server = serve(app, **tls_settings(server_files))
    context = ssl.create_default_context(cafile=server_files["ca"])
    with (
        connect(f"wss://127.0.0.1:{server.port}/", ssl=context) as ws,
        contextlib.suppress(Exception),
    ):
        ws.recv(timeout=5)
    assert scopes[0]["scheme"] == "wss"
    assert scopes[0]["extensions"]["tls"]["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert "websocket.http.response" in scopes[0]["extensions"]
