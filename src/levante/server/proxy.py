"""Behind a proxy: forwarded headers and HAProxy's PROXY protocol, trusted only
from the addresses the operator lists.

Both are sans-IO: `TrustedPeers` says whether a peer may speak for the client,
`apply_forwarded` rewrites a scope from ``Forwarded`` (RFC 7239) or
``X-Forwarded-For/Proto/Host``, and `parse_proxy_header` reads a PROXY v1 or v2
header from the first bytes of a connection.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Any

from levante.server.errors import ConfigError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedPeers:
    """``127.0.0.1,10.0.0.0/8,::1`` or ``*``; ``unix`` trusts Unix-socket peers
    (which have no address)."""

    def __init__(self, spec: str, option: str) -> None:
        self.any = False
        self.unix = False
        self.addresses: set[Address] = set()
        self.networks: list[Network] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if part == "*":
                self.any = True
            elif part.lower() in ("unix", "unix:"):
                self.unix = True
            else:
                self._add(part, option)

    def _add(self, part: str, option: str) -> None:
        try:
            if "/" in part:
                self.networks.append(ipaddress.ip_network(part, strict=False))
            else:
                self.addresses.add(ipaddress.ip_address(part))
        except ValueError:
            raise ConfigError(
                f"{option}: {part!r} is not an IP address, a network (10.0.0.0/8), 'unix' or '*'"
            ) from None

    def __contains__(self, host: str | None) -> bool:
        if self.any:
            return True
        if host is None:
            return self.unix
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack listener
        return address in self.addresses or any(address in net for net in self.networks)


# -- forwarded headers ---------------------------------------------------------------


#: The forwarding headers that can be honoured (``--forwarded-headers`` picks some).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")


def honoured_headers(spec: str) -> frozenset[bytes]:
    """``x-forwarded-for,x-forwarded-proto`` → the header names to read."""
    names = {name.strip().lower() for name in spec.split(",") if name.strip()}
    unknown = names - set(FORWARDING_HEADERS)
    if unknown:
        raise ConfigError(
            f"--forwarded-headers: {', '.join(sorted(unknown))} is not one of "
            f"{', '.join(FORWARDING_HEADERS)}"
        )
    return frozenset(name.encode() for name in names)


def apply_forwarded(
    scope: dict[str, Any], trusted: TrustedPeers, honoured: frozenset[bytes]
) -> None:
    """Rewrite `scope` (client, scheme, Host header) from the forwarding headers its
    trusted peer sent: only those in `honoured` (the ones the proxy sets or removes;
    one a proxy passes through unchanged is the client's to forge)."""
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    proto = host = None
    for name, value in scope["headers"]:
        if name not in honoured:
            continue
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            xff.append(value)
        elif name == b"x-forwarded-proto":
            proto = value
        else:
            host = value
    if forwarded:
        hops = _forwarded_elements(b",".join(forwarded).decode("latin-1"))
        chosen = _client_hop([hop.get("for", "") for hop in hops], trusted)
        if chosen is None:
            return
        element = hops[chosen]
        _set(scope, element.get("for"), element.get("proto"), element.get("host"))
    elif xff or proto or host:
        addresses = [a.strip() for a in b",".join(xff).decode("latin-1").split(",") if a.strip()]
        chosen = _client_hop(addresses, trusted) if addresses else None
        client = addresses[chosen] if chosen is not None else None
        last_proto = proto.decode("latin-1").split(",")[-1].strip() if proto else None
        last_host = host.decode("latin-1").split(",")[-1].strip() if host else None
        _set(scope, client, last_proto, last_host)


def _client_hop(hops: list[str], trusted: TrustedPeers) -> int | None:
    """The index of the client: walking from the nearest hop, the first one that is
    not a trusted proxy (each trusted proxy vouches for the hop before it)."""
    for index in range(len(hops) - 1, -1, -1):
        if _node_host(hops[index]) not in trusted:
            return index
    return 0 if hops else None


def _set(scope: dict[str, Any], client: str | None, proto: str | None, host: str | None) -> None:
    node = _node_host(client) if client else None
    if node is not None and _is_address(node):
        scope["client"] = (node, _node_port(client or ""))
    if proto:
        secure = {"https": True, "wss": True, "http": False, "ws": False}.get(proto.lower())
        if secure is not None:
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = "https" if secure else "http"
    if host:
        scope["headers"] = [
            (name, host.encode("latin-1")) if name == b"host" else (name, value)
            for name, value in scope["headers"]
        ]


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _forwarded_elements(text: str) -> list[dict[str, str]]:
    """RFC 7239 §4: ``for=a;proto=https, for="[2001:db8::1]:80"`` → [{...}, {...}]."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(text, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            key, sep, value = pair.partition("=")
            if sep:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1].replace('\\"', '"')
                pairs[key.strip().lower()] = value
        elements.append(pairs)
    return elements


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if char == '"' and not escaped:
            quoted = not quoted
        escaped = char == "\\" and not escaped
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def _node_host(node: str) -> str | None:
    """The address of an RFC 7239 node (``1.2.3.4:80``, ``[::1]:80``, ``unknown``,
    ``_hidden``): None when it names no address."""
    node = node.strip()
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else None
    if node.count(":") == 1:
        node = node.split(":", 1)[0]
    if not node or node.lower() == "unknown" or node.startswith("_"):
        return None
    return node


def _node_port(node: str) -> int:
    node = node.strip()
    port = node.rsplit("]:", 1)[1] if node.startswith("[") and "]:" in node else ""
    if not port and node.count(":") == 1:
        port = node.split(":", 1)[1]
    return int(port) if port.isdigit() else 0


# -- PROXY protocol (HAProxy, v1 text and v2 binary) --------------------------------------

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: v1: "PROXY TCP6 <39 chars> <39 chars> 65535 65535\r\n" is 107 bytes at most.
V1_MAX = 107
#: v2: we read at most this much address data (a TLV-heavy header is refused).
V2_MAX_PAYLOAD = 4096


class ProxyProtocolError(ValueError):
    """The connection did not start with a PROXY header we can read."""


@dataclass(frozen=True)
class ProxyHeader:
    """What the proxy says of the connection; None addresses for ``UNKNOWN``/``LOCAL``."""

    client: tuple[str, int] | None
    server: tuple[str, int] | None


def parse_proxy_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """(header, bytes it took) from the start of `data`, None when more bytes are
    needed; `ProxyProtocolError` when it is not a PROXY header."""
    if data[:12] == V2_SIGNATURE:
        return _parse_v2(data)
    if data[:6] == b"PROXY ":
        return _parse_v1(data)
    if V2_SIGNATURE.startswith(data) or b"PROXY ".startswith(data):
        return None  # too few bytes yet to tell
    raise ProxyProtocolError("the connection did not start with a PROXY protocol header")


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyProtocolError("PROXY v1 header longer than 107 bytes")
        return None
    parts = data[:end].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None, None), end + 2
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"malformed PROXY v1 header: {data[:end]!r}")
    _, family, source, destination, sport, dport = parts
    want = ipaddress.IPv4Address if family == "TCP4" else ipaddress.IPv6Address
    try:
        src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
        ports = int(sport), int(dport)
    except ValueError:
        raise ProxyProtocolError(f"malformed PROXY v1 addresses: {data[:end]!r}") from None
    if not (isinstance(src, want) and isinstance(dst, want)) or not all(
        0 <= p <= 65535 for p in ports
    ):
        raise ProxyProtocolError(f"PROXY v1 addresses do not match {family}")
    return ProxyHeader((str(src), ports[0]), (str(dst), ports[1])), end + 2


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < 16:
        return None
    version_command, family, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if version_command >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header with version {version_command >> 4}")
    if length > V2_MAX_PAYLOAD:
        raise ProxyProtocolError(f"PROXY v2 header of {length} bytes")
    total = 16 + length
    if len(data) < total:
        return None
    command = version_command & 0x0F
    if command == 0:  # LOCAL: a health check from the proxy itself
        return ProxyHeader(None, None), total
    if command != 1:
        raise ProxyProtocolError(f"PROXY v2 command {command}")
    payload = data[16:total]
    transport = family >> 4
    if transport == 1 and len(payload) >= 12:  # AF_INET
        src, dst = (
            socket.inet_ntop(socket.AF_INET, payload[:4]),
            socket.inet_ntop(socket.AF_INET, payload[4:8]),
        )
        sport, dport = struct.unpack("!HH", payload[8:12])
    elif transport == 2 and len(payload) >= 36:  # AF_INET6
        src, dst = (
            socket.inet_ntop(socket.AF_INET6, payload[:16]),
            socket.inet_ntop(socket.AF_INET6, payload[16:32]),
        )
        sport, dport = struct.unpack("!HH", payload[32:36])
    elif transport in (0, 3):  # UNSPEC, or AF_UNIX: no address to take
        return ProxyHeader(None, None), total
    else:
        raise ProxyProtocolError(f"PROXY v2 address family {transport} with {len(payload)} bytes")
    return ProxyHeader((src, sport), (dst, dport)), total
