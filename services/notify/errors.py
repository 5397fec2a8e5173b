"""The notify service's own exceptions, so the gRPC layer and the CLI can map them
to status codes and one-line reasons without knowing where they came from."""

from __future__ import annotations


class NotifyServiceError(Exception):
    """Base of the failures this service reports to its callers."""


class InvalidRequest(NotifyServiceError, ValueError):
    """The caller sent something we will never accept as is (gRPC INVALID_ARGUMENT).

    Retrying the same request cannot succeed, so callers should mark it failed.
    """


class MessageNotFound(NotifyServiceError, LookupError):
    """No message has the given id (gRPC NOT_FOUND)."""


class RetryRefused(NotifyServiceError):
    """An operator asked to retry a message that must not be sent again (delivered, or in flight)."""
