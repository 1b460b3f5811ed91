"""Live consumers of decoded audio and video, for stored and ephemeral channels alike.

Why a hub: decoding costs more CPU than receiving and writing together (tap notes: 2.6 s vs
1.1 s per 20 s stream), so a channel is decoded only while someone listens. An ephemeral channel
nobody consumes costs nothing beyond receiving: no decode and no growing queue (the tap drops its
frames). Consumers (live transcript, level meter) attach per channel, before or after its track
arrives; the first attach turns decoding on, the last detach turns it off.

A consumer is anything with ``async on_audio(channel_id, frame)`` (an audio channel's) or ``async
on_video(channel_id, frame)`` (a display's: the live screen-text reader). It is awaited inline, so it
must be quick; a consumer that needs time wraps itself in :class:`BoundedAudioQueue`, which
drops the oldest frames instead of letting memory grow, or (video) looks at a few frames a second
and hands the rest back at once.

A video channel's decoding starts mid-stream, where the decoder has no reference picture: the
hub asks the sender for a keyframe (PLI/FIR, ``ReceiverTap.request_keyframe``) as it starts, so
the first picture comes within a round trip instead of at the sender's next periodic keyframe.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from typing import Callable, Optional, Protocol, runtime_checkable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .tap import ReceiverTap, discard_decoded

logger = logging.getLogger(__name__)


class LiveError(Exception):
    """A live consumer could not be attached."""


@runtime_checkable
class AudioConsumer(Protocol):
    """Receives decoded audio frames of one channel (48 kHz, as aiortc's Opus decoder gives)."""

    async def on_audio(self, channel_id: str, frame: av.AudioFrame) -> None: ...


@runtime_checkable
class VideoConsumer(Protocol):
    """Receives decoded video frames of one channel (as aiortc's decoder gives them: yuv420p,
    ``frame.time`` in seconds from the channel's first frame)."""

    async def on_video(self, channel_id: str, frame: av.VideoFrame) -> None: ...


Consumer = AudioConsumer | VideoConsumer


def _shed(consumer: Consumer) -> float:
    """Seconds of audio a consumer dropped to keep up (the live transcriber sheds its oldest
    speech under load and counts it in ``dropped_seconds``); 0 for one that never sheds."""
    return float(getattr(consumer, "dropped_seconds", 0.0) or 0.0)


def _shed_frames(consumer: Consumer) -> int:
    """Frames a video consumer skipped to keep up (the screen-text reader under load reads the
    newest settled picture and skips those that waited: ``dropped_frames``)."""
    return int(getattr(consumer, "dropped_frames", 0) or 0)


class _Channel:
    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.consumers: list[Consumer] = []
        #: What consumers that have left shed (the counts outlive them: they are counters).
        self.shed = 0.0
        self.shed_frames = 0
        self.tap: Optional[ReceiverTap] = None
        self.track: Optional[MediaStreamTrack] = None
        self.task: Optional[asyncio.Task] = None


class LiveHub:
    """Registry of live consumers per channel id; turns decoding on and off.

    The ingest session calls :meth:`bind` when a channel's audio track arrives and
    :meth:`unbind` when it ends; anyone else calls :meth:`attach` / :meth:`detach`.
    Must be used from the event-loop thread.
    """

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def _get(self, channel_id: str) -> _Channel:
        ch = self._channels.get(channel_id)
        if ch is None:
            ch = self._channels[channel_id] = _Channel(channel_id)
        return ch

    def attach(self, channel_id: str, consumer: Consumer) -> Callable[[], None]:
        """Start feeding ``consumer``; returns a function that detaches it."""
        if not isinstance(consumer, (AudioConsumer, VideoConsumer)):
            raise LiveError(f"{consumer!r} has no async on_audio or on_video(channel_id, frame)")
        ch = self._get(channel_id)
        ch.consumers.append(consumer)
        self._update(ch)
        return lambda: self.detach(channel_id, consumer)

    def detach(self, channel_id: str, consumer: Consumer) -> None:
        """Stop feeding ``consumer`` (no error if it was not attached)."""
        ch = self._channels.get(channel_id)
        if ch is None:
            return
        if consumer in ch.consumers:
            ch.consumers.remove(consumer)
            ch.shed += _shed(consumer)
            ch.shed_frames += _shed_frames(consumer)
        self._update(ch)

    def consumers(self, channel_id: str) -> int:
        """How many consumers a channel has."""
        ch = self._channels.get(channel_id)
        return len(ch.consumers) if ch else 0

    def shed_seconds(self, channel_id: str) -> float:
        """Seconds of the channel's audio its live consumers, present and past, dropped under
        load (``/metrics``: ``reeldb_live_speech_shed_seconds``)."""
        ch = self._channels.get(channel_id)
        return ch.shed + sum(_shed(c) for c in ch.consumers) if ch else 0.0

    def shed_frames(self, channel_id: str) -> int:
        """Frames of the channel's video its live readers skipped under load (``/metrics``:
        ``reeldb_live_screen_shed_frames``)."""
        ch = self._channels.get(channel_id)
        return ch.shed_frames + sum(_shed_frames(c) for c in ch.consumers) if ch else 0

    def is_decoding(self, channel_id: str) -> bool:
        """True while the channel's frames are being decoded."""
        ch = self._channels.get(channel_id)
        return bool(ch and ch.tap and ch.tap.decode)

    def bind(self, channel_id: str, tap: ReceiverTap, track: MediaStreamTrack) -> None:
        """Connect a channel id to its tapped receiver and remote track (audio or video)."""
        if track.kind not in ("audio", "video"):
            raise LiveError(f"channel {channel_id!r}: live decoding is for audio and video tracks")
        ch = self._get(channel_id)
        ch.tap, ch.track = tap, track
        self._update(ch)

    def unbind(self, channel_id: str) -> None:
        """Forget a channel's track (it ended); consumers stay attached for a reconnect."""
        ch = self._channels.get(channel_id)
        if ch is None:
            return
        self._stop(ch)
        ch.tap = ch.track = None

    async def close(self) -> None:
        """Stop every reader task."""
        tasks = []
        for ch in self._channels.values():
            if ch.task:
                tasks.append(ch.task)
            self._stop(ch)
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    # -- internals --------------------------------------------------------------------------
    def _update(self, ch: _Channel) -> None:
        want = bool(ch.consumers) and ch.tap is not None and ch.track is not None
        if want and ch.task is None:
            ch.tap.decode = True
            ch.task = asyncio.get_running_loop().create_task(self._pump(ch), name=f"live-{ch.channel_id}")
        elif not want and ch.task is not None:
            self._stop(ch)

    def _stop(self, ch: _Channel) -> None:
        if ch.tap is not None:
            ch.tap.decode = False
        if ch.task is not None:
            ch.task.cancel()
            ch.task = None
        if ch.track is not None:
            discard_decoded(ch.track)

    async def _pump(self, ch: _Channel) -> None:
        track = ch.track
        assert track is not None
        video = track.kind == "video"
        try:
            if video and ch.tap is not None:
                await ch.tap.request_keyframe()  # the decoder starts mid-stream: ask for a picture now
            while True:
                frame = await track.recv()
                for consumer in list(ch.consumers):
                    deliver = getattr(consumer, "on_video" if video else "on_audio", None)
                    if deliver is None:
                        continue  # an audio consumer attached to a display (or the reverse) gets nothing
                    try:
                        await deliver(ch.channel_id, frame)
                    except Exception:  # noqa: BLE001 - one bad consumer must not stop the others
                        logger.exception("live consumer %r failed on %s", consumer, ch.channel_id)
        except MediaStreamError:
            pass  # track ended
        finally:
            if ch.task is asyncio.current_task():
                ch.task = None
                if ch.tap is not None:
                    ch.tap.decode = False


def frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """Samples of a frame as float32 in [-1, 1], shape (channels, samples)."""
    arr = frame.to_ndarray()
    fmt = frame.format.name
    if not frame.format.is_planar:
        arr = arr.reshape(-1, len(frame.layout.channels)).T
    if fmt.startswith("s16"):
        return arr.astype(np.float32) / 32768.0
    if fmt.startswith("s32"):
        return arr.astype(np.float32) / 2147483648.0
    if fmt.startswith("u8"):
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32)


class RmsMeter:
    """Level meter: RMS of the latest frames, in linear and dBFS (a full-scale sine is -3 dBFS).

    Keeps an exponential average over ``window`` seconds so a reading is stable, plus the peak.
    """

    def __init__(self, window: float = 0.3) -> None:
        self.window = window
        self.frames = 0
        self.peak = 0.0
        self._mean_square: Optional[float] = None

    async def on_audio(self, channel_id: str, frame: av.AudioFrame) -> None:
        x = frame_samples(frame)
        if x.size == 0:
            return
        ms = float(np.mean(np.square(x, dtype=np.float64)))
        self.peak = max(self.peak, float(np.max(np.abs(x))))
        duration = frame.samples / (frame.sample_rate or 48000)
        alpha = min(1.0, duration / self.window) if self.window > 0 else 1.0
        self._mean_square = ms if self._mean_square is None else (1 - alpha) * self._mean_square + alpha * ms
        self.frames += 1

    @property
    def rms(self) -> float:
        """Linear RMS in [0, 1] (0 before any frame)."""
        return math.sqrt(self._mean_square) if self._mean_square else 0.0

    @property
    def dbfs(self) -> float:
        """RMS in dB relative to full scale (-inf for silence)."""
        r = self.rms
        return 20 * math.log10(r) if r > 0 else float("-inf")


class BoundedAudioQueue:
    """A consumer that buffers frames for a slow reader, dropping the oldest when full.

    Why: a transcriber may fall behind; memory must stay bounded and the newest audio matters
    most. Read with ``await queue.get()``.
    """

    def __init__(self, maxsize: int = 250) -> None:
        self._items: collections.deque[tuple[str, av.AudioFrame]] = collections.deque(maxlen=maxsize)
        self._event = asyncio.Event()
        self.dropped = 0

    async def on_audio(self, channel_id: str, frame: av.AudioFrame) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append((channel_id, frame))
        self._event.set()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self) -> tuple[str, av.AudioFrame]:
        """Oldest buffered (channel_id, frame), waiting if empty."""
        while not self._items:
            self._event.clear()
            await self._event.wait()
        return self._items.popleft()
