"""Every error backtape raises, in one place so each layer can raise and catch them.

Each message names what went wrong and where (file, column, row, symbol, timestamp, URL without
secrets) so a user can act on it without a traceback.
"""

from __future__ import annotations

import warnings


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

    ``violations`` holds one record per problem with its rule, symbol, timestamp and row.
    """

    def __init__(self, message: str, violations: list[dict] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


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


class LookAheadError(BacktapeError):
    """Something asked for data after the portal's clock."""


class NoDataError(BacktapeError):
    """Nothing is loaded for the requested asset, field or time."""


class HistoryWindowStartsBeforeData(NoDataError):
    """A history window reaches back before the first loaded bar.

    ``first_valid_end`` is the earliest end time for which the same window would be complete.
    """

    def __init__(self, message: str, first_valid_end=None) -> None:
        super().__init__(message)
        self.first_valid_end = first_valid_end


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


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    if issubclass(category, BacktapeWarning):
        return f"warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


warnings.formatwarning = _one_line_warning
