"""Every error backtape raises, in one place so each layer can raise and catch them.

Each message names what went wrong and where (file, column, row, symbol, timestamp, URL without
secrets) so a user can act on it without a traceback.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .validation import QualityReport, Violation


class BacktapeError(Exception):
    """Base class of every error raised by backtape."""


class ConfigError(BacktapeError):
    """The configuration file or an environment override is invalid."""


class InvalidRangeError(BacktapeError, ValueError):
    """A time range is impossible (start >= end) or unparseable."""


class TimeframeError(BacktapeError, ValueError):
    """A timeframe string cannot be parsed or is ambiguous."""


class DataFormatError(BacktapeError):
    """A file is malformed: missing column, unparseable value, truncated content."""


class DataValidationError(BacktapeError):
    """Market data breaks an invariant (impossible bar, duplicate, unsorted, NaN, crossed quote).

    ``violations`` holds one ``backtape.validation.Violation`` per problem: rule, symbol, timestamp,
    row (and the row it refers to, and file lines when read from a file) as numbers.
    """

    def __init__(self, message: str, violations: Sequence[Violation | dict[str, Any]] = (),
                 report: QualityReport | None = None) -> None:
        super().__init__(message)
        #: structured violations (``Violation``; a few callers outside validation pass plain dicts)
        self.violations: list[Violation | dict[str, Any]] = list(violations)
        #: the whole quality report when validation raised (``on_invalid="raise"``)
        self.report = report


class SourceNotFoundError(BacktapeError, KeyError):
    """No data source is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SymbolNotFoundError(BacktapeError, KeyError):
    """The source does not know the symbol."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsupportedDataError(BacktapeError):
    """The source cannot provide this kind of data or frequency."""


class ProviderError(BacktapeError):
    """An upstream provider failed; carries the HTTP status and a short body excerpt."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None,
                 provider: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.provider = provider


class AuthenticationError(ProviderError):
    """The provider rejected the credentials (HTTP 401/403 or equivalent)."""


class RateLimitError(ProviderError):
    """The provider's rate limit was hit and retries were exhausted."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class CacheError(BacktapeError):
    """The cache folder or its index is unusable."""


class CorruptCacheError(CacheError):
    """Cache files failed their checksum or cannot be read; ``entries`` lists them."""

    def __init__(self, message: str, entries: list[Any]) -> None:
        super().__init__(message)
        self.entries = entries


class CorruptBundleError(CacheError):
    """A bundle's metadata cannot be read; the message says how to recover."""


class LookAheadError(BacktapeError):
    """Something asked for data after the portal's clock."""


class TooFewTradesError(ConfigError):
    """A run has too few trades for the analysis asked of it (Monte Carlo reshuffling)."""


class ReportDependencyError(BacktapeError):
    """Reports need the optional plotting library: ``pip install 'backtape[report]'``."""


class NoDataError(BacktapeError):
    """Nothing is loaded for the requested asset, field or time."""


class HistoryWindowStartsBeforeData(NoDataError):
    """A history window reaches back before the first loaded bar.

    ``first_valid_end`` is the earliest end time for which the same window would be complete.
    """

    def __init__(self, message: str, first_valid_end=None) -> None:
        super().__init__(message)
        self.first_valid_end = first_valid_end


class ParameterError(BacktapeError, TypeError):
    """A strategy parameter that does not exist or has the wrong type."""


class StrategyError(BacktapeError):
    """A user strategy raised: the message names its file, line and the bar's time."""


class OrderError(BacktapeError, ValueError):
    """An order a strategy placed cannot exist as given (a stop on the wrong side, a bad side)."""


class PeerNotInstalledError(BacktapeError, ImportError):
    """An adapter's peer package (backtrader, backtesting.py, vectorbt) is not installed."""


class BacktapeWarning(UserWarning):
    """A notice about a run that is worth one line (shown as ``warning: ...``, without source lines)."""


_SAID: set[tuple[type[Warning], str]] = set()
_format_warning = warnings.formatwarning


def warn_once(message: str, category: type[Warning] = BacktapeWarning) -> None:
    """Warn with ``message`` once per process (repeats of the same text are dropped)."""
    key = (category, message)
    if key in _SAID:
        return
    _SAID.add(key)
    warnings.warn(message, category, stacklevel=3)


Kept = list[tuple[type[Warning], str]]


@contextmanager
def kept_warnings() -> Iterator[Kept]:
    """Warnings raised inside are kept, not shown nor counted as said, for ``say_kept``: a search's
    runs (in workers or here) warn once for the search, not once per worker or parameter set."""
    said = set(_SAID)
    kept: Kept = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield kept
        finally:
            kept.extend((w.category, str(w.message)) for w in caught)
            _SAID.intersection_update(said)


def say_kept(kept: Iterable[tuple[type[Warning], str]]) -> None:
    """Each kind of kept warning once: texts equal but for their numbers and times are one kind,
    shown as the first of them and how many others were like it."""
    kinds: dict[tuple[type[Warning], str], list[str]] = {}
    for category, message in kept:
        texts = kinds.setdefault((category, re.sub(r"\d[\d,.:TZ-]*", "#", message)), [])
        if message not in texts:
            texts.append(message)
    for (category, _), texts in kinds.items():
        more = f" (and {len(texts) - 1} more like it)" if len(texts) > 1 else ""
        warn_once(texts[0] + more, category)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    if issubclass(category, BacktapeWarning):  # one line: a multi-line message's lines joined by "; "
        parts = (part.strip() for part in str(message).splitlines())
        return "warning: " + "; ".join(p for p in parts if p) + "\n"
    return _format_warning(message, category, filename, lineno, line)


warnings.formatwarning = _one_line_warning
