"""Backtest results storage (SQLite by default, PostgreSQL by URL) through SQLAlchemy Core."""

from .store import ResultsStore, RunRecord

__all__ = ["ResultsStore", "RunRecord"]
