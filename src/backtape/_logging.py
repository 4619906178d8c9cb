"""Logging for the ``backtape`` logger tree: plain or JSON lines on stderr, with secrets scrubbed.

Library modules only call ``logging.getLogger(__name__)``; the command line (or an application)
calls :func:`configure_logging` once. The handler scrubs API keys from every record, whichever
module logged it: values shaped like ``apikey=...`` or ``Authorization: ...`` and any value
registered with :func:`register_secret` (the configuration registers its provider keys).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import TextIO

LOGGER_NAME = "backtape"
REDACTED = "***"

# key=value / key: value pairs whose value is a credential, e.g. "?apikey=abc&" or "Authorization: Bearer x"
_SECRET_PAIR = re.compile(
    r"(?i)\b(api[_-]?key|apikey|api[_-]?secret|secret[_-]?key|access[_-]?key(?:[_-]?id)?|token"
    r"|authorization|apca-api-key-id|apca-api-secret-key)(\s*[=:]\s*)(?:bearer\s+|basic\s+)?[^\s&,;'\"]+"
)
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from every log record from now on (short values are ignored)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with registered secrets and credential-looking pairs replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


class _ScrubFilter(logging.Filter):
    """Renders the message once, scrubbed, so neither formatter can leak an argument."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC ISO), level, logger, message, exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(*, verbose: bool = False, json_lines: bool = False,
                      stream: TextIO | None = None) -> logging.Logger:
    """Send the ``backtape`` loggers to ``stream`` (stderr): DEBUG when verbose, else WARNING.

    Calling it again replaces the previous handler, so it is safe in tests and notebooks.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if getattr(h, "_backtape", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._backtape = True  # type: ignore[attr-defined]
    handler.addFilter(_ScrubFilter())
    handler.setFormatter(
        _JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False
    return logger
