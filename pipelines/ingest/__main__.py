"""`python -m pipelines.ingest --input … --output … [Beam flags]`: the job without the edgeloop CLI."""

from __future__ import annotations

import logging
import sys

from edgeloop.errors import EdgeloopError
from edgeloop.settings import setup_logging

from .job import run


def main() -> int:
    setup_logging()
    try:
        result = run(sys.argv[1:])
    except EdgeloopError as exc:
        logging.getLogger("pipelines.ingest").error("%s", exc)
        return 2
    logging.getLogger("pipelines.ingest").info("dataset: %s", result.dataset_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
