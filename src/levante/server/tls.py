"""TLS for the listener: the `ssl.SSLContext` from the ``--ssl-*`` settings, and
the ASGI ``tls`` scope extension of each connection.

TLS 1.2 is the least version offered (RFC 8996 retired 1.0 and 1.1; Mozilla's
"intermediate" profile, nginx's and Caddy's defaults agree). ALPN (RFC 7301)
offers ``h2`` then ``http/1.1``, or the one ``--http`` allows.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from levante.server.errors import ConfigError

if TYPE_CHECKING:
    from levante.server.config import Config

#: ``--ssl-cert-reqs`` values, as uvicorn takes them (ssl.VerifyMode numbers).
CERT_REQS = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED}
#: Seconds to wait for the peer's close_notify after we close a TLS connection.
#: Many clients never send it; without a bound each such connection would count
#: as open (and hold up a graceful shutdown) for asyncio's default 30 s.
SHUTDOWN_TIMEOUT = 2.0
#: ALPN protocol ids we speak for each ``--http``, most preferred first.
ALPN_PROTOCOLS = {"auto": ["h2", "http/1.1"], "h1": ["http/1.1"], "h2": ["h2"]}
#: ASGI's ``tls_version`` numbers (the TLS wire values).
_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def server_context(config: Config) -> ssl.SSLContext | None:
    """The context for `config`, or None when it asks for no TLS (no certificate)."""
    if config.ssl_certfile is None:
        if config.ssl_keyfile is not None:
            raise ConfigError("--ssl-keyfile needs --ssl-certfile")
        return None
    if config.proxy_protocol:
        # The PROXY header comes before the TLS handshake, and the TLS layer here
        # reads first: reading one and then starting the other is not built yet.
        raise ConfigError(
            "--proxy-protocol with --ssl-certfile is not supported: terminate TLS at the "
            "proxy (it then speaks plain HTTP to us), or do without one of them"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password or None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load --ssl-certfile/--ssl-keyfile: {exc}") from exc
    if config.ssl_cert_reqs not in CERT_REQS:
        raise ConfigError(
            f"--ssl-cert-reqs is 0 (none), 1 (optional) or 2 (required), not {config.ssl_cert_reqs}"
        )
    context.verify_mode = CERT_REQS[config.ssl_cert_reqs]
    if config.ssl_ca_certs is not None:
        try:
            context.load_verify_locations(config.ssl_ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load --ssl-ca-certs: {exc}") from exc
    elif context.verify_mode != ssl.CERT_NONE:
        raise ConfigError(
            "--ssl-cert-reqs 1 or 2 needs --ssl-ca-certs to check client certificates"
        )
    if config.ssl_ciphers:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError as exc:
            raise ConfigError(f"--ssl-ciphers {config.ssl_ciphers!r}: {exc}") from exc
    context.set_alpn_protocols(ALPN_PROTOCOLS[config.http])
    return context


def server_certificate(config: Config) -> str | None:
    """The server's certificate as PEM text (the first one of --ssl-certfile)."""
    if config.ssl_certfile is None:
        return None
    text = Path(config.ssl_certfile).read_text(encoding="ascii", errors="replace")
    end = "-----END CERTIFICATE-----"
    start = text.find("-----BEGIN CERTIFICATE-----")
    if start < 0 or end not in text[start:]:
        return None
    return text[start : text.index(end, start) + len(end)] + "\n"


def connection_info(ssl_object: Any, server_cert: str | None) -> dict[str, Any]:
    """The ASGI ``tls`` extension for one connection (ASGI TLS extension spec)."""
    chain: list[str] = []
    name: str | None = None
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        name = _subject_name(ssl_object.getpeercert())
    return {
        "server_cert": server_cert,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # Python's ssl gives the suite's name, not its number
    }


def _subject_name(cert: dict[str, Any] | None) -> str | None:
    """The subject as an RFC 4514 string (most specific part first), as the spec asks."""
    if not cert or "subject" not in cert:
        return None
    parts = []
    for rdn in reversed(cert["subject"]):
        parts.append("+".join(f"{_SHORT.get(k, k)}={_escape(v)}" for k, v in rdn))
    return ",".join(parts)


_SHORT = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "domainComponent": "DC",
    "userId": "UID",
    "streetAddress": "STREET",
}


def _escape(value: str) -> str:
    # RFC 4514 §2.4: escape the special characters, and a leading '#' or space.
    escaped = "".join("\\" + c if c in ',+"\\<>;' else c for c in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped
