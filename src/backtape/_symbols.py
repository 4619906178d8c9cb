"""Symbols as users give them: ``"AAPL,MSFT"`` or a list, read once the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ConfigError


def symbol_list(symbols: Sequence[str] | str) -> list[str]:
    """``symbols`` as a list of names: a comma-separated string is split, blanks are stripped.

    No symbol, an empty name or a name given twice raises ``ConfigError`` naming it (a repeated
    symbol used to reach the engine as overlapping bars of one series).
    """
    raw = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    names = [str(s).strip() for s in raw]
    if not names or names == [""]:
        raise ConfigError("no symbols given; name at least one, e.g. AAPL or AAPL,MSFT")
    if "" in names:
        raise ConfigError(f"empty symbol name in {symbols!r}; separate names with single commas")
    twice = sorted({s for s in names if names.count(s) > 1})
    if twice:
        raise ConfigError(f"symbol(s) {', '.join(twice)} given more than once in {symbols!r}; "
                          "name each symbol once")
    return names
