"""Log records leave the ``backtape`` loggers scrubbed of credentials, as text or JSON lines.

The redaction rules themselves are tested with ``backtape._secrets`` (tests/providers).
"""

from __future__ import annotations

import io
import json
import logging

from backtape._logging import configure_logging
from backtape._secrets import register


def test_json_lines_and_scrubbing() -> None:
    stream = io.StringIO()
    configure_logging(json_lines=True, stream=stream)
    register("hunter2-key")
    logging.getLogger("backtape.sources.test").warning("retrying with key %s", "hunter2-key")
    logging.getLogger("backtape.sources.test").debug("not shown at WARNING")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "warning" and record["logger"] == "backtape.sources.test"
    assert record["message"] == "retrying with key ***"


def test_verbose_text_logs_with_exceptions() -> None:
    stream = io.StringIO()
    configure_logging(verbose=True, stream=stream)
    configure_logging(verbose=True, stream=stream)  # reconfiguring does not duplicate output
    try:
        raise RuntimeError("token=abc.def failed")
    except RuntimeError:
        logging.getLogger("backtape.cache").exception("fetch failed")
    text = stream.getvalue()
    assert text.count("ERROR backtape.cache: fetch failed") == 1
    assert "RuntimeError: token=*** failed" in text and "abc.def" not in text
    configure_logging()
