"""The exceptions mnistlab raises for problems a user can fix.

Every user-facing failure is one of these: the CLI prints its message on one line and exits with
its `exit_code` (2 for bad input or usage, 1 for failures of the outside world such as a download).
"""

from __future__ import annotations


class MnistlabError(Exception):
    """Base class: a problem with a one-line explanation for the user."""

    exit_code = 1


class UsageError(MnistlabError, ValueError):
    """A bad option or argument value."""

    exit_code = 2


class DataError(MnistlabError, ValueError):
    """A data file or folder that cannot be used as it is; the message names it."""

    exit_code = 2


class DatasetNotFoundError(DataError):
    """A named dataset that is not present where we looked (and may not be downloaded)."""


class DownloadError(MnistlabError):
    """Every mirror failed; the message lists what each one answered."""

    exit_code = 1
