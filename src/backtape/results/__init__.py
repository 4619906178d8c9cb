"""Backtest results storage (SQLite by default, PostgreSQL by URL) through SQLAlchemy Core."""

from .searches import SearchLog, searches
from .store import ResultsStore, RunRecord

__all__ = ["ResultsStore", "RunRecord", "SearchLog", "searches"]
