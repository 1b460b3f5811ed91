"""Export planning: manifest.json -> what to put where on the output timeline.

Pure functions over data (no media, no files except :func:`load_manifest`), so every rule
about channel choice and alignment is unit-tested without PyAV.

Timeline rules (the capture contract): a packet's pts in a channel file is its capture-clock
time minus the channel's ``start_time``. Pauses and gaps are therefore holes in pts, not
squeezed out, and channels that started late carry a later ``start_time``. The export
timeline's origin is the earliest first frame among the channels that go into the muxed
output; each channel is placed at ``offset = start_time - origin`` seconds, so a packet
lands at ``pts + offset`` and every channel keeps its capture-time alignment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from ..capture import manifest as schema
from ..capture.manifest import MANIFEST_NAME, SUPPORTED_VERSIONS, parse_channel  # noqa: F401 - re-exported
from .errors import (
    ChannelNotStoredError,
    ManifestError,
    NothingStoredError,
    UnknownChannelError,
)

#: The capture stage's schema is the one contract (``reeldb.capture.manifest``); these names
#: are kept so export code and callers read naturally.
Channel = schema.ChannelManifest
Manifest = schema.SessionManifest


@dataclass(frozen=True)
class Placement:
    """A channel placed on the output timeline: its pts 0 sits at ``offset`` seconds."""

    channel: Channel
    offset: float

    @property
    def channel_id(self) -> str:
        return self.channel.channel_id


@dataclass(frozen=True)
class Hole:
    """A stretch of one channel with no media (timeline seconds); export fills it with silence
    (audio) or by holding the last frame (video: :func:`held_times`, from the media itself, so
    a stretch without frames that the manifest does not list is filled too)."""

    channel_id: str
    start: float
    end: float
    reason: str  # "pause" | "gap"


@dataclass(frozen=True)
class ExportPlan:
    """What :func:`reeldb.export.mux.export_session` will do, decided from the manifest alone.

    ``video`` is None for an audio-only export. ``raw`` lists every stored channel (each gets
    its own asset). ``origin`` is the capture-clock time of timeline 0; ``duration`` is the
    manifest's estimate (the muxer trusts the media where they differ).
    """

    session_id: str
    origin: float
    duration: float
    video: Placement | None
    audio: tuple[Placement, ...]
    holes: tuple[Hole, ...]
    raw: tuple[Channel, ...]
    ephemeral: tuple[str, ...]
    #: Seconds between the held frames that fill the video's holes (:func:`hold_interval`).
    hold_interval: float = 1 / 30

    @property
    def audio_only(self) -> bool:
        return self.video is None

    @property
    def video_channel_id(self) -> str | None:
        return self.video.channel_id if self.video else None

    @property
    def placements(self) -> tuple[Placement, ...]:
        return ((self.video,) if self.video else ()) + self.audio

    @property
    def transcode_video(self) -> bool:
        """Only H.264 is copied; anything else (VP8 from browsers) is transcoded to H.264."""
        return self.video is not None and (self.video.channel.codec or "h264").lower() != "h264"


# ---------------------------------------------------------------- manifest (capture's schema)


def parse_manifest(data: Mapping) -> Manifest:
    """Validate a decoded manifest.json with capture's parser; errors become export's
    :class:`ManifestError` (also a ``reeldb.capture.manifest.ManifestError``)."""
    try:
        return schema.parse_manifest(data)
    except schema.ManifestError as exc:
        raise ManifestError(str(exc)) from None


def load_manifest(session_dir: Path) -> Manifest:
    """Read ``<session_dir>/manifest.json`` (the I/O edge of this module)."""
    try:
        return schema.load_manifest(session_dir)
    except schema.ManifestError as exc:
        raise ManifestError(str(exc)) from None


def on_sender_clock(ch: Channel) -> Channel:
    """The channel with its times moved onto the sender's clock.

    A file whose first frames waited in vain for a sender report is timed by arrival
    (``clock: arrival``); capture records ``rtcp_offset`` once a report comes, and adding it
    lines the channel up with the channels timed by reports. Pauses are server times, close to
    arrival time, so they move with it.
    """
    off = ch.rtcp_offset
    if ch.clock != "arrival" or not off:
        return ch

    def mv(t):
        return None if t is None else t + off

    return replace(
        ch,
        start_time=mv(ch.start_time),
        first_frame_at=mv(ch.first_frame_at),
        last_frame_at=mv(ch.last_frame_at),
        pauses=[[mv(a), mv(b)] for a, b in ch.pauses],
        gaps=[[mv(a), mv(b)] for a, b in ch.gaps],
        rtcp_offset=0.0,
    )


def capture_warnings(ch: Channel) -> list[str]:
    """What capture noted about a stored channel, said in export's warnings."""
    out = []
    if ch.error:
        out.append(f"channel {ch.channel_id}: capture reported: {ch.error}")
    if ch.dropped_frames:
        out.append(f"channel {ch.channel_id}: capture dropped {ch.dropped_frames} frames (waiting for a keyframe)")
    if ch.dts_clamps:
        out.append(f"channel {ch.channel_id}: capture moved {ch.dts_clamps} timestamps forward to keep them increasing")
    return out


# ---------------------------------------------------------------- holding the picture

#: A stretch longer than this without a video frame is a hole: the export holds the picture
#: across it. Shorter ones are a slow screen (a static page sends a few frames a second).
MAX_FRAME_GAP = 0.25
#: Held frames come at the recording's own frame rate, within these bounds: never sparser than
#: 10 a second, so an exact clip that starts or ends in a hold is cut within a tenth of a
#: second; never denser than 30 (each held frame is a tiny x264 P-frame, but still a frame).
HOLD_INTERVALS = (1 / 30, 0.1)
#: A long hold restarts with a keyframe this often, so it segments and seeks like the
#: recording (HLS cuts at keyframes; a clip inside it decodes from the one before it).
HOLD_KEYFRAME_SECONDS = 4.0


def hold_interval(ch: Channel | None) -> float:
    """Seconds between held frames for a video channel, from the manifest alone (the muxer
    prefers the interval it measures on the frames, :func:`snap_interval`): its average frame
    interval while it sent frames (its frames over its first-to-last time minus its holes)."""
    if ch is None or ch.frames < 2 or ch.first_frame_at is None or ch.last_frame_at is None:
        return HOLD_INTERVALS[0]
    active = ch.last_frame_at - ch.first_frame_at
    for start, stop in list(ch.pauses) + list(ch.gaps):
        stop = ch.last_frame_at if stop is None else min(stop, ch.last_frame_at)
        active -= max(0.0, stop - max(start, ch.first_frame_at))
    return snap_interval(active / (ch.frames - 1) if active > 0 else None)


def snap_interval(usual: float | None) -> float:
    """The held frames' interval for a recording whose frames usually come ``usual`` seconds
    apart (None: unknown): a whole frame rate at or below the recording's, within
    :data:`HOLD_INTERVALS`. Never denser than the recorded frames: a reader that counts in
    ticks of the stream's frame rate (ffmpeg does) would otherwise see two frames on one tick."""
    lo, hi = HOLD_INTERVALS
    if not usual or usual <= 0:
        return lo
    return min(hi, max(lo, 1 / whole_rate(usual)))


def whole_rate(usual: float) -> int:
    """The whole frame rate of frames that usually come ``usual`` seconds apart: the nearest
    one when they are close (66-67 ms, the jitter of a millisecond clock, is 15 fps; 29.97 fps
    is 30), else the one below (a slow screen at 4.6 fps is 4)."""
    fps = 1 / usual
    near = round(fps)
    return max(1, near if abs(fps - near) < 0.25 else math.floor(fps))


def held_times(last: float | None, nxt: float | None, upto: float, interval: float,
               after: float | None = None) -> list[float]:
    """Timeline seconds of the held frames that fill a stretch without video frames.

    ``last``: the last real frame before the stretch (None: the video has not begun, so the
    hold starts at 0 with its first picture); ``nxt``: the next real frame (None: the video
    ended, the hold runs on to ``upto``, the end of the recording so far). Frames come every
    ``interval`` after ``last``, stop an interval before ``nxt`` (no two frames closer than
    the recording's own) and before ``upto``,
    and only where the stretch is a hole (longer than :data:`MAX_FRAME_GAP`). ``after``: the
    last held frame already written (a hold made block by block); only later ones are given.
    """
    base = 0.0 if last is None else last
    first_k = 0 if last is None else 1
    if (nxt if nxt is not None else upto) - base <= MAX_FRAME_GAP:
        return []
    stop = upto if nxt is None else min(upto, nxt - interval + 1e-6)
    k = first_k
    if after is not None and after >= base:
        k = max(k, int((after - base) / interval + 1e-9) + 1)
    out = []
    while base + k * interval < stop - 1e-9:
        out.append(base + k * interval)
        k += 1
    return out


def pause_warnings(ch: Channel) -> list[str]:
    """What is odd about a channel's pauses, said in export's warnings (the export goes on:
    its frames, not its pauses, decide what is held)."""
    out = []
    for start, stop in ch.pauses:
        if stop is None:
            out.append(f"channel {ch.channel_id}: a pause at {start:.3f} has no resume; held to the end")
        elif stop < start:
            out.append(f"channel {ch.channel_id}: a resume at {stop:.3f} without a pause before it; ignored")
        elif ch.last_frame_at is not None and stop > ch.last_frame_at and start < ch.last_frame_at:
            out.append(f"channel {ch.channel_id}: a pause at {start:.3f} lasts past the channel's last frame")
        elif ch.last_frame_at is not None and start >= ch.last_frame_at:
            out.append(f"channel {ch.channel_id}: a pause at {start:.3f} begins after the channel's last frame")
    return out


# ---------------------------------------------------------------- planning


def choose_video(manifest: Manifest, video_channel_id: str | None = None) -> Channel | None:
    """The display that goes into the muxed video.

    Explicit ``video_channel_id`` wins (and must be a stored video channel); else the channel
    capture flagged ``is_primary`` if it is stored; else the first stored display in manifest
    order; else the first stored video (a camera); else None (audio-only).
    """
    if video_channel_id is not None:
        ch = manifest.find(video_channel_id)
        if ch is None:
            known = ", ".join(c.channel_id for c in manifest.channels if c.kind == "video") or "none"
            raise UnknownChannelError(
                f"session {manifest.session_id or '?'} has no channel {video_channel_id!r} "
                f"(video channels: {known})",
                video_channel_id,
            )
        if ch.kind != "video":
            raise UnknownChannelError(
                f"channel {video_channel_id!r} is an {ch.kind} channel, not a video channel",
                video_channel_id,
            )
        if not ch.has_media:
            raise ChannelNotStoredError(
                f"channel {video_channel_id!r} was not stored (store: false), so it cannot be exported",
                video_channel_id,
            )
        return ch
    stored_video = [c for c in manifest.channels if c.kind == "video" and c.has_media]
    for ch in stored_video:
        if ch.is_primary:
            return ch
    displays = [c for c in stored_video if c.category == "display"]
    return (displays or stored_video or [None])[0]


def _holes(ch: Channel, origin: float, end: float) -> list[Hole]:
    out: list[Hole] = []
    for start, stop in ch.pauses:
        stop_at = stop if stop is not None else (ch.last_frame_at if ch.last_frame_at is not None else origin + end)
        if stop_at > start:
            out.append(Hole(ch.channel_id, start - origin, stop_at - origin, "pause"))
    for start, stop in ch.gaps:
        if stop > start:
            out.append(Hole(ch.channel_id, start - origin, stop - origin, "gap"))
    return out


def make_plan(manifest: Manifest, video_channel_id: str | None = None) -> ExportPlan:
    """Decide the export from the manifest alone. Raises the typed errors of
    :mod:`reeldb.export.errors` for an unknown/unstored ``video_channel_id`` or a session
    with nothing stored."""
    stored = tuple(on_sender_clock(c) for c in manifest.channels if c.has_media)
    ephemeral = tuple(c.channel_id for c in manifest.channels if not c.has_media)
    if not stored:
        listed = ", ".join(c.channel_id for c in manifest.channels) or "no channels"
        raise NothingStoredError(
            f"session {manifest.session_id or '?'} stored no channel ({listed}; none has store: true "
            "and a file), so there is nothing to export"
        )
    video = choose_video(manifest, video_channel_id)
    video = next(c for c in stored if c.channel_id == video.channel_id) if video else None
    audio = [c for c in stored if c.kind == "audio"]
    included = ([video] if video else []) + audio
    origin = min(c.first_at for c in included) if included else min(c.first_at for c in stored)
    ends = [c.last_frame_at for c in included if c.last_frame_at is not None]
    duration = max(0.0, max(ends) - origin) if ends else 0.0
    holes: list[Hole] = []
    for ch in included:
        holes.extend(_holes(ch, origin, duration))
    return ExportPlan(
        session_id=manifest.session_id,
        origin=origin,
        duration=duration,
        video=Placement(video, video.start_time - origin) if video else None,
        audio=tuple(Placement(c, c.start_time - origin) for c in audio),
        holes=tuple(sorted(holes, key=lambda h: (h.start, h.channel_id))),
        raw=stored,
        ephemeral=ephemeral,
        hold_interval=hold_interval(video),
    )


def realign(plan: ExportPlan, first_pts: Mapping[str, float], last_end: Mapping[str, float] | None = None) -> ExportPlan:
    """Correct the plan with what the files really hold.

    ``first_pts``: channel id -> pts (s) of its first packet; ``last_end``: channel id -> pts (s)
    where its media ends. The manifest's ``first_frame_at`` may be missing or a little off (a
    crash before the manifest was rewritten); the media's own timestamps are the truth, so the
    origin moves to the earliest real first frame and offsets/holes/duration follow. Offsets
    keep the capture-clock relation ``offset = start_time - origin``.
    """
    firsts = [p.channel.start_time + first_pts[p.channel_id] for p in plan.placements if p.channel_id in first_pts]
    if not firsts:
        return plan
    origin = min(firsts)
    shift = plan.origin - origin  # add to old timeline times
    video = replace(plan.video, offset=plan.video.channel.start_time - origin) if plan.video else None
    audio = tuple(replace(p, offset=p.channel.start_time - origin) for p in plan.audio)
    holes = tuple(replace(h, start=h.start + shift, end=h.end + shift) for h in plan.holes)
    duration = plan.duration + shift
    if last_end:
        ends = [p.channel.start_time + last_end[p.channel_id] - origin for p in plan.placements if p.channel_id in last_end]
        if ends:
            duration = max(ends)
    return replace(plan, origin=origin, video=video, audio=audio, holes=holes, duration=max(0.0, duration))
