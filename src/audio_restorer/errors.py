"""Typed exceptions for Audio Restorer.

One root (:class:`AudioRestorerError`) so callers (CLI, GUI) can catch everything the
library raises on purpose and show its message to the user, while real bugs still surface as
ordinary Python exceptions. Messages name the file (where there is one) and the rule that was
broken, with the value received.
"""

from __future__ import annotations

from os import PathLike


class AudioRestorerError(Exception):
    """Root of every error this package raises deliberately."""


class ParameterError(AudioRestorerError, ValueError):
    """A parameter, option or argument is out of range or of the wrong kind."""


class StageNotFoundError(ParameterError, KeyError):
    """No stage is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PresetError(AudioRestorerError):
    """A preset file is missing, malformed, or names unknown stages or parameters."""


class AudioFileError(AudioRestorerError):
    """A problem with one audio file; the message always names the file."""

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class UnsupportedFormatError(AudioFileError):
    """The file's container or codec cannot be read or written."""


class CorruptFileError(AudioFileError):
    """The file could not be decoded (truncated, damaged, or not audio at all)."""


class EmptyAudioError(AudioFileError):
    """The file holds no audio frames."""


class InvalidAudioError(AudioFileError):
    """The samples themselves are unusable (NaN/Inf, too many channels, odd rate)."""


class OutputError(AudioFileError):
    """The output cannot be written: unwritable folder, same path as the input, disk full."""


class StageError(AudioRestorerError):
    """A stage failed while processing; wraps the underlying cause with the stage name."""


class ModelLoadingError(AudioRestorerError):
    """A model's weights are missing, corrupt or do not match their checksum."""


class Cancelled(AudioRestorerError):
    """Raised inside a run when its :class:`~audio_restorer.pipeline.cancel.CancelToken` fired."""
