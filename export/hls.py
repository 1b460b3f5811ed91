"""VOD HLS renditions by stream copy: the ``stream_url`` of every video and audio asset.

No re-encode: packets are copied into MPEG-TS segments by FFmpeg's ``hls`` muxer, which cuts
only at video keyframes (any packet for audio-only input) once ``segment_seconds`` have
passed. MPEG-TS (not fMP4) because it is what hls.js, Safari and PyAV all read without
special cases, and the muxer converts H.264 to Annex-B and AAC to ADTS itself.

Written into a temporary folder inside ``out_dir`` and moved into place when complete, so a
player never sees a playlist whose segments are still being written.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Optional, Protocol

import av

from .dts import DtsGuard
from .errors import ExportError, describe_error

PLAYLIST_NAME = "index.m3u8"
#: Codecs an MPEG-TS HLS rendition can carry by copy (and hls.js plays).
_TS_VIDEO = {"h264", "hevc"}
_TS_AUDIO = {"aac", "mp3", "ac3", "eac3"}


class PacketWatcher(Protocol):
    """Shown the video packets :func:`make_hls` copies (see its ``watch``)."""

    def start(self, stream: av.video.stream.VideoStream, name: str) -> None: ...

    def packet(self, packet: av.Packet) -> None: ...


class HlsError(ExportError):
    """The source cannot be segmented by copy (unreadable, or a codec HLS/TS cannot carry)."""

    code = "HLS_FAILED"


def make_hls(src: Path, out_dir: Path, segment_seconds: float = 4, *, name: str = PLAYLIST_NAME,
             watch: Optional[PacketWatcher] = None) -> Path:
    """Segment ``src`` (MP4/M4A from :func:`reeldb.export.mux.export_session`, or an upload
    with H.264/AAC) into ``out_dir``: ``index.m3u8`` (VOD, ENDLIST) + ``seg_00000.ts``...

    Returns the playlist path. Segment URIs in the playlist are relative, so the folder can be
    served from any URL prefix. Raises :class:`HlsError` if ``src`` cannot be copied to HLS
    (e.g. VP8 or Opus: transcode first).

    ``watch`` (e.g. a :class:`reeldb.export.thumbnails.StoryboardMaker`) is shown the video
    stream (``watch.start(stream, name)``) and then each of its packets before it is muxed
    (``watch.packet(packet)``): what needs the video's keyframes gets them from this one read.
    """
    src, out_dir = Path(src), Path(out_dir)
    try:
        inp = av.open(str(src), mode="r")
    except (av.error.FFmpegError, ValueError) as exc:
        raise HlsError(f"{src.name}: cannot be read for HLS ({describe_error(exc)})") from exc
    try:
        video = next(iter(inp.streams.video), None)
        audio = next(iter(inp.streams.audio), None)
        if video is not None and video.codec_context.name not in _TS_VIDEO:
            raise HlsError(f"{src.name}: video codec {video.codec_context.name} cannot be copied into HLS; transcode to H.264 first")
        if audio is not None and audio.codec_context.name not in _TS_AUDIO:
            if video is None:
                raise HlsError(f"{src.name}: audio codec {audio.codec_context.name} cannot be copied into HLS; transcode to AAC first")
            audio = None  # keep the picture rather than fail: the muxed export always has AAC
        streams = [s for s in (video, audio) if s is not None]
        if not streams:
            raise HlsError(f"{src.name}: no audio or video stream to segment")

        out_dir.mkdir(parents=True, exist_ok=True)
        work = out_dir / f".hls-{uuid.uuid4().hex[:8]}.part"
        work.mkdir()
        try:
            if watch is not None and video is not None:
                watch.start(video, src.name)
            _segment(inp, streams, work, segment_seconds, name, watch if video is not None else None,
                     video.index if video is not None else -1)
            for entry in sorted(work.iterdir(), key=lambda p: p.name == name):  # playlist last
                os.replace(entry, out_dir / entry.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        inp.close()
    return out_dir / name


def _segment(inp: av.container.InputContainer, streams: list, work: Path, segment_seconds: float, name: str,
             watch: Optional[PacketWatcher] = None, video_index: int = -1) -> None:
    options = {
        "hls_time": f"{segment_seconds:g}",
        "hls_playlist_type": "vod",
        "hls_list_size": "0",
        "hls_segment_type": "mpegts",
        "hls_segment_filename": str(work / "seg_%05d.ts"),
        "hls_flags": "independent_segments",
    }
    out = av.open(str(work / name), mode="w", format="hls", options=options)
    try:
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        guard = DtsGuard()  # an upload (or an old export) may hold repeated DTS
        seen = 0
        for packet in inp.demux(*streams):
            key = packet.stream_index
            if watch is not None and key == video_index:
                watch.packet(packet)  # before muxing, which takes the packet's data
            if packet.dts is None and packet.pts is None:
                continue
            packet.stream = mapping[key]
            out.mux(guard.fix(packet, key))
            seen += 1
        if seen == 0:
            raise HlsError(f"{Path(inp.name).name}: no packets to segment")
        out.close()
    except av.error.FFmpegError as exc:
        out.close()
        raise HlsError(f"{Path(inp.name).name}: HLS segmenting failed ({describe_error(exc)})") from exc
    except BaseException:
        out.close()
        raise


def first_pts(hls_dir: Path) -> int:
    """The first presentation timestamp of a rendition, in MPEG-TS's 90 kHz clock (what a WebVTT
    ``X-TIMESTAMP-MAP`` is anchored to); 0 for an empty first segment."""
    with av.open(str(hls_dir / "seg_00000.ts")) as container:
        for packet in container.demux():
            if packet.pts is not None and packet.stream.type in ("video", "audio"):
                return int(packet.pts * packet.time_base * 90000)
    return 0
