"""Execute an export plan: the muxed recording plus one raw asset per stored channel.

I/O edge of the export stage. It reads only the session folder (read-only) and writes only
into ``out_dir``, through temporary names that are renamed when complete, so a crash or a
cancelled job never leaves a half-written file under a final name.

- Video is copied packet for packet (no re-encode) when it is H.264; VP8 (browser capture)
  is the one case transcoded, to H.264, because MP4 and HLS players need it. Where the display
  sent no frames (a pause, a late start, an early end, a gap) the picture is held
  (:mod:`.hold`), so the video covers the recording from its first moment to its last.
- Every stored audio channel is decoded, placed by capture time (:mod:`.mix`), summed,
  limited and encoded once to AAC; audio blocks are interleaved with video packets so the
  MP4 plays progressively, and ``+faststart`` puts the index first.
- A channel file cut short (by a crash, or damaged) is exported up to its last readable packet
  and noted in ``ExportResult.warnings``; a file that is missing, cannot be opened or holds no
  media is left out with a warning. Only when no channel is left does the export fail
  (:class:`ChannelFileError` naming the channel): a damaged channel never costs the recording.
- Every copied packet passes a :class:`~.dts.DtsGuard`: files from older captures hold equal
  DTS that MP4 refuses, and a valid recording must not fail its export over them.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from ..capture.manifest import file_stem
from .dts import DtsGuard
from .errors import ChannelFileError, ExportCancelled, ExportError, describe_error
from .mix import SAMPLE_RATE, Frame, Limiter, PlacedTrack, mix_block
from .hold import HeldRun, LastPicture, TrackFormat, black, decode_last
from .plan import (
    HOLD_INTERVALS,
    HOLD_KEYFRAME_SECONDS,
    MAX_FRAME_GAP,
    Channel,
    ExportPlan,
    capture_warnings,
    held_times,
    hold_interval,
    load_manifest,
    make_plan,
    pause_warnings,
    realign,
    snap_interval,
)
from .probe import MediaError, MediaInfo, probe

Progress = Callable[[float], None]

AUDIO_BITRATE = 128_000
BLOCK = SAMPLE_RATE  # one second of audio per mixing block
#: FFmpeg's native AAC encoder: "fast" coder is ~2x quicker than the default "twoloop" and
#: indistinguishable for speech; bench/export.py measures both sides with the same setting.
AAC_OPTIONS = {"aac_coder": "fast"}
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "tune": "zerolatency"}


@dataclass(frozen=True)
class ChannelAsset:
    """A raw per-channel output. ``offset``: where its t=0 sits on the muxed timeline (s)."""

    channel_id: str
    category: str
    kind: str  # "video" | "audio"
    path: Path
    offset: float
    start_time: float  # capture-clock time of the asset's t=0
    info: MediaInfo
    copied: bool  # True when packets were copied, False when transcoded


@dataclass(frozen=True)
class ExportResult:
    session_id: str
    video_channel_id: str | None  # None: audio-only export
    muxed_path: Path
    muxed_info: MediaInfo
    channels: dict[str, ChannelAsset]
    duration: float
    origin: float  # capture-clock time of the muxed timeline's 0
    video_copied: bool | None  # None for audio-only
    warnings: list[str] = field(default_factory=list)
    plan: ExportPlan | None = None


def safe_name(channel_id: str) -> str:
    """'display:1' -> 'display_1': capture's file-name rule, unique per channel id."""
    return file_stem(channel_id)


class _Progress:
    def __init__(self, cb: Progress | None) -> None:
        self._cb = cb
        self._last = -1.0

    def __call__(self, fraction: float, force: bool = False) -> None:
        if self._cb is None:
            return
        fraction = min(1.0, max(0.0, fraction))
        if force or fraction - self._last >= 0.01:
            self._last = fraction
            try:
                self._cb(fraction)
            except Exception as exc:  # the job runner's way to cancel
                raise ExportCancelled(f"export cancelled: {exc}") from exc


# ---------------------------------------------------------------- inputs


class _Input:
    """One stored channel's file, opened read-only, with errors that name the channel."""

    def __init__(self, session_dir: Path, ch: Channel) -> None:
        self.ch = ch
        self.path = Path(session_dir) / (ch.file or "")
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise ChannelFileError(f"channel {ch.channel_id}: file {ch.file} is missing from the session folder", ch.channel_id) from None
        if size == 0:
            raise ChannelFileError(f"channel {ch.channel_id}: file {ch.file} is empty", ch.channel_id)
        try:
            self.container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
            raise ChannelFileError(f"channel {ch.channel_id}: file {ch.file} is corrupt or truncated ({describe_error(exc)})", ch.channel_id) from exc
        streams = self.container.streams.video if ch.kind == "video" else self.container.streams.audio
        if not streams:
            self.container.close()
            raise ChannelFileError(f"channel {ch.channel_id}: file {ch.file} has no {ch.kind} stream", ch.channel_id)
        self.stream = streams[0]
        self.tb = self.stream.time_base
        self.warnings: list[str] = []
        self.packets = 0

    @property
    def first_pts(self) -> float:
        st = self.stream.start_time
        return float(st * self.tb) if st is not None else 0.0

    def demux(self) -> Iterator[av.Packet]:
        """Packets with timestamps; stops (with a warning) where a truncated file turns bad."""
        try:
            for packet in self.container.demux(self.stream):
                if packet.dts is None and packet.pts is None:
                    continue  # the flush packet
                if packet.size == 0:
                    continue
                self.packets += 1
                yield packet
        except av.error.FFmpegError as exc:
            if self.packets == 0:
                raise ChannelFileError(f"channel {self.ch.channel_id}: file {self.ch.file} is corrupt or truncated ({describe_error(exc)})", self.ch.channel_id) from exc
            self._short(f"file ends early after {self.packets} packets ({describe_error(exc)})")
        if self.packets == 0:
            raise ChannelFileError(f"channel {self.ch.channel_id}: file {self.ch.file} holds no media packets (truncated?)", self.ch.channel_id)
        expected = self.ch.frames or 0
        if expected and self.packets < expected * 0.95 - 2:
            self._short(f"file holds {self.packets} of the {expected} frames the manifest lists")

    def _short(self, what: str) -> None:
        """A channel with less media than it should have. After a crash (``complete`` is not
        true) that is expected: capture promises the file is readable up to the last second
        received. A channel capture closed cleanly should be whole, so there it is damage; either
        way the recording is worth more than a failed export: export what is there and warn."""
        damaged = "is damaged: " if self.ch.complete is True else ""
        self.warnings.append(f"channel {self.ch.channel_id}: file {damaged}{what}; exported what was readable")

    def usual_interval(self, count: int = 90) -> float | None:
        """The median interval between the first ``count`` video frames (read from a second
        handle: the stream being copied stays where it is); None when it cannot be told."""
        if self.ch.kind != "video":
            return None
        if not hasattr(self, "_usual"):
            stamps = []
            try:
                with av.open(str(self.path)) as c:
                    s = c.streams.video[0]
                    for packet in c.demux(s):
                        if packet.pts is not None:
                            stamps.append(float(packet.pts * s.time_base))
                        if len(stamps) >= count:
                            break
            except (av.error.FFmpegError, IndexError):
                pass
            deltas = sorted(d for d in (b - a for a, b in zip(sorted(stamps), sorted(stamps)[1:])) if 0 < d <= MAX_FRAME_GAP)
            self._usual = deltas[len(deltas) // 2] if deltas else None
        return self._usual

    def check(self) -> None:
        """Raise :class:`ChannelFileError` unless the file yields a first packet (that decodes,
        for audio): a file that does not is left out of the export, not a reason to fail it."""
        try:
            for packet in self.demux():
                if self.ch.kind == "audio":
                    packet.decode()
                break
        except av.error.FFmpegError as exc:
            raise ChannelFileError(f"channel {self.ch.channel_id}: file {self.ch.file} does not decode "
                                   f"({describe_error(exc)})", self.ch.channel_id) from exc
        finally:
            self.warnings.clear()
            self.packets = 0
        self.container.close()
        self.container = av.open(str(self.path), mode="r")
        self.stream = (self.container.streams.video if self.ch.kind == "video" else self.container.streams.audio)[0]

    def audio_frames(self) -> Iterator[Frame]:
        """Decoded audio as ``(pts seconds, [c, n] float32)`` at 48 kHz."""
        resampler: av.AudioResampler | None = None
        tb: float | None = None
        bad = 0
        decoded = 0
        for packet in self.demux():
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                bad += 1
                continue
            for frame in frames:
                if tb is None:
                    tb = float(frame.time_base)
                t = frame.pts * tb if frame.pts is not None else None
                if frame.format.name != "fltp" or frame.sample_rate != SAMPLE_RATE:
                    if resampler is None:
                        resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=SAMPLE_RATE)
                    emitted = 0
                    for out in resampler.resample(frame):
                        arr = out.to_ndarray()
                        if t is not None:
                            yield t + emitted / SAMPLE_RATE, arr
                        emitted += arr.shape[1]
                    decoded += 1
                    continue
                if t is None:
                    continue
                decoded += 1
                yield t, frame.to_ndarray()
        if bad:
            self.warnings.append(f"channel {self.ch.channel_id}: skipped {bad} undecodable audio packets")
        if decoded == 0:  # checked when opened (:func:`_open_usable`); a file can still decode to nothing
            self.warnings.append(f"channel {self.ch.channel_id}: no audio could be decoded from {self.ch.file}; left silent")

    def close(self) -> None:
        self.container.close()


def _open_usable(session_dir: Path, channels: list[Channel], warnings: list[str]) -> dict[str, _Input]:
    """The channels whose files hold media, opened; every other one is left out with a warning
    (a missing, empty, corrupt or packetless file). :class:`ChannelFileError` only when none is
    left: then there is nothing to export."""
    opened: dict[str, _Input] = {}
    first_error: ChannelFileError | None = None
    for ch in channels:
        try:
            inp = _Input(session_dir, ch)
        except ChannelFileError as exc:
            first_error = first_error or exc
            warnings.append(f"{exc}; left out of the export")
            continue
        try:
            inp.check()
        except ChannelFileError as exc:
            inp.close()
            first_error = first_error or exc
            warnings.append(f"{exc}; left out of the export")
            continue
        except BaseException:
            inp.close()
            for other in opened.values():
                other.close()
            raise
        opened[ch.channel_id] = inp
    if not opened and first_error is not None:
        raise first_error
    return opened


# ---------------------------------------------------------------- outputs


class _Outputs:
    """Temp files in ``out_dir`` that become final names only on :meth:`commit`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._pending: list[tuple[Path, Path]] = []
        self._tag = uuid.uuid4().hex[:8]

    def new(self, name: str) -> Path:
        final = self.out_dir / name
        tmp = self.out_dir / f".{name}.{self._tag}.part"
        self._pending.append((tmp, final))
        return tmp

    def drop(self, tmp: Path) -> None:
        """Forget ``tmp`` (a raw asset that failed): removed now, never renamed."""
        self._pending = [(t, f) for t, f in self._pending if t != tmp]
        tmp.unlink(missing_ok=True)

    def final(self, tmp: Path) -> Path:
        return next(f for t, f in self._pending if t == tmp)

    def commit(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)
        self._pending.clear()

    def discard(self) -> None:
        for tmp, _ in self._pending:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._pending.clear()


def _open_output(path: Path, fmt: str) -> av.container.OutputContainer:
    options = {"movflags": "+faststart"} if fmt == "mp4" else {}
    return av.open(str(path), mode="w", format=fmt, options=options)


def _add_aac(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo", options=dict(AAC_OPTIONS))
    stream.bit_rate = AUDIO_BITRATE
    stream.time_base = Fraction(1, SAMPLE_RATE)
    return stream


def _encode_audio(out: av.container.OutputContainer, stream, block: np.ndarray | None, pts: int) -> None:
    if block is None:
        out.mux(stream.encode(None))
        return
    if block.shape[1] == 0:
        return
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, dtype=np.float32), format="fltp", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = Fraction(1, SAMPLE_RATE)
    frame.pts = pts
    out.mux(stream.encode(frame))


class _AudioEncoder:
    """Encodes mixed blocks to AAC on a worker thread.

    AAC encoding is the one costly step of an export (video is only copied); PyAV releases
    the GIL inside avcodec, so a thread overlaps it with decoding, mixing and video copy.
    Packets come back to the caller's thread, which alone touches the muxer.
    """

    _DONE = object()

    def __init__(self, stream) -> None:
        self._stream = stream
        self._in: queue.Queue = queue.Queue(maxsize=4)
        self._out: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="reeldb-export-aac", daemon=True)
        self._thread.start()
        self._finished = False

    def _run(self) -> None:
        try:
            while True:
                item = self._in.get()
                if item is None:
                    self._out.put(self._stream.encode(None))
                    self._out.put(self._DONE)
                    return
                block, pts = item
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate = SAMPLE_RATE
                frame.time_base = Fraction(1, SAMPLE_RATE)
                frame.pts = pts
                self._out.put(self._stream.encode(frame))
        except BaseException as exc:  # handed to the caller's thread by drain()
            self._out.put(exc)

    def _put(self, item) -> None:
        while True:
            try:
                self._in.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self.drain(None)  # raises the worker's error
                    raise ExportError("audio encoder stopped unexpectedly")

    def submit(self, block: np.ndarray, pts: int) -> None:
        if block.shape[1]:
            self._put((np.ascontiguousarray(block, dtype=np.float32), pts))

    def drain(self, out: av.container.OutputContainer | None, wait: bool = False) -> None:
        """Mux the packets encoded so far (all of them, up to the end, with ``wait``)."""
        while True:
            try:
                item = self._out.get(timeout=None) if wait else self._out.get_nowait()
            except queue.Empty:
                return
            if item is self._DONE:
                self._finished = True
                return
            if isinstance(item, BaseException):
                raise item
            if out is not None and item:
                out.mux(item)

    def finish(self, out: av.container.OutputContainer) -> None:
        self._put(None)
        self.drain(out, wait=True)

    def abort(self) -> None:
        if self._thread.is_alive() and not self._finished:
            try:
                while True:  # unblock a worker waiting on a full queue
                    self._out.get_nowait()
            except queue.Empty:
                pass
            try:
                self._in.put(None, timeout=5)
            except queue.Full:
                pass
            self._thread.join(timeout=10)


class _VideoWriter:
    """Writes one input video stream into ``out``: packet copy for H.264, else transcode; and
    holds the picture across every stretch without frames (:func:`~.plan.held_times`), so the
    track covers its timeline from 0 (or, for the muxed file, to the end of the audio too)."""

    def __init__(self, out: av.container.OutputContainer, inp: _Input, shift: float, transcode: bool,
                 interval: float = HOLD_INTERVALS[0]) -> None:
        self.inp = inp
        self.transcode = transcode
        self.shift_ts = int(round(shift / inp.tb))
        self.tb = inp.tb
        self.end = 0.0  # output seconds just past the last frame written (held ones included)
        self.recorded_end = 0.0  # ... of the last recorded frame
        self.interval = snap_interval(inp.usual_interval()) if inp.usual_interval() else interval
        self.warnings: list[str] = []
        self._packets = inp.demux()
        self._pending: av.Packet | None = None
        self.guard = DtsGuard()
        self.done = False
        self.held = 0  # held frames written
        self._last_t: float | None = None  # the last recorded frame (output seconds)
        self._held_at: float | None = None  # the last held frame of the current hold
        self._run: HeldRun | None = None
        self._after_hold = False
        self.fmt = TrackFormat(inp.stream)
        self._gop = LastPicture(self.fmt)
        self._last_frame: av.VideoFrame | None = None  # transcode: the last picture encoded
        if transcode:
            cc = inp.stream.codec_context
            w, h = (cc.width or 1280) // 2 * 2, (cc.height or 720) // 2 * 2
            self.stream = out.add_stream("libx264", rate=30, options=dict(X264_OPTIONS))
            self.stream.width, self.stream.height = w, h
            self.stream.pix_fmt = "yuv420p"
            self.stream.time_base = inp.tb
            self.stream.codec_context.time_base = inp.tb
            self.stream.codec_context.options = {**X264_OPTIONS, "g": "60"}
            self._out = out
        else:
            self.stream = out.add_stream_from_template(inp.stream)
            self._out = out

    def _t(self, packet: av.Packet) -> float:
        ts = packet.pts if packet.pts is not None else packet.dts
        return float((ts + self.shift_ts) * self.tb)

    def write_until(self, t_end: float | None) -> None:
        """Write every packet whose (shifted) time is before ``t_end`` (None: all), and the held
        frames of the holes between them."""
        while not self.done:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    self._finish()
                    return
            packet = self._pending
            t = self._t(packet)
            if t_end is not None and t >= t_end:
                self._hold(t, t_end, packet)  # a hole that goes on past t_end: held so far
                return
            self._hold(t, t, packet)
            self._pending = None
            self._write(packet)

    def hold_until(self, t_end: float) -> None:
        """After the last recorded frame: hold the picture up to ``t_end`` (the audio goes on)."""
        if self.done:
            self._hold(None, t_end, None)

    def _hold(self, nxt: float | None, upto: float, following: av.Packet | None) -> None:
        times = held_times(self._last_t, nxt, upto, self.interval, self._held_at)
        if not times:
            return
        if not self.transcode and following is not None and not following.is_keyframe and self._last_t is not None:
            if self._held_at is None:  # said once per hole
                self._held_at = times[-1]
                self.warnings.append(
                    f"channel {self.inp.ch.channel_id}: no picture held from {self._last_t:.3f} s to {nxt:.3f} s: "
                    "the video resumes without a keyframe")
            return
        if self.transcode:
            if self._last_frame is None:
                self._last_frame = self._first_picture(following)
            for t in times:
                self._encode(self._last_frame, int(round(t / self.tb)))
        else:
            if self._run is None:
                picture = self._gop.picture() if self._last_t is not None else None
                if picture is None:
                    picture = self._first_picture(following)
                self._run = HeldRun(picture, self.fmt, self.tb, self.interval, HOLD_KEYFRAME_SECONDS)
            for t in times:
                for packet in self._run.frame(int(round(t / self.tb))):
                    self._mux_copy(packet)
        self.held += len(times)
        self._held_at = times[-1]
        self.end = max(self.end, times[-1] + self.interval)
        self._after_hold = True

    def _first_picture(self, following: av.Packet | None) -> av.VideoFrame:
        """The picture a hold before the video's first frame shows: that frame (else black)."""
        picture = None
        if following is not None and following.is_keyframe:
            picture = decode_last(self.fmt, [(bytes(following), following.pts)])
        return picture if picture is not None else black(self.fmt.width // 2 * 2, self.fmt.height // 2 * 2)

    def _end_hold(self) -> None:
        if self._run is not None:
            for packet in self._run.close():
                self._mux_copy(packet)
            self._run = None
        self._held_at = None

    def _mux_copy(self, packet: av.Packet) -> None:
        packet.stream = self.stream
        self._out.mux(self.guard.fix(packet))

    def _write(self, packet: av.Packet) -> None:
        dur = float(packet.duration * self.tb) if packet.duration else 0.0
        t = self._t(packet)
        self.end = max(self.end, t + dur)
        self.recorded_end = max(self.recorded_end, t + dur)
        self._last_t = t if self._last_t is None else max(self._last_t, t)
        after_hold, self._after_hold = self._after_hold, False
        self._end_hold()
        if not self.transcode:
            data = bytes(packet)
            self._gop.add(data, packet.pts, packet.is_keyframe)
            if after_hold and packet.is_keyframe:
                fixed = self.fmt.with_parameter_sets(data)
                if fixed is not data:
                    packet = _repacked(packet, fixed)
            if packet.pts is not None:
                packet.pts += self.shift_ts
            if packet.dts is not None:
                packet.dts += self.shift_ts
            self._mux_copy(packet)
            return
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            return
        for i, frame in enumerate(frames):
            if frame.pts is None:
                continue
            self._encode(frame, frame.pts + self.shift_ts, key=after_hold and i == 0)

    def _encode(self, frame: av.VideoFrame, pts: int, key: bool = False) -> None:
        """Encode (transcode path) ``frame`` at ``pts``; ``key``: as a keyframe (the first
        recorded frame after a hold, so the raw asset can start there)."""
        cc = self.stream.codec_context
        pts = self.guard.next_pts(pts)
        if frame.width != cc.width or frame.height != cc.height or frame.format.name != "yuv420p":
            frame = frame.reformat(width=cc.width, height=cc.height, format="yuv420p")
        frame.pts = pts
        frame.time_base = self.tb
        frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
        self._last_frame = frame
        self._out.mux(self.stream.encode(frame))

    def _finish(self) -> None:
        self.done = True
        if self.transcode:
            try:
                for frame in self.inp.stream.codec_context.decode(None):
                    if frame.pts is not None:
                        self._encode(frame, frame.pts + self.shift_ts)
            except av.error.FFmpegError:
                pass

    def close(self) -> None:
        """The encoders' last packets (call once, after the last write or hold)."""
        self._end_hold()
        if self.transcode:
            self._out.mux(self.stream.encode(None))


def _repacked(packet: av.Packet, data: bytes) -> av.Packet:
    """``packet`` with new bytes (the same timestamps and flags)."""
    out = av.Packet(data)
    out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
    out.time_base = packet.time_base
    out.is_keyframe = packet.is_keyframe
    return out


# ---------------------------------------------------------------- muxed export


@dataclass(frozen=True)
class _Muxed:
    duration: float  # seconds
    copied: bool | None  # video copied (None: audio-only)
    recorded_end: float  # timeline seconds just past the display's last recorded frame
    held: int  # held frames written
    warnings: list[str]


def _mux(plan: ExportPlan, inputs: dict[str, _Input], path: Path, progress: _Progress, weight: float) -> _Muxed:
    """Write the muxed file."""
    fmt = "mp4"
    out = _open_output(path, fmt)
    try:
        video: _VideoWriter | None = None
        if plan.video is not None:
            video = _VideoWriter(out, inputs[plan.video.channel_id], plan.video.offset, plan.transcode_video,
                                 plan.hold_interval)
        astream = _add_aac(out)
        tracks = [PlacedTrack(inputs[p.channel_id].audio_frames(), p.offset) for p in plan.audio]
        limiter = Limiter()
        expected = max(plan.duration, 1e-3)
        encoder = _AudioEncoder(astream)
        try:
            k = 0
            while True:
                start = k * BLOCK
                if video is not None:
                    video.write_until((start + BLOCK) / SAMPLE_RATE)
                block = mix_block(tracks, start, BLOCK, limiter) if tracks else np.zeros((2, BLOCK), np.float32)
                audio_done = all(t.exhausted for t in tracks)
                video_done = video is None or video.done
                if audio_done and video_done:
                    end = max([t.end for t in tracks] + [0])
                    if video is not None:  # a display that ended before the audio: held to its end
                        video.hold_until(end / SAMPLE_RATE)
                        end = max(end, int(round(video.end * SAMPLE_RATE)))
                    encoder.submit(block[:, : max(0, min(BLOCK, end - start))], start)
                    break
                if video is not None and not audio_done:
                    video.hold_until((start + BLOCK) / SAMPLE_RATE)  # the audio goes on past this block
                encoder.submit(block, start)
                encoder.drain(out)
                k += 1
                progress(weight * min(0.99, (start + BLOCK) / SAMPLE_RATE / expected))
            encoder.finish(out)
        finally:
            encoder.abort()
        duration = max([t.end for t in tracks] + [0]) / SAMPLE_RATE
        if video is not None:
            video.close()
            duration = max(duration, video.end)
        out.close()
    except BaseException:
        out.close()
        raise
    if video is None:
        return _Muxed(duration, None, 0.0, 0, [])
    return _Muxed(duration, not video.transcode, video.recorded_end, video.held, video.warnings)


# ---------------------------------------------------------------- raw assets


def _raw_video(inp: _Input, path: Path, interval: float) -> tuple[bool, list[str]]:
    """Display channel -> MP4 on its own clock, its holes held; copy for H.264, transcode
    otherwise. Returns (copied?, warnings)."""
    out = _open_output(path, "mp4")
    try:
        writer = _VideoWriter(out, inp, 0.0, (inp.ch.codec or inp.stream.codec_context.name) != "h264", interval)
        writer.write_until(None)
        writer.close()
        out.close()
    except BaseException:
        out.close()
        raise
    return not writer.transcode, writer.warnings


def _remux_video(src: Path, path: Path, shift: float, until: float) -> None:
    """Copy the video stream of ``src`` into a video-only MP4, moving it by ``shift`` seconds
    and keeping ``[0, until)`` of the result: what the muxed file held before the channel began
    (it starts with a keyframe there) and after it ended belongs to the other channels' time."""
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        shift_ts = int(round(shift / vin.time_base))
        until_ts = int(round(until / vin.time_base))
        out = _open_output(path, "mp4")
        try:
            vout = out.add_stream_from_template(vin)
            guard = DtsGuard()
            started = False
            for packet in inp.demux(vin):
                if packet.dts is None:
                    continue
                packet.pts += shift_ts
                packet.dts += shift_ts
                started = started or (packet.pts >= 0 and packet.is_keyframe)
                if not started or packet.pts >= until_ts:
                    continue
                packet.stream = vout
                out.mux(guard.fix(packet))
            out.close()
        except BaseException:
            out.close()
            raise


def _raw_audio(inp: _Input, path: Path) -> bool:
    """Audio channel -> WebM with the Opus packets copied (browsers play audio/webm;opus);
    other codecs -> AAC in M4A on the channel's own clock."""
    codec = inp.stream.codec_context.name
    if codec == "opus":
        out = av.open(str(path), mode="w", format="webm")
        try:
            stream = out.add_stream_from_template(inp.stream)
            guard = DtsGuard()
            for packet in inp.demux():
                packet.stream = stream
                out.mux(guard.fix(packet))
            out.close()
        except BaseException:
            out.close()
            raise
        return True
    out = _open_output(path, "mp4")
    try:
        stream = _add_aac(out)
        track = PlacedTrack(inp.audio_frames(), 0.0)
        k = 0
        while not track.exhausted:
            block = mix_block([track], k * BLOCK, BLOCK)
            if track.exhausted:
                block = block[:, : max(0, track.end - k * BLOCK)]
            _encode_audio(out, stream, block, k * BLOCK)
            k += 1
        _encode_audio(out, stream, None, 0)
        out.close()
    except BaseException:
        out.close()
        raise
    return False


def _raw_asset(session_dir: Path, ch: Channel, plan: ExportPlan, muxed: _Muxed, muxed_tmp: Path,
               outputs: _Outputs, warnings: list[str]) -> tuple[Channel, Path, bool] | None:
    """One channel's raw asset; None (and a warning) when its file cannot give one."""
    try:
        inp = _open_usable(session_dir, [ch], [])[ch.channel_id]
    except ChannelFileError as exc:
        warnings.append(f"{exc}; no raw asset")
        return None
    tmp = outputs.new(raw_asset_name(ch))
    try:
        if ch.kind == "video" and plan.video is not None and ch.channel_id == plan.video_channel_id and muxed.copied is False:
            # Already transcoded once for the muxed file: reuse that H.264, on the channel's clock.
            _remux_video(muxed_tmp, tmp, -plan.video.offset, muxed.recorded_end - plan.video.offset)
            was_copied = False
        elif ch.kind == "video":
            was_copied, held_warnings = _raw_video(inp, tmp, hold_interval(ch))
            warnings.extend(w for w in held_warnings if w not in warnings)
        else:
            was_copied = _raw_audio(inp, tmp)
        warnings.extend(w for w in inp.warnings if w not in warnings)
    except (ChannelFileError, av.error.FFmpegError) as exc:
        outputs.drop(tmp)
        warnings.append(f"channel {ch.channel_id}: no raw asset ({describe_error(exc)})")
        return None
    finally:
        inp.close()
    return ch, tmp, was_copied


def _without_unusable(plan: ExportPlan, inputs: dict[str, _Input]) -> ExportPlan:
    """The plan without the channels whose files could not be opened (warned already)."""
    video = plan.video if plan.video is not None and plan.video.channel_id in inputs else None
    return replace(plan, video=video, audio=tuple(p for p in plan.audio if p.channel_id in inputs))


def raw_asset_name(ch: Channel) -> str:
    ext = ".mp4" if ch.kind == "video" else (".webm" if (ch.codec or "opus") == "opus" else ".m4a")
    return f"raw-{safe_name(ch.channel_id)}{ext}"


def muxed_name(plan: ExportPlan) -> str:
    return f"muxed-{safe_name(plan.video_channel_id)}.mp4" if plan.video else "muxed-audio.mp4"


# ---------------------------------------------------------------- entry point


def export_session(
    session_dir: Path,
    out_dir: Path,
    video_channel_id: str | None = None,
    progress: Progress | None = None,
    *,
    include_raw: bool = True,
) -> ExportResult:
    """Export a capture session folder into ``out_dir``.

    Writes ``muxed-<video channel>.mp4`` (or ``muxed-audio.mp4``: AAC only, when no display
    was stored) and, with ``include_raw``, ``raw-<channel>.mp4|.webm|.m4a`` per stored channel.
    Blocking and CPU-bound: run it in a worker thread. ``progress(fraction)`` is called from
    that thread with 0..1; if it raises, the export stops with :class:`ExportCancelled` and
    removes its partial files. Raises :class:`~reeldb.export.errors.ExportError` subclasses
    (unknown/unstored channel, nothing stored, bad manifest, no readable channel file).
    """
    session_dir = Path(session_dir)
    prog = _Progress(progress)
    prog(0.0, force=True)
    manifest = load_manifest(session_dir)
    plan = make_plan(manifest, video_channel_id)
    raw_channels = list(plan.raw) if include_raw else []
    outputs = _Outputs(Path(out_dir))
    warnings: list[str] = [w for ch in plan.raw for w in capture_warnings(ch) + pause_warnings(ch)]
    inputs = _open_usable(session_dir, [p.channel for p in plan.placements], warnings)
    try:
        plan = _without_unusable(plan, inputs)
        plan = realign(plan, {cid: inp.first_pts for cid, inp in inputs.items()})
        mux_weight = 0.85 if raw_channels else 1.0
        muxed_tmp = outputs.new(muxed_name(plan))
        muxed = _mux(plan, inputs, muxed_tmp, prog, mux_weight)
        copied = muxed.copied
        warnings.extend(muxed.warnings)
        for inp in inputs.values():
            warnings.extend(inp.warnings)
            inp.close()
        inputs = {}

        assets: dict[str, tuple[Channel, Path, bool]] = {}
        for i, ch in enumerate(raw_channels):
            asset = _raw_asset(session_dir, ch, plan, muxed, muxed_tmp, outputs, warnings)
            if asset is not None:
                assets[ch.channel_id] = asset
            prog(mux_weight + (1 - mux_weight) * (i + 1) / len(raw_channels))

        muxed_info = probe(muxed_tmp)
        channel_assets = {
            cid: ChannelAsset(
                channel_id=cid,
                category=ch.category,
                kind=ch.kind,
                path=outputs.final(tmp),
                offset=ch.start_time - plan.origin,
                start_time=ch.start_time,
                info=probe(tmp),
                copied=was_copied,
            )
            for cid, (ch, tmp, was_copied) in assets.items()
        }
        muxed_final = outputs.final(muxed_tmp)
        outputs.commit()
    except ExportError:
        outputs.discard()
        raise
    except (av.error.FFmpegError, MediaError) as exc:
        outputs.discard()
        raise ExportError(f"export of session {plan.session_id} failed: {describe_error(exc)}") from exc
    except BaseException:
        outputs.discard()
        raise
    finally:
        for inp in inputs.values():
            inp.close()
    prog(1.0, force=True)
    return ExportResult(
        session_id=plan.session_id,
        video_channel_id=plan.video_channel_id,
        muxed_path=muxed_final,
        muxed_info=muxed_info,
        channels=channel_assets,
        duration=round(muxed.duration, 3),
        origin=plan.origin,
        video_copied=copied,
        warnings=warnings,
        plan=plan,
    )
