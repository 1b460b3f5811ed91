"""Tracks that read real devices: an X11 screen encoded to H.264 here, and a PulseAudio source.

**Screen** (:class:`ScreenTrack`): one thread grabs the screen with PyAV's ``x11grab``
(``bgr0`` frames at the wall clock's pace), converts to yuv420p (swscale) and encodes with
libx264 in the same thread: ``ultrafast`` (``REELDB_RECORDER_PRESET``) with ``zerolatency``,
constrained baseline, CRF with a VBV cap, one keyframe every ``keyint`` seconds (2) and one more
whenever the server asks (RTCP PLI/FIR: :mod:`capture.keyframes` forwards the sender's request to
:meth:`ScreenTrack.request_keyframe`). ``recv()`` hands aiortc the encoded packets (Annex-B with
in-band SPS/PPS on every keyframe), which it packetizes without encoding again — aiortc's own
encoder would run x264 at its ``medium`` default, keyframes every 12 frames and at most 3 Mbit/s.
That is the pipeline ``ffmpeg -f x11grab … -c:v libx264`` runs, with the encoded frames going to
RTP instead of a file (``tests/bench/recorder.py`` compares the two).

**Audio** (:class:`PulseTrack`): one thread reads 20 ms blocks of float32 stereo at 48 kHz from
a ``soundcard`` recorder and hands them on as s16 frames; aiortc encodes Opus.

Both keep stats (bytes, frames, the thread's own CPU seconds) for the recorder's progress events.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger("reeldb.recorder.devices")

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_BLOCK = 960  # 20 ms
QUEUE_MAX = 120


@dataclass(frozen=True)
class EncoderSettings:
    """How screens are encoded (from ``REELDB_RECORDER_*``, read by the recorder's main)."""

    fps: int = 30
    preset: str = "ultrafast"
    keyint: float = 2.0  # seconds between keyframes
    crf: int = 26
    max_bitrate: int = 0  # bits/s VBV cap; 0: scale with the picture (~2.5 bits/pixel/s at 30 fps)
    draw_mouse: bool = True

    def maxrate(self, width: int, height: int) -> int:
        return self.max_bitrate or max(1_000_000, int(width * height * self.fps * 0.1))

    def x264_options(self, width: int, height: int) -> dict[str, str]:
        k = max(1, round(self.keyint * self.fps))
        rate = self.maxrate(width, height)
        return {"preset": self.preset, "tune": "zerolatency", "profile": "baseline", "crf": str(self.crf),
                "maxrate": str(rate), "bufsize": str(rate),
                "x264-params": f"keyint={k}:min-keyint={k}:scenecut=0:repeat-headers=1"}


class _ThreadTrack(MediaStreamTrack):
    """A track fed by a capture thread through an asyncio queue."""

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.get_event_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._halt = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.bytes = 0
        self.frames = 0
        self.cpu_seconds = 0.0
        self.error: Optional[str] = None

    def _start(self, target) -> None:
        self._thread = threading.Thread(target=self._guard, args=(target,), name=f"reeldb-{self.kind}", daemon=True)
        self._thread.start()

    def _guard(self, target) -> None:
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - end the track with a reason, never a silent hang
            if not self._halt.is_set():
                logger.exception("%s capture failed", self.kind)
                self.error = str(exc)
        finally:
            self._put(None)

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._offer, item)
        except RuntimeError:  # loop closed
            pass

    def _offer(self, item: Any) -> None:
        if item is not None and self._queue.qsize() >= QUEUE_MAX:
            return  # the sender stalled: drop rather than grow without bound
        self._queue.put_nowait(item)

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        return item

    def stop(self) -> None:
        self._halt.set()
        super().stop()


class ScreenTrack(_ThreadTrack):
    """An X11 screen (or a rectangle of it) as H.264 packets."""

    kind = "video"

    def __init__(self, display: str, geometry: Optional[tuple[int, int, int, int]], settings: EncoderSettings) -> None:
        super().__init__()
        self.settings = settings
        self.keyframes = 0
        self._want_key = threading.Event()
        options = {"framerate": str(settings.fps), "draw_mouse": "1" if settings.draw_mouse else "0"}
        url = display
        if geometry is not None:
            x, y, w, h = geometry
            options["video_size"] = f"{w - w % 2}x{h - h % 2}"
            url = f"{display}+{x},{y}"
        try:
            self._container = av.open(url, format="x11grab", options=options)
        except (av.FFmpegError, OSError) as exc:
            raise RuntimeError(f"cannot grab X display {url}: {exc}") from exc
        ctx = self._container.streams.video[0].codec_context
        self.width, self.height = ctx.width - ctx.width % 2, ctx.height - ctx.height % 2
        self._start(self._run)

    def request_keyframe(self) -> None:
        self._want_key.set()

    def _encoder(self) -> av.VideoCodecContext:
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height = self.width, self.height
        enc.pix_fmt = "yuv420p"
        enc.time_base = VIDEO_TB
        enc.framerate = fractions.Fraction(self.settings.fps, 1)
        enc.options = self.settings.x264_options(self.width, self.height)
        return enc

    def _run(self) -> None:
        container = self._container
        enc = self._encoder()
        # One reformatter for the whole run: it keeps its swscale context (frame.reformat() makes
        # a new one for every frame).
        scaler = VideoReformatter()
        first: Optional[int] = None
        cpu0 = time.thread_time()
        try:
            for packet in container.demux(video=0):
                if self._halt.is_set():
                    break
                for frame in packet.decode():
                    if first is None:
                        first = frame.pts
                    pts = int((frame.pts - first) * frame.time_base * 90000)
                    frame = scaler.reformat(frame, width=self.width, height=self.height, format="yuv420p")
                    frame.pts = pts
                    frame.time_base = VIDEO_TB
                    # x11grab's rawvideo frames come marked I, which libx264 takes as "make an IDR":
                    # every frame would be a keyframe. Only the server's requests force one.
                    if self._want_key.is_set():
                        self._want_key.clear()
                        frame.pict_type = av.video.frame.PictureType.I
                    else:
                        frame.pict_type = av.video.frame.PictureType.NONE
                    for out in enc.encode(frame):
                        out.time_base = VIDEO_TB
                        self.bytes += out.size
                        self.frames += 1
                        self.keyframes += bool(out.is_keyframe)
                        self._put(out)
                self.cpu_seconds = time.thread_time() - cpu0
        finally:
            container.close()


class PulseTrack(_ThreadTrack):
    """A PulseAudio/PipeWire source (a microphone or a sink's monitor), 48 kHz stereo s16."""

    kind = "audio"

    def __init__(self, microphone: Any) -> None:
        super().__init__()
        self.microphone = microphone
        self._start(self._run)

    def _run(self) -> None:
        cpu0 = time.thread_time()
        n = 0
        with self.microphone.recorder(samplerate=AUDIO_RATE, channels=2, blocksize=AUDIO_BLOCK) as rec:
            while not self._halt.is_set():
                block = rec.record(AUDIO_BLOCK)
                pcm = (np.clip(block, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
                frame.sample_rate = AUDIO_RATE
                frame.pts = n
                frame.time_base = fractions.Fraction(1, AUDIO_RATE)
                n += AUDIO_BLOCK
                self.frames += 1
                self.bytes += pcm.nbytes
                self._put(frame)
                self.cpu_seconds = time.thread_time() - cpu0
