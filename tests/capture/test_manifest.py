"""capture.manifest: the contract with export, atomic save, load."""

import json

from reeldb.capture.manifest import (
    ChannelManifest, SessionManifest, category_of, file_name_for, load_manifest, save_manifest,
)

CONTRACT_COMMON = {"channel_id", "category", "kind", "store", "file", "codec", "container", "start_time",
                   "clock", "pauses", "gaps", "first_frame_at", "last_frame_at", "frames", "complete"}


def test_round_trip_and_contract_keys(tmp_path):
    m = SessionManifest(session_id="cap-1", created_at=123.5, channels=[
        ChannelManifest("display:1", "display", "video", True, file="display_1.mkv", codec="h264",
                        start_time=1000.0, clock="rtcp", width=1280, height=720,
                        pauses=[[1001.0, 1002.0], [1003.0, None]], gaps=[[1004.0, 1005.0]],
                        first_frame_at=1000.0, last_frame_at=1010.0, frames=300, complete=True),
        ChannelManifest("mic:default", "mic", "audio", False, sample_rate=48000, audio_channels=2),
    ])
    save_manifest(tmp_path, m)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert raw["version"] == 1 and raw["session_id"] == "cap-1" and raw["created_at"] == 123.5
    video, audio = raw["channels"]
    assert CONTRACT_COMMON | {"width", "height"} <= set(video)
    assert CONTRACT_COMMON | {"sample_rate", "audio_channels"} <= set(audio)
    assert video["pauses"] == [[1001.0, 1002.0], [1003.0, None]]
    assert audio["file"] is None and audio["store"] is False
    assert load_manifest(tmp_path).to_dict() == m.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left


def test_load_ignores_unknown_fields(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({
        "version": 1, "session_id": "cap-2", "created_at": 1.0,
        "channels": [{"channel_id": "mic:x", "category": "mic", "kind": "audio", "store": True,
                      "future_field": 1}]}))
    assert load_manifest(tmp_path).channels[0].channel_id == "mic:x"


def test_names():
    assert category_of("display:2", "video") == "display"
    assert category_of("screen:1", "video") == "display"
    assert category_of("system_audio:default", "audio") == "system_audio"
    assert category_of("weird", "audio") == "mic"
    assert file_name_for("display:1", "video") == "display_1.mkv"
    assert file_name_for("mic:default", "audio") == "mic_default.mka"
