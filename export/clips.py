"""Exact clips: HLS pieces that play exactly a span of a video, by smart cut.

A span ``[start, end)`` (seconds from the rendition's first frame) becomes a short list of
MPEG-TS pieces that play exactly that span, first and last frame within one frame interval and
audio within half an AAC frame (~11 ms):

- **whole segments** of the video's HLS rendition (``make_hls``) that lie well inside the span
  are listed as they are: the very same files, no copy;
- the rendition's segments at each edge are rewritten: every **whole GOP** inside the span is
  copied packet for packet (the same bytes, only remuxed into a new TS file); a **partial GOP**
  at the end is copied as a decode-order prefix when that prefix is exactly the frames inside
  the span (streams without B-frames: WebRTC captures, ``ultrafast`` uploads), and with
  B-frames its longest prefix that shows exactly its first frames is copied and only the few
  frames after it (fewer than the B-frames between two references) are **re-encoded**; a
  partial GOP at the start is re-encoded from the span's start to the GOP's end. Re-encoding
  decodes from the GOP's keyframe (at most one GOP, stopping at the span's end; pictures
  outside the span that no other picture refers to are not decoded), drops the frames outside
  the span and encodes the rest with libx264 matching the source (size, pixel format,
  profile, level, frame rate, 90 kHz time base; no B-frames). A span's two edges are cut at
  the same time on the executor the caller passes (:data:`EDGE_WORKERS` threads are enough);
- audio is copied: the AAC frames whose middle lies inside the span (each ~21 ms), taken from
  whatever segment holds them (the muxer puts audio up to a few frames away from the video
  keyframe it cuts at, so the edge segments and, at the end, the next segment are read).

Timestamps are the rendition's own (90 kHz), so the pieces of a span continue one another
exactly and the reused segments need no change. Re-encoded pieces get DTS = PTS - the source's
reorder delay (that of the keyframe they meet), so DTS increase strictly through a span even when
the source has B-frames. A re-encoded piece is preceded and followed by
``#EXT-X-DISCONTINUITY`` (its SPS/PPS differ from the source's, which hls.js only picks up at a
discontinuity); every span starts with one (its timestamps jump). Every piece starts with a
keyframe.

The result of a span is cached under ``cache_dir/<key>/`` (``pieces.json`` plus the rewritten
``<n>.ts``), keyed by the rendition (playlist path, size and mtime), the source file (path, size,
mtime), the span in milliseconds and :data:`CLIP_VERSION` (encoder settings included); a second
request for the same span reads ``pieces.json`` and touches no media. Entries are written to a
temporary folder and renamed into place, so concurrent requests never see half an entry.
The rendition's first segment (the streams' parameters, the origin, the frame interval) is read
once and kept open for the last :data:`TEMPLATES_KEPT` renditions; edge segments are demuxed
without probing.

Pure functions over files (no server, no database), blocking and CPU-bound: call them from a
worker thread.

    spans = clip_segments(source_mp4, hls_dir, [(3.2, 9.7)], hls_dir / "clips")
    text = clip_playlist([(spans, "")])          # URIs relative to hls_dir
    body = shift_timestamps(piece_bytes, ticks)  # for a ``<uri>?shift=<ticks>`` of a compilation
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import av

from . import playlists

from .errors import ExportError, describe_error
from .plan import MAX_FRAME_GAP, whole_rate
from .x264 import PRESET as X264_PRESET, matching_encoder

#: Bump when the cut or the encoder settings change: old cache entries are then never read.
CLIP_VERSION = 3
PLAYLIST_NAME = "index.m3u8"
PIECES_NAME = "pieces.json"
TS_CLOCK = 90000
#: x264 settings of re-encoded edges (at most one GOP per edge). CRF 18 looks like the source
#: (on the clip bench's noisy 720p, 50 dB PSNR against the decoded source); ``ultrafast`` costs
#: about half the CPU of ``superfast`` (which gave 48 dB) for ~20 % more bytes: the edges are a
#: small share of a clip's bytes and, with decoding, all of its making.
X264_CRF = "18"
#: Edges of a span re-encoded at the same time (each on its own core when there are two).
EDGE_WORKERS = 2
#: Renditions whose first segment (the streams every piece is written from, the origin and the
#: frame interval) is kept open between calls, so a request reads only its edge segments.
TEMPLATES_KEPT = 16
#: Segments closer than this to a span's edge are rewritten, not reused: the HLS muxer puts the
#: audio around a keyframe a few frames (the reorder delay) into the neighbouring segment.
EDGE_MARGIN = 1.0
#: Ticks (90 kHz) between a span and the previous one when the playlist moves it (one 25 fps frame).
SPAN_GAP = 3600



#: Timestamps written as given (no 1.4 s muxing delay, no shift), and every stream's first packet
#: flagged discontinuous, so a demuxer reading the pieces back to back (ffmpeg's hls reader)
#: accepts the restarted continuity counters; see :func:`_chain_cc` for the other side.
_TS_OPTIONS = {"mpegts_copyts": "1", "avoid_negative_ts": "disabled", "mpegts_flags": "+initial_discontinuity"}
#: PIDs of the program tables (PAT, SDT, PMT): their counters are left alone.
_PSI_PIDS = {0x0000, 0x0011, 0x1000}


class ClipError(ExportError):
    """The rendition cannot be cut (missing or unreadable segments, a codec x264 cannot match)."""

    code = "CLIP_FAILED"


class ClipCancelled(ClipError):
    """The cut stopped before its end because ``cancelled()`` said so (the client has gone)."""

    code = "CLIP_CANCELLED"


@dataclass(frozen=True)
class Piece:
    """One entry of a clip playlist: a TS file and the time it plays.

    ``uri`` is relative to the rendition's folder (``seg_00012.ts`` for a reused segment,
    ``clips/<key>/0.ts`` when the cache is ``hls_dir/clips``). ``discontinuity``: the playlist
    must put ``#EXT-X-DISCONTINUITY`` before this piece (a re-encoded piece, and the one after
    it). ``reencoded``: the piece was made by the encoder (the others hold source bytes).
    """

    uri: str
    path: Path
    duration: float
    discontinuity: bool = False
    reencoded: bool = False
    #: Lowest and highest DTS in the file (90 kHz), for the pieces this module wrote (a span's
    #: first and last piece always are); None for a reused segment.
    first_dts: Optional[int] = None
    last_dts: Optional[int] = None


# --------------------------------------------------------------------------------------------
# the playlist


def shift_uri(uri: str, ticks: int) -> str:
    """The default way a playlist names a piece whose timestamps must be shifted: a query the
    segment route answers with :func:`shift_timestamps` applied to the file."""
    return f"{uri}?shift={ticks}"


def clip_playlist(parts: Sequence[tuple[Sequence[Sequence[Piece]], str]],
                  shifted: Callable[[str, int], str] = shift_uri) -> str:
    """One VOD playlist of clipped spans of one or several videos, in order (a compilation).

    ``parts`` is ``[(clip_segments(...) of a video, prefix), ...]``; ``prefix`` is prepended to
    each piece's ``uri`` (e.g. ``"../stream/<token>/"``). Every span after the first starts
    with ``#EXT-X-DISCONTINUITY``; ``#EXTINF`` are the pieces' exact durations and
    ``#EXT-X-TARGETDURATION`` the longest rounded up.

    DTS increase through the whole playlist, as ffmpeg wants even across discontinuities
    ("DTS out of order" otherwise): a span that starts before the previous one ended (another
    video, or an earlier moment) is moved after it by a whole number of 90 kHz ticks, and its
    pieces are named ``shifted(prefix + uri, ticks)`` — by default ``uri?shift=<ticks>``, which
    the server serves as the file passed through :func:`shift_timestamps`. Spans in their
    video's order keep their own timestamps and plain URIs. ValueError if no span has a piece.
    """
    spans: list[list[tuple[Piece, str]]] = []
    for clips, prefix in parts:
        for pieces in clips:
            if pieces:
                spans.append([(p, prefix) for p in pieces])
    if not spans:
        raise ValueError("the spans lie outside the video")
    target = max(1, max(math.ceil(round(p.duration, 3)) for span in spans for p, _ in span))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    previous_end: Optional[int] = None
    for n, span in enumerate(spans):
        first, last = span[0][0].first_dts, span[-1][0].last_dts
        ticks = 0
        if previous_end is not None and first is not None and first <= previous_end:
            ticks = previous_end + SPAN_GAP - first
        if last is not None:
            previous_end = last + ticks
        for i, (piece, prefix) in enumerate(span):
            if (n and i == 0) or (i and piece.discontinuity):
                lines.append("#EXT-X-DISCONTINUITY")
            uri = prefix + piece.uri
            lines += [f"#EXTINF:{piece.duration:.6f},", shifted(uri, ticks) if ticks else uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def shift_timestamps(data: bytes, ticks: int) -> bytes:
    """An MPEG-TS file (a piece or a segment) with every PES PTS/DTS and every PCR moved by
    ``ticks`` of 90 kHz (modulo 2**33, as MPEG-TS wraps): the same packets, no remux. For the
    segment route when a playlist names ``<piece>?shift=<ticks>``."""
    out = bytearray(data)
    for i in range(0, len(out) - 187, 188):
        if out[i] != 0x47:
            raise ValueError("not an MPEG-TS file (lost sync)")
        pid = ((out[i + 1] & 0x1F) << 8) | out[i + 2]
        control = (out[i + 3] >> 4) & 3
        pos = i + 4
        if control & 2:  # adaptation field
            length = out[pos]
            if length and out[pos + 1] & 0x10:  # PCR
                b = out[pos + 2: pos + 8]
                base = (b[0] << 25) | (b[1] << 17) | (b[2] << 9) | (b[3] << 1) | (b[4] >> 7)
                base = (base + ticks) % (1 << 33)
                out[pos + 2] = (base >> 25) & 0xFF
                out[pos + 3] = (base >> 17) & 0xFF
                out[pos + 4] = (base >> 9) & 0xFF
                out[pos + 5] = (base >> 1) & 0xFF
                out[pos + 6] = ((base & 1) << 7) | (out[pos + 6] & 0x7F)
            pos += 1 + length
        if not control & 1 or not out[i + 1] & 0x40 or pid in _PSI_PIDS:
            continue
        if out[pos: pos + 3] != b"\x00\x00\x01" or pos + 9 > i + 188:
            continue
        flags = out[pos + 7] >> 6
        for k in ((0,) if flags == 2 else (0, 5) if flags == 3 else ()):
            at = pos + 9 + k
            if at + 5 > i + 188:
                break
            b = out[at: at + 5]
            ts = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
            ts = (ts + ticks) % (1 << 33)
            out[at] = (b[0] & 0xF0) | ((ts >> 29) & 0x0E) | 1
            out[at + 1] = (ts >> 22) & 0xFF
            out[at + 2] = ((ts >> 14) & 0xFE) | 1
            out[at + 3] = (ts >> 7) & 0xFF
            out[at + 4] = ((ts << 1) & 0xFE) | 1
    return bytes(out)


# --------------------------------------------------------------------------------------------
# clip_segments


@dataclass(frozen=True)
class _Seg:
    name: str
    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


def clip_segments(source_video: Optional[Path], hls_dir: Path, spans: Iterable[tuple[float, float]],
                  cache_dir: Path, executor: Optional[Executor] = None,
                  cancelled: Optional[Callable[[], bool]] = None) -> list[list[Piece]]:
    """The pieces of each span of the video whose HLS rendition is ``hls_dir`` (``index.m3u8``
    + ``seg_*.ts`` made by :func:`reeldb.export.make_hls`), in the order given.

    ``source_video`` (the file the rendition was made from, or None) only enters the cache key.
    Times are seconds from the rendition's first frame; spans are clamped to the video, and a
    span with no frame in it gives ``[]``. Raises :class:`ClipError` for an unreadable rendition.

    ``executor``: where a span's edges are cut at the same time (the caller owns it; None: one
    after the other). ``cancelled``: asked before each span that is not cached yet; when it says
    True the cut stops there with :class:`ClipCancelled` (whoever asked has gone), so a long list
    of spans never runs on for nobody.
    """
    spans = list(spans)
    hls_dir = Path(hls_dir)
    segments, entries = _entries(source_video, hls_dir, spans, cache_dir)
    cutter = None
    out = []
    try:
        for (start, end), entry in zip(spans, entries):
            cached = _load(entry, hls_dir)
            if cached is not None:
                out.append(cached)
                continue
            if cancelled is not None and cancelled():
                raise ClipCancelled("the clip was cancelled: nobody waits for it any more")
            if entry.exists():  # a broken entry (a file deleted by hand or evicted): made again
                shutil.rmtree(entry, ignore_errors=True)
            if cutter is None:
                cutter = _Cutter(hls_dir, segments, executor)
            out.append(cutter.cut(max(0.0, float(start)), float(end), entry))
    finally:
        if cutter is not None:
            cutter.close()
    return out


def clip_entries(source_video: Optional[Path], hls_dir: Path, spans: Iterable[tuple[float, float]],
                 cache_dir: Path) -> list[Path]:
    """The cache entry (a folder under ``cache_dir``) of each span, made or not: a span is cached
    when its entry holds :data:`PIECES_NAME`. Reads only the rendition's playlist (and stats the
    source), so whoever budgets new cuts can tell cached spans from new ones cheaply."""
    return _entries(source_video, Path(hls_dir), spans, cache_dir)[1]


def _entries(source_video: Optional[Path], hls_dir: Path, spans: Iterable[tuple[float, float]],
             cache_dir: Path) -> tuple[list[_Seg], list[Path]]:
    """The rendition's segments and the cache entry of each span (see :func:`clip_entries`)."""
    cache_dir = Path(cache_dir)
    playlist = hls_dir / PLAYLIST_NAME
    try:
        stat = playlist.stat()
        segments = _parse(playlist.read_text())
    except OSError as exc:
        raise ClipError(f"no HLS rendition to cut ({exc.strerror})") from exc
    if not segments:
        raise ClipError("the HLS rendition has no segments")
    identity = {"v": CLIP_VERSION, "x264": [X264_PRESET, X264_CRF], "margin": EDGE_MARGIN,
                "playlist": [str(playlist.resolve()), stat.st_size, stat.st_mtime_ns]}
    if source_video is not None:
        try:
            s = Path(source_video).stat()
            identity["source"] = [str(Path(source_video).resolve()), s.st_size, s.st_mtime_ns]
        except OSError:
            identity["source"] = [str(source_video)]
    entries = []
    for start, end in spans:
        start, end = max(0.0, float(start)), float(end)
        key = hashlib.sha256(json.dumps({**identity, "span": [round(start * 1000), round(end * 1000)]},
                                        sort_keys=True).encode()).hexdigest()[:32]
        entries.append(cache_dir / key)
    return segments, entries


def _parse(text: str) -> list[_Seg]:
    """The rendition's segments, read with the player stage's one playlist parser."""
    return [_Seg(s.uri, s.start, s.duration) for s in playlists.parse(text)]


def _uri(path: Path, hls_dir: Path) -> str:
    return Path(os.path.relpath(path, hls_dir)).as_posix()


def _load(entry: Path, hls_dir: Path) -> Optional[list[Piece]]:
    try:
        rows = json.loads((entry / PIECES_NAME).read_text())
    except (OSError, ValueError):
        return None
    pieces = []
    for r in rows:
        path = hls_dir / r["segment"] if "segment" in r else entry / r["file"]
        if not path.is_file():
            return None  # a rendition remade, or a cache entry half-deleted: cut again
        pieces.append(Piece(_uri(path, hls_dir), path, r["duration"], r["discontinuity"], r["reencoded"],
                            r.get("first_dts"), r.get("last_dts")))
    return pieces


# --------------------------------------------------------------------------------------------
# the cut


class _Run:
    """Consecutive packets destined for one TS file: copied source packets or encoder output."""

    def __init__(self, reencoded: bool) -> None:
        self.reencoded = reencoded
        self.video: list[av.Packet] = []
        self.audio: list[av.Packet] = []
        self.frames: list[int] = []  # pts of the frames it shows

    @property
    def first_pts(self) -> int:
        return self.frames[0] if self.frames else (self.audio[0].pts if self.audio else 0)


class _Template:
    """What every cut of a rendition needs from its first segment, which stays open (its
    streams are the templates of every piece written): the streams' parameters, the origin
    (the first frame's pts) and the frame interval. Kept between calls (:func:`_template`)."""

    def __init__(self, first: Path) -> None:
        try:
            self.container = av.open(str(first))
        except (av.error.FFmpegError, OSError) as exc:
            raise ClipError(f"{first.name}: cannot be read ({describe_error(exc)})") from exc
        self.streams = (_stream_info(next(iter(self.container.streams.video), None)),
                        _stream_info(next(iter(self.container.streams.audio), None)))
        first_video, first_audio = [], []
        try:  # the origin (the first frame) and the frame interval, from the first packets
            for packet in self.container.demux():
                if packet.pts is None or packet.size == 0:
                    continue
                (first_video if packet.stream.type == "video" else first_audio).append(packet)
                if len(first_video) >= 30 or (self.streams[0] is None and first_audio):
                    break
        except av.error.FFmpegError as exc:
            self.container.close()
            raise ClipError(f"{first.name}: cannot be read ({describe_error(exc)})") from exc
        origin = first_video[0].pts if first_video else (first_audio[0].pts if first_audio else None)
        if origin is None:
            self.container.close()
            raise ClipError("the HLS rendition's first segment holds no media")
        self.origin: int = origin
        stamps = sorted(p.pts for p in first_video)
        deltas = sorted(b - a for a, b in zip(stamps, stamps[1:]) if b > a)
        self.frame: int = deltas[len(deltas) // 2] if deltas else TS_CLOCK // 25


_templates: "OrderedDict[tuple, _Template]" = OrderedDict()
_templates_lock = threading.Lock()


def _template(first: Path) -> _Template:
    """The template of the rendition whose first segment is ``first``, opened once per version
    of that file (path, size, mtime) and kept for the :data:`TEMPLATES_KEPT` renditions used
    last. One dropped from the list closes when no cut uses it any more."""
    try:
        st = first.stat()
    except OSError as exc:
        raise ClipError(f"{first.name}: cannot be read ({exc.strerror})") from exc
    key = (str(first.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    with _templates_lock:
        found = _templates.get(key)
        if found is not None:
            _templates.move_to_end(key)
            return found
    made = _Template(first)
    with _templates_lock:
        found = _templates.setdefault(key, made)
        _templates.move_to_end(key)
        while len(_templates) > TEMPLATES_KEPT:
            _templates.popitem(last=False)
    return found


class _Cutter:
    """Reads a rendition's segments on demand; one per clip_segments call."""

    def __init__(self, hls_dir: Path, segments: list[_Seg], executor: Optional[Executor] = None) -> None:
        self.hls_dir = hls_dir
        self.segments = segments
        self.executor = executor
        self._packets: dict[int, tuple[list[av.Packet], list[av.Packet]]] = {}
        template = _template(hls_dir / segments[0].name)
        self.templates = template.streams
        self.origin = template.origin
        self.frame = template.frame
        self._template = template  # held: the streams stay open while this cut writes

    def close(self) -> None:
        self._packets.clear()

    # -- reading

    def _read(self, index: int) -> tuple[list[av.Packet], list[av.Packet]]:
        if index in self._packets:
            return self._packets[index]
        path = self.hls_dir / self.segments[index].name
        video, audio = [], []
        try:
            # Only packets are needed here (the template gave the streams' parameters), so no
            # probing: the PMT names the streams, the packets are the same, and the default
            # probe cost ~7x the demuxing of the whole segment.
            with av.open(str(path), format="mpegts", options={"probesize": "32", "analyzeduration": "0"}) as container:
                vs = next(iter(container.streams.video), None)
                aus = next(iter(container.streams.audio), None)
                wanted = [s for s in (vs, aus) if s is not None]
                for packet in container.demux(*wanted):
                    if packet.pts is None or packet.size == 0:
                        continue
                    if packet.time_base != Fraction(1, TS_CLOCK):
                        raise ClipError(f"{path.name}: not an MPEG-TS segment (time base {packet.time_base})")
                    (video if packet.stream.type == "video" else audio).append(packet)
        except (av.error.FFmpegError, OSError) as exc:
            raise ClipError(f"{path.name}: cannot be read ({describe_error(exc)})") from exc
        self._packets[index] = (video, audio)
        return video, audio

    # -- one span

    def cut(self, start: float, end: float, entry: Path) -> list[Piece]:
        segs = self.segments
        total = segs[-1].end
        end = min(end, total + 1.0)
        if end <= start or start >= total:
            return []
        chosen = [i for i, s in enumerate(segs) if s.end > start - EDGE_MARGIN and s.start < end + EDGE_MARGIN]
        reused = {i for i in chosen if segs[i].start >= start + EDGE_MARGIN and segs[i].end <= end - EDGE_MARGIN}
        groups: list[list[int]] = []
        for i in chosen:
            if i in reused:
                continue
            if groups and groups[-1][-1] == i - 1:
                groups[-1].append(i)
            else:
                groups.append([i])

        half = self.frame // 2
        lo = self.origin + round(start * TS_CLOCK) - half
        hi = self.origin + round(end * TS_CLOCK) - half
        alo = self.origin + round(start * TS_CLOCK)
        ahi = self.origin + round(end * TS_CLOCK)

        # The groups (a span's two edges, usually) are cut at the same time. The span's first
        # and last segments are never reused (EDGE_MARGIN): they mark its head and tail groups.
        edges = [(chosen[0] in g, chosen[-1] in g) for g in groups]
        if len(groups) > 1 and self.executor is not None:
            cut = list(self.executor.map(lambda g, e: self._cut_group(g, lo, hi, alo, ahi, *e), groups, edges))
        else:
            cut = [self._cut_group(g, lo, hi, alo, ahi, *e) for g, e in zip(groups, edges)]
        runs_of = {g[0]: r for g, r in zip(groups, cut)}
        # Every segment in order: a reused one as is, a group as its runs.
        items: list[tuple[str, object]] = []
        for i in chosen:
            if i in reused:
                items.append(("seg", i))
            elif i in runs_of:
                items.append(("runs", runs_of[i]))

        work = entry.parent / f".{entry.name}-{uuid.uuid4().hex[:8]}.part"
        pieces: list[Piece] = []
        rows: list[dict] = []
        after_encoded = False
        n = 0
        try:
            for kind, value in items:
                if kind == "seg":
                    seg = segs[value]
                    path = self.hls_dir / seg.name
                    pieces.append(Piece(_uri(path, self.hls_dir), path, seg.duration, after_encoded, False))
                    rows.append({"segment": seg.name, "duration": seg.duration, "discontinuity": after_encoded,
                                 "reencoded": False})
                    after_encoded = False
                    continue
                for run in value:
                    if not run.video and not run.audio:
                        continue
                    if n == 0:
                        work.mkdir(parents=True)
                    name = f"{n}.ts"
                    n += 1
                    duration, first_dts, last_dts = self._write(run, work / name)
                    disc = run.reencoded or after_encoded
                    pieces.append(Piece("", entry / name, duration, disc, run.reencoded, first_dts, last_dts))
                    rows.append({"file": name, "duration": duration, "discontinuity": disc,
                                 "reencoded": run.reencoded, "first_dts": first_dts, "last_dts": last_dts})
                    after_encoded = run.reencoded
            if not pieces:
                return []
            for here, after in zip(pieces, pieces[1:]):
                if here.path.parent == entry and after.path.parent != entry:
                    _chain_cc(work / here.path.name, after.path)
            if n == 0:
                work.mkdir(parents=True)
            (work / PIECES_NAME).write_text(json.dumps(rows))
            try:
                os.replace(work, entry)
            except OSError:
                if not (entry / PIECES_NAME).is_file():  # another request made it meanwhile: use theirs
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return [Piece(_uri(p.path, self.hls_dir), p.path, p.duration, p.discontinuity, p.reencoded, p.first_dts,
                      p.last_dts) for p in pieces]

    def _cut_group(self, group: list[int], lo: int, hi: int, alo: int, ahi: int, head: bool = False,
                   tail: bool = False) -> list[_Run]:
        """Runs of one group of consecutive rewritten segments: copied GOPs, re-encoded edges;
        at the span's ``head``/``tail``, a held picture where the span has no frames there."""
        video: list[av.Packet] = []
        audio: list[av.Packet] = []
        for i in group:
            v, a = self._read(i)
            video += v
            audio += a
        gops: list[list[av.Packet]] = []
        for packet in video:
            if packet.is_keyframe or not gops:
                gops.append([])
            gops[-1].append(packet)
        runs: list[_Run] = []
        keyframe_delays = [(g[0].pts, g[0].pts - g[0].dts if g[0].dts is not None else 0) for g in gops]
        for gi, gop in enumerate(gops):
            shown = sorted(p.pts for p in gop)
            keep = [t for t in shown if lo <= t < hi]
            if not keep:
                continue
            if len(keep) == len(shown):
                self._copy(runs, gop, keep)
                continue
            prefix = _decode_prefix(gop, lo, hi)
            if prefix is not None:
                self._copy(runs, prefix, keep)
                continue
            # A partial GOP with frames reordered across the cut: re-encode the frames inside.
            if keep[0] == shown[0]:
                # A tail (it starts at its own keyframe): the longest decode-order prefix that
                # shows exactly its first frames is copied, and only the frames after it are
                # re-encoded (fewer than the B-frames between two references).
                closed = _closed_prefix(gop, hi)
                delay = keyframe_delays[gi][1]
                encode = keep[len(closed):]
                if closed:
                    self._copy(runs, closed, keep[:len(closed)])
                    last_dts = max(p.dts if p.dts is not None else p.pts for p in closed)
                    delay = min(delay, encode[0] - last_dts - 1)  # DTS go on increasing after the copy
            else:
                nxt = next((d for t, d in keyframe_delays[gi + 1:] if lo <= t < hi), 0)
                delay = nxt  # a head: ends where the next copied keyframe starts
                encode = keep
            delay = max(0, min(delay, encode[0]))
            run = _Run(True)
            run.video = self._encode(gop, encode, delay)
            run.frames = encode
            runs.append(run)
        if self.templates[0] is not None and (head or tail):
            runs = self._hold_edges(runs, group, alo, ahi, head, tail)
        picked = [p for p in audio if alo <= p.pts + (p.duration or 0) // 2 < ahi]
        if not runs and picked and self.templates[0] is None:
            runs.append(_Run(False))  # an audio-only rendition
        for packet in picked:
            target = runs[0] if runs else None
            for run in runs:
                if run.first_pts <= packet.pts:
                    target = run
            if target is not None:
                target.audio.append(packet)
        return runs

    def _hold_edges(self, runs: list[_Run], group: list[int], alo: int, ahi: int, head: bool,
                    tail: bool) -> list[_Run]:
        """A rendition with a stretch without frames (an export made before holes were filled, a
        variable-rate upload): where the span starts or ends in it, or lies inside it, the picture
        shown there is held, re-encoded every frame interval, so the clip plays its whole span."""
        shown = sorted(t for run in runs for t in run.frames)
        gap = round(MAX_FRAME_GAP * TS_CLOCK)
        video_end = self.origin + round(self.segments[-1].end * TS_CLOCK)
        # With no frame of the span in this group, the next one is at the group's end at the latest.
        group_end = self.origin + round(self.segments[group[-1]].end * TS_CLOCK)
        if head and (shown[0] if shown else min(ahi, video_end, group_end)) - alo > gap:
            until = shown[0] - self.frame + 1 if shown else min(ahi, video_end, group_end)  # a frame apart
            held = self._held(alo - 1, list(range(alo, until, self.frame)))
            if held is not None:
                runs = [held] + runs
                shown = sorted(held.frames + shown)
        if tail and shown and min(ahi, video_end) - shown[-1] > gap + self.frame:
            held = self._held(shown[-1], list(range(shown[-1] + self.frame, min(ahi, video_end), self.frame)))
            if held is not None:
                runs = runs + [held]
        return runs

    def _held(self, at: int, times: list[int]) -> Optional[_Run]:
        """A re-encoded run showing the picture shown at ``at`` (the first one when none is
        shown yet) at ``times``."""
        found = self._gop_of(at)
        if found is None or not times:
            return None
        gop, target = found
        run = _Run(True)
        run.video = self._encode(gop, [target], 0, times)
        run.frames = times
        return run

    def _gop_of(self, at: int) -> Optional[tuple[list[av.Packet], int]]:
        """The packets of the GOP holding the last frame shown at or before ``at`` (or the
        rendition's first frame), from its keyframe, and that frame's pts."""
        t = (at - self.origin) / TS_CLOCK
        index = max([i for i, s in enumerate(self.segments) if s.start <= t] or [0])
        for i in list(range(index, -1, -1)) + list(range(index + 1, len(self.segments))):
            video, _ = self._read(i)
            before = [p.pts for p in video if p.pts <= at] if i <= index else [p.pts for p in video]
            if not before:
                continue
            target = max(before) if i <= index else min(before)
            where = next(k for k, p in enumerate(video) if p.pts == target)
            start = max([k for k, p in enumerate(video[: where + 1]) if p.is_keyframe] or [0])
            return video[start: where + 1], target
        return None

    @staticmethod
    def _copy(runs: list[_Run], packets: list[av.Packet], keep: list[int]) -> None:
        if not runs or runs[-1].reencoded:
            runs.append(_Run(False))
        runs[-1].video += packets
        runs[-1].frames += keep

    def _encode(self, gop: list[av.Packet], keep: list[int], delay: int,
                held_at: Optional[list[int]] = None) -> list[av.Packet]:
        """Decode ``gop`` up to the last kept frame and encode the kept frames (one GOP at most);
        with ``held_at``, the one kept frame at each of those times instead."""
        info = self.templates[0]
        wanted, last = set(keep), keep[-1]
        decoder = av.CodecContext.create(info["codec"], "r")
        decoder.thread_type = "AUTO"  # frame threads: a GOP is decoded in one go
        if info["extradata"]:
            decoder.extradata = info["extradata"]
        encoder = None
        out: list[av.Packet] = []

        def encode(frame: Optional[av.VideoFrame]) -> None:
            nonlocal encoder
            if encoder is None:
                encoder = _encoder(info, frame, self.frame)
            for packet in encoder.encode(frame):
                packet.dts = packet.pts - delay
                out.append(packet)

        try:
            finished = False
            for packet in gop + [None]:
                if packet is not None and packet.pts not in wanted and not _is_reference(packet):
                    continue  # a picture no other refers to, outside the span: never decoded
                for frame in decoder.decode(packet):
                    shown = frame.pts
                    if shown in wanted:
                        frame.time_base = Fraction(1, TS_CLOCK)
                        frame.pict_type = av.video.frame.PictureType.NONE
                        for at in held_at or [shown]:
                            frame.pts = at
                            encode(frame)
                    if shown is not None and shown >= last:
                        finished = True
                        break
                if finished:
                    break
            if encoder is not None:
                encode(None)
        except av.error.FFmpegError as exc:
            raise ClipError(f"an edge of the clip could not be re-encoded ({describe_error(exc)})") from exc
        if len(out) != len(held_at or keep):
            raise ClipError(f"an edge of the clip decoded to {len(out)} of {len(held_at or keep)} frames")
        return out

    def _write(self, run: _Run, path: Path) -> tuple[float, int, int]:
        """Mux ``run`` into one MPEG-TS file with its timestamps untouched: its duration in
        seconds, its lowest and highest DTS."""
        vinfo, ainfo = self.templates
        try:
            with av.open(str(path), "w", format="mpegts",
                         options=_TS_OPTIONS) as out:
                vout = out.add_stream_from_template(vinfo["stream"]) if vinfo and run.video else None
                aout = out.add_stream_from_template(ainfo["stream"]) if ainfo and run.audio else None
                packets = [(p, vout) for p in run.video] + [(p, aout) for p in run.audio]
                packets.sort(key=lambda x: (x[0].dts if x[0].dts is not None else x[0].pts))
                stamps = [p.dts if p.dts is not None else p.pts for p, _ in packets]
                for packet, stream in packets:
                    packet.stream = stream
                    packet.time_base = Fraction(1, TS_CLOCK)
                    out.mux(packet)
        except av.error.FFmpegError as exc:
            raise ClipError(f"a clip piece could not be written ({describe_error(exc)})") from exc
        if run.frames:
            return (run.frames[-1] - run.frames[0] + self.frame) / TS_CLOCK, min(stamps), max(stamps)
        a = run.audio
        return (a[-1].pts + (a[-1].duration or 0) - a[0].pts) / TS_CLOCK, min(stamps), max(stamps)


def _chain_cc(path: Path, following: Path) -> None:
    """Renumber the continuity counters of ``path``'s media PIDs so that they run straight into
    those ``following`` (an untouched segment of the rendition) starts with. ``path`` starts
    with discontinuity indicators, so its own first counters may be anything; without this, a
    reader of the two files back to back flags the last frame before ``following`` corrupt."""
    first: dict[int, int] = {}
    with open(following, "rb") as f:
        head = f.read(188 * 2000)
    for i in range(0, len(head) - 187, 188):
        pid = ((head[i + 1] & 0x1F) << 8) | head[i + 2]
        if pid not in _PSI_PIDS and pid != 0x1FFF and pid not in first and head[i + 3] & 0x10:
            first[pid] = head[i + 3] & 0x0F
    data = bytearray(path.read_bytes())
    counts: dict[int, int] = {}
    for i in range(0, len(data) - 187, 188):
        pid = ((data[i + 1] & 0x1F) << 8) | data[i + 2]
        if pid in first and data[i + 3] & 0x10:
            counts[pid] = counts.get(pid, 0) + 1
    cc = {pid: (first[pid] - counts[pid] - 1) % 16 for pid in counts}
    for i in range(0, len(data) - 187, 188):
        pid = ((data[i + 1] & 0x1F) << 8) | data[i + 2]
        if pid in cc:
            if data[i + 3] & 0x10:  # only packets with a payload advance the counter
                cc[pid] = (cc[pid] + 1) % 16
            data[i + 3] = (data[i + 3] & 0xF0) | cc[pid]
    path.write_bytes(bytes(data))


def _closed_prefix(gop: list[av.Packet], hi: int) -> list[av.Packet]:
    """The longest decode-order prefix of ``gop`` (whose keyframe is its first picture shown)
    that shows exactly the GOP's first frames, all before ``hi``: copied as is before a tail
    that must be re-encoded: at least the keyframe, or nothing when the keyframe is not the
    first frame shown (an open GOP)."""
    shown = sorted(p.pts for p in gop)
    if gop[0].pts != shown[0] or shown[0] >= hi:
        return []
    best, top = 1, -1
    for i, packet in enumerate(gop):
        top = max(top, packet.pts)
        if top >= hi:
            break
        if top == shown[i]:  # i + 1 distinct pts, none above the (i + 1)-th: exactly the first
            best = i + 1
    return gop[:best]


def _is_reference(packet: av.Packet) -> bool:
    """Whether an H.264 access unit (Annex B, as MPEG-TS carries it) holds a reference picture:
    the nal_ref_idc of its first slice. A picture with nal_ref_idc 0 is never used to decode
    another, so one outside the span need not be decoded at all (what ``skip_frame=NONREF``
    does, decided per packet). True when no slice is found."""
    data = bytes(packet)
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < len(data) - 3:
        header = data[i + 3]
        if 1 <= header & 0x1F <= 5:
            return bool(header & 0x60)
        i = data.find(b"\x00\x00\x01", i + 3)
    return True


def _decode_prefix(gop: list[av.Packet], lo: int, hi: int) -> Optional[list[av.Packet]]:
    """The GOP's packets up to the last frame inside ``[lo, hi)`` in decode order, when those
    are exactly the frames inside (the GOP starts inside and no later frame is decoded
    earlier): then the partial GOP is copied, not re-encoded."""
    if not lo <= gop[0].pts < hi:
        return None
    last = max(i for i, p in enumerate(gop) if lo <= p.pts < hi)
    prefix = gop[: last + 1]
    if all(lo <= p.pts < hi for p in prefix) and sum(1 for p in gop if lo <= p.pts < hi) == len(prefix):
        return prefix
    return None


def _stream_info(stream) -> Optional[dict]:
    if stream is None:
        return None
    cc = stream.codec_context
    info = {"stream": stream, "codec": cc.name, "extradata": cc.extradata}
    if stream.type == "video":
        info.update(width=cc.width, height=cc.height, profile=cc.profile, level=cc.level)
    return info


def _encoder(info: dict, frame: av.VideoFrame, frame_ticks: int) -> av.CodecContext:
    if info["codec"] != "h264":
        raise ClipError(f"cannot cut {info['codec']} video exactly (H.264 only)")
    # The rate the pictures announce (VUI) is the one they are shown at: a reader that counts in
    # ticks of a lower one (ffmpeg guesses it from the first piece) would put two frames on a tick.
    rate = Fraction(whole_rate(max(1, frame_ticks) / TS_CLOCK))
    return matching_encoder(frame.width, frame.height, frame.format.name, Fraction(1, TS_CLOCK), rate,
                            info.get("profile"), info.get("level"), X264_CRF)
