"""The suite's one media generator: real media made with PyAV and numpy (no files checked in).

- Files to upload or record from: :func:`make_video` (a moving bar over a colour, an optional
  tone), :func:`make_audio`, :func:`make_image`, :func:`screen_ts` (a screen the recorder relays),
  :func:`make_numbered` (frames that say their number, audio bursts that mark the time: the
  exact-clip tests), and :func:`write_wav` / :func:`write_video` / :func:`write_opus` for samples
  made elsewhere (speech, ``support.speech``).
- Encoded packets as a WebRTC sender hands them over: :func:`h264_access_units`,
  :func:`vp8_frames`, :func:`opus_packets`; :func:`write_ts` / :func:`mux_ts`; :func:`probe`
  decodes a file back.
- Capture session folders that follow capture's manifest contract: :func:`make_session`,
  :func:`standard_session`. Video: libx264 (no B-frames, SPS/PPS repeated before every keyframe,
  as WebRTC sends it), solid colour per display plus a moving bar, muxed into Matroska with 1 ms
  timestamps. Audio: a sine tone per channel, libopus 20 ms frames in Matroska. Pauses and gaps
  are holes in pts (pts = capture time - start_time), exactly as the contract says.
"""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

RATE = 48000


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.5, rate: int = RATE,
         channels: int | None = 2) -> np.ndarray:
    """A sine, float32: shape (samples, channels), or (samples,) for ``channels=None``."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels is None else np.stack([mono] * channels, axis=1)


# ---------------------------------------------------------------------------------------------
# Session folders (capture's manifest contract)
# ---------------------------------------------------------------------------------------------

T0 = 1_750_000_000.0  # capture clock of the session start
MS = Fraction(1, 1000)


@dataclass
class VideoSpec:
    channel_id: str = "display:1"
    color: tuple[int, int, int] = (200, 30, 30)
    width: int = 320
    height: int = 240
    fps: int = 30
    start: float = 0.0  # seconds after T0
    duration: float = 6.0
    pauses: list[tuple[float, float]] = field(default_factory=list)  # seconds after T0
    gaps: list[tuple[float, float]] = field(default_factory=list)  # network gaps (the manifest's "gaps")
    store: bool = True
    primary: bool = False
    keyint: int = 60
    preset: str = "ultrafast"
    codec: str = "h264"  # or "vp8"
    texture: int = 0  # static noise amplitude: makes keyframes screen-sized (bench realism)
    mux_stream: bool = False  # write like capture/writer.py: add_mux_stream, 1/90000 packets


@dataclass
class AudioSpec:
    channel_id: str = "mic:default"
    freq: float = 440.0
    amplitude: float = 0.3
    start: float = 0.0
    duration: float = 6.0
    pauses: list[tuple[float, float]] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    store: bool = True
    write_file_anyway: bool = False  # a decoy file for a store:false channel
    channels: int = 2
    noise: float = 0.0  # white noise added to the tone (AAC works harder, like on speech)


def _in_holes(t: float, holes: list[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in holes)


def _fname(channel_id: str, ext: str) -> str:
    return channel_id.replace(":", "_") + ext


def write_channel_video(path: Path, spec: VideoSpec) -> dict:
    w, h = spec.width, spec.height
    if spec.codec == "vp8":
        enc = av.CodecContext.create("libvpx", "w")
        enc.options = {"deadline": "realtime", "cpu-used": "8"}
    else:
        enc = av.CodecContext.create("libx264", "w")
        enc.options = {
            "preset": spec.preset,
            "tune": "zerolatency",
            "x264-params": f"repeat-headers=1:keyint={spec.keyint}:min-keyint={spec.keyint}:bframes=0:scenecut=0",
        }
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = Fraction(1, spec.fps)
    enc.framerate = spec.fps
    if spec.codec == "vp8":
        enc.gop_size = spec.keyint
    base = np.zeros((h, w, 3), np.uint8)
    base[...] = spec.color
    if spec.texture:
        rng = np.random.default_rng(7)
        noise = rng.integers(-spec.texture, spec.texture + 1, size=(h, w, 1), dtype=np.int16)
        base = np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    # Pre-build a cycle of frames (cheap for long benches): a bar moving over the colour.
    cycle = []
    for i in range(30):
        arr = base.copy()
        x = (i * w // 30) % w
        arr[:, x : x + max(2, w // 40)] = 255
        cycle.append(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p"))
    out = av.open(str(path), "w", format="matroska")
    stream = None
    n_frames = int(round(spec.duration * spec.fps))
    first = last = None
    written = 0

    def emit(packets):
        nonlocal stream, written, first, last
        for p in packets:
            t_ms = int(p.pts) if p.pts is not None else 0  # encoder pts carry ms directly
            if stream is None:
                if spec.mux_stream:
                    stream = out.add_mux_stream(spec.codec, width=w, height=h)
                elif spec.codec == "vp8":
                    stream = out.add_stream("vp8")
                    stream.width, stream.height = w, h
                else:
                    # Template from the first keyframe (Annex-B SPS/PPS): capture does the same.
                    tmpl = av.open(io.BytesIO(bytes(p)), format="h264")
                    stream = out.add_stream_from_template(tmpl.streams.video[0], opaque=False)
                    tmpl.close()
                stream.time_base = MS
            q = av.Packet(bytes(p))
            q.stream = stream
            q.time_base = MS
            q.pts = q.dts = t_ms
            q.is_keyframe = p.is_keyframe
            out.mux(q)
            written += 1
            cap = T0 + spec.start + t_ms / 1000
            first = cap if first is None else first
            last = cap

    enc.time_base = MS  # feed ms timestamps straight through
    resumed = False
    for i in range(n_frames):
        t = i / spec.fps
        if _in_holes(spec.start + t, spec.pauses + spec.gaps):
            resumed = True
            continue
        frame = cycle[i % 30]
        # Capture resumes a paused video at a keyframe (it asks the sender for one): so here.
        frame.pict_type = av.video.frame.PictureType.I if resumed else av.video.frame.PictureType.NONE
        resumed = False
        frame.pts = int(round(t * 1000))
        frame.time_base = MS
        emit(enc.encode(frame))
    emit(enc.encode(None))
    out.close()
    return {"first": first, "last": last, "frames": written}


def write_channel_audio(path: Path, spec: AudioSpec, rate: int = 48000) -> dict:
    out = av.open(str(path), "w", format="matroska")
    stream = out.add_stream("libopus", rate=rate)
    stream.layout = "stereo" if spec.channels == 2 else "mono"
    n = 960
    total = int(spec.duration * rate) // n
    holes = spec.pauses + spec.gaps
    first = last = None
    frames = 0
    rng = np.random.default_rng(len(spec.channel_id))
    for i in range(total):
        t = i * n / rate
        if _in_holes(spec.start + t, holes):
            continue
        ts = (np.arange(i * n, (i + 1) * n) / rate).astype(np.float64)
        x = (spec.amplitude * np.sin(2 * np.pi * spec.freq * (ts + spec.start))).astype(np.float32)
        if spec.noise:
            x += (spec.noise * rng.standard_normal(n)).astype(np.float32)
        data = np.stack([x] * spec.channels)
        f = av.AudioFrame.from_ndarray(data, format="fltp", layout=stream.layout.name)
        f.sample_rate = rate
        f.time_base = Fraction(1, rate)
        f.pts = i * n
        out.mux(stream.encode(f))
        frames += 1
        cap = T0 + spec.start + t
        first = cap if first is None else first
        last = cap + n / rate
    out.mux(stream.encode(None))
    if not frames:
        out.start_encoding()  # a file with its header and no packet
    out.close()
    return {"first": first, "last": last, "frames": frames}


def make_session(
    root: Path,
    videos: list[VideoSpec],
    audios: list[AudioSpec],
    session_id: str = "cap-test",
    extra_top: dict | None = None,
) -> Path:
    """Write ``root/<session_id>/`` with channel files and manifest.json; return the folder."""
    folder = Path(root) / session_id
    folder.mkdir(parents=True, exist_ok=True)
    channels = []
    for v in videos:
        entry = {
            "channel_id": v.channel_id, "category": "display", "kind": "video", "store": v.store,
            "file": None, "codec": v.codec, "container": "matroska", "start_time": T0 + v.start,
            "clock": "rtcp", "width": v.width, "height": v.height,
            "pauses": [[T0 + a, T0 + b] for a, b in v.pauses], "gaps": [[T0 + a, T0 + b] for a, b in v.gaps],
            "first_frame_at": None, "last_frame_at": None, "frames": 0, "complete": True,
            "is_primary": v.primary, "name": f"Display {v.channel_id}",
        }  # fmt: skip
        if v.store:
            entry["file"] = _fname(v.channel_id, ".mkv")
            info = write_channel_video(folder / entry["file"], v)
            entry.update(first_frame_at=info["first"], last_frame_at=info["last"], frames=info["frames"])
        channels.append(entry)
    for a in audios:
        category = a.channel_id.split(":", 1)[0]
        entry = {
            "channel_id": a.channel_id, "category": category, "kind": "audio", "store": a.store,
            "file": None, "codec": "opus", "container": "matroska", "start_time": T0 + a.start,
            "clock": "rtcp", "sample_rate": 48000, "audio_channels": a.channels,
            "pauses": [[T0 + x, T0 + y] for x, y in a.pauses],
            "gaps": [[T0 + x, T0 + y] for x, y in a.gaps],
            "first_frame_at": None, "last_frame_at": None, "frames": 0, "complete": True,
        }  # fmt: skip
        if a.store or a.write_file_anyway:
            name = _fname(a.channel_id, ".mka")
            info = write_channel_audio(folder / name, a)
            if a.store:
                entry["file"] = name
                entry.update(first_frame_at=info["first"], last_frame_at=info["last"], frames=info["frames"])
        channels.append(entry)
    manifest = {"version": 1, "session_id": session_id, "created_at": T0 - 1, "channels": channels,
                "writer": "tests/support/media.py"}  # fmt: skip
    manifest.update(extra_top or {})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def standard_session(root: Path, duration: float = 6.0, session_id: str = "cap-std") -> Path:
    """Two displays (red primary, blue), a mic (440 Hz, paused 2-3 s), late system audio
    (1000 Hz from 1.5 s, network gap 4.0-4.5 s) and an ephemeral mic (1500 Hz, decoy file)."""
    return make_session(
        root,
        [
            VideoSpec("display:1", (220, 20, 20), duration=duration, primary=True),
            VideoSpec("display:2", (20, 20, 220), duration=duration),
        ],
        [
            AudioSpec("mic:default", 440.0, pauses=[(2.0, 3.0)], duration=duration),
            AudioSpec("system_audio:default", 1000.0, start=1.5, gaps=[(4.0, 4.5)], duration=duration - 1.5),
            AudioSpec("mic:headset", 1500.0, store=False, write_file_anyway=True, duration=duration),
        ],
        session_id=session_id,
    )


# ---------------------------------------------------------------------------------------------
# Files to upload or record from
# ---------------------------------------------------------------------------------------------

def make_video(path: Path, seconds: float = 2.0, size: tuple[int, int] = (320, 240), fps: int = 25,
               tone_hz: float | None = 440.0, background: tuple[int, int, int] = (0, 0, 0),
               container: str | None = None, x264: dict[str, str] | None = None) -> Path:
    """H.264 video of a moving bar on ``background`` with (optionally) an AAC sine tone; an MP4 unless
    ``container`` says otherwise (``mpegts`` for a screen the recorder relays without re-encoding)."""
    with av.open(str(path), "w", format=container) as out:
        v = out.add_stream("libx264", rate=fps, options=x264 or {"preset": "ultrafast", "g": str(fps)})
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        a = None
        if tone_hz:
            a = out.add_stream("aac", rate=48000)
            a.layout = "mono"
        frames = int(seconds * fps)
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:] = background
            img[:, (i * 8) % size[0]:(i * 8) % size[0] + 16] = (255, 200, 0)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        if a is not None:
            write_tone(out, a, seconds, tone_hz)
    return path


def write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float,
               hz: float, rate: int = 48000) -> None:
    samples = tone(seconds, hz, 0.3, rate, channels=None)
    for start in range(0, len(samples), AUDIO_CHUNK):
        mux_audio(out, stream, samples, start, rate)
    for packet in stream.encode():
        out.mux(packet)


AUDIO_CHUNK = 1024


def mux_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray,
              start: int, rate: int, chunk: int = AUDIO_CHUNK) -> None:
    """Encode and mux ``samples[start:start + chunk]`` (mono float32) at its own timestamp."""
    frame = av.AudioFrame.from_ndarray(samples[None, start:start + chunk], format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = start
    frame.time_base = Fraction(1, rate)
    for packet in stream.encode(frame):
        out.mux(packet)


def make_audio(path: Path, seconds: float = 2.0, hz: float = 440.0) -> Path:
    """A WAV (or, by suffix, any container PyAV can write) with a sine tone."""
    codec = {".wav": "pcm_s16le", ".m4a": "aac", ".mp3": "libmp3lame", ".ogg": "libopus"}[path.suffix]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=48000)
        stream.layout = "mono"
        write_tone(out, stream, seconds, hz)
    return path


def make_image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[..., 0] = 200
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height = size
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def screen_ts(path: Path, seconds: float, colour: tuple[int, int, int], size=(320, 240), fps=15) -> Path:
    """A synthetic screen: H.264 (baseline, keyframe every second) in MPEG-TS, relayed as is."""
    return make_video(path, seconds, size, fps, tone_hz=None, background=colour, container="mpegts",
                      x264={"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency",
                            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0"})


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    """A 16-bit WAV of float samples: shape (samples,) is mono, (samples, channels) more."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_video(path: Path, audio: np.ndarray, rate: int = 48000, fps: int = 5, size: tuple[int, int] = (64, 64),
                picture=None, gop: int | None = None) -> Path:
    """An MP4 (H.264 + AAC) carrying ``audio``: grey frames, or ``picture(i)`` (an RGB array of
    ``size``) for frame ``i``; ``gop`` frames between keyframes if given."""
    duration = len(audio) / rate
    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if gop:
            v.codec_context.gop_size = gop
        a = out.add_stream("aac", rate=rate)
        a.layout = "mono"
        grey = np.full((h, w, 3), 128, np.uint8)
        for i in range(int(duration * fps) + 1):
            f = av.VideoFrame.from_ndarray(grey if picture is None else picture(i), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        step = 1024
        for i in range(0, len(audio), step):
            chunk = audio[i : i + step]
            f = av.AudioFrame.from_ndarray(chunk.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
            f.sample_rate = rate
            f.pts = i
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode():
            out.mux(p)
    return path


def write_opus(path: Path, audio: np.ndarray, rate: int = 48000, holes: Sequence[tuple[float, float]] = ()) -> Path:
    """Opus in WebM, 20 ms frames at their capture times, as export copies a raw channel: the
    frames inside ``holes`` (seconds: a pause, a network gap) are missing, not silent."""
    n = 960
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=rate)
        stream.layout = "mono"
        for i in range(0, len(audio) - n + 1, n):
            if any(a <= i / rate < b for a, b in holes):
                continue
            f = av.AudioFrame.from_ndarray(audio[i:i + n].reshape(1, -1).astype(np.float32), format="flt",
                                           layout="mono")
            f.sample_rate, f.time_base, f.pts = rate, Fraction(1, rate), i
            for p in stream.encode(f):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return path


# ---------------------------------------------------------------------------------------------
# Numbered frames and timed bursts (the exact-clip tests)
# ---------------------------------------------------------------------------------------------

BITS = 12
BLOCK = 16
BURST_EVERY = 0.5
BURST_LEN = 0.02


def pattern(i: int, width: int, height: int, background: int = 40) -> np.ndarray:
    img = np.full((height, width, 3), background, np.uint8)
    x = (i * 6) % max(1, width - 24)
    img[BLOCK * 2:, x:x + 24] = (230, 180, 20)
    for b in range(BITS):
        if (i >> b) & 1:
            img[:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 255
        else:
            img[:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 0
    return img


def frame_number(frame: av.VideoFrame) -> int:
    gray = frame.to_ndarray(format="gray")
    n = 0
    for b in range(BITS):
        if gray[BLOCK // 2, b * BLOCK + BLOCK // 2] > 128:
            n |= 1 << b
    return n


def background_of(frame: av.VideoFrame) -> int:
    """The grey of a frame's background: the median of its bottom row (the bar covers 24 px of it)."""
    return int(np.median(frame.to_ndarray(format="gray")[-4]))


def play(url: str) -> tuple[float, float, float]:
    """What a clip plays: (its first frame's time, the end of its last frame, seconds of audio);
    a frame lasts the usual interval between two (the median)."""
    times, samples = [], 0
    with av.open(str(url)) as c:
        for frame in c.decode(*c.streams.video[:1], *c.streams.audio[:1]):
            if isinstance(frame, av.VideoFrame):
                times.append(frame.time)
            else:
                samples += frame.samples
    steps = sorted(b - a for a, b in zip(times, times[1:]))
    return times[0], times[-1] + steps[len(steps) // 2], samples / RATE


def audio_samples(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    on = (t % BURST_EVERY) < BURST_LEN
    return (0.5 * np.sin(2 * np.pi * 1000 * t) * on).astype(np.float32)


def make_numbered(path: Path, seconds: float, gop_seconds: float, *, fps: int = 25, size=(320, 240),
                  preset: str = "ultrafast", bframes: bool = False, audio: bool = True,
                  background: int = 40, hole: tuple[float, float] | None = None) -> Path:
    """An MP4 (H.264 + AAC) with keyframes exactly every ``gop_seconds`` (no scene cuts); the grey
    ``background`` tells two such videos apart (:func:`background_of`). ``hole``: seconds with
    no video frame (the audio goes on; the video resumes with a keyframe), as exports made before
    holes were filled have across a paused display."""
    g = int(round(gop_seconds * fps))
    params = f"keyint={g}:min-keyint={g}:scenecut=0" + ("" if bframes else ":bframes=0")
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": preset, "x264-params": params})
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        a = None
        if audio:
            a = out.add_stream("aac", rate=RATE)
            a.layout = "mono"
        samples = audio_samples(seconds)
        chunk, pos = 1024, 0
        resumed = False
        for i in range(int(seconds * fps)):
            if hole and hole[0] <= i / fps < hole[1]:
                resumed = True
            else:
                frame = av.VideoFrame.from_ndarray(pattern(i, *size, background), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                frame.pict_type = av.video.frame.PictureType.I if resumed else av.video.frame.PictureType.NONE
                resumed = False
                for packet in v.encode(frame):
                    out.mux(packet)
            while a is not None and pos < len(samples) and pos / RATE <= (i + 1) / fps:
                mux_audio(out, a, samples, pos, RATE, chunk)
                pos += chunk
        for packet in v.encode():
            out.mux(packet)
        if a is not None:
            for packet in a.encode():
                out.mux(packet)
    return path


# ---------------------------------------------------------------------------------------------
# Encoded packets as a sender hands them over
# ---------------------------------------------------------------------------------------------

def _encoded_frames(codec: str, options: dict[str, str], picture, seconds: float, fps: int, gop: int,
                    width: int, height: int) -> list[bytes]:
    """The packets of ``codec`` for ``seconds`` of ``picture(i, img)`` drawn on black frames."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.options = options
    out: list[bytes] = []
    for i in range(int(seconds * fps)):
        img = np.zeros((height, width, 3), dtype=np.uint8)
        picture(i, img)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def h264_access_units(
    seconds: float, fps: int = 30, gop: int = 30, width: int = 320, height: int = 240
) -> list[bytes]:
    """Annex-B H.264 access units (constrained baseline, SPS/PPS before each IDR)."""
    def picture(i: int, img: np.ndarray) -> None:
        img[:, :, 0] = (i * 7) % 256
        img[(i * 3) % height, :, 1] = 255

    return _encoded_frames("libx264", {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency",
                                       "keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"},
                           picture, seconds, fps, gop, width, height)


def vp8_frames(seconds: float, fps: int = 30, gop: int = 30, width: int = 320, height: int = 240) -> list[bytes]:
    """VP8 frames (a key frame every ``gop``)."""
    def picture(i: int, img: np.ndarray) -> None:
        img[(i * 3) % height, :, :] = 255

    return _encoded_frames("libvpx", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
                           picture, seconds, fps, gop, width, height)


def opus_packets(seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> list[bytes]:
    """20 ms Opus packets of a stereo tone."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.time_base = Fraction(1, 48000)
    samples = (tone(seconds, freq, amplitude) * 32767).astype(np.int16)
    out: list[bytes] = []
    for i in range(0, len(samples) - 959, 960):
        chunk = samples[i:i + 960].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def probe(path) -> dict:
    """Decode a file completely: frames per stream, first/last frame time, errors."""
    result = {"frames": 0, "first": None, "last": None, "errors": 0, "codec": None, "width": None}
    with av.open(str(path)) as c:
        s = c.streams[0]
        result["codec"] = s.codec_context.name
        try:
            for pkt in c.demux(s):
                try:
                    for f in pkt.decode():
                        t = float(f.time) if f.time is not None else None
                        result["frames"] += 1
                        if result["first"] is None:
                            result["first"] = t
                        result["last"] = t
                        if getattr(f, "width", None):
                            result["width"] = f.width
                except av.FFmpegError:
                    result["errors"] += 1
        except av.FFmpegError:
            result["errors"] += 1
    return result


def write_ts(path, seconds: float, fps: int = 15, gop: int = 15) -> None:
    """An MPEG-TS file holding Annex-B H.264 (what the recorder relays without re-encoding)."""
    mux_ts(path, h264_access_units(seconds, fps=fps, gop=gop), fps, gop)


def mux_ts(path, aus: list[bytes], fps: int, gop: int) -> None:
    """Annex-B access units (a keyframe every ``gop``) into MPEG-TS at ``fps``."""
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_mux_stream("h264", width=320, height=240)
        for i, au in enumerate(aus):
            p = av.Packet(au)
            p.stream = s
            p.time_base = Fraction(1, 90000)
            p.pts = p.dts = 90000 + i * 90000 // fps
            p.is_keyframe = i % gop == 0
            c.mux(p)

