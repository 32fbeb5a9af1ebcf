"""The errors edgeloop raises for a user's mistake or a broken environment.

    EdgeloopError            every error here; the CLI prints its message, never a traceback
    ├── ConfigError          a setting or option has a value that cannot work
    ├── StorageError         a URI cannot be read or written
    │   ├── UnsupportedScheme    the URI's scheme is not one we speak
    │   ├── NotFound             the object, folder or bucket does not exist
    │   ├── PreconditionFailed   someone else wrote the object first
    │   └── NotPlainFile         a file that must be a plain file is a link, device or FIFO
    ├── WarehouseError       the warehouse refused a table, a row or a query
    ├── CardError            a folder's model_card.json is missing, not JSON or not a model card
    └── MissingExtra         an optional dependency is not installed

Each message names the offending value and says what to do about it.
"""

from __future__ import annotations


class EdgeloopError(Exception):
    """Base class: a problem a person can fix, described in the message."""


class ConfigError(EdgeloopError):
    """A setting or option has a value that cannot work."""


class StorageError(EdgeloopError):
    """A URI cannot be read or written."""


class UnsupportedScheme(StorageError):
    """The URI's scheme is not one storage speaks."""


class NotFound(StorageError):
    """The object, folder or bucket does not exist."""


class PreconditionFailed(StorageError):
    """The object changed (or appeared) between our read and our write."""


class NotPlainFile(StorageError):
    """A file that must be a regular file of its own is a symlink, a hard link, a device or a FIFO."""


class WarehouseError(EdgeloopError):
    """The warehouse refused a table definition, a row or a query."""


class CardError(EdgeloopError):
    """A folder's model_card.json is missing, is not JSON or does not match the card schema."""


class MissingExtra(EdgeloopError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module!r} is not installed; install it with `uv sync --extra {extra}` "
            f"(or `pip install 'edgeloop[{extra}]'`)"
        )
        self.module = module
        self.extra = extra
