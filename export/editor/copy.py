"""The editor's copy path: a timeline that changes nothing in the frames, as an MP4 and its HLS
rendition, written in one pass (see :mod:`.plan`, "copy").

What it costs is what its work costs: the display's spans cut with the exact-clip machinery
(whole GOPs copied, only partial edge GOPs re-encoded), the mix decoded and AAC-encoded once (on
threads of its own, started before the cut, :class:`.render.EncodedMix`), and one remux whose
every packet goes both into the MP4 and into the HLS segmenter (a stream copy): the MP4 is never
read back to segment it.

Blocking and CPU-bound (call from a worker thread); reads library files, writes only the paths it
is given.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Sequence

import av

from ..clips import clip_segments
from ..hls import HlsWriter
from .model import TimelineError
from .plan import CopyPlan, SourceInfo
from .render import NO_PROBE, EncodedMix, Mix, _AudioQueue, twin_packet

Progress = Callable[[float], None]
TS_CLOCK = Fraction(1, 90000)


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


def copy_timeline(plan: CopyPlan, src: SourceInfo, mix: Optional[Mix], out_path: Path,
                  hls_dir: Optional[Path] = None, progress: Progress = lambda f: None) -> None:
    """The whole copy path of ``plan`` over its source ``src``: the mix's encoding starts first
    (when the plan wants it and it is short enough to hold whole), then the spans are cut (cached
    in the source rendition's ``clips/``), then :func:`write_copy` writes ``out_path`` and, with
    ``hls_dir``, its HLS rendition from the same packets."""
    audio: "Mix | EncodedMix | None" = mix if plan.audio == "mix" else None
    if audio is not None and audio.n <= Mix.WHOLE_UP_TO:
        audio = EncodedMix(audio)
    try:
        source_hls = Path(src.hls_dir or "")
        spans = clip_segments(Path(src.path), source_hls, [(s0, s1) for _, s0, s1 in plan.spans],
                              source_hls / "clips")
        write_copy(plan, [[piece.path for piece in span] for span in spans], audio, out_path, progress, hls_dir)
    finally:
        if isinstance(audio, EncodedMix):
            audio.close()


def write_copy(plan: CopyPlan, pieces: Sequence[Sequence[Path]], mix: "Mix | EncodedMix | None", out_path: Path,
               progress: Progress = lambda f: None, hls_dir: Optional[Path] = None) -> None:
    """Remux the spans' pieces (one list of TS files per span of ``plan``) into ``out_path``
    (MP4), each span moved to its place on the timeline; audio as ``plan.audio`` says. With
    ``hls_dir``, every packet also goes into an HLS rendition there (moved into place once
    complete); its audio then waits for the whole mix's packets, to interleave them."""
    files = [p for span in pieces for p in span]
    if not files:
        raise TimelineError("timeline: the video clips lie outside their source")
    hls = HlsWriter(hls_dir) if hls_dir is not None else None
    queue: Optional[_AudioQueue] = None
    try:
        with av.open(str(files[0])) as first:
            vtemplate = first.streams.video[0]
            has_source_audio = bool(first.streams.audio)
            out = av.open(str(out_path), mode="w", format="mp4", options={"movflags": "+faststart"})
            try:
                outputs = {"video": [out.add_stream_from_template(vtemplate)]}
                if plan.audio == "source" and has_source_audio:
                    outputs["audio"] = [out.add_stream_from_template(first.streams.audio[0])]
                if hls is not None:
                    outputs["video"].append(hls.add_stream_from_template(vtemplate))
                    if "audio" in outputs:
                        outputs["audio"].append(hls.add_stream_from_template(first.streams.audio[0]))
                for streams in outputs.values():
                    streams[0].time_base = TS_CLOCK
                if plan.audio == "mix" and mix is not None:
                    queue = _AudioQueue(out, mix, hls)
                    if hls is not None:
                        queue.wait()
                _remux(plan, pieces, out, outputs, queue, hls, progress, len(files))
                if queue is not None:
                    queue.rest()
            finally:
                out.close()
        if hls is not None:
            hls.commit()
            hls = None
    finally:
        if queue is not None:
            queue.close()
        if hls is not None:
            hls.abort()
    progress(1.0)


def _remux(plan: CopyPlan, pieces: Sequence[Sequence[Path]], out: av.container.OutputContainer, outputs: dict[str, list], queue: Optional[_AudioQueue],
           hls: Optional[HlsWriter], progress: Progress, total: int) -> None:
    done = 0
    last_dts = {"video": -1, "audio": -1}
    for (tl_start, _, _), span in zip(plan.spans, pieces):
        origin: Optional[int] = None
        # a span's pieces read as one MPEG-TS stream (each piece flags its restart as a
        # discontinuity), without probing: the first piece was probed by the caller
        with av.open(_Chain(span), format="mpegts", options=NO_PROBE) as src:
            streams = list(src.streams.video[:1])
            if "audio" in outputs:
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
                    pts, dts = packet.pts - origin, packet.dts - origin
                    if kind == "audio" and pts < 0:
                        continue
                    if dts <= last_dts[kind]:
                        dts = last_dts[kind] + 1
                        pts = max(pts, dts)
                    last_dts[kind] = dts
                    packet.pts, packet.dts = pts, dts
                    packet.time_base = TS_CLOCK
                    if queue is not None:
                        queue.until(dts / 90000)
                    mp4, *twin = outputs[kind]
                    if twin:
                        hls.mux(twin_packet(packet, twin[0]))  # type: ignore[union-attr]
                    packet.stream = mp4
                    out.mux(packet)
        done += len(span)
        progress(0.9 * done / total)
