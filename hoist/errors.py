"""One exception hierarchy for all of hoist.

Library code raises these; the API layer maps ``status`` to an HTTP status code and the
CLI maps ``exit_code`` to a process exit code. Nothing else in hoist decides how an
error is shown, so the mapping lives in exactly one place per edge.
"""
from __future__ import annotations


class HoistError(Exception):
    """Base class. ``status`` is the HTTP status, ``exit_code`` the CLI exit code."""

    status: int = 500
    exit_code: int = 125

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.__class__.__name__

    def __str__(self) -> str:
        return self.message


class InvalidArgument(HoistError):
    """The caller asked for something malformed (bad flag value, bad reference...)."""

    status = 400


class NotFound(HoistError):
    status = 404


class Conflict(HoistError):
    """The request is well formed but conflicts with current state (in use, exists)."""

    status = 409


class InvalidContent(HoistError):
    """Input content (archive, manifest, layer, JSON) is corrupt, hostile or malformed."""

    status = 400


class DigestMismatch(InvalidContent):
    pass


class SizeLimitExceeded(InvalidContent):
    pass


class UnsafeArchive(InvalidContent):
    """An archive entry tried to escape its root or carried something we refuse."""


class Unavailable(HoistError):
    """A required component (daemon, kernel feature, external tool) is not available."""

    status = 503


class CannotExecute(HoistError):
    exit_code = 126


class CommandNotFound(HoistError):
    exit_code = 127


class Unauthorized(HoistError):
    """A registry refused our credentials (or we had none); message as Docker prints it."""

    status = 401
    exit_code = 1


class RegistryError(HoistError):
    """A registry answered with an error we cannot recover from (or did not answer)."""

    status = 500
    exit_code = 1
