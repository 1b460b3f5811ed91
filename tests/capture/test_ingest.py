"""capture.ingest: a real aiortc sender on loopback → IngestSession → session folder."""

import asyncio
import os
import time

import av
import pytest

from support.caploop import drop_rtp, make_offer, publish
from support.media import probe
from reeldb.capture.ingest import (
    IngestSession, MalformedOfferError, TooManyTracksError, TrackMappingError, UnknownChannelError,
)
from reeldb.capture.manifest import load_manifest
from reeldb.capture.sources import BarsTrack, ToneTrack

THREE = [
    {"channel_id": "display:1", "kind": "video", "store": True},
    {"channel_id": "mic:default", "kind": "audio", "store": True},
    {"channel_id": "system_audio:default", "kind": "audio", "store": False},
]


def packet_times(path):
    with av.open(str(path)) as c:
        s = c.streams[0]
        return [float(p.pts * p.time_base) for p in c.demux(s) if p.pts is not None]


@pytest.mark.slow
def test_stored_channels_written_ephemeral_never(tmp_path):
    folder = tmp_path / "sessions" / "cap-1"
    duration = 3.0
    seen_files: set[str] = set()
    states, media = [], []

    async def main():
        session = IngestSession(folder, "cap-1", THREE, on_media=media.append, on_state=states.append)
        pc = await publish(session, {
            "display:1": BarsTrack(320, 240, 15, duration=duration),
            "mic:default": ToneTrack(440, duration=duration),
            "system_audio:default": ToneTrack(880, duration=duration),
        })
        live_manifest = None
        t_end = time.time() + duration + 1.0
        while time.time() < t_end:
            for root, _dirs, files in os.walk(tmp_path):
                seen_files.update(os.path.relpath(os.path.join(root, f), folder) for f in files)
            if time.time() > t_end - 1.5:  # the last read before close (a starved writer starts late)
                live_manifest = load_manifest(folder)
            await asyncio.sleep(0.05)
        await pc.close()
        return await session.close(), live_manifest

    manifest, live = asyncio.run(main())

    # ephemeral: no file, ever, anywhere under the folder (the manifest's temp files aside)
    assert not [f for f in seen_files if "system_audio" in f], seen_files
    assert {f for f in seen_files if not f.startswith(".manifest-")} <= {
        "display_1.mkv", "mic_default.mka", "manifest.json"}
    assert sorted(os.listdir(folder)) == ["display_1.mkv", "manifest.json", "mic_default.mka"]

    # the manifest was useful while recording
    assert live.channel("display:1").frames > 0 and live.channel("mic:default").frames > 0
    assert live.channel("display:1").file == "display_1.mkv"

    assert load_manifest(folder).to_dict() == manifest.to_dict()
    disp, mic, sys_audio = (manifest.channel(c["channel_id"]) for c in THREE)
    assert disp.codec == "h264" and disp.container == "matroska" and (disp.width, disp.height) == (320, 240)
    assert mic.codec == "opus" and mic.sample_rate == 48000
    assert disp.complete and mic.complete and sys_audio.complete
    assert sys_audio.file is None and sys_audio.frames == 0
    assert disp.clock == "rtcp" and mic.clock == "rtcp"
    assert abs(disp.start_time - mic.start_time) < 0.3  # aligned capture clocks

    for ch in (disp, mic):
        info = probe(folder / ch.file)
        assert info["errors"] == 0
        assert info["last"] - info["first"] == pytest.approx(duration, abs=0.5), (ch.channel_id, info)
        assert info["frames"] == ch.frames
        assert ch.last_frame_at - ch.first_frame_at == pytest.approx(duration, abs=0.5)

    assert sorted(media) == sorted(c["channel_id"] for c in THREE)
    assert states[0] == "connected" and states[-1] == "closed"


@pytest.mark.slow
def test_pause_is_a_hole_in_pts_and_recorded(tmp_path):
    async def main():
        session = IngestSession(tmp_path, "cap-p", [{"channel_id": "mic:default", "kind": "audio", "store": True}])
        pc = await publish(session, {"mic:default": ToneTrack(440)})
        await asyncio.sleep(1.5)
        session.pause(["mic:default"])
        paused = load_manifest(tmp_path).channel("mic:default").pauses
        await asyncio.sleep(1.0)
        session.resume(["mic:default"])
        await asyncio.sleep(1.0)
        await pc.close()
        return await session.close(), paused

    manifest, paused_snapshot = asyncio.run(main())
    assert paused_snapshot[0][1] is None  # open pause saved at once
    mic = manifest.channel("mic:default")
    assert len(mic.pauses) == 1
    p0, p1 = mic.pauses[0]
    assert p1 - p0 == pytest.approx(1.0, abs=0.2)
    times = packet_times(tmp_path / mic.file)
    lo, hi = p0 - mic.start_time, p1 - mic.start_time
    inside = [t for t in times if lo + 0.1 < t < hi - 0.1]
    assert not inside, inside[:5]
    assert max(times) == pytest.approx(mic.last_frame_at - mic.start_time, abs=0.05)
    assert max(times) > hi + 0.5  # written again after resume, pts not squeezed


@pytest.mark.slow
def test_frames_captured_before_a_pause_are_kept_when_they_arrive_after_it(tmp_path):
    """aiortc's audio jitter buffer hands a frame on only when 4 more are behind it, so the last
    frames a source sent before it paused arrive once it sends again. A pause keeps what was
    captured before it, whenever that arrives (it dropped the last 80 ms before each pause)."""
    from reeldb.capture.sources import PausableTrack

    class Counted(PausableTrack):
        sent = 0

        async def recv(self):
            frame = await super().recv()
            Counted.sent += 1
            return frame

    async def main():
        session = IngestSession(tmp_path, "cap-q", [{"channel_id": "mic:default", "kind": "audio", "store": True}])
        track = Counted(ToneTrack(440))
        pc = await publish(session, {"mic:default": track})
        await asyncio.sleep(1.5)
        track.paused = True  # the source stops first (as a recorder does) ...
        await asyncio.sleep(0.5)
        sent_before = Counted.sent
        session.pause(["mic:default"])  # ... then the server hears of the pause
        await asyncio.sleep(0.5)
        track.paused = False  # new packets push the held frames out while the server is paused
        await asyncio.sleep(0.5)
        session.resume(["mic:default"])
        await asyncio.sleep(1.0)
        await pc.close()
        return await session.close(), sent_before

    manifest, sent_before = asyncio.run(main())
    mic = manifest.channel("mic:default")
    times = packet_times(tmp_path / mic.file)
    hole = next(i for i, (a, b) in enumerate(zip(times, times[1:])) if b - a > 0.2)
    assert hole + 1 >= sent_before  # every frame sent before the pause is in the file (+ the encoder's first)


@pytest.mark.slow
def test_audio_loss_is_recorded_as_gap(tmp_path):
    async def main():
        session = IngestSession(tmp_path, "cap-l", [{"channel_id": "mic:default", "kind": "audio", "store": True}])
        track = ToneTrack(440)
        pc, sdp, mapping = await make_offer({"mic:default": track})
        from aiortc import RTCSessionDescription
        answer = await session.accept_offer(sdp, mapping)
        t0 = time.time()
        dropped = drop_rtp(pc, track, t0 + 1.0, t0 + 1.5)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.sleep(3.0)
        await pc.close()
        return await session.close(), dropped, t0

    manifest, dropped, t0 = asyncio.run(main())
    assert len(dropped) > 10
    mic = manifest.channel("mic:default")
    assert len(mic.gaps) == 1, mic.gaps
    g0, g1 = mic.gaps[0]
    assert g1 - g0 == pytest.approx(0.5, abs=0.15)
    info = probe(tmp_path / mic.file)
    assert info["errors"] == 0
    times = packet_times(tmp_path / mic.file)
    assert not [t for t in times if g0 - mic.start_time + 0.05 < t < g1 - mic.start_time - 0.05]


@pytest.mark.slow
def test_vp8_only_sender_is_accepted(tmp_path):
    async def main():
        session = IngestSession(tmp_path, "cap-v", [{"channel_id": "display:1", "kind": "video", "store": True}])
        pc = await publish(session, {"display:1": BarsTrack(160, 120, 15)}, video_codec="VP8")
        await asyncio.sleep(1.5)
        await pc.close()
        return await session.close()

    manifest = asyncio.run(main())
    disp = manifest.channel("display:1")
    assert disp.codec == "vp8" and disp.frames > 10 and (disp.width, disp.height) == (160, 120)
    assert probe(tmp_path / disp.file)["errors"] == 0


def test_offer_errors(tmp_path):
    async def main():
        one = IngestSession(tmp_path / "a", "cap-e", [{"channel_id": "mic:default", "kind": "audio", "store": True}])
        two = IngestSession(tmp_path / "b", "cap-f", THREE[:2])
        pc, sdp, mapping = await make_offer({"display:1": BarsTrack(), "mic:default": ToneTrack()})
        errors = {}
        for name, coro in {
            "malformed": one.accept_offer("hello", {}),
            "garbage_sdp": one.accept_offer("v=0\r\nm=audio x\r\n", {}),
            "too_many": one.accept_offer(sdp, mapping),
            "unknown": two.accept_offer(sdp, {**mapping, next(iter(mapping)): "display:9"}),
            "unmapped": two.accept_offer(sdp, dict(list(mapping.items())[:1])),
            "bad_mid": two.accept_offer(sdp, {**mapping, "zz": "mic:default"}),
            "kind": two.accept_offer(sdp, dict(zip(mapping, reversed(list(mapping.values()))))),
        }.items():
            try:
                await coro
            except Exception as exc:  # noqa: BLE001
                errors[name] = exc
        await pc.close()
        await one.close()
        await two.close()
        return errors

    errors = asyncio.run(main())
    assert isinstance(errors["malformed"], MalformedOfferError)
    assert isinstance(errors["garbage_sdp"], MalformedOfferError)
    assert isinstance(errors["too_many"], TooManyTracksError) and "2 media tracks" in str(errors["too_many"])
    assert isinstance(errors["unknown"], UnknownChannelError) and "display:9" in str(errors["unknown"])
    assert isinstance(errors["unmapped"], TrackMappingError)
    assert isinstance(errors["bad_mid"], TrackMappingError)
    assert isinstance(errors["kind"], TrackMappingError) and "is video" in str(errors["kind"]) or \
        "is audio" in str(errors["kind"])


def test_pause_unknown_channel(tmp_path):
    s = IngestSession(tmp_path, "cap-u", [{"channel_id": "mic:default", "kind": "audio", "store": True}])
    with pytest.raises(UnknownChannelError):
        s.pause(["display:1"])


@pytest.mark.slow
def test_reconnect_continues_the_same_files_with_a_gap(tmp_path):
    states = []

    async def main():
        session = IngestSession(tmp_path, "cap-r", THREE[:2], on_state=states.append)
        pc1 = await publish(session, {"display:1": BarsTrack(160, 120, 15), "mic:default": ToneTrack()})
        await asyncio.sleep(1.5)
        await pc1.close()
        await asyncio.sleep(0.7)
        pc2 = await publish(session, {"display:1": BarsTrack(160, 120, 15), "mic:default": ToneTrack()})
        await asyncio.sleep(1.5)
        await pc2.close()
        return await session.close()

    manifest = asyncio.run(main())
    assert sorted(os.listdir(tmp_path)) == ["display_1.mkv", "manifest.json", "mic_default.mka"]
    for cid in ("display:1", "mic:default"):
        ch = manifest.channel(cid)
        assert len(ch.gaps) == 1, (cid, ch.gaps)
        g0, g1 = ch.gaps[0]
        assert 0.5 < g1 - g0 < 1.5
        info = probe(tmp_path / ch.file)
        assert info["errors"] == 0
        assert info["last"] == pytest.approx(ch.last_frame_at - ch.start_time, abs=0.1)
        assert ch.last_frame_at - ch.first_frame_at > 3.0  # both connections in one timeline
    assert states.count("connected") == 2 and states[-1] == "closed"


KILL_SCRIPT = """
import asyncio, sys, time
sys.path.insert(0, HELPERS)
from support.caploop import publish
from reeldb.capture.ingest import IngestSession
from reeldb.capture.sources import BarsTrack, ToneTrack

async def main():
    s = IngestSession(sys.argv[1], "cap-k", [
        {"channel_id": "display:1", "kind": "video", "store": True},
        {"channel_id": "mic:default", "kind": "audio", "store": True}])
    await publish(s, {"display:1": BarsTrack(160, 120, 15), "mic:default": ToneTrack()})
    print(time.time(), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.slow
def test_sigkill_of_the_ingest_process_leaves_usable_files_and_manifest(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "k.py"
    script.write_text(KILL_SCRIPT.replace("HELPERS", repr(str(Path(__file__).parents[1]))))
    folder = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        t_start = float(proc.stdout.readline())
        time.sleep(max(0.0, t_start + 4.0 - time.time()))
        proc.kill()
        killed_at = time.time()
    finally:
        proc.kill()
        proc.wait()
    m = load_manifest(folder)
    for ch in m.channels:
        assert not ch.complete and ch.file and ch.start_time and ch.frames > 0
        info = probe(folder / ch.file)
        assert info["errors"] == 0
        end = ch.start_time + info["last"]
        assert end > killed_at - 1.0, (ch.channel_id, killed_at - end)
        assert ch.last_frame_at > killed_at - 2.1  # manifest rewritten about every second


@pytest.mark.slow
def test_arrival_clock_fallback_records_the_rtcp_offset(tmp_path):
    """With no time to wait for a sender report the file uses arrival time; the report that
    comes later still gives export the offset to the sender's clock."""
    async def main():
        session = IngestSession(tmp_path, "cap-a", [{"channel_id": "mic:default", "kind": "audio", "store": True}],
                                sr_wait=0.0)
        pc = await publish(session, {"mic:default": ToneTrack()})
        await asyncio.sleep(3.0)
        await pc.close()
        return await session.close()

    mic = asyncio.run(main()).channel("mic:default")
    assert mic.clock == "arrival" and mic.frames > 100
    # Small either way: sender time precedes arrival on a quiet machine; a busy one delays the first SR.
    assert mic.rtcp_offset is not None and abs(mic.rtcp_offset) < 0.5
