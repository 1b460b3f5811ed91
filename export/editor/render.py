"""The editor's I/O edges: decode, composite, mix and encode a planned timeline into an MP4.

Blocking and CPU-bound (call from a worker thread); reads library files, writes only the output
path it is given. Two ways (see :mod:`.plan`):

- :func:`write_copy`: the spans' exact-clip pieces (MPEG-TS made by ``export.clips``) remuxed
  packet for packet into an MP4; the audio is the pieces' own AAC packets or the timeline's mix.
- :func:`render`: every frame composited in numpy on 4:2:0 planes, the encoder's own format
  (sources decoded and scaled to yuv420p by PyAV's swscale; text, images and captions drawn with
  Pillow and converted once, BT.601 as swscale does; layers sit on even pixels) and encoded with
  libx264; audio mixed in numpy and encoded once with AAC.
"""

from __future__ import annotations

import math
import io
import queue as queue_mod
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping, Optional, Sequence

import av
import numpy as np
from PIL import Image

from ..clips import clip_segments
from .model import (AudioAsset, Caption, CaptionAsset, Clip, ImageAsset, TextAsset, Timeline, TimelineError,
                    VideoAsset)
from .geometry import crop_box, even, even_xy, fitted_size, placed_at, visible
from .plan import CopyPlan, SourceInfo, output_fps
from .text import draw_text, guarded, layout_text, render_caption

SAMPLE_RATE = 48000
#: The level of a mono source in the mix: what swresample's mono -> stereo upmix gives each side.
MONO_LEVEL = 0.7071067811865476
NO_PROBE = {"probesize": "32", "analyzeduration": "0"}
AUDIO_BITRATE = 128_000
X264 = {"preset": "veryfast", "crf": "20"}
Progress = Callable[[float], None]
#: A video layer larger than this many frames (its area) is scaled only where it shows.
OVERSIZED = 2


# -- audio --------------------------------------------------------------------------------------

class _ClipSound:
    """One audible clip's sound read forward, block by block, on the timeline's sample clock:
    decoded from ``asset.start``, resampled to 48 kHz stereo, at its volume and fades."""

    def __init__(self, clip: Clip, path: str) -> None:
        self.clip = clip
        self.path = path
        self.lo = int(round(clip.start * SAMPLE_RATE))
        self.hi = self.lo + int(round(clip.duration * SAMPLE_RATE))
        self.chunks: Optional[Iterator[tuple[Optional[float], np.ndarray]]] = None
        self.container = None
        self.buf = np.zeros((2, 0), dtype=np.float32)
        self.buf_at: Optional[int] = None  # timeline sample of buf[:, 0]
        #: The source's channels as mixed: 1 (mono, kept so) or 2 (stereo; more are folded down).
        self.channels = 2

    def open(self) -> None:
        """Open the source and place it (seek near ``asset.start``); reads headers only, so
        :attr:`channels` is known before anything is decoded."""
        if self.chunks is not None:
            return
        self.container = av.open(self.path)
        stream = self.container.streams.audio[0]
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else (
            self.container.start_time / 1e6 if self.container.start_time else 0.0)
        start = self.clip.asset.start  # type: ignore[union-attr]
        if start > 1.0:
            self.container.seek(int((origin + start - 0.5) / stream.time_base), stream=stream, backward=True)
        self.channels = 1 if stream.codec_context.channels == 1 else 2
        layout = "mono" if self.channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        # swresample's mono -> stereo upmix puts the channel on both sides at -3 dB: a mono source
        # keeps that level when it is mixed as it is (mono stays mono, no resampler)
        gain = np.float32(MONO_LEVEL) if self.channels == 1 else None

        def chunks() -> Iterator[tuple[Optional[float], np.ndarray]]:
            for frame in self.container.decode(stream):  # type: ignore[union-attr]
                t = float(frame.time) - origin if frame.time is not None else None
                if (frame.format.name == "fltp" and frame.sample_rate == SAMPLE_RATE
                        and frame.layout.nb_channels == self.channels):
                    parts = [frame.to_ndarray()]  # already what the mix takes: no resampler (a mic's Opus)
                else:
                    parts = [r.to_ndarray() for r in resampler.resample(frame)]
                for samples in parts:
                    yield t, samples * gain if gain is not None else samples
                    t = None

        self.chunks = chunks()

    def _fill(self, until: int) -> None:
        """Decode until the buffer reaches timeline sample ``until`` (or the source ends)."""
        self.open()
        parts = [self.buf] if self.buf.shape[1] else []
        end = (self.buf_at or 0) + self.buf.shape[1]
        while self.buf_at is None or end < until:
            try:
                t, samples = next(self.chunks)  # type: ignore[arg-type]
            except StopIteration:
                self.chunks = iter(())
                break
            if self.buf_at is None:  # the first chunk is placed by its time, the rest follow it
                self.buf_at = self.lo + int(round(((t or 0.0) - self.clip.asset.start) * SAMPLE_RATE))  # type: ignore[union-attr]
                end = self.buf_at
            parts.append(samples)
            end += samples.shape[1]
        if parts and (len(parts) > 1 or parts[0] is not self.buf):
            self.buf = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def add_into(self, out: np.ndarray, at: int) -> None:
        """Add this clip's samples for timeline samples [at, at + len(out)) into ``out``."""
        lo, hi = max(at, self.lo), min(at + out.shape[1], self.hi)
        if hi <= lo:
            return
        self._fill(hi)
        if self.buf_at is None:
            return
        a, b = max(lo, self.buf_at), min(hi, self.buf_at + self.buf.shape[1])
        if b > a:
            part = self.buf[:, a - self.buf_at:b - self.buf_at] * np.float32(self.clip.asset.volume)  # type: ignore[union-attr]
            _fade(part, a - self.lo, self.hi - self.lo, self.clip.fade_in, self.clip.fade_out)
            out[:, a - at:b - at] += part  # a mono clip's one channel goes to both sides of a stereo mix
        keep = max(0, hi - self.buf_at)
        self.buf, self.buf_at = self.buf[:, keep:], self.buf_at + keep

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def _fade(part: np.ndarray, offset: int, length: int, fade_in: float, fade_out: float) -> None:
    """A clip's transitions apply to its sound too: linear ramps at its start and end
    (``part`` starts ``offset`` samples into a clip of ``length`` samples)."""
    if not (fade_in > 0 or fade_out > 0):
        return
    pos = offset + np.arange(part.shape[1], dtype=np.float32)
    gain = np.ones(part.shape[1], dtype=np.float32)
    if fade_in > 0:
        gain *= np.clip(pos / (fade_in * SAMPLE_RATE), 0.0, 1.0)
    if fade_out > 0:
        gain *= np.clip((length - pos) / (fade_out * SAMPLE_RATE), 0.0, 1.0)
    part *= gain


class Mix:
    """The timeline's sound: every audible clip summed at its volume (and fades), hard-clipped at
    ±1 (volumes above 1 are the caller's choice), 48 kHz float32, stereo (or mono, when every
    source is: :meth:`encodable`), read as blocks in constant memory (each reader decodes its
    clips forward)."""

    #: Mixes up to this long are also held whole (a mono check, two encoders on halves).
    WHOLE_UP_TO = 10 * 60 * SAMPLE_RATE

    def __init__(self, clips: Sequence[tuple[Clip, str]], n: int) -> None:
        self.clips = list(clips)
        self.n = n

    def blocks(self, start: int = 0, stop: Optional[int] = None, block: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
        """Stereo blocks of the mix, ``[2, block]`` each."""
        return self._blocks([_ClipSound(clip, path) for clip, path in self.clips], 2, start, stop, block)

    def _blocks(self, readers: list[_ClipSound], channels: int, start: int = 0, stop: Optional[int] = None,
                block: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
        stop = self.n if stop is None else min(stop, self.n)
        try:
            for at in range(start, stop, block):
                out = np.zeros((channels, min(block, stop - at)), dtype=np.float32)
                for reader in readers:
                    reader.add_into(out, at)
                    if at >= reader.hi:
                        reader.close()
                np.clip(out, -1.0, 1.0, out=out)
                yield out
        finally:
            for reader in readers:
                reader.close()

    def array(self) -> np.ndarray:
        """The whole mix, stereo."""
        return np.concatenate(list(self.blocks()), axis=1) if self.n else np.zeros((2, 0), np.float32)

    def encodable(self) -> np.ndarray:
        """The whole mix as the encoder takes it: ``[1, n]`` when it is mono (every source mono,
        as most microphones are: decoded and mixed as mono, half the work), or when its two
        channels came out the same; else ``[2, n]``. The AAC encoding is the one costly step of
        the copy path, and a mono track costs half of it."""
        readers = [_ClipSound(clip, path) for clip, path in self.clips]
        try:
            for reader in readers:
                reader.open()
        except BaseException:
            for reader in readers:
                reader.close()
            raise
        channels = 1 if all(reader.channels == 1 for reader in readers) else 2
        if not self.n:
            return np.zeros((channels, 0), np.float32)
        whole = np.concatenate(list(self._blocks(readers, channels)), axis=1)
        return whole[:1] if channels == 2 and np.array_equal(whole[0], whole[1]) else whole


def mix_audio(timeline: Timeline, sources: Mapping[str, SourceInfo]) -> Optional[Mix]:
    """The timeline's :class:`Mix`, or None when no clip is audible (an audio clip, or a video
    clip with sound, at a volume above 0)."""
    audible = []
    for clip in timeline.clips():
        a = clip.asset
        if isinstance(a, (AudioAsset, VideoAsset)) and a.volume > 0 and sources[a.id].has_audio:
            audible.append((clip, sources[a.id].path))
    if not audible:
        return None
    return Mix(audible, int(round(timeline.duration * SAMPLE_RATE)))


def _add_aac(out: av.container.OutputContainer, layout: str = "stereo"):
    # the default coder (twoloop): on this project's machines faster than "fast" (1.0 s vs 1.5 s a minute)
    stream = out.add_stream("aac", rate=SAMPLE_RATE, layout=layout)
    stream.bit_rate = AUDIO_BITRATE
    stream.time_base = Fraction(1, SAMPLE_RATE)
    return stream


class EncodedMix:
    """A mix up to :attr:`Mix.WHOLE_UP_TO`, decoded and AAC-encoded on a thread of its own from
    the moment this is made, so its caller cuts and remuxes the video meanwhile (the copy path
    makes it before cutting the spans). Its packets are encoded by encoders of its own (two
    halves at once, :func:`_encode_parallel`) with the parameters of the stream
    :meth:`add_stream` adds to an output; :meth:`packets` hands them over, retimed for it."""

    def __init__(self, mix: Mix) -> None:
        self.n = mix.n
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="reeldb-aac-job")
        self._layout: "Future[str]" = Future()
        self._future = self._pool.submit(self._run, mix)

    def _run(self, mix: Mix) -> list[av.Packet]:
        try:
            whole = mix.encodable()
        except BaseException as exc:
            self._layout.set_exception(exc)
            raise
        layout = "mono" if whole.shape[0] == 1 else "stereo"
        self._layout.set_result(layout)
        return _encode_parallel(whole, layout)

    def add_stream(self, out: av.container.OutputContainer):
        """The AAC stream of ``out`` these packets go into, opened (its parameters are in the
        header, written at the first mux); waits for the mix's layout (known from the sources'
        headers when they are mono; else once the mix is decoded)."""
        stream = _add_aac(out, self._layout.result())
        stream.codec_context.open()
        return stream

    def done(self) -> bool:
        return self._future.done()

    def packets(self, stream) -> list[av.Packet]:
        """Every packet (waiting for the encoding to end), given to ``stream``."""
        packets = self._future.result()
        for p in packets:
            p.stream = stream
            p.time_base = Fraction(1, SAMPLE_RATE)
        return packets

    def close(self) -> None:
        """Let go of the thread (a job that failed meanwhile does not wait for the encoding)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def encode_early(mix: Optional[Mix]) -> "Mix | EncodedMix | None":
    """``mix`` encoding from now on when it is short enough to hold whole (see :class:`EncodedMix`;
    close it when done), else ``mix`` as it is (encoded block by block as the muxer asks)."""
    return EncodedMix(mix) if mix is not None and mix.n <= Mix.WHOLE_UP_TO else mix


class _AudioQueue:
    """The mix encoded to AAC, handed to the muxer interleaved with the video by time.

    A mix up to :attr:`Mix.WHOLE_UP_TO` is decoded and encoded up front on other threads while
    the caller works (:class:`EncodedMix`; mono when the mix is); a longer one is encoded block
    by block as the muxer asks, in constant memory."""

    def __init__(self, out: av.container.OutputContainer, mix: "Mix | EncodedMix") -> None:
        self.out = out
        self.next = 0
        self._packets: Optional[list[av.Packet]] = None
        self._encoded: Optional[EncodedMix] = None
        self._owned = False
        self._stream_blocks: Optional[Iterator[np.ndarray]] = None
        if isinstance(mix, Mix) and mix.n > Mix.WHOLE_UP_TO:
            self.stream = _add_aac(out, "stereo")
            self.stream.codec_context.open()  # in the header, written at the first mux
            self._stream_blocks = mix.blocks()
            self._encoded_until = 0
            self._pending: list[av.Packet] = []
            return
        self._owned = isinstance(mix, Mix)
        self._encoded = EncodedMix(mix) if isinstance(mix, Mix) else mix
        self.stream = self._encoded.add_stream(out)

    @property
    def packets(self) -> list[av.Packet]:
        if self._packets is None:
            try:
                self._packets = self._encoded.packets(self.stream)  # type: ignore[union-attr]
            finally:
                self.close()
        return self._packets

    def close(self) -> None:
        if self._owned and self._encoded is not None:
            self._encoded.close()

    def until(self, seconds: float) -> None:
        if self._stream_blocks is not None:
            self._stream_until(seconds)
            return
        if self._packets is None and seconds < math.inf and not self._encoded.done():  # type: ignore[union-attr]
            return  # the muxer interleaves what it has; the audio catches up once encoded
        while self.next < len(self.packets):
            p = self.packets[self.next]
            if p.pts is not None and float(p.pts * p.time_base) > seconds:
                return
            self.out.mux(p)
            self.next += 1

    def _stream_until(self, seconds: float) -> None:
        want = math.inf if seconds == math.inf else (seconds + 1.0) * SAMPLE_RATE
        while self._stream_blocks is not None and self._encoded_until < want:
            block = next(self._stream_blocks, None)
            if block is None:
                self._pending += list(self.stream.encode(None))
                self._stream_blocks = None
                break
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout="stereo")
            frame.sample_rate, frame.time_base, frame.pts = SAMPLE_RATE, Fraction(1, SAMPLE_RATE), self._encoded_until
            self._pending += list(self.stream.encode(frame))
            self._encoded_until += block.shape[1]
        while self._pending and (self._pending[0].pts is None
                                 or float(self._pending[0].pts * self._pending[0].time_base) <= seconds):
            self.out.mux(self._pending.pop(0))

    def rest(self) -> None:
        self.until(math.inf)


#: Mixes longer than this are AAC-encoded in two halves at once (one per core).
PARALLEL_AAC_FROM = 20 * SAMPLE_RATE
#: Each half is encoded with this many samples of the other's beyond the seam, so every packet
#: kept was computed from the real signal on both sides of its MDCT window (AAC's windows span
#: two frames, and a decoder overlaps neighbouring packets: the seam is then inaudible).
AAC_OVERLAP = 2048


def _aac_encoder(layout: str) -> av.CodecContext:
    """An AAC encoder with the parameters of :func:`_add_aac`'s stream (so its packets fit it)."""
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = SAMPLE_RATE, layout, "fltp"
    ctx.bit_rate = AUDIO_BITRATE
    ctx.time_base = Fraction(1, SAMPLE_RATE)
    return ctx


def _encode_parallel(mix: np.ndarray, layout: str) -> list[av.Packet]:
    """AAC packets of ``mix`` (pts in samples, the encoder's 1024-sample priming first), encoded
    as two halves on two threads (PyAV releases the GIL while encoding) and joined at a frame
    boundary: the first half's packets before the seam, the second's from it on."""
    n = mix.shape[1]
    if n < PARALLEL_AAC_FROM:
        return list(_encode_mix(None, _aac_encoder(layout), mix))
    seam = (n // 2) // 1024 * 1024

    def first_half() -> list[av.Packet]:
        return [p for p in _encode_mix(None, _aac_encoder(layout), mix[:, :seam + AAC_OVERLAP]) if p.pts < seam]

    def second_half() -> list[av.Packet]:
        start = seam - AAC_OVERLAP
        return [p for p in _encode_mix(None, _aac_encoder(layout), mix[:, start:], start) if p.pts >= seam]

    with ThreadPoolExecutor(2, thread_name_prefix="reeldb-aac") as pool:
        a, b = pool.submit(first_half), pool.submit(second_half)
        return a.result() + b.result()


def _encode_mix(out: Optional[av.container.OutputContainer], stream, mix: np.ndarray,
                origin: int = 0) -> Iterator[av.Packet]:
    block = SAMPLE_RATE
    for i in range(0, mix.shape[1], block):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mix[:, i:i + block]), format="fltp",
                                           layout="stereo" if mix.shape[0] == 2 else "mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = origin + i
        yield from stream.encode(frame)
    yield from stream.encode(None)


# -- the copy path ------------------------------------------------------------------------------

class _Chain(io.RawIOBase):
    """Files read one after another as one stream (a span's MPEG-TS pieces)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.current: Optional[BinaryIO] = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while True:
            if self.current is None:
                if not self.paths:
                    return 0
                self.current = open(self.paths.pop(0), "rb")
            n = self.current.readinto(buffer)
            if n:
                return n
            self.current.close()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
        super().close()


def write_copy(plan: CopyPlan, pieces: Sequence[Sequence[Path]], mix: "Mix | EncodedMix | None", out_path: Path,
               progress: Progress = lambda f: None) -> None:
    """Remux the spans' pieces (one list of TS files per span of ``plan``) into ``out_path``
    (MP4), each span moved to its place on the timeline; audio as ``plan.audio`` says (a mix
    passed through :func:`encode_early` before the spans were cut has been encoding meanwhile)."""
    files = [p for span in pieces for p in span]
    if not files:
        raise TimelineError("timeline: the video clips lie outside their source")
    with av.open(str(files[0])) as first:
        vtemplate = first.streams.video[0]
        has_source_audio = bool(first.streams.audio)
        out = av.open(str(out_path), mode="w", format="mp4", options={"movflags": "+faststart"})
        queue: Optional[_AudioQueue] = None
        try:
            vout = out.add_stream_from_template(vtemplate)
            vout.time_base = Fraction(1, 90000)
            aout = None
            if plan.audio == "source" and has_source_audio:
                aout = out.add_stream_from_template(first.streams.audio[0])
                aout.time_base = Fraction(1, 90000)
            queue = _AudioQueue(out, mix) if plan.audio == "mix" and mix is not None else None
            total = len(files)
            done = 0
            last_dts = {"video": -1, "audio": -1}
            for (tl_start, _, _), span in zip(plan.spans, pieces):
                origin: Optional[int] = None
                # a span's pieces read as one MPEG-TS stream (each piece flags its restart as a
                # discontinuity), without probing: the first piece was probed above
                with av.open(_Chain(span), format="mpegts", options=NO_PROBE) as src:
                    streams = list(src.streams.video[:1])
                    if aout is not None and plan.audio == "source":
                        streams += list(src.streams.audio[:1])
                    early: list[av.Packet] = []  # audio muxed ahead of the span's first picture
                    for first_packet in src.demux(streams):
                        if first_packet.dts is None or first_packet.size == 0:
                            continue
                        if origin is None:
                            if first_packet.stream.type != "video":
                                early.append(first_packet)
                                continue
                            origin = first_packet.pts - round(tl_start * 90000)  # the span's first picture
                            batch = [first_packet, *sorted(early, key=lambda p: p.dts)]
                        else:
                            batch = [first_packet]
                        for packet in batch:
                            kind = packet.stream.type
                            shift = origin
                            pts, dts = packet.pts - shift, packet.dts - shift
                            if kind == "video":
                                packet.stream = vout
                            else:
                                if pts < 0:
                                    continue
                                packet.stream = aout
                            if dts <= last_dts[kind]:
                                dts = last_dts[kind] + 1
                                pts = max(pts, dts)
                            last_dts[kind] = dts
                            packet.pts, packet.dts = pts, dts
                            packet.time_base = Fraction(1, 90000)
                            if queue is not None:
                                queue.until(dts / 90000)
                            out.mux(packet)
                done += len(span)
                progress(0.9 * done / total)
            if queue is not None:
                queue.rest()
        finally:
            if queue is not None:
                queue.close()
            out.close()
    progress(1.0)


def copy_timeline(plan: CopyPlan, sources: Mapping[str, SourceInfo], mix: Optional[Mix], out_path: Path,
                  progress: Progress = lambda f: None, cache_dir: Optional[Path] = None) -> None:
    """The copy path whole, each step once: the mix starts decoding and encoding (on threads of
    its own), the display's spans are cut meanwhile (whole GOPs of its HLS rendition reused,
    only partial edge GOPs re-encoded; cached in ``cache_dir``, by default the rendition's
    ``clips/``), then one remux writes ``out_path``."""
    src = sources[plan.video_id]
    hls_dir = Path(src.hls_dir or "")
    audio = encode_early(mix) if plan.audio == "mix" else None
    try:
        spans = clip_segments(Path(src.path), hls_dir, [(s0, s1) for _, s0, s1 in plan.spans],
                              cache_dir or hls_dir / "clips")
        write_copy(plan, [[piece.path for piece in span] for span in spans], audio, out_path, progress)
    finally:
        if isinstance(audio, EncodedMix):
            audio.close()


# -- the render path ----------------------------------------------------------------------------

def apply_filter(name: Optional[str], rgb: np.ndarray) -> np.ndarray:
    """The SDK's Filter enum, each as a colour operation on an RGB uint8 array."""
    if name is None:
        return rgb
    x = rgb.astype(np.float32)
    if name == "greyscale":
        y = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        x = np.repeat(y[..., None], 3, axis=2)
    elif name == "negative":
        x = 255.0 - x
    elif name == "darken":
        x = x * 0.6
    elif name == "lighten":
        x = x + (255.0 - x) * 0.4
    elif name == "contrast":
        x = (x - 128.0) * 1.5 + 128.0
    elif name in ("boost", "muted"):
        y = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        x = y + (x - y) * (1.6 if name == "boost" else 0.4)
        if name == "boost":
            x = (x - 128.0) * 1.15 + 128.0
    elif name == "blur":
        h, w = rgb.shape[:2]
        small = Image.fromarray(rgb).resize((max(1, w // 12), max(1, h // 12)), Image.BILINEAR)
        return np.asarray(small.resize((w, h), Image.BILINEAR))
    else:
        raise TimelineError(f"filter: unsupported filter ({name!r})")
    return np.clip(x, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Planes:
    """A picture as 4:2:0 planes (what the encoder takes: no colour conversion per frame), with
    its alpha at full and at chroma resolution (None: opaque). Sizes are even."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    a: Optional[np.ndarray] = None
    a2: Optional[np.ndarray] = None


#: RGB → Y'CbCr, BT.601 limited range: what swscale (and so every decoder of an untagged
#: yuv420p stream) assumes.
_RGB2Y = np.array([65.481, 128.553, 24.966], dtype=np.float32) / 255.0
_RGB2U = np.array([-37.797, -74.203, 112.0], dtype=np.float32) / 255.0
_RGB2V = np.array([112.0, -93.786, -18.214], dtype=np.float32) / 255.0


def _half(x: np.ndarray) -> np.ndarray:
    """2x2 means (x's first two dimensions are even)."""
    h, w = x.shape[:2]
    return x.reshape(h // 2, 2, w // 2, 2, *x.shape[2:]).mean(axis=(1, 3))


def rgba_planes(img: np.ndarray) -> Planes:
    """An RGB or RGBA uint8 image as :class:`Planes` (padded to even sizes with transparency)."""
    h, w = img.shape[:2]
    if h % 2 or w % 2:
        pad = np.zeros((h + h % 2, w + w % 2, 4), np.uint8)
        pad[:h, :w, :img.shape[2]] = img
        if img.shape[2] == 3:
            pad[:h, :w, 3] = 255
        img = pad
    rgb = img[..., :3].astype(np.float32)
    y = np.clip(16.0 + rgb @ _RGB2Y, 0, 255).astype(np.uint8)
    small = _half(rgb)
    u = np.clip(128.0 + small @ _RGB2U, 0, 255).astype(np.uint8)
    v = np.clip(128.0 + small @ _RGB2V, 0, 255).astype(np.uint8)
    if img.shape[2] == 4 and (img[..., 3] < 255).any():
        a = img[..., 3].astype(np.float32) / 255.0
        return Planes(y, u, v, a, _half(a))
    return Planes(y, u, v)


def frame_planes(frame: av.VideoFrame, size: tuple[int, int]) -> Planes:
    """A decoded frame scaled (swscale, bilinear) to ``size`` as yuv420p planes."""
    w, h = size
    return Planes(*yuv420p_planes(frame.to_ndarray(format="yuv420p", width=w, height=h, interpolation="BILINEAR"),
                                  (w, h)))


def yuv420p_planes(buffer: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of one yuv420p buffer of an even ``size`` (what PyAV's
    ``to_ndarray``/``from_ndarray`` use: ``H * 3 // 2`` rows of ``W`` bytes). Each chroma plane is
    H/2 rows of W/2 bytes, so it starts at byte ``W * H`` and spans ``W * H // 4`` bytes, which
    is H/4 rows of the buffer only when H is a multiple of 4."""
    w, h = size
    flat = buffer.reshape(-1)
    q = (w // 2) * (h // 2)
    return (flat[:w * h].reshape(h, w), flat[w * h:w * h + q].reshape(h // 2, w // 2),
            flat[w * h + q:w * h + 2 * q].reshape(h // 2, w // 2))


class _Layer:
    """One visual clip: its picture at a timeline time (:class:`Planes`) and where it goes."""

    def __init__(self, clip: Clip, viewport: tuple[int, int]) -> None:
        self.clip = clip
        self.viewport = viewport

    def alpha(self, t: float) -> float:
        c = self.clip
        a = c.opacity
        if c.fade_in and t - c.start < c.fade_in:
            a *= max(0.0, (t - c.start) / c.fade_in)
        if c.fade_out and c.end - t < c.fade_out:
            a *= max(0.0, (c.end - t) / c.fade_out)
        return a

    def picture(self, t: float) -> Optional[tuple[Planes, int, int]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Static(_Layer):
    """An image or text: drawn once, and only the part that shows (:func:`.geometry.visible`),
    so a layer never costs more than the frame however large it is placed."""

    def __init__(self, clip: Clip, viewport: tuple[int, int], natural: tuple[int, int], size: tuple[int, int],
                 draw: Callable[[tuple[float, float, float, float], tuple[int, int]], np.ndarray]) -> None:
        super().__init__(clip, viewport)
        at = even_xy(placed_at(clip.position, (clip.offset_x, clip.offset_y), size, viewport))
        shown = visible(at, size, natural, viewport)
        self.image: Optional[Planes] = None
        if shown is not None:
            self.x, self.y = shown.at
            self.image = rgba_planes(apply_rgba_filter(clip.filter, draw(shown.part, shown.size)))

    @classmethod
    def image_layer(cls, clip: Clip, viewport: tuple[int, int], img: Image.Image) -> "_Static":
        size = clip.size or fitted_size(clip.fit, clip.scale, img.size, viewport)
        return cls(clip, viewport, img.size, size,
                   lambda part, shown: np.asarray(img.resize(shown, Image.LANCZOS, box=part)))

    @classmethod
    def text_layer(cls, clip: Clip, viewport: tuple[int, int]) -> "_Static":
        """Text is laid out at the size it is shown (``scale`` times every length), not drawn big
        and shrunk: a tiny scale of a huge box costs no more than its pixels on the frame."""
        layout = layout_text(clip.asset, clip.scale)  # type: ignore[arg-type]
        return cls(clip, viewport, layout.size, layout.size,
                   lambda part, shown: draw_text(layout, tuple(round(v) for v in part)))  # type: ignore[arg-type]

    def picture(self, t: float) -> Optional[tuple[Planes, int, int]]:
        return None if self.image is None else (self.image, self.x, self.y)


def apply_rgba_filter(name: Optional[str], rgba: np.ndarray) -> np.ndarray:
    if name is None:
        return rgba
    if rgba.shape[2] == 4:
        return np.concatenate([apply_filter(name, np.ascontiguousarray(rgba[..., :3])), rgba[..., 3:]], axis=2)
    return apply_filter(name, rgba)


class _Video(_Layer):
    def __init__(self, clip: Clip, viewport: tuple[int, int], src: SourceInfo) -> None:
        super().__init__(clip, viewport)
        self.src = src
        a: VideoAsset = clip.asset  # type: ignore[assignment]
        full = (src.width or 2, src.height or 2)
        box = None if a.crop.empty else crop_box(a.crop, full)
        self.box: Optional[tuple[float, float, float, float]] = box
        kept = full if box is None else (box[2] - box[0], box[3] - box[1])
        self.size = clip.size or fitted_size(clip.fit, clip.scale, kept, viewport)
        self.size = (even(self.size[0]), even(self.size[1]))
        self.x, self.y = even_xy(placed_at(clip.position, (clip.offset_x, clip.offset_y), self.size, viewport))
        self.hidden = False
        if self.size[0] * self.size[1] > OVERSIZED * viewport[0] * viewport[1]:
            # scaled far beyond the frame: only the part that shows is scaled, from the source's pixels
            shown = visible((self.x, self.y), self.size, kept, viewport)
            self.hidden = shown is None
            if shown is not None:
                l, t = (box[0], box[1]) if box is not None else (0, 0)
                pl, pt, pr, pb = shown.part
                self.box = (l + pl, t + pt, l + min(pr, kept[0]), t + min(pb, kept[1]))
                self.size, (self.x, self.y) = shown.size, shown.at
        self.container = None
        self.frames: Optional[Iterator[av.VideoFrame]] = None
        self.current: Optional[Planes] = None
        self.current_t = -math.inf
        self.pending: Optional[av.VideoFrame] = None
        self.origin = 0.0
        self.ended = False
        self.frame_time = 1.5 / (src.fps or 25.0)  # the last frame shows for its own duration

    def _open(self) -> None:
        self.container = av.open(self.src.path)
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        self.origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        start = self.clip.asset.start  # type: ignore[union-attr]
        if start > 0.5:
            self.container.seek(int((self.origin + start) / stream.time_base), stream=stream, backward=True)
        self.frames = self.container.decode(stream)

    def _convert(self, frame: av.VideoFrame) -> Planes:
        w, h = self.size
        if self.box is None and self.clip.filter is None:
            return frame_planes(frame, self.size)  # the common case: scaled by swscale, no RGB
        if self.box is None:
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="BILINEAR")
        else:
            rgb = np.asarray(Image.fromarray(frame.to_ndarray(format="rgb24")).resize((w, h), Image.BILINEAR,
                                                                                       box=self.box))
        return rgba_planes(apply_filter(self.clip.filter, rgb))

    def picture(self, t: float) -> Optional[tuple[Planes, int, int]]:
        if self.hidden:
            return None
        if self.frames is None:
            self._open()
        want = self.clip.asset.start + (t - self.clip.start) + 1e-6  # type: ignore[union-attr]
        best: Optional[av.VideoFrame] = None
        while True:
            frame = self.pending
            self.pending = None
            if frame is None:
                try:
                    frame = next(self.frames)  # type: ignore[arg-type]
                except StopIteration:
                    self.ended = True
                    break
            ft = float(frame.time) - self.origin if frame.time is not None else self.current_t
            if ft > want:
                self.pending = frame
                break
            best, self.current_t = frame, ft
        if best is not None:
            self.current = self._convert(best)
        if self.current is None or (self.ended and best is None and want > self.current_t + self.frame_time):
            return None  # past the source's last frame: the clip shows nothing (background)
        return self.current, self.x, self.y

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class _Captions(_Layer):
    def __init__(self, clip: Clip, viewport: tuple[int, int], captions: Sequence[Caption]) -> None:
        super().__init__(clip, viewport)
        self.captions = [c for c in captions if c.end > clip.start and c.start < clip.end]
        self.cache: dict[tuple[int, int], tuple[Planes, int, int]] = {}

    def picture(self, t: float) -> Optional[tuple[Planes, int, int]]:
        asset: CaptionAsset = self.clip.asset  # type: ignore[assignment]
        for i, cap in enumerate(self.captions):
            if cap.start <= t < cap.end:
                word = -1
                text = cap.text
                highlight = None
                if asset.animation == "color_highlight" and cap.words:
                    text = " ".join(w for _, _, w in cap.words)
                    for j, (w0, w1, _) in enumerate(cap.words):
                        if w0 <= t:
                            word = j
                    if word >= 0:
                        lo = sum(len(w) + 1 for _, _, w in cap.words[:word])
                        highlight = (lo, lo + len(cap.words[word][2]))
                key = (i, word)
                if key not in self.cache:
                    img, x, y = guarded(lambda: render_caption(asset, text, self.viewport, highlight))
                    x, y = even_xy((x, y))
                    self.cache = {key: (rgba_planes(apply_rgba_filter(self.clip.filter, img)), x, y)}
                return self.cache[key]
        return None


def _blend_plane(dst: np.ndarray, src: np.ndarray, a: Optional[np.ndarray], x: int, y: int, alpha: float) -> None:
    H, W = dst.shape
    h, w = src.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    part = src[y0 - y:y1 - y, x0 - x:x1 - x]
    out = dst[y0:y1, x0:x1]
    if a is None and alpha >= 1.0:
        out[...] = part
        return
    k = (a[y0 - y:y1 - y, x0 - x:x1 - x] * np.float32(alpha)) if a is not None else np.float32(alpha)
    out[...] = (out + (part.astype(np.float32) - out) * k + 0.5).astype(np.uint8)


def _blend(canvas: tuple[np.ndarray, np.ndarray, np.ndarray], pic: Planes, x: int, y: int, alpha: float) -> None:
    if alpha <= 0:
        return
    Y, U, V = canvas
    _blend_plane(Y, pic.y, pic.a, x, y, alpha)
    _blend_plane(U, pic.u, pic.a2, x // 2, y // 2, alpha)
    _blend_plane(V, pic.v, pic.a2, x // 2, y // 2, alpha)


def render(timeline: Timeline, sources: Mapping[str, SourceInfo], out_path: Path,
           captions: Sequence[Caption] = (), progress: Progress = lambda f: None,
           mix: Optional[Mix] = None, encoder: Mapping[str, str] = X264) -> None:
    """Composite every frame of ``timeline`` in 4:2:0 and encode it (H.264 + AAC in MP4)."""
    W, H = timeline.width, timeline.height
    fps = output_fps(timeline, sources)
    n_frames = max(1, int(round(timeline.duration * fps)))
    # the frame as one yuv420p buffer (what VideoFrame.from_ndarray takes), and its planes as views
    canvas = np.empty((H * 3 // 2, W), dtype=np.uint8)
    planes = yuv420p_planes(canvas, (W, H))
    background = canvas.copy()
    bg = rgba_planes(np.array([[timeline.background[:3]] * 2] * 2, dtype=np.uint8))
    for plane, value in zip(yuv420p_planes(background, (W, H)), (bg.y, bg.u, bg.v)):
        plane[...] = value[0, 0]
    clips = timeline.layers()

    def make(clip: Clip) -> _Layer:
        a = clip.asset
        if isinstance(a, VideoAsset):
            return _Video(clip, (W, H), sources[a.id])
        if isinstance(a, ImageAsset):
            img = Image.open(sources[a.id].path).convert("RGBA")
            if not a.crop.empty:
                img = img.crop(crop_box(a.crop, img.size))
            return _Static.image_layer(clip, (W, H), img)
        if isinstance(a, TextAsset):
            return _Static.text_layer(clip, (W, H))
        return _Captions(clip, (W, H), captions)

    out = av.open(str(out_path), mode="w", format="mp4", options={"movflags": "+faststart"})
    live: dict[int, _Layer] = {}
    encoder_thread: Optional[_Encoder] = None
    audio: Optional[_AudioQueue] = None
    try:
        vstream = out.add_stream("libx264", rate=fps, options=dict(encoder))
        vstream.width, vstream.height, vstream.pix_fmt = W, H, "yuv420p"
        vstream.time_base = 1 / fps
        vstream.codec_context.thread_count = 0
        audio = _AudioQueue(out, mix) if mix is not None else None
        # composing (this thread) and encoding + muxing (another) overlap, as ffmpeg's do
        encoder_thread = _Encoder(out, vstream, audio)
        for i in range(n_frames):
            t = float(i / fps)
            canvas[...] = background
            for index, clip in enumerate(clips):
                if clip.start <= t < clip.end:
                    layer = live.get(index)
                    if layer is None:
                        layer = live[index] = make(clip)
                    pic = layer.picture(t)
                    if pic is not None:
                        _blend(planes, pic[0], pic[1], pic[2], layer.alpha(t))
                elif index in live and t >= clip.end:
                    live.pop(index).close()
            frame = av.VideoFrame.from_ndarray(canvas, format="yuv420p")  # a copy: the canvas is reused
            frame.pts = i
            encoder_thread.put(frame, t)
            if i % 15 == 0:
                progress(0.95 * i / n_frames)
        encoder_thread.finish()
        encoder_thread = None
    finally:
        if encoder_thread is not None:
            encoder_thread.abandon()
        if audio is not None:
            audio.close()
        for layer in live.values():
            layer.close()
        out.close()
    progress(1.0)


class _Encoder:
    """Encodes and muxes frames on its own thread (x264 and the muxer release the GIL), the
    audio interleaved by time; errors come back to the caller at its next put or at finish."""

    _END = None

    def __init__(self, out: av.container.OutputContainer, vstream, audio: Optional[_AudioQueue]) -> None:
        self.out, self.vstream, self.audio = out, vstream, audio
        self.queue: "queue_mod.Queue[Optional[tuple[av.VideoFrame, float]]]" = queue_mod.Queue(maxsize=8)
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="reeldb-render-encode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    break
                frame, t = item
                if self.audio is not None:
                    self.audio.until(t)
                self.out.mux(self.vstream.encode(frame))
            self.out.mux(self.vstream.encode(None))
            if self.audio is not None:
                self.audio.rest()
        except BaseException as exc:  # handed to the composing thread
            self.error = exc
            while True:  # unblock a producer waiting on a full queue
                try:
                    if self.queue.get_nowait() is None:
                        break
                except queue_mod.Empty:
                    break

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, frame: av.VideoFrame, t: float) -> None:
        self._check()
        while True:
            try:
                self.queue.put((frame, t), timeout=0.5)
                return
            except queue_mod.Full:
                self._check()

    def finish(self) -> None:
        self._check()
        self.queue.put(self._END)
        self.thread.join()
        self._check()

    def abandon(self) -> None:
        """The composing side failed: stop the encoder without flushing."""
        self.error = self.error or RuntimeError("abandoned")
        try:
            while True:
                self.queue.get_nowait()
        except queue_mod.Empty:
            pass
        self.queue.put(self._END)
        self.thread.join(timeout=30)
