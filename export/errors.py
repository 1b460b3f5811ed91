"""Typed errors of the export stage.

The server's single exception handler turns these into the API's error envelope, so each
class says *who* is at fault: the caller (bad channel id, nothing stored: a 4xx) or the
session's media (damaged file: the export job fails with the message). Each class has a
machine-readable ``code`` the handler maps to a status; messages name channels and file
names, never the server's folders.
"""

from __future__ import annotations

from pathlib import Path

from ..capture import manifest as _schema


class ExportError(Exception):
    """Base class: the export could not be made; ``str(err)`` is a message for users."""

    code = "EXPORT_FAILED"


class ManifestError(ExportError, _schema.ManifestError):
    """manifest.json is missing or does not follow the capture contract (capture's schema
    error, seen from export: catch either class)."""

    code = "MANIFEST_INVALID"


class NothingStoredError(ExportError):
    """No channel of the session has ``store: true``: there is nothing to export."""

    code = "NOTHING_STORED"


class UnknownChannelError(ExportError):
    """``video_channel_id`` names no channel of the session (or a channel that is not video)."""

    code = "UNKNOWN_CHANNEL"

    def __init__(self, message: str, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ChannelNotStoredError(ExportError):
    """``video_channel_id`` names an ephemeral (``store: false``) channel: it has no media."""

    code = "CHANNEL_NOT_STORED"

    def __init__(self, message: str, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ChannelFileError(ExportError):
    """A stored channel's file is missing, empty, corrupt or truncated beyond use."""

    code = "CHANNEL_FILE_INVALID"

    def __init__(self, message: str, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ExportCancelled(ExportError):
    """The progress callback raised: the export stopped and removed its partial outputs."""

    code = "EXPORT_CANCELLED"


def describe_error(exc: BaseException) -> str:
    """An FFmpeg/OS error as a message for users: its reason and the file's name, without the
    server's folders (FFmpeg puts the full path of the file in its messages)."""
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    name = getattr(exc, "filename", None)
    return f"{reason} ({Path(str(name)).name})" if name else str(reason)
