"""Edge test fixtures live in conftest_edge.py so tests/sample_app can use them too."""

from __future__ import annotations

from conftest_edge import *  # noqa: F403
