"""Every exception the workbench raises on purpose, in one place.

The command line catches :class:`AuditError` and prints its message as one line; any
other exception is a bug.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class: a problem the user can act on, described in one line."""


class DataError(AuditError):
    """Input data is missing, malformed or inconsistent.

    Parameters
    ----------
    message
        What is wrong, in plain words.
    file
        The file, table or URL the data came from, if known.
    field
        The column concerned, if known.
    row
        The row number (0-based in the source) or key concerned, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        row: int | str | None = None,
    ) -> None:
        self.file = file
        self.field = field
        self.row = row
        where = [
            f"{label} {value}"
            for label, value in (("file", file), ("field", field), ("row", row))
            if value is not None
        ]
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class SchemaError(DataError):
    """A table or column the workbench needs is missing or has the wrong type."""


class ConfigError(AuditError):
    """A parameter file, option or setting is invalid."""


class PermissionDenied(AuditError):
    """The acting user's role or scope does not allow the action."""


class IllegalTransition(AuditError):
    """The task's state does not allow the requested action."""


class ConflictError(AuditError):
    """Someone else changed the record first (optimistic locking); reload and retry."""


class NotFound(AuditError):
    """The requested user, task, run or file does not exist."""
