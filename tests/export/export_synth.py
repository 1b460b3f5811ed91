"""Build synthetic capture session folders that follow capture's manifest contract.

Video: libx264 (no B-frames, SPS/PPS repeated before every keyframe, as WebRTC sends it),
solid colour per display plus a moving bar, muxed into Matroska with 1 ms timestamps.
Audio: a sine tone per channel, libopus 20 ms frames in Matroska. Pauses and gaps are holes
in pts (pts = capture time - start_time), exactly as the contract says.

Usable by other stages' tests (the server's) too: ``make_session(dir, spec)``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

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


def write_video(path: Path, spec: VideoSpec) -> dict:
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


def write_audio(path: Path, spec: AudioSpec, rate: int = 48000) -> dict:
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
            info = write_video(folder / entry["file"], v)
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
            info = write_audio(folder / name, a)
            if a.store:
                entry["file"] = name
                entry.update(first_frame_at=info["first"], last_frame_at=info["last"], frames=info["frames"])
        channels.append(entry)
    manifest = {"version": 1, "session_id": session_id, "created_at": T0 - 1, "channels": channels,
                "writer": "tests/export/synthetic.py"}  # fmt: skip
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
