"""Video packet loss on the loopback path: real aiortc peers, the recorder's relay, IngestSession.

The sender relays pre-encoded H.264 from an MPEG-TS (``MediaPlayer(decode=False)``, as the
recorder does for files) with an IDR every second; it cannot honour a PLI, so recovery relies on
the periodic keyframes. Every source frame has a unique picture, so each stored frame is decoded
and matched bit for bit against the decoded source: a frame written after a loss that refers to
data we never got would decode differently (FFmpeg conceals instead of raising) and fail the match.

- With retransmission (NACK answered over RTX): every frame arrives, no gap.
- Without retransmission (RTX packets dropped): the file holds every frame up to the loss, then
  nothing until the next keyframe, then every frame again; the gap is in the manifest. This
  holds for a low-bitrate stream too (one packet per frame), where aiortc's jitter buffer alone
  would stall for 512 packets; and an encoding sender, which honours the PLI, resumes without
  waiting for a periodic keyframe.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from fractions import Fraction
from typing import Callable, Optional

import av
import numpy as np
import pytest
from aiortc import RTCSessionDescription

from support.caploop import make_offer
from support.media import mux_ts, probe
from reeldb.capture.ingest import IngestSession
from reeldb.capture.manifest import load_manifest
from reeldb.capture.sources import BarsTrack, open_source

FPS = 15
GOP = 15  # an IDR every second
VIDEO = [{"channel_id": "display:1", "kind": "video", "store": True}]


def noisy_access_units(seconds: float, noise: int = 96) -> list[bytes]:
    """Annex-B H.264 (constrained baseline, IDR every GOP) of ~2 Mbit/s: a noise block keeps
    frames large (~15 RTP packets) so aiortc's 512-packet jitter buffer fills within seconds
    of a loss. Every frame's picture is unique."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = 320, 240
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = Fraction(FPS, 1)
    ctx.gop_size = GOP
    ctx.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency", "crf": "20",
                   "keyint": str(GOP), "min-keyint": str(GOP), "scenecut": "0"}
    rng = np.random.default_rng(7)
    out: list[bytes] = []
    for i in range(int(seconds * FPS)):
        img = np.zeros((240, 320, 3), dtype=np.uint8)
        img[:, :, 0] = (i * 7) % 256
        img[(i * 3) % 240, :, 1] = 255
        img[:noise, :noise * 2] = rng.integers(0, 256, (noise, noise * 2, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def write_ts(path, aus: list[bytes]) -> None:
    mux_ts(path, aus, FPS, GOP)


def _digest(frame: av.VideoFrame) -> str:
    return hashlib.md5(frame.to_ndarray(format="yuv420p").tobytes()).hexdigest()


def source_digests(aus: list[bytes]) -> dict[str, int]:
    """Decoded picture digest → source frame index."""
    ctx = av.CodecContext.create("h264", "r")
    digests = []
    for au in aus:
        digests.extend(_digest(f) for f in ctx.decode(av.Packet(au)))
    digests.extend(_digest(f) for f in ctx.decode(None))
    assert len(digests) == len(aus) and len(set(digests)) == len(digests)
    return {d: i for i, d in enumerate(digests)}


def stored_frames(path) -> list[tuple[float, str]]:
    """(pts seconds, picture digest) of every frame decoded from a stored file."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams[0]
        for pkt in c.demux(s):
            for f in pkt.decode():
                out.append((float(f.time), _digest(f)))
    return out


class LossyPath:
    """Drops the sender's RTP packets of one video track on their way out.

    ``drop(seq, now)`` decides for each original media packet; ``drop_rtx`` drops every
    retransmission (RTX stream) as well, i.e. the NACKs go unanswered.
    """

    def __init__(self, pc, track, drop: Callable[[int, float], bool], drop_rtx: bool) -> None:
        sender = next(s for s in pc.getSenders() if s.track is track)
        self.media_ssrc = sender._ssrc.to_bytes(4, "big")
        self.rtx_ssrc = sender._rtx_ssrc.to_bytes(4, "big")
        self.first_sent: Optional[float] = None
        self.media_sent = 0
        self.dropped: list[tuple[int, float]] = []  # (seq, send time)
        self.rtx_sent = 0
        self.rtx_dropped = 0
        transport = sender.transport
        original = transport._send_rtp

        async def send_rtp(data: bytes) -> None:
            if len(data) > 12 and not 192 <= data[1] <= 223:  # RTP, not RTCP
                now = time.time()
                if data[8:12] == self.media_ssrc:
                    if self.first_sent is None:
                        self.first_sent = now
                    self.media_sent += 1
                    seq = int.from_bytes(data[2:4], "big")
                    if drop(seq, now - self.first_sent):
                        self.dropped.append((seq, now))
                        return
                elif data[8:12] == self.rtx_ssrc:
                    self.rtx_sent += 1
                    if drop_rtx:
                        self.rtx_dropped += 1
                        return
            await original(data)

        transport._send_rtp = send_rtp


def record(folder, source, seconds: float, drop, drop_rtx: bool):
    """Send ``source`` (an MPEG-TS path, relayed as the recorder does, or a track) to an
    IngestSession through a LossyPath; return (manifest, lossy path)."""

    async def main():
        session = IngestSession(folder, "cap-vl", VIDEO)
        track = source if hasattr(source, "recv") else open_source("display:1", str(source))[0]
        pc, sdp, mapping = await make_offer({"display:1": track})
        answer = await session.accept_offer(sdp, mapping)
        lossy = LossyPath(pc, track, drop, drop_rtx)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        deadline = time.time() + seconds + 8.0
        while track.readyState != "ended" and time.time() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # let the receiver drain what is in flight
        await pc.close()
        return await session.close(), lossy

    return asyncio.run(main())


def source_indices(frames, index: dict[str, int]) -> list[int]:
    unknown = [i for i, (_, d) in enumerate(frames) if d not in index]
    assert not unknown, f"stored frames {unknown[:10]} do not decode to any source picture"
    return [index[d] for _, d in frames]


@pytest.mark.slow
def test_random_loss_repaired_by_retransmission_is_lossless(tmp_path):
    seconds = 6.0
    aus = noisy_access_units(seconds)
    write_ts(tmp_path / "src.ts", aus)
    index = source_digests(aus)
    rng = random.Random(1)
    # 2 % of the packets after the first half second; retransmissions get through.
    manifest, lossy = record(tmp_path / "s", tmp_path / "src.ts", seconds,
                             lambda seq, t: t > 0.5 and rng.random() < 0.02, drop_rtx=False)

    assert len(lossy.dropped) >= 10, lossy.dropped
    assert lossy.rtx_sent >= len(lossy.dropped)  # every loss was NACKed and retransmitted
    disp = manifest.channel("display:1")
    assert disp.complete and disp.error is None
    assert disp.gaps == []
    assert load_manifest(tmp_path / "s").channel("display:1").gaps == []

    path = tmp_path / "s" / disp.file
    assert probe(path)["errors"] == 0
    frames = stored_frames(path)
    got = source_indices(frames, index)
    # every frame, bit-exact, in order; only the last one or two may still sit in aiortc's
    # jitter buffer when the stream stops
    assert got == list(range(len(got))) and len(got) >= len(aus) - 2, (len(got), len(aus))
    assert disp.frames == len(got) and disp.dropped_frames == 0
    for (t, _), i in zip(frames, got):
        assert t == pytest.approx(i / FPS, abs=0.02)


def _assert_resumes_at_keyframes(frames, got):
    """Stored frames are runs of consecutive source frames; every run after the first starts at
    an IDR; pts keep the source timeline (holes, not squeezed)."""
    runs = [[got[0]]]
    for prev, cur in zip(got, got[1:]):
        assert cur > prev, (prev, cur)
        if cur == prev + 1:
            runs[-1].append(cur)
        else:
            runs.append([cur])
    assert runs[0][0] == 0
    for run in runs[1:]:
        assert run[0] % GOP == 0, f"a run starts at source frame {run[0]}, not a keyframe: {runs}"
    for (t, _), i in zip(frames, got):
        assert t == pytest.approx(i / FPS, abs=0.02)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("noise", [96, 0], ids=["2mbit", "1packet_per_frame"])
def test_burst_loss_without_retransmission_resumes_at_next_keyframe(tmp_path, noise):
    """``noise=0`` is a static-screen-like stream of one RTP packet per frame: aiortc's jitter
    buffer alone would wait for 512 packets (34 s) before giving up on the hole."""
    seconds = 8.0
    drop_from, drop_to = 2.3, 2.8  # media seconds: inside the GOP of 2..3 s, next IDR at 3.0 s
    aus = noisy_access_units(seconds, noise)
    write_ts(tmp_path / "src.ts", aus)
    index = source_digests(aus)
    manifest, lossy = record(tmp_path / "s", tmp_path / "src.ts", seconds,
                             lambda seq, t: drop_from <= t < drop_to, drop_rtx=True)

    assert len(lossy.dropped) >= 7 and lossy.rtx_sent > 0  # NACKed, retransmitted, dropped
    disp = manifest.channel("display:1")
    assert disp.complete and disp.error is None
    path = tmp_path / "s" / disp.file
    info = probe(path)
    assert info["errors"] == 0
    frames = stored_frames(path)
    got = source_indices(frames, index)  # every stored frame decodes bit-exact
    runs = _assert_resumes_at_keyframes(frames, got)
    assert len(runs) == 2, runs

    # before the gap: every frame up to the loss. aiortc's jitter buffer only releases a frame
    # once the next frame's first packet follows it, so the last frame sent before the burst
    # goes with it.
    first_lost = int(drop_from * FPS) + 1  # first frame whose packets were sent in the burst
    assert runs[0][-1] >= first_lost - 2, runs[0][-1]
    # after the gap: from the first keyframe after the burst to the end
    assert runs[1][0] == GOP * int(np.ceil(drop_to * FPS / GOP)), runs[1][0]
    assert runs[1][-1] >= len(aus) - 2

    # the gap, in the manifest, in capture-clock seconds
    assert len(disp.gaps) == 1, disp.gaps
    g0, g1 = disp.gaps[0]
    assert g0 == pytest.approx(disp.start_time + runs[0][-1] / FPS, abs=0.02)
    assert g1 == pytest.approx(disp.start_time + runs[1][0] / FPS, abs=0.02)
    lost_at = [t for _, t in lossy.dropped]
    assert min(lost_at) - 0.3 < g0 < min(lost_at) + 0.05  # sender clock ≈ capture clock here
    assert max(lost_at) < g1 < max(lost_at) + GOP / FPS + 0.3
    assert disp.dropped_frames >= 1  # frames after the burst that referred to lost ones
    assert load_manifest(tmp_path / "s").channel("display:1").gaps == disp.gaps


@pytest.mark.slow
def test_random_loss_without_retransmission_writes_only_decodable_frames(tmp_path):
    """The notes' trap: 1 % loss with RTX dropped. Each loss stalls aiortc's jitter buffer until
    it discards; whatever is stored must still decode bit-exact, resuming only at keyframes,
    and every hole is a recorded gap."""
    seconds = 8.0
    aus = noisy_access_units(seconds)
    write_ts(tmp_path / "src.ts", aus)
    index = source_digests(aus)
    rng = random.Random(3)
    manifest, lossy = record(tmp_path / "s", tmp_path / "src.ts", seconds,
                             lambda seq, t: t > 0.5 and rng.random() < 0.01, drop_rtx=True)

    assert len(lossy.dropped) >= 5
    disp = manifest.channel("display:1")
    path = tmp_path / "s" / disp.file
    assert probe(path)["errors"] == 0
    frames = stored_frames(path)
    got = source_indices(frames, index)
    runs = _assert_resumes_at_keyframes(frames, got)
    assert len(runs) >= 2
    # one recorded gap per hole in the file, each from the last frame before to the keyframe after
    assert len(disp.gaps) == len(runs) - 1, (disp.gaps, runs)
    for (g0, g1), before, after in zip(disp.gaps, runs, runs[1:]):
        assert g0 == pytest.approx(disp.start_time + before[-1] / FPS, abs=0.02)
        assert g1 == pytest.approx(disp.start_time + after[0] / FPS, abs=0.02)
    # no lasting stall: every keyframe that arrived whole is written (the relay sends frame i at
    # about i / FPS; aiortc also discards the complete frame right before a hole, hence i + 1)
    hit = {round((t - lossy.first_sent) * FPS) for _, t in lossy.dropped}
    intact = [k for k in range(0, len(aus) - 1, GOP) if k not in hit and k + 1 not in hit]
    assert set(intact) <= set(got), (intact, runs)


@pytest.mark.slow
def test_burst_loss_encoding_sender_resumes_on_pli(tmp_path):
    """aiortc's encoder (like a browser) answers the PLI the tap sends when it gives up on a hole:
    the recording resumes about ``STALL_TIMEOUT`` after the loss, not at a periodic keyframe."""
    from reeldb.capture.tap import STALL_TIMEOUT

    seconds = 6.0
    track = BarsTrack(320, 240, FPS, duration=seconds)  # ~1 RTP packet per frame
    manifest, lossy = record(tmp_path / "s", track, seconds,
                             lambda seq, t: 2.0 <= t < 2.3, drop_rtx=True)

    assert len(lossy.dropped) >= 4 and lossy.rtx_sent > 0
    disp = manifest.channel("display:1")
    path = tmp_path / "s" / disp.file
    assert probe(path)["errors"] == 0
    assert len(disp.gaps) == 1, disp.gaps
    g0, g1 = disp.gaps[0]
    lost_at = [t for _, t in lossy.dropped]
    assert min(lost_at) - 0.3 < g0 < min(lost_at) + 0.05
    assert max(lost_at) < g1 < max(lost_at) + STALL_TIMEOUT + 0.6
    with av.open(str(path)) as c:
        packets = [(float(p.pts * p.time_base), p.is_keyframe) for p in c.demux(c.streams[0]) if p.pts is not None]
    after = [(t, k) for t, k in packets if t >= g1 - disp.start_time - 0.001]
    assert after[0] == (pytest.approx(g1 - disp.start_time, abs=0.002), True)
    # then every frame to the end: no second stall
    steps = [b[0] - a[0] for a, b in zip(after, after[1:])]
    assert max(steps) < 2.5 / FPS, max(steps)
    assert disp.last_frame_at - disp.start_time > seconds - 0.5
