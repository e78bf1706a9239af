"""The listening sockets: TCP (IPv4, IPv6, dual-stack for ``::``), a Unix domain
socket (``--uds``) or an inherited file descriptor (``--fd``, socket activation).

Binding is kept apart from serving so that a supervisor can bind once and hand
the same sockets to each worker process.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from typing import TYPE_CHECKING

from levante.server.errors import ConfigError

if TYPE_CHECKING:
    from levante.server.config import Config


def bind_sockets(config: Config, *, reuse_port: bool = False) -> list[socket.socket]:
    """Bind (or adopt) the sockets `config` names and start listening on them."""
    if config.fd is not None:
        sockets = [_from_fd(config.fd)]
    elif config.uds is not None:
        sockets = [_unix(config.uds, config.uds_permissions)]
    else:
        sockets = _tcp(config.host, config.port, reuse_port)
    for sock in sockets:
        sock.listen(config.backlog)
        sock.setblocking(False)
    return sockets


def _from_fd(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"--fd {fd}: not a socket this process can use: {exc}") from exc
    if sock.type != socket.SOCK_STREAM:
        raise ConfigError(f"--fd {fd}: a {sock.type!r} socket, not a stream socket")
    return sock


def _unix(path: str, permissions: str) -> socket.socket:
    try:
        mode = int(permissions, 8)
    except ValueError:
        raise ConfigError(f"--uds-permissions {permissions!r}: octal digits, e.g. 660") from None
    with contextlib.suppress(FileNotFoundError):
        # A socket file left by a server that died is in the way; anything else is not ours.
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"could not bind to unix socket {path}: {exc}") from exc
    return sock


def _tcp(host: str, port: int, reuse_port: bool) -> list[socket.socket]:
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {host!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            # `::` means every address: IPv4 too, through v4-mapped addresses (RFC 3493 §5.3).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"could not bind to {host}:{port}: {exc}") from exc
    return [sock]


def describe(sock: socket.socket, scheme: str) -> str:
    """``http://127.0.0.1:8000``, ``https://[::]:443`` or ``http+unix:///run/app.sock``."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"{scheme}+unix://{name}"
    host, port = name[0], name[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"
