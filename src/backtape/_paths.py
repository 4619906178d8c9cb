"""Paths as users write them: ``~`` and ``$VARS`` expanded everywhere a path is accepted."""

from __future__ import annotations

import os
from pathlib import Path


def expand_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~``/``~user`` and ``$VAR``/``${VAR}`` expanded (relative paths stay relative).

    >>> expand_path("~/data").is_absolute()
    True
    """
    return Path(os.path.expanduser(os.path.expandvars(os.fspath(path))))
