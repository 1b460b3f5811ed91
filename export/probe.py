"""Probe a media file: what it is, how long, which codecs. Used by export and for uploads.

Cheap on purpose: it reads the container header, demuxes a few packets and decodes at most
one frame per stream to prove the file is usable; it never decodes the whole file.

The duration is the packets' own, never only what a header says: a header is written before
(MP4 with ``faststart``) or regardless of the data, so a file cut short by a crash or a partial
copy declares more than it holds. When the container declares a duration, probe seeks to just
before that end and checks that packets are there; if they are not (or there is no declared
duration, as in a Matroska file from a crashed capture), it demuxes (never decodes) from the
tail, then the whole file, and takes the end of the last packet.
"""

from __future__ import annotations

from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Any

import av

#: Demuxer names that mean "a single still image", whatever the extension says.
_IMAGE_FORMATS = {"png_pipe", "jpeg_pipe", "webp_pipe", "image2", "bmp_pipe", "tiff_pipe", "gif_pipe", "jpegls_pipe"}
_IMAGE_CODECS = {"png", "mjpeg", "webp", "bmp", "tiff", "jpegls"}


class MediaError(Exception):
    """The file is not usable media (missing, empty, unreadable, truncated, no streams).

    ``code`` is machine-readable; ``str(err)`` names the file only (not its folder), so it can
    be shown to users; :attr:`path` keeps the full path for logs.
    """

    code = "MEDIA_UNREADABLE"

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" | "audio" | "image"
    duration: float | None  # seconds; None for images
    size: int  # bytes on disk
    format: str  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "png_pipe"
    bit_rate: int | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fps(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0 < value < 1000:
                return round(value, 3)
    return None


def _tail_duration(container: av.container.InputContainer, size: int) -> float | None:
    """Largest packet end time (seconds from the stream start), found by demuxing (never
    decoding) the last MiB of the file, then a larger tail, then the whole file."""
    streams = [s for s in container.streams if s.type in ("video", "audio")]
    if not streams:
        return None
    for back in (1 << 20, 16 << 20, None):
        whole = back is None or back >= size
        try:
            if whole:
                container.seek(0, backward=True, any_frame=True)
            else:
                # A byte seek needs no index: a crashed Matroska file has no Cues.
                container.seek(size - back, unsupported_byte_offset=True, any_frame=True)
        except (av.error.FFmpegError, OSError, ValueError):
            if not whole:
                continue
            return None
        end: float | None = None
        try:
            for packet in container.demux(*streams):
                t = _packet_end(packet)
                if t is None:
                    continue
                end = t if end is None else max(end, t)
        except av.error.FFmpegError:
            pass  # a truncated tail still tells how far the good part goes
        if end is not None or whole:
            return end
    return None


def _packet_end(packet: av.Packet) -> float | None:
    """End of a packet in seconds from its stream's start (None without timestamps)."""
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None or packet.time_base is None:
        return None
    t = float((ts + (packet.duration or 0)) * packet.time_base)
    start = packet.stream.start_time
    if start is not None:
        t -= float(start * packet.stream.time_base)
    return t


def _reaches(container: av.container.InputContainer, declared: float) -> bool:
    """True when packets really exist up to (about) the ``declared`` end: seek by time to just
    before it (the header's index makes that cheap) and read a few packets."""
    streams = [s for s in container.streams if s.type in ("video", "audio")]
    if not streams:
        return False
    target = max(0.0, declared - 3.0)
    try:
        container.seek(int(target * av.time_base), backward=True, any_frame=False)
    except (av.error.FFmpegError, OSError, ValueError):
        return False
    end = None
    try:
        for packet in container.demux(*streams):
            t = _packet_end(packet)
            if t is not None:
                end = t if end is None else max(end, t)
                if end >= declared - 0.5:
                    return True
    except av.error.FFmpegError:
        pass
    return False


def probe(path: Path | str) -> MediaInfo:
    """Describe ``path``; raise :class:`MediaError` if it is not usable media."""
    path = Path(path)
    name = path.name or "file"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MediaError(f"{name}: no such file", path) from None
    except OSError as exc:
        raise MediaError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})", path) from exc
    if not path.is_file():
        raise MediaError(f"{name}: not a regular file", path)
    if size == 0:
        raise MediaError(f"{name}: file is empty", path)
    try:
        container = av.open(str(path), mode="r", options={"probesize": "5000000", "analyzeduration": "5000000"})
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(f"{name}: not a readable media file ({_reason(exc)})", path) from exc
    try:
        return _describe(container, path, size)
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, ZeroDivisionError) as exc:
        raise MediaError(f"{name}: damaged or truncated media ({_reason(exc)})", path) from exc
    finally:
        container.close()


def _reason(exc: BaseException) -> str:
    """FFmpeg's reason without the path it embeds in its messages."""
    return getattr(exc, "strerror", None) or type(exc).__name__


def _describe(container: av.container.InputContainer, path: Path, size: int) -> MediaInfo:
    name = path.name
    fmt = container.format.name
    video = next((s for s in container.streams.video if not _is_cover_art(s)), None)
    audio = next(iter(container.streams.audio), None)
    if video is None and audio is None:
        raise MediaError(f"{name}: no audio or video stream", path)

    vcodec = video.codec_context.name if video is not None else None
    is_image = video is not None and audio is None and (
        fmt in _IMAGE_FORMATS or (vcodec in _IMAGE_CODECS and (video.frames or 0) <= 1 and fmt.endswith("_pipe"))
    )

    # Prove the file decodes: demux until one frame of each stream decodes (a handful of
    # packets), which catches garbage and files cut inside their first packets.
    wanted = [s for s in (video, audio) if s is not None]
    decoded: set[int] = set()
    packets = 0
    try:
        for packet in container.demux(*wanted):
            packets += 1
            if packet.size == 0:
                continue
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                frames = []
            if frames:
                decoded.add(packet.stream.index)
            if len(decoded) == len(wanted) or packets > 400:
                break
    except av.error.FFmpegError as exc:
        if not decoded:
            raise MediaError(f"{name}: damaged or truncated media ({_reason(exc)})", path) from exc
    if not decoded and packets:
        # a decoder with frame threading holds its first frames back: a one-frame video (an
        # editor render of a sub-frame timeline) shows its frame only when flushed
        for stream in wanted:
            try:
                if stream.codec_context.decode(None):
                    decoded.add(stream.index)
            except av.error.FFmpegError:
                pass
    if not decoded:
        if packets == 0:
            raise MediaError(f"{name}: no media packets (empty or truncated file)", path)
        raise MediaError(f"{name}: no frame could be decoded (damaged or truncated file)", path)

    duration: float | None = None
    if not is_image:
        stream_durs = [float(s.duration * s.time_base) for s in wanted if s.duration and s.time_base]
        declared = None
        if container.duration is not None and container.duration > 0:
            declared = container.duration / av.time_base
        elif stream_durs:
            declared = max(stream_durs)
        if "matroska" in fmt or declared is None or not _reaches(container, declared):
            # Matroska from a live capture may have no Duration (ffmpeg then guesses from the
            # bit rate), and a truncated MP4 declares what it lost: the packets' own
            # timestamps are the truth.
            duration = _tail_duration(container, size)
        if duration is None:
            duration = declared
        if duration is not None:
            duration = round(duration, 6)

    return MediaInfo(
        kind="image" if is_image else ("video" if video is not None else "audio"),
        duration=duration,
        size=size,
        format=fmt,
        bit_rate=container.bit_rate or None,
        video_codec=vcodec,
        width=video.codec_context.width if video is not None else None,
        height=video.codec_context.height if video is not None else None,
        fps=None if (video is None or is_image) else _fps(video),
        audio_codec=audio.codec_context.name if audio is not None else None,
        sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        channels=audio.codec_context.channels if audio is not None else None,
    )


def _is_cover_art(stream: Any) -> bool:
    """An MP3/M4A's embedded cover picture is a 'video' stream that is not a video."""
    disposition = getattr(stream, "disposition", None)
    try:
        return bool(disposition is not None and (int(disposition) & 0x400))  # AV_DISPOSITION_ATTACHED_PIC
    except (TypeError, ValueError):
        return False
