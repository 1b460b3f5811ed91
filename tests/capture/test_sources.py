"""capture.sources: patterns and files, relayed without re-encoding where the codec allows."""

import asyncio

import pytest

from support.caploop import publish
from support.media import probe, tone, write_ts, write_wav
from reeldb.capture.ingest import IngestSession
from reeldb.capture.sources import (
    BarsTrack, SourceError, ToneTrack, _file_track, declared_channels, open_source,
)


def test_patterns():
    t, player = open_source("mic:default", "pattern:tone:1000:0.25")
    assert isinstance(t, ToneTrack) and t.freq == 1000 and t.amplitude == 0.25 and player is None
    v, _ = open_source("display:1", "pattern:bars:160x120@10")
    assert isinstance(v, BarsTrack) and (v.width, v.height, v.fps) == (160, 120, 10)
    for bad in [("display:1", "pattern:tone:440"), ("mic:default", "pattern:bars"),
                ("mic:default", "pattern:nope"), ("mic:default", "/no/such/file.wav")]:
        with pytest.raises(SourceError):
            open_source(*bad)


def test_tone_track_frames():
    async def main():
        t = ToneTrack(440, duration=0.1)
        frames = []
        try:
            while True:
                frames.append(await t.recv())
        except Exception:  # MediaStreamError at the end
            pass
        return frames

    frames = asyncio.run(main())
    assert len(frames) == 5 and frames[0].samples == 960 and frames[1].pts == 960


def test_declared_channels_order_and_defaults():
    chans = declared_channels({"display:2": "pattern:bars", "system_audio:default": "x",
                               "mic:default": "x", "display:1": "pattern:bars"})
    assert [(c.channel_id, c.type, c.is_default) for c in chans] == [
        ("mic:default", "audio", True), ("display:1", "video", True),
        ("display:2", "video", False), ("system_audio:default", "audio", True)]


def test_relay_decision(tmp_path):
    write_ts(tmp_path / "s.ts", 0.5)
    write_wav(tmp_path / "a.wav", tone(0.2))
    _, p1, relay_ts = _file_track(str(tmp_path / "s.ts"), "video")
    _, p2, relay_wav = _file_track(str(tmp_path / "a.wav"), "audio")
    assert relay_ts is True and relay_wav is False
    with pytest.raises(SourceError, match="no video"):
        _file_track(str(tmp_path / "a.wav"), "video")


@pytest.mark.slow
def test_files_play_once_in_real_time_into_ingest(tmp_path):
    """A TS screen recording is relayed as is (no re-encode) and a WAV mic is encoded to Opus."""
    write_ts(tmp_path / "screen.ts", 3.0, fps=15, gop=15)
    write_wav(tmp_path / "mic.wav", tone(3.0))
    folder = tmp_path / "session"

    async def main():
        session = IngestSession(folder, "cap-files", [
            {"channel_id": "display:1", "kind": "video", "store": True},
            {"channel_id": "mic:default", "kind": "audio", "store": True}])
        video, _ = open_source("display:1", str(tmp_path / "screen.ts"))
        audio, _ = open_source("mic:default", str(tmp_path / "mic.wav"))
        pc = await publish(session, {"display:1": video, "mic:default": audio})
        await asyncio.sleep(4.0)
        await pc.close()
        return await session.close()

    manifest = asyncio.run(main())
    disp, mic = manifest.channel("display:1"), manifest.channel("mic:default")
    assert disp.codec == "h264" and mic.codec == "opus"
    vinfo, ainfo = probe(folder / disp.file), probe(folder / mic.file)
    assert vinfo["errors"] == 0 and ainfo["errors"] == 0
    # relayed: every source frame but the last (still in the jitter buffer when the stream ends)
    assert vinfo["frames"] >= 44 and vinfo["width"] == 320
    assert vinfo["last"] == pytest.approx(3.0, abs=0.5)
    assert ainfo["last"] == pytest.approx(3.0, abs=0.5)
