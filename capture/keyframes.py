"""Forward a peer's keyframe requests (RTCP PLI/FIR) to a track that encodes its own video.

aiortc handles PLI/FIR inside ``RTCRtpSender._handle_rtcp_packet`` by calling
``self._send_keyframe()``, which only flags *aiortc's* encoder. Tracks that hand over encoded
packets (``device_tracks.ScreenTrack``) never see that flag, so this module wraps the sender's
``_send_keyframe`` on the one sender instance: the original still runs, then the track's
``request_keyframe()``.

What it relies on (aiortc 1.16, checked here at import): ``RTCRtpSender`` has a method
``_send_keyframe(self)`` and calls it by attribute lookup on the instance for every PLI and FIR.
This is the one place the recorder touches a private aiortc name.
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpSender

if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):  # pragma: no cover - an aiortc upgrade
    raise ImportError("aiortc.RTCRtpSender._send_keyframe is gone: capture/keyframes.py needs updating")


def forward_keyframe_requests(sender: RTCRtpSender, track: Any) -> None:
    """Make PLI/FIR received by ``sender`` call ``track.request_keyframe()``."""
    original = sender._send_keyframe

    def _send_keyframe() -> None:
        original()
        track.request_keyframe()

    sender._send_keyframe = _send_keyframe  # type: ignore[method-assign]
