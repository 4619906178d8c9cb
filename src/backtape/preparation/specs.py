"""The preparation steps' settings (``Outliers``, ``MissingBars``, ``Features``), checked on creation.

Every bad value is a ``ConfigError`` that names the setting and says what to write instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError, TimeframeError
from ..timeframes import Timeframe

_FEATURE_WINDOWS = ("volatility", "zscore", "sma", "ema", "rsi", "atr")


@dataclass(frozen=True)
class Outliers:
    """Bars whose log return or log range is more than ``threshold`` spreads from the trailing
    ``window`` bars' centre (median and 1.4826 x MAD for ``"hampel"``, mean and std for ``"zscore"``)."""

    method: Literal["hampel", "zscore"] = "hampel"
    window: int = 21
    threshold: float = 6.0
    action: Literal["flag", "drop"] = "flag"

    def __post_init__(self) -> None:
        check_choice("Outliers.method", self.method, ("hampel", "zscore"))
        check_choice("Outliers.action", self.action, ("flag", "drop"))
        object.__setattr__(self, "window", check_int("Outliers.window", self.window, 3))
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (math.isfinite(t) and t > 0):
            raise ConfigError(f"Outliers.threshold must be a positive number of spreads such as 6.0, "
                              f"got {t!r}")
        object.__setattr__(self, "threshold", float(t))


@dataclass(frozen=True)
class MissingBars:
    """What to do with the bars the calendar expected that are absent.

    ``frequency`` defaults to the bars' own, read from ``ts_end - ts``, and ``calendar`` to the
    source's (``PreparedSource``; ``prepare`` on a frame needs it given). Bars that are not on the
    grid of the calendar and frequency are a ``ConfigError`` rather than rows lost.
    """

    policy: Literal["leave", "ffill", "drop"] = "leave"
    calendar: str | None = None
    frequency: str | None = None

    def __post_init__(self) -> None:
        check_choice("MissingBars.policy", self.policy, ("leave", "ffill", "drop"))
        if self.calendar is not None and not isinstance(self.calendar, str):
            raise ConfigError(f"MissingBars.calendar must be a calendar name such as 'XNYS', "
                              f"got {self.calendar!r}")
        if self.frequency is not None:
            try:
                tf = Timeframe.parse(self.frequency)
            except TimeframeError as e:
                raise ConfigError(f"MissingBars.frequency: {e}") from None
            if not (tf.is_intraday or tf == Timeframe(1, "d")):
                raise ConfigError(f"MissingBars works on intraday or 1d bars, "
                                  f"got frequency {self.frequency!r}")
            object.__setattr__(self, "frequency", str(tf))


@dataclass(frozen=True)
class Features:
    """Feature columns; each window is a number of bars of the frame's own frequency (an int or a
    sequence of ints: ``rsi=14`` or ``rsi=(7, 14)``)."""

    returns: bool = True
    log_returns: bool = False
    volatility: Sequence[int] = ()
    zscore: Sequence[int] = ()
    sma: Sequence[int] = ()
    ema: Sequence[int] = ()
    rsi: Sequence[int] = ()
    atr: Sequence[int] = ()
    names: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        for flag in ("returns", "log_returns"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"Features.{flag} must be True or False, got {getattr(self, flag)!r}")
        names = ["returns"] * self.returns + ["log_returns"] * self.log_returns
        for kind in _FEATURE_WINDOWS:
            value = getattr(self, kind)
            given = (value,) if isinstance(value, numbers.Integral) else value
            if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
                raise ConfigError(f"Features.{kind} takes a window or windows of bars such as 14 or "
                                  f"(7, 14), got {value!r}")
            windows = tuple(dict.fromkeys(check_int(f"Features.{kind} windows", n, 2) for n in given))
            object.__setattr__(self, kind, windows)
            names += [f"{kind}_{n}" for n in windows]
        object.__setattr__(self, "names", tuple(names))


def as_outliers(value: object) -> Outliers | None:
    """``Outliers`` as given, or the default one of a method name (``"hampel"``, ``"zscore"``)."""
    if value is None or isinstance(value, Outliers):
        return value
    if value in ("hampel", "zscore"):
        return Outliers(method=value)
    raise ConfigError(f"outliers must be an Outliers(...) or 'hampel' or 'zscore', got {value!r}")


def as_missing(value: object) -> MissingBars | None:
    """``MissingBars`` as given, or the one of a policy name (``"leave"``, ``"ffill"``, ``"drop"``)."""
    if value is None or isinstance(value, MissingBars):
        return value
    if value in ("leave", "ffill", "drop"):
        return MissingBars(value)
    raise ConfigError(f"missing must be a MissingBars(...) or 'leave', 'ffill' or 'drop', got {value!r}")


def as_features(value: object) -> Features | None:
    """``Features`` as given (a dict is refused: write ``Features(**that_dict)``)."""
    if value is None or isinstance(value, Features):
        return value
    raise ConfigError(f"features must be a Features(...) such as Features(rsi=(14,)), got {value!r}")


def check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum} (a number of bars), got {value!r}")
    return int(value)


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
