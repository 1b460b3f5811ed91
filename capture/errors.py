"""What an ingest session can refuse, as exceptions: a leaf module (no aiortc, no PyAV), so that
the server's error mapping, and the processes that only need it (a render's child), do not import
the WebRTC stack to name them. ``reeldb.capture.ingest`` raises them and re-exports them.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of the errors an :class:`IngestSession` raises.

    ``code`` is a stable machine-readable name the server maps to a response; ``str(err)`` is a
    message for users (it names channels and mids, never a file system path).
    """

    code = "INGEST_FAILED"


class ChannelSpecError(IngestError):
    """The session's channel list is unusable (bad id, kind that does not fit the id, duplicate)."""

    code = "CHANNEL_INVALID"


class MalformedOfferError(IngestError):
    """The SDP is not a parsable WebRTC offer with audio/video m-lines."""

    code = "OFFER_INVALID"


class UnknownChannelError(IngestError):
    """A channel id is not one of the session's channels."""

    code = "UNKNOWN_CHANNEL"


class TrackMappingError(IngestError):
    """The ``tracks`` mapping does not fit the offer (unknown mid, unmapped m-line, kind mismatch, duplicate)."""

    code = "INVALID_TRACKS"


class TooManyTracksError(IngestError):
    """The offer carries more media tracks than the session has channels."""

    code = "TOO_MANY_TRACKS"


class NoCommonCodecError(IngestError):
    """The offer has no codec we can store without re-encoding (H.264, VP8, Opus)."""

    code = "NO_COMMON_CODEC"


class SessionClosedError(IngestError):
    """The session was closed."""

    code = "SESSION_CLOSED"
