"""capture.manifest: the one schema shared with export, channel-id rules, atomic save, load."""

import json

import pytest

from reeldb.capture.manifest import (
    CHANNEL_ID, MANIFEST_VERSION, ChannelManifest, ManifestError, SessionManifest, category, file_name_for,
    file_stem, is_channel_id, kind_of, load_manifest, parse_manifest, save_manifest,
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
    assert raw["version"] == MANIFEST_VERSION == 2 and raw["session_id"] == "cap-1" and raw["created_at"] == 123.5
    video, audio = raw["channels"]
    assert CONTRACT_COMMON | {"width", "height"} <= set(video)
    assert CONTRACT_COMMON | {"sample_rate", "audio_channels"} <= set(audio)
    assert video["pauses"] == [[1001.0, 1002.0], [1003.0, None]]
    assert audio["file"] is None and audio["store"] is False
    assert load_manifest(tmp_path).to_dict() == m.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left


def test_load_ignores_unknown_fields(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({
        "version": 2, "session_id": "cap-2", "created_at": 1.0,
        "channels": [{"channel_id": "mic:x", "category": "mic", "kind": "audio", "store": True,
                      "future_field": 1}]}))
    assert load_manifest(tmp_path).channels[0].channel_id == "mic:x"


def test_channel_id_rules():
    assert category("display:2") == "display" and kind_of("display:2") == "video"
    assert category("screen:1") == "display" and kind_of("screen:1") == "video"
    assert category("camera:1") == "camera" and kind_of("camera:1") == "video"
    assert category("system_audio:default") == "system_audio" and kind_of("system_audio:default") == "audio"
    assert category("mic:x") == "mic" and kind_of("mic:x") == "audio"
    with pytest.raises(ValueError):
        category("webcam")
    assert is_channel_id("mic:a.b-c_d") and not is_channel_id("webcam") and not is_channel_id("mic:")
    assert CHANNEL_ID.pattern == r"^(mic|system_audio|display|screen|camera):[A-Za-z0-9_.\-]{1,128}$"


def test_file_names_are_unique_per_channel_id():
    assert file_name_for("display:1", "video") == "display_1.mkv"
    assert file_name_for("mic:default", "audio") == "mic_default.mka"
    ids = ["mic:a.b", "mic:a_b", "mic:a-b", "mic:A_b", "mic:a_B", "system_audio:x", "mic:x",
           "display:1", "screen:1", "camera:1", "weird", "mic_x", "mic:x:y", "mic:x_y", "mic:x~3ay"]
    stems = [file_stem(i) for i in ids]
    # unique even where the file system ignores case
    assert len({s.lower() for s in stems}) == len(ids), dict(zip(ids, stems))
    for s in stems:
        assert "/" not in s and "\\" not in s and s not in (".", "..") and s.isascii()


def test_version_1_is_read_and_upgraded():
    m = parse_manifest({"version": 1, "session_id": "cap-1", "created_at": 5.0, "channels": [
        {"channel_id": "camera:1", "category": "display", "kind": "video", "store": True,
         "file": "camera_1.mkv", "start_time": 10.0, "rtcp_offset": 0.25, "dropped_frames": 3}]})
    cam = m.channels[0]
    assert m.version == MANIFEST_VERSION
    assert cam.category == "camera"  # version 1 called it display; the id decides
    assert cam.is_primary is False and cam.dts_clamps == 0 and cam.rtcp_offset == 0.25
    with pytest.raises(ManifestError, match="version"):
        parse_manifest({"version": 99, "channels": []})
    assert ManifestError.code == "MANIFEST_INVALID"


def test_every_written_field_is_parsed_back(tmp_path):
    ch = ChannelManifest("display:1", "display", "video", True, file="display_1.mkv", codec="h264",
                         start_time=1.0, clock="rtcp", width=2, height=2, first_frame_at=1.0,
                         last_frame_at=2.0, frames=3, complete=True, is_primary=True, dropped_frames=4,
                         dts_clamps=5, rtcp_offset=0.0, error="x")
    save_manifest(tmp_path, SessionManifest("cap-1", 1.0, [ch]))
    written = json.loads((tmp_path / "manifest.json").read_text())["channels"][0]
    back = load_manifest(tmp_path).channels[0]
    assert back == ch and back.extra == {}
    assert set(written) == set(ChannelManifest.__dataclass_fields__) - {"extra", "sample_rate", "audio_channels"}
