"""Errors a user can act on: each says what was wrong, with which input, and what to do."""
from __future__ import annotations


class V2MError(Exception):
    """Base class of every error the CLI prints as one line instead of a traceback."""

    exit_code = 1


class InputError(V2MError):
    """The user's input (a video, a path, a table) is missing or unusable."""

    exit_code = 2


class ConfigError(V2MError):
    """A config file, a `--set` option or a parameter is wrong."""

    exit_code = 2


class AssetMissing(V2MError):
    """A weight file the run needs is absent or does not match its checksum."""

    exit_code = 3


class StageFailed(V2MError):
    """A stage raised; the message names the stage and the video."""

    exit_code = 4
