"""Behind proxies: forwarding headers applied only from trusted peers, and the PROXY
protocol (v1 and v2) read from allowed peers, refused from others."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from levante.server.proxy import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    TrustedPeers,
    apply_forwarded,
    parse_proxy_header,
)
from tests.conftest import Running, read_response


async def echo_scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    host = dict(scope["headers"]).get(b"host", b"").decode()
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"], "host": host})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def ask(port: int, headers: str = "", prefix: bytes = b"") -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            prefix
            + f"GET / HTTP/1.1\r\nHost: origin\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    answer: dict[str, Any] = json.loads(body)
    return answer


# -- forwarding headers over a real connection ---------------------------------------------


def test_forwarded_headers_from_a_trusted_peer_set_client_scheme_and_host(
    serve: Callable[..., Running],
) -> None:
    server = serve(
        echo_scope,
        forwarded_allow_ips="127.0.0.1",
        forwarded_headers="x-forwarded-for,x-forwarded-proto,x-forwarded-host",
    )
    answer = ask(
        server.port,
        "X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: shop.example\r\n",
    )
    assert answer == {"client": ["203.0.113.7", 0], "scheme": "https", "host": "shop.example"}


def test_rfc_7239_forwarded_when_the_proxy_sets_it(serve: Callable[..., Running]) -> None:
    server = serve(echo_scope, forwarded_allow_ips="127.0.0.1", forwarded_headers="forwarded")
    answer = ask(
        server.port,
        'Forwarded: for="[2001:db8::17]:4711";proto=https;host=api.example\r\n'
        "X-Forwarded-For: 198.51.100.1\r\n",
    )
    assert answer == {"client": ["2001:db8::17", 4711], "scheme": "https", "host": "api.example"}


def test_headers_the_proxy_does_not_set_cannot_be_forged_through_it(
    serve: Callable[..., Running],
) -> None:
    # The default: the proxy sets X-Forwarded-For and -Proto (nginx, ALB). A client's own
    # Forwarded and X-Forwarded-Host pass through such a proxy unchanged: not honoured.
    server = serve(echo_scope)
    answer = ask(
        server.port,
        "Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n"
        "X-Forwarded-Host: evil.example\r\n"
        "X-Forwarded-For: 203.0.113.9\r\n",
    )
    assert answer == {"client": ["203.0.113.9", 0], "scheme": "http", "host": "origin"}


def test_an_unknown_forwarding_header_name_is_a_configuration_error() -> None:
    from levante.server.errors import ConfigError
    from levante.server.proxy import honoured_headers

    with pytest.raises(ConfigError, match="x-real-ip is not one of"):
        honoured_headers("x-forwarded-for,x-real-ip")


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    serve: Callable[..., Running],
) -> None:
    server = serve(echo_scope, forwarded_allow_ips="10.0.0.0/8")
    answer = ask(server.port, "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n")
    assert answer["client"][0] == "127.0.0.1"
    assert answer["scheme"] == "http"


def test_no_proxy_headers_turns_them_off(serve: Callable[..., Running]) -> None:
    server = serve(echo_scope, proxy_headers=False, forwarded_allow_ips="*")
    assert ask(server.port, "X-Forwarded-For: 203.0.113.7\r\n")["client"][0] == "127.0.0.1"


# -- forwarding headers, the rules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "trusted", "client"),
    [
        # The nearest untrusted hop is the client: a client cannot forge past our proxies.
        ("1.1.1.1, 2.2.2.2, 10.0.0.5", "10.0.0.0/8", "2.2.2.2"),
        ("1.1.1.1, 10.0.0.9, 10.0.0.5", "10.0.0.0/8", "1.1.1.1"),
        ("10.0.0.9, 10.0.0.5", "10.0.0.0/8", "10.0.0.9"),
        ("1.1.1.1", "*", "1.1.1.1"),
        ("garbage, 10.0.0.5", "10.0.0.0/8", None),
    ],
)
def test_x_forwarded_for_takes_the_nearest_untrusted_hop(
    header: str, trusted: str, client: str | None
) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "client": ("10.0.0.1", 1),
        "scheme": "http",
        "headers": [(b"x-forwarded-for", header.encode())],
    }
    apply_forwarded(scope, TrustedPeers(trusted, "test"), frozenset({b"x-forwarded-for"}))
    assert scope["client"][0] == (client or "10.0.0.1")


def test_websocket_scheme_follows_the_forwarded_proto() -> None:
    scope: dict[str, Any] = {
        "type": "websocket",
        "client": ("127.0.0.1", 1),
        "scheme": "ws",
        "headers": [(b"x-forwarded-proto", b"https")],
    }
    apply_forwarded(scope, TrustedPeers("127.0.0.1", "test"), frozenset({b"x-forwarded-proto"}))
    assert scope["scheme"] == "wss"


@pytest.mark.parametrize(
    ("spec", "host", "trusted"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "::ffff:127.0.0.1", True),
        ("10.0.0.0/8", "10.200.1.1", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("::1", "::1", True),
        ("unix", None, True),
        ("127.0.0.1", None, False),
        ("*", "8.8.8.8", True),
    ],
)
def test_trusted_peers(spec: str, host: str | None, trusted: bool) -> None:
    assert (host in TrustedPeers(spec, "test")) is trusted


def test_a_bad_trusted_address_is_a_configuration_error() -> None:
    from levante.server.errors import ConfigError

    with pytest.raises(ConfigError, match="--forwarded-allow-ips: 'nope'"):
        TrustedPeers("127.0.0.1, nope", "--forwarded-allow-ips")


# -- PROXY protocol ------------------------------------------------------------------------


def v2(command: int, family: int, payload: bytes) -> bytes:
    return (
        V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(payload)) + payload
    )


V2_TCP4 = v2(
    1,
    0x11,
    socket.inet_aton("198.51.100.22")
    + socket.inet_aton("10.1.1.1")
    + struct.pack("!HH", 51000, 443),
)
V2_TCP6 = v2(
    1,
    0x21,
    socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    + socket.inet_pton(socket.AF_INET6, "2001:db8::2")
    + struct.pack("!HH", 40000, 80),
)


@pytest.mark.parametrize(
    ("data", "header", "used"),
    [
        (
            b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\nGET",
            ProxyHeader(("192.0.2.1", 56324), ("192.0.2.2", 443)),
            42,
        ),
        (
            b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
            ProxyHeader(("2001:db8::1", 1), ("2001:db8::2", 2)),
            40,
        ),
        (b"PROXY UNKNOWN\r\n", ProxyHeader(None, None), 15),
        (V2_TCP4 + b"GET", ProxyHeader(("198.51.100.22", 51000), ("10.1.1.1", 443)), len(V2_TCP4)),
        (V2_TCP6, ProxyHeader(("2001:db8::1", 40000), ("2001:db8::2", 80)), len(V2_TCP6)),
        (v2(0, 0x00, b""), ProxyHeader(None, None), 16),
    ],
)
def test_proxy_headers_parse(data: bytes, header: ProxyHeader, used: int) -> None:
    assert parse_proxy_header(data) == (header, used)


@pytest.mark.parametrize("cut", [1, 5, 11, 13, 20])
def test_a_proxy_header_split_anywhere_asks_for_more(cut: int) -> None:
    for whole in (b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n", V2_TCP4):
        assert parse_proxy_header(whole[:cut]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 300.1.1.1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",
        b"PROXY " + b"x" * 120,
        V2_SIGNATURE + b"\x10\x11\x00\x00",
        V2_SIGNATURE + b"\x21\x11\xff\xff",
    ],
)
def test_what_is_not_a_proxy_header_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(data)


@pytest.mark.parametrize("prefix", [b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n", V2_TCP4])
def test_proxy_protocol_sets_the_client_from_an_allowed_peer(
    serve: Callable[..., Running], prefix: bytes
) -> None:
    server = serve(
        echo_scope, proxy_protocol=True, proxy_protocol_allow_ips="127.0.0.1", proxy_headers=False
    )
    client = ask(server.port, prefix=prefix)["client"]
    assert client in (["192.0.2.1", 56324], ["198.51.100.22", 51000])


def test_proxy_protocol_from_a_peer_not_allowed_is_refused(serve: Callable[..., Running]) -> None:
    server = serve(echo_scope, proxy_protocol=True, proxy_protocol_allow_ips="10.0.0.1")
    request = b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        try:
            sock.sendall(request)
            answer = sock.recv(100)
        except ConnectionResetError:  # closed at once: a reset is as good as an EOF
            answer = b""
    assert answer == b""


def test_a_connection_without_the_header_is_closed_and_the_server_goes_on(
    serve: Callable[..., Running],
) -> None:
    server = serve(echo_scope, proxy_protocol=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100) == b""
    assert ask(server.port, prefix=b"PROXY UNKNOWN\r\n")["client"][0] == "127.0.0.1"


def test_behind_the_proxy_protocol_the_clients_own_forwarding_headers_are_ignored(
    serve: Callable[..., Running],
) -> None:
    # HAProxy in TCP mode relays the client's bytes: its X-Forwarded-* are the client's.
    server = serve(echo_scope, proxy_protocol=True)
    answer = ask(
        server.port,
        "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n",
        prefix=b"PROXY TCP4 203.0.113.7 192.0.2.2 56324 443\r\n",
    )
    assert answer["client"] == ["203.0.113.7", 56324]
    assert answer["scheme"] == "http"


def test_proxy_protocol_with_tls_is_refused_at_start_up() -> None:
    from levante.server import Config
    from levante.server.errors import ConfigError
    from levante.server.tls import server_context

    config = Config.resolve({"proxy_protocol": True, "ssl_certfile": "cert.pem"}, environ={})
    with pytest.raises(ConfigError, match="--proxy-protocol with --ssl-certfile"):
        server_context(config)
