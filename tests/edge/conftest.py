"""Edge test fixtures live in conftest_edge.py so tests/sample_app can use them too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest_edge import *  # noqa: F403
