"""Keep credentials out of messages: redact secret values and key-bearing URL parameters.

Every provider registers its keys here when it is built; the logging filter installed on the
``httpx``, ``httpcore``, ``ccxt`` and ``backtape`` loggers rewrites records before any handler
sees them, so a key sent as a query parameter never reaches log output or exception text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

REDACTED = "***"

#: query-parameter and header names whose values are credentials, wherever they appear
SECRET_PARAM_NAMES = (
    "apikey", "api_key", "apiKey", "apisecret", "api_secret", "token", "access_token", "secret",
    "key", "crumb", "password", "signature", "X-Amz-Signature", "X-Amz-Credential",
    "APCA-API-KEY-ID", "APCA-API-SECRET-KEY", "Authorization",
)
_PARAM_RE = re.compile(
    r"(?i)(?P<name>\b(?:" + "|".join(re.escape(n) for n in SECRET_PARAM_NAMES) + r"))"
    r"(?P<sep>=|:\s*|['\"]\s*:\s*['\"]|['\"]\s*,\s*['\"])(?P<value>(?:Bearer\s+)?[^&\s'\",;)]+)"
)

_registered: set[str] = set()
_lock = threading.Lock()
_LOGGERS = ("httpx", "httpcore", "ccxt", "ccxt.base.exchange", "backtape", "botocore", "boto3")
_installed = False


def register(*secrets: str | None) -> None:
    """Remember secret values (at least 4 characters) so every redaction removes them."""
    with _lock:
        _registered.update(s for s in secrets if s and len(s) >= 4)
    install_log_filter()


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with credential parameters and every known or given secret value masked."""
    if not text:
        return text
    out = _PARAM_RE.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    with _lock:
        values = _registered | {s for s in secrets if s and len(s) >= 4}
    for value in sorted(values, key=len, reverse=True):
        if value in out:
            out = out.replace(value, REDACTED)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message and replaces it by its redacted form."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        record.msg = redact(message)
        record.args = ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_filter() -> None:
    """Attach one :class:`RedactingFilter` to the loggers that may print request URLs (idempotent)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        flt = RedactingFilter()
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(flt)
        _installed = True
