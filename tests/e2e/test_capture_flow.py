"""The seed page's flow end to end: CaptureClient → reeldb-recorder → WebRTC ingest → export → search."""

from __future__ import annotations

import asyncio
import json
import time

import av
import numpy as np
import pytest
from support.recording import record, use_reeldb_recorder
from support.media import screen_ts
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow

SECONDS = 6.0


def tone_power(samples: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > hz - 15) & (freqs < hz + 15)
    return float(spectrum[band].max() / (np.median(spectrum) + 1e-9))


def decode_audio(path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray().mean(axis=0) if f.to_ndarray().ndim == 2 else f.to_ndarray()
                  for f in c.decode(audio=0)]
        rate = c.streams.audio[0].sample_rate
    return np.concatenate(frames).astype(np.float32), rate


def packet_bytes(path, kind="video") -> list[bytes]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [bytes(p) for p in c.demux(stream) if p.size]


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    d = tmp_path_factory.mktemp("screens")
    return {"red": screen_ts(d / "red.ts", SECONDS + 4, (200, 0, 0)),
            "blue": screen_ts(d / "blue.ts", SECONDS + 4, (0, 0, 200))}


def test_seed_flow_capture_store_export(server_factory, hook, screens):
    use_reeldb_recorder()
    import videodb

    server = server_factory(sync_wait="10")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    coll = conn.get_collection()
    cap = conn.create_capture_session(end_user_id="user-1", callback_url=hook.url)
    token = conn.generate_client_token(expires_in=600)
    sources = {"mic:default": "pattern:tone:440:0.3", "mic:usb": "pattern:tone:1500:0.3",
               "system_audio:default": "pattern:tone:1000:0.3",
               "display:1": str(screens["red"]), "display:2": str(screens["blue"])}
    store = {"mic:default": True, "mic:usb": False, "system_audio:default": True, "display:1": True, "display:2": True}
    folder = server.data_dir / "sessions" / cap.id
    seen_files: set[str] = set()

    async def during(client, channels):
        deadline = time.time() + SECONDS
        while time.time() < deadline:  # the ephemeral channel must never touch the disk
            if folder.exists():
                seen_files.update(p.name for p in server.data_dir.rglob("*") if p.is_file())
            await asyncio.sleep(0.1)

    events = asyncio.run(record(server.url, token, cap.id, sources, store, SECONDS, primary="display:1", during=during))
    assert [e["event"] for e in events if e.get("type") == "event"][-1] == "recording-complete"

    hooks = hook.wait_for(lambda ev: any(e["event"] == "capture_session.exported" for e in ev), timeout=60)
    order = [e["event"].split(".")[1] for e in hooks]
    assert order == ["created", "starting", "active", "stopping", "stopped", "exported"]
    active = next(e for e in hooks if e["status"] == "active")
    assert sorted((r["name"], r["channel_id"]) for r in active["data"]["rtstreams"]) == [
        ("display:1", "display"), ("display:2", "display"), ("mic:default", "mic"), ("mic:usb", "mic"),
        ("system_audio:default", "system_audio")]
    exported = next(e for e in hooks if e["status"] == "exported")
    video_id = exported["data"]["exported_video_id"]
    assert video_id.startswith("m-") and exported["data"]["stream_url"] and "/watch?v=" in exported["data"]["player_url"]

    # Nothing of the ephemeral mic:usb was ever written, under any name.
    assert not [n for n in seen_files if "usb" in n]
    assert not [p for p in server.data_dir.rglob("*usb*")]
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {c["channel_id"]: c["file"] for c in manifest["channels"]}
    assert files["mic:usb"] is None and all(files[c] for c in store if store[c])

    # The stored channel files decode for the whole recording.
    for channel_id in ("display:1", "mic:default", "system_audio:default"):
        with av.open(str(folder / files[channel_id])) as c:
            assert abs(c.duration / 1e6 - SECONDS) < 1.0, channel_id

    # The seed: the muxed video is in the collection.
    cap = conn.get_capture_session(cap.id)
    assert (cap.status, cap.export_status, cap.exported_video_id) == ("exported", "exported", video_id)
    video = coll.get_video(video_id)
    muxed = server.data_dir / "media" / coll.id / video_id
    source = next(muxed.glob("source.*"))
    with av.open(str(source)) as c:
        assert [s.codec_context.name for s in c.streams.video] == ["h264"]
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
    assert abs(video.length - SECONDS) < 1.0
    # Not re-encoded: the stored display:1 packets are in the muxed video as they are, in order (all
    # but at most the last two). Where the display sent nothing for a moment (on a starved machine,
    # or at the end beside the audio) the export holds the picture with a few frames of its own.
    stored, muxed = packet_bytes(folder / files["display:1"]), packet_bytes(source)
    remaining = iter(muxed)
    assert all(packet in remaining for packet in stored[: len(stored) - 2]), "a recorded packet changed or is missing"
    assert len(muxed) - len(stored) < 0.2 * len(stored), (len(muxed), len(stored))
    # Both stored audio channels are in the mix, the ephemeral one is not.
    samples, rate = decode_audio(source)
    mid = samples[len(samples) // 4: 3 * len(samples) // 4]
    floor = tone_power(mid, rate, 1320)  # no source plays 1320 Hz: the codec's noise floor there
    assert tone_power(mid, rate, 440) > 1000 * floor and tone_power(mid, rate, 1000) > 1000 * floor
    assert tone_power(mid, rate, 1500) < 3 * floor, "the ephemeral mic:usb is not in the mix"
    # The stream plays over HTTP.
    with av.open(video.stream_url) as c:
        assert sum(1 for _ in c.decode(video=0)) > SECONDS * 15 * 0.8

    # Raw channel assets, one per stored channel, referenced by the rtstreams.
    raw = conn.get(f"collection/{coll.id}/capture/session/{cap.id}")
    assets = {r["name"]: r["exported_asset_id"] for r in raw["rtstreams"]}
    assert assets["mic:usb"] is None
    assert coll.get_audio(assets["mic:default"]).length > SECONDS - 1
    assert coll.get_audio(assets["system_audio:default"]).length > SECONDS - 1
    assert coll.get_video(assets["display:1"]).length > SECONDS - 1
    # the seed's cap.get_rtstream("display")[0] is the first display, every time (ids are random)
    assert [s.name for s in cap.get_rtstream("display")] == ["display:1", "display:2"]
    assert [s.name for s in cap.get_rtstream("mic")] == ["mic:default", "mic:usb"]
    mic_stream = next(s for s in cap.get_rtstream("mic") if s.name == "mic:default")
    exported_mic = mic_stream.export()
    assert exported_mic.video_id == assets["mic:default"]
    with pytest.raises(InvalidRequestError, match="No recordings available"):
        next(s for s in cap.get_rtstream("mic") if s.name == "mic:usb").export()
    assert [d.id for d in cap.displays] == ["display:1", "display:2"]

    # cap.export(): idempotent check of the primary, then the second display.
    result = cap.export()
    assert result == {"session_id": cap.id, "video_channel_id": "display:1", "export_status": "exported",
                      "video_id": video_id, "stream_url": video.stream_url, "player_url": video.player_url}
    result = cap.export(video_channel_id="display:2")
    assert result["export_status"] in ("exporting", "exported") and result["video_channel_id"] == "display:2"
    deadline = time.time() + 60
    while result["export_status"] == "exporting" and time.time() < deadline:
        time.sleep(0.5)
        result = cap.export(video_channel_id="display:2")
    assert result["export_status"] == "exported" and result["video_id"] != video_id
    second = server.data_dir / "media" / coll.id / result["video_id"]
    with av.open(str(next(second.glob("source.*")))) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert frame[..., 2].mean() > 150 and frame[..., 0].mean() < 60, "display:2 is the blue screen"
    with pytest.raises(InvalidRequestError, match="mic:usb is not a video channel"):
        cap.export(video_channel_id="mic:usb")
    with pytest.raises(InvalidRequestError, match="display:9 is not a video channel"):
        cap.export(video_channel_id="display:9")
