"""The errors ingest raises.

    EdgeloopError (edgeloop.errors)
    ├── IngestError              ingest cannot run as asked
    │   ├── InputNotFoundError   the input folder, bucket prefix or catalogue does not exist
    │   ├── EmptyInputError      the input holds no files
    │   ├── CatalogueError       a catalogue (CSV/JSONL of uri,label) row cannot be read
    │   └── CountMismatchError   the job lost or invented files (a bug: please report it)
    └── DatasetVersionError      a dataset version is taken, missing or unreadable
                                 (`edgeloop.dataset`: readers of dataset.json raise it too)

Each message names the offending value and what to do about it.
"""

from __future__ import annotations

from edgeloop.errors import EdgeloopError


class IngestError(EdgeloopError):
    """Ingest cannot run as asked."""


class InputNotFoundError(IngestError):
    """The input folder, bucket prefix or catalogue does not exist."""


class EmptyInputError(IngestError):
    """The input holds no files."""


class CatalogueError(IngestError):
    """A catalogue row cannot be read."""


class CountMismatchError(IngestError):
    """input != written + duplicates + conflicts + dead letters."""
