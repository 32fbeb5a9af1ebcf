"""Why the gate cannot judge a run (a failed verdict is a result, not an error).

EdgeloopError
└── GateError        a missing model, card or dataset, or a --force without a reason
"""

from __future__ import annotations

from edgeloop.errors import EdgeloopError


class GateError(EdgeloopError):
    """The gate cannot judge: a missing model, card or dataset, or a --force without a reason."""
