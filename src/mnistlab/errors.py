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


class Interrupted(MnistlabError):
    """Ctrl-C or SIGTERM stopped the work between two of its steps; the message says what was
    kept (a checkpoint, the trials already finished)."""

    exit_code = 130


class TrainingInterrupted(Interrupted):
    """Ctrl-C during fit; a checkpoint was saved if the trainer had a checkpoint path."""


class SweepInterrupted(Interrupted):
    """Ctrl-C during a sweep; finished trials are kept and a rerun continues with the rest."""


class RunDiverged(MnistlabError):
    """Training stopped at a non-finite loss; the last finite weights were saved."""

    exit_code = 1
