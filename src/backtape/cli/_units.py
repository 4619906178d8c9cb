"""Parsing of human durations (``30d``) and sizes (``10GB``) for CLI options."""

from __future__ import annotations

import re

from .._time import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from ..errors import ConfigError

_DURATION = {"s": NS_PER_SECOND, "m": NS_PER_MINUTE, "min": NS_PER_MINUTE, "h": NS_PER_HOUR,
             "d": NS_PER_DAY, "w": 7 * NS_PER_DAY}
_SIZE = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_duration(text: str) -> int:
    """``'30d'``, ``'12h'``, ``'90min'``, ``'2w'`` -> nanoseconds.

    >>> parse_duration("30d") == 30 * 86_400 * 10**9
    True
    """
    m = _PATTERN.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _DURATION:
        raise ConfigError(f"cannot read duration {text!r}: write a number and s, min, h, d or w (e.g. 30d)")
    return int(float(m.group(1)) * _DURATION[unit])


def parse_size(text: str) -> int:
    """``'10GB'``, ``'500MB'``, ``'1.5GiB'``, ``'4096'`` -> bytes.

    >>> parse_size("10GB")
    10000000000
    """
    m = _PATTERN.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE:
        raise ConfigError(f"cannot read size {text!r}: write a number and B, KB, MB, GB, TB (or KiB...)")
    return int(float(m.group(1)) * _SIZE[unit])


