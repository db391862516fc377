"""The user-error hierarchy: every input a person can get wrong raises a subclass of UserError.

Owns: the one base class that the CLI (exit 2), the pages (a message, never a traceback) and the
tests catch, and its specific subclasses. Never imports anything from the project.

    UserError                 str(e) is a complete sentence that says what to change
    +-- SpecError             a network spec, a share link, a block field (also a ValueError)
    |   +-- BudgetError       a network over the server's cost budget (explorer.core.budget)
    +-- ConfigError           a training configuration, a CLI flag, a sweep file
    +-- DataError             a dataset, a data root, a typed path, an image folder, an upload
    +-- RunError              a run folder or checkpoint that cannot be read or used
    +-- QueueError            the job queue's database (locked, corrupt) or a refused job
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a person: the message says what to change. Never a traceback for these."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)

    @property
    def location(self) -> str:
        """Where in the input the problem is ('' when it is about the whole input)."""
        return ""

    def __str__(self) -> str:
        return self.message


class SpecError(UserError, ValueError):
    """A spec that cannot be used, with where and what to change.

    block_index/block_type/field locate the problem (None when it is about the whole spec).
    str(error) is a complete sentence meant for the user.
    """

    def __init__(self, message: str, *, block_index: int | None = None,
                 block_type: str | None = None, field: str | None = None):
        self.block_index = block_index
        self.block_type = block_type
        self.field = field
        super().__init__(message)
        self.args = (str(self),)

    @property
    def location(self) -> str:
        parts = []
        if self.block_index is not None:
            parts.append(f"block {self.block_index}" + (f" ({self.block_type})" if self.block_type else ""))
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message


class BudgetError(SpecError):
    """A network over the server's cost budget: which limit, the value, and what to change.

    limit: the budget's name (e.g. "macs"); value/maximum: the network's figure and the limit.
    """

    def __init__(self, message: str, *, limit: str, value: int, maximum: int, **where):
        self.limit = limit
        self.value = value
        self.maximum = maximum
        super().__init__(message, **where)


class ConfigError(UserError):
    """A training or sweep configuration, or a command-line flag, that cannot be used."""

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(message)


class DataError(UserError):
    """A dataset, data root, typed path, image folder or uploaded file that cannot be used."""

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(message)


class RunError(UserError):
    """A run folder, checkpoint or weights file that cannot be read or used."""


class QueueError(UserError):
    """The job queue refused a request, or its database is locked or damaged (the path is named)."""


__all__ = ["UserError", "SpecError", "BudgetError", "ConfigError", "DataError", "RunError", "QueueError"]
