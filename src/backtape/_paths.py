"""Paths as users write them: ``~`` and ``$VARS`` expanded everywhere a path is accepted."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def expand_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~``/``~user`` and ``$VAR``/``${VAR}`` expanded (relative paths stay relative).

    >>> expand_path("~/data").is_absolute()
    True
    """
    return Path(os.path.expanduser(os.path.expandvars(os.fspath(path))))


def make_folder(path: Path, what: str) -> Path:
    """``path`` as an existing folder (created with its parents); a file in its place or a folder
    that cannot be created is a ``ConfigError`` naming ``what`` (e.g. ``"cache folder"``)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot create it ({exc.strerror}); "
                          "give a writable folder") from exc
    return path
