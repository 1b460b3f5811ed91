"""Media sources for the recorder: test patterns, media files, (optionally) real devices.

``REELDB_CAPTURE_SOURCES`` (read by the recorder's ``main()``, not here) is a JSON object
mapping channel ids to sources:

- ``"pattern:tone:440"`` (or ``pattern:tone:440:0.3`` for amplitude): a stereo sine, 48 kHz.
- ``"pattern:silence"``: digital silence.
- ``"pattern:bars"`` (or ``pattern:bars:1280x720@30``): moving colour bars.
- ``"x11:<display>"`` / ``"x11:<display>@x,y,WxH"``: an X11 screen (or that rectangle of it),
  grabbed with ``x11grab`` and encoded here (``device_tracks.ScreenTrack``).
- ``"pulse:@DEFAULT_SOURCE@"`` / ``"pulse:@DEFAULT_MONITOR@"`` / ``"pulse:<source name>"``: a
  PulseAudio/PipeWire source (``device_tracks.PulseTrack``); see ``devices.py``.
- a path: a media file, played once in real time. Pre-encoded H.264 (Annex-B, e.g. MPEG-TS or a
  raw ``.h264``), VP8 (``.webm``/``.ivf``) and Opus (``.ogg``/``.webm``) are relayed without
  re-encoding; anything else is decoded and encoded by aiortc. MP4/MOV hold H.264 as
  length-prefixed AVCC, which aiortc's packetizer does not understand, so they are re-encoded.

Why real time and once: a file stands in for a screen or a microphone, which produce media at
the speed of the clock and then stop.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Optional

import av
import numpy as np
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from . import manifest

if TYPE_CHECKING:
    from .device_tracks import EncoderSettings

AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
RELAY_VIDEO = {"h264", "vp8"}
RELAY_AUDIO = {"opus"}
AVCC_CONTAINERS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}


class SourceError(Exception):
    """A source spec is invalid or its media cannot be opened."""


@dataclass(frozen=True)
class DeclaredChannel:
    """A channel the recorder offers (``getChannels``)."""

    channel_id: str
    name: str
    type: str  # "audio" | "video"
    is_default: bool = True

    def to_dict(self) -> dict:
        return {"channel_id": self.channel_id, "name": self.name, "type": self.type, "is_default": self.is_default}


def kind_of(channel_id: str) -> str:
    """The manifest's channel-id rule (``display:*``/``screen:*``/``camera:*`` are video); an id
    outside those rules (a source map may name anything) counts as audio."""
    try:
        return manifest.kind_of(channel_id)
    except ValueError:
        return "audio"


def default_name(channel_id: str) -> str:
    prefix, _, rest = channel_id.partition(":")
    if prefix == "mic":
        return "Default Microphone" if rest in ("", "default") else f"Microphone {rest}"
    if prefix == "system_audio":
        return "System Audio"
    if prefix in ("display", "screen"):
        return f"Display {rest or 1}"
    return channel_id


class _PacedTrack(MediaStreamTrack):
    """Shared real-time pacing: frame n is due at start + n * ptime (no drift, no bursts)."""

    def __init__(self, ptime: float) -> None:
        super().__init__()
        self._ptime = ptime
        self._n = 0
        self._start: Optional[float] = None

    async def _next(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self._n * self._ptime - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        n = self._n
        self._n += 1
        return n


class ToneTrack(_PacedTrack):
    """Stereo sine (or silence with amplitude 0), 20 ms frames of s16 at 48 kHz."""

    kind = "audio"

    def __init__(self, freq: float = 440.0, amplitude: float = 0.5, duration: Optional[float] = None) -> None:
        super().__init__(AUDIO_PTIME)
        self.freq = freq
        self.amplitude = amplitude
        self.duration = duration
        self._samples = int(AUDIO_RATE * AUDIO_PTIME)

    async def recv(self) -> av.AudioFrame:
        n = await self._next()
        if self.duration is not None and n * AUDIO_PTIME >= self.duration:
            self.stop()
            raise MediaStreamError
        start = n * self._samples
        t = (np.arange(start, start + self._samples) / AUDIO_RATE)
        mono = (self.amplitude * 32767 * np.sin(2 * math.pi * self.freq * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


class BarsTrack(_PacedTrack):
    """Colour bars with a moving white line (so every frame differs), yuv420p."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 360, fps: int = 15, duration: Optional[float] = None) -> None:
        super().__init__(1.0 / fps)
        self.width, self.height, self.fps, self.duration = width, height, fps, duration
        colours = np.array(
            [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
             [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], dtype=np.uint8)
        idx = (np.arange(width) * 8 // width)
        self._base = np.broadcast_to(colours[idx][None, :, :], (height, width, 3)).copy()

    async def recv(self) -> av.VideoFrame:
        n = await self._next()
        if self.duration is not None and n / self.fps >= self.duration:
            self.stop()
            raise MediaStreamError
        img = self._base.copy()
        y = (n * 4) % self.height
        img[y:y + 4, :, :] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = int(n * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class PausableTrack(MediaStreamTrack):
    """Wraps a track; while paused, frames are read from the source and thrown away.

    Why read and drop instead of waiting: sources keep real time, so RTP timestamps after a
    resume still follow the wall clock and the pause stays a hole of the right length.
    """

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = inner.kind
        self.inner = inner
        self.paused = False

    async def recv(self):
        while True:
            frame = await self.inner.recv()
            if not self.paused:
                return frame

    def stop(self) -> None:
        super().stop()
        self.inner.stop()


def _file_track(path: str, kind: str) -> tuple[MediaStreamTrack, MediaPlayer, bool]:
    """Open a file for one channel; relay encoded packets when the codec allows."""
    if not os.path.exists(path):
        raise SourceError(f"source file not found: {path}")
    try:
        with av.open(path) as probe:
            streams = [s for s in probe.streams if s.type == kind]
            if not streams:
                raise SourceError(f"{path} has no {kind} stream")
            codec = streams[0].codec_context.name
            formats = set(probe.format.name.split(","))
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open {path}: {exc}") from exc
    relay = (codec in RELAY_VIDEO and not (codec == "h264" and formats & AVCC_CONTAINERS)) if kind == "video" \
        else codec in RELAY_AUDIO
    player = MediaPlayer(path, decode=not relay)
    track = player.video if kind == "video" else player.audio
    if track is None:
        raise SourceError(f"{path}: no playable {kind} track")
    return track, player, relay


def open_source(channel_id: str, spec: str, encoder: Optional["EncoderSettings"] = None,
                ) -> tuple[MediaStreamTrack, Optional[MediaPlayer]]:
    """Build the track for one channel from its source spec (see the module doc)."""
    kind = kind_of(channel_id)
    if spec.startswith("x11:"):
        from . import devices
        from .device_tracks import EncoderSettings, ScreenTrack

        if kind != "video":
            raise SourceError(f"{channel_id}: {spec} is a screen for an audio channel")
        try:
            display, geometry = devices.parse_x11_spec(spec)
            return ScreenTrack(display, geometry, encoder or EncoderSettings()), None
        except (ValueError, RuntimeError) as exc:
            raise SourceError(f"{channel_id}: {exc}") from exc
    if spec.startswith("pulse:"):
        from . import devices
        from .device_tracks import PulseTrack

        if kind != "audio":
            raise SourceError(f"{channel_id}: {spec} is an audio source for a video channel")
        try:
            return PulseTrack(devices.resolve_pulse(spec[len("pulse:"):])), None
        except Exception as exc:  # noqa: BLE001 - soundcard raises IndexError, RuntimeError, AssertionError
            raise SourceError(f"{channel_id}: sound source {spec[6:]!r} cannot be opened: {exc}") from exc
    if spec.startswith("pattern:"):
        parts = spec.split(":")
        name = parts[1] if len(parts) > 1 else ""
        if name in ("tone", "silence"):
            if kind != "audio":
                raise SourceError(f"{channel_id}: {spec} is an audio pattern for a video channel")
            try:
                freq = float(parts[2]) if name == "tone" and len(parts) > 2 else 440.0
                amp = float(parts[3]) if len(parts) > 3 else 0.5
            except ValueError as exc:
                raise SourceError(f"bad pattern {spec!r}: {exc}") from exc
            return ToneTrack(freq, 0.0 if name == "silence" else amp), None
        if name == "bars":
            if kind != "video":
                raise SourceError(f"{channel_id}: {spec} is a video pattern for an audio channel")
            width, height, fps = 640, 360, 15
            if len(parts) > 2:
                try:
                    size, _, rate = parts[2].partition("@")
                    w, _, h = size.partition("x")
                    width, height = int(w), int(h)
                    fps = int(rate) if rate else fps
                except ValueError as exc:
                    raise SourceError(f"bad pattern {spec!r}: expected bars:WxH@fps") from exc
            return BarsTrack(width, height, fps), None
        raise SourceError(f"unknown pattern {spec!r} (known: tone, silence, bars)")
    track, player, _ = _file_track(spec, kind)
    return track, player


def declared_channels(sources: dict[str, str], names: Optional[dict[str, str]] = None) -> list[DeclaredChannel]:
    """The channels ``getChannels`` reports, in a stable order (mics, displays, system audio)."""
    order = {"mic": 0, "display": 1, "screen": 1, "system_audio": 2}
    ids = sorted(sources, key=lambda c: (order.get(c.split(":", 1)[0], 3), c))
    seen_kind: set[str] = set()
    out = []
    for cid in ids:
        prefix = cid.split(":", 1)[0]
        name = (names or {}).get(cid) or default_name(cid)
        out.append(DeclaredChannel(cid, name, kind_of(cid), prefix not in seen_kind))
        seen_kind.add(prefix)
    return out


PATTERNS = {"mic:default": "pattern:tone:440", "display:1": "pattern:bars", "system_audio:default": "pattern:silence"}


def default_sources() -> dict[str, str]:
    """Test patterns, one of each: what the recorder offers on a machine without devices."""
    return dict(PATTERNS)


@dataclass
class SourcePlan:
    """What the recorder offers: sources, display names, and notes for humans (stderr)."""

    sources: dict[str, str]
    names: dict[str, str]
    notes: list[str]
    origin: str  # "devices" | "patterns" | "configured"


def plan_sources(env: "Mapping[str, str]") -> SourcePlan:
    """The sources for this run, from ``REELDB_CAPTURE_SOURCES``:

    - unset or ``auto``: real devices (``devices.probe``) when there is a screen or a sound
      server; test patterns when there is neither;
    - ``devices``: real devices only (raises SourceError when there are none);
    - ``patterns``: test patterns;
    - a JSON object: channel id → spec (module doc).
    """
    import json

    raw = (env.get("REELDB_CAPTURE_SOURCES") or "auto").strip()
    if raw in ("auto", "devices"):
        from .devices import probe

        found = probe(env)
        if found.channels:
            return SourcePlan(found.sources(), found.names(), found.notes, "devices")
        if raw == "devices":
            raise SourceError("no capture devices: " + "; ".join(found.notes))
        return SourcePlan(default_sources(), {}, found.notes + ["offering test patterns"], "patterns")
    if raw == "patterns":
        return SourcePlan(default_sources(), {}, [], "patterns")
    try:
        sources = json.loads(raw)
    except ValueError as exc:
        raise SourceError(f"REELDB_CAPTURE_SOURCES: {exc}") from exc
    if not isinstance(sources, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
        raise SourceError("REELDB_CAPTURE_SOURCES must be auto, devices, patterns or a JSON object of "
                          "channel id → file, pattern or device")
    return SourcePlan(sources, {}, [], "configured")

