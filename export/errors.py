"""Typed errors of the export stage.

The server's single exception handler turns these into the API's error envelope, so each
class says *who* is at fault: the caller (bad channel id, nothing stored: a 4xx) or the
session's media (damaged file: the export job fails with the message).
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class: the export could not be made; ``str(err)`` is a message for users."""


class ManifestError(ExportError):
    """manifest.json is missing or does not follow the capture contract."""


class NothingStoredError(ExportError):
    """No channel of the session has ``store: true``: there is nothing to export."""


class UnknownChannelError(ExportError):
    """``video_channel_id`` names no channel of the session (or a channel that is not video)."""

    def __init__(self, message: str, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ChannelNotStoredError(ExportError):
    """``video_channel_id`` names an ephemeral (``store: false``) channel: it has no media."""

    def __init__(self, message: str, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ChannelFileError(ExportError):
    """A stored channel's file is missing, empty, corrupt or truncated beyond use."""

    def __init__(self, message: str, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ExportCancelled(ExportError):
    """The progress callback raised: the export stopped and removed its partial outputs."""
