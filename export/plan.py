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

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import (
    ChannelNotStoredError,
    ManifestError,
    NothingStoredError,
    UnknownChannelError,
)

MANIFEST_NAME = "manifest.json"
SUPPORTED_VERSIONS = (1,)


@dataclass(frozen=True)
class Channel:
    """One channel as capture described it. Unknown manifest fields land in ``extra``."""

    channel_id: str
    category: str  # display | mic | system_audio (tolerated: anything)
    kind: str  # video | audio
    store: bool
    file: str | None = None
    codec: str | None = None
    container: str | None = None
    start_time: float = 0.0
    clock: str | None = None
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    audio_channels: int | None = None
    pauses: tuple[tuple[float, float | None], ...] = ()
    gaps: tuple[tuple[float, float], ...] = ()
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    frames: int | None = None
    complete: bool | None = None
    is_primary: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def has_media(self) -> bool:
        """Stored with a file: the only channels export reads."""
        return self.store and bool(self.file)

    @property
    def first_at(self) -> float:
        """Capture time of the first frame (falls back to ``start_time``)."""
        return self.first_frame_at if self.first_frame_at is not None else self.start_time


@dataclass(frozen=True)
class Manifest:
    version: int
    session_id: str
    created_at: float | None
    channels: tuple[Channel, ...]
    primary_video_channel_id: str | None = None

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.channel_id == channel_id), None)


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
    (audio) or by holding the last frame (video)."""

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


# ---------------------------------------------------------------- manifest parsing


def _num(value: Any, name: str, channel_id: str, *, optional: bool = True) -> float | None:
    if value is None:
        if optional:
            return None
        raise ManifestError(f"channel {channel_id!r}: field {name!r} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ManifestError(f"channel {channel_id!r}: field {name!r} must be a number, got {value!r}")
    return float(value)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _intervals(raw: Any, name: str, channel_id: str, open_end: bool) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ManifestError(f"channel {channel_id!r}: {name!r} must be a list of [start, end]")
    out = []
    for item in raw:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ManifestError(f"channel {channel_id!r}: bad {name!r} entry {item!r}")
        start = _num(item[0], name, channel_id, optional=False)
        end = _num(item[1], name, channel_id, optional=open_end)
        out.append((start, end))
    return tuple(out)


_KNOWN = {
    "channel_id", "category", "kind", "store", "file", "codec", "container", "start_time",
    "clock", "width", "height", "sample_rate", "audio_channels", "pauses", "gaps",
    "first_frame_at", "last_frame_at", "frames", "complete", "is_primary", "primary",
}  # fmt: skip


def parse_channel(raw: Mapping[str, Any]) -> Channel:
    if not isinstance(raw, Mapping):
        raise ManifestError(f"channel entry must be an object, got {raw!r}")
    cid = raw.get("channel_id")
    if not isinstance(cid, str) or not cid:
        raise ManifestError(f"channel entry without a channel_id: {dict(raw)!r}")
    category = raw.get("category") or cid.split(":", 1)[0]
    kind = raw.get("kind") or ("video" if category in ("display", "screen", "camera") else "audio")
    if kind not in ("video", "audio"):
        raise ManifestError(f"channel {cid!r}: kind must be 'video' or 'audio', got {kind!r}")
    store = bool(raw.get("store", False))
    file = raw.get("file")
    if file is not None and (not isinstance(file, str) or Path(file).is_absolute() or ".." in Path(file).parts):
        # Export reads only the session folder: a manifest cannot point outside it.
        raise ManifestError(f"channel {cid!r}: file must be a relative name inside the session, got {file!r}")
    start = _num(raw.get("start_time"), "start_time", cid, optional=not (store and file))
    return Channel(
        channel_id=cid,
        category=str(category),
        kind=kind,
        store=store,
        file=file or None,
        codec=(str(raw["codec"]).lower() if raw.get("codec") else None),
        container=raw.get("container"),
        start_time=start if start is not None else 0.0,
        clock=raw.get("clock"),
        width=_int(raw.get("width")),
        height=_int(raw.get("height")),
        sample_rate=_int(raw.get("sample_rate")),
        audio_channels=_int(raw.get("audio_channels")),
        pauses=_intervals(raw.get("pauses"), "pauses", cid, open_end=True),
        gaps=_intervals(raw.get("gaps"), "gaps", cid, open_end=False),
        first_frame_at=_num(raw.get("first_frame_at"), "first_frame_at", cid),
        last_frame_at=_num(raw.get("last_frame_at"), "last_frame_at", cid),
        frames=_int(raw.get("frames")),
        complete=raw.get("complete") if isinstance(raw.get("complete"), bool) else None,
        is_primary=bool(raw.get("is_primary") or raw.get("primary")),
        extra={k: v for k, v in raw.items() if k not in _KNOWN},
    )


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    """Validate a decoded manifest.json (extra fields are tolerated and kept)."""
    if not isinstance(data, Mapping):
        raise ManifestError("manifest.json must hold a JSON object")
    version = data.get("version", 1)
    if version not in SUPPORTED_VERSIONS:
        raise ManifestError(f"manifest version {version!r} is not supported (known: {SUPPORTED_VERSIONS})")
    channels_raw = data.get("channels")
    if not isinstance(channels_raw, list):
        raise ManifestError("manifest.json has no 'channels' list")
    channels = tuple(parse_channel(c) for c in channels_raw)
    ids = [c.channel_id for c in channels]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ManifestError(f"manifest lists channel(s) more than once: {', '.join(dupes)}")
    primary = data.get("primary_video_channel_id")
    return Manifest(
        version=int(version),
        session_id=str(data.get("session_id") or ""),
        created_at=data.get("created_at") if isinstance(data.get("created_at"), (int, float)) else None,
        channels=channels,
        primary_video_channel_id=primary if isinstance(primary, str) and primary else None,
    )


def load_manifest(session_dir: Path) -> Manifest:
    """Read ``<session_dir>/manifest.json`` (the I/O edge of this module)."""
    path = Path(session_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"session folder {session_dir} has no {MANIFEST_NAME}") from None
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    return parse_manifest(data)


# ---------------------------------------------------------------- planning


def choose_video(manifest: Manifest, video_channel_id: str | None = None) -> Channel | None:
    """The display that goes into the muxed video.

    Explicit ``video_channel_id`` wins (and must be a stored video channel); else the
    manifest's primary (``primary_video_channel_id`` or a channel flagged ``is_primary``) if it
    is stored; else the first stored display in manifest order; else None (audio-only).
    """
    if video_channel_id is not None:
        ch = manifest.channel(video_channel_id)
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
    primary_ids = {manifest.primary_video_channel_id} | {c.channel_id for c in manifest.channels if c.is_primary}
    for ch in stored_video:
        if ch.channel_id in primary_ids:
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
    stored = tuple(c for c in manifest.channels if c.has_media)
    ephemeral = tuple(c.channel_id for c in manifest.channels if not c.has_media)
    if not stored:
        listed = ", ".join(c.channel_id for c in manifest.channels) or "no channels"
        raise NothingStoredError(
            f"session {manifest.session_id or '?'} stored no channel ({listed}; none has store: true "
            "and a file), so there is nothing to export"
        )
    video = choose_video(manifest, video_channel_id)
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


def stored_channels(manifest: Manifest) -> Iterable[Channel]:
    return (c for c in manifest.channels if c.has_media)
