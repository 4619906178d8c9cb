"""Provider tests: make the replay helpers importable and keep retries fast."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # lets test modules import provider_replay
