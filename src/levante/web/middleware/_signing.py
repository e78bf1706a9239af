"""Signed, timestamped cookie values (HMAC-SHA256), for sessions and CSRF tokens.

A signed value reads ``<value>.<unix time>.<signature>``, all cookie-safe
characters (RFC 6265 §4.1.1). Each use derives its own key from the secret, as
Django salts its HMACs, so a value signed for one purpose never verifies as another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def b64encode(data: bytes) -> str:
    """URL-safe base64 without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes | None:
    """The bytes `b64encode` made `text` from, or None when it is not such text."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


class Signer:
    """Signs values with a key derived from `secret` for one `purpose`."""

    def __init__(self, secret: str | bytes, purpose: str) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if not key:
            raise ValueError(
                "the secret key must not be empty; generate one with secrets.token_hex"
            )
        label = b"levante.web.middleware." + purpose.encode()
        self._key = hmac.new(key, label, hashlib.sha256).digest()

    def sign(self, value: str, timestamp: int) -> str:
        """`value` (which must not contain ``.``) with `timestamp` and their signature."""
        message = f"{value}.{timestamp}"
        return f"{message}.{self._mac(message)}"

    def unsign(self, signed: str, max_age: float | None, now: float) -> str | None:
        """The value of a `sign` result, or None if forged, malformed, or older
        than `max_age` seconds at time `now`."""
        message, _, mac = signed.rpartition(".")
        value, _, stamp = message.rpartition(".")
        if not value or not hmac.compare_digest(mac.encode(), self._mac(message).encode()):
            return None
        if not (stamp.isascii() and stamp.isdigit()):
            return None
        if max_age is not None and now - int(stamp) > max_age:
            return None
        return value

    def _mac(self, message: str) -> str:
        return b64encode(hmac.new(self._key, message.encode(), hashlib.sha256).digest())
