"""Logging for the ``backtape`` logger tree: plain or JSON lines on stderr, with secrets scrubbed.

Library modules only call ``logging.getLogger(__name__)``; the command line (or an application)
calls :func:`configure_logging` once. The handler redacts every record with
:func:`backtape._secrets.redact` (credential-looking parameters and every registered key),
whichever module logged it: a filter on the handler also sees the records of child loggers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sys
import warnings
from typing import Any, TextIO

from ._secrets import redact

LOGGER_NAME = "backtape"


class _ScrubFilter(logging.Filter):
    """Renders the message once, scrubbed, so neither formatter can leak an argument."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


#: attributes every LogRecord has; anything else on a record came from ``extra=`` (event fields)
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _scrubbed(value: Any) -> Any:
    """``value`` as JSON-safe data with every string redacted (event fields may carry URLs or
    parameters); NaN and infinities become null, other objects their text."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrubbed(v) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _scrubbed(value.item())
    return redact(str(value))


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC ISO), level, logger, message, the record's ``extra``
    fields (``event``, ``strategy``...), exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in payload:
                payload[key] = _scrubbed(value)
        if record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


class _BacktapeHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs (and replaces when called again)."""


def configure_logging(*, verbose: bool = False, json_lines: bool = False,
                      stream: TextIO | None = None) -> logging.Logger:
    """Send the ``backtape`` loggers to ``stream`` (stderr): DEBUG when verbose, else WARNING.

    Calling it again replaces the previous handler, so it is safe in tests and notebooks.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if isinstance(h, _BacktapeHandler)]:
        logger.removeHandler(old)
    handler = _BacktapeHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(_ScrubFilter())
    if not json_lines:  # the command line prints the error itself, once
        handler.addFilter(lambda record: record.__dict__.get("event") != "backtest.error")
    handler.setFormatter(
        _JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False
    warnings.showwarning = _as_log_record if json_lines else _SHOW_WARNING
    return logger


_SHOW_WARNING = warnings.showwarning


def _as_log_record(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   file: TextIO | None = None, line: str | None = None) -> None:
    """With JSON log lines, backtape's warnings are log records too (stderr stays one JSON per line)."""
    from .errors import BacktapeWarning

    if not issubclass(category, BacktapeWarning):
        _SHOW_WARNING(message, category, filename, lineno, file, line)
        return
    logging.getLogger(LOGGER_NAME).warning(str(message), extra={"event": "warning"})
