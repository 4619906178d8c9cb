"""Shared by every test folder: the helpers next to this file (``_peers``) are importable."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
