"""export_session on synthetic session folders: copy, mix, alignment, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from support.export_helpers import decode_audio, folder_digest, nal_units, packets_by_ms, tone_level, tone_onset, video_packets
from support.media import AudioSpec, VideoSpec, make_session
from reeldb.export.errors import (
    ChannelFileError,
    ChannelNotStoredError,
    ExportCancelled,
    NothingStoredError,
    UnknownChannelError,
)
from reeldb.export.mux import export_session

R = 48000


def test_muxed_has_one_copied_h264_and_one_aac(std_export, std_session):
    r = std_export
    assert r.video_channel_id == "display:1" and r.video_copied is True
    with av.open(str(r.muxed_path)) as c:
        assert [s.codec_context.name for s in c.streams] == ["h264", "aac"]
        assert c.format.name.startswith("mov,mp4")
    stored = video_packets(std_session / "display_1.mkv")
    muxed = video_packets(r.muxed_path)
    assert len(muxed) == len(stored)
    # Not re-encoded: the same NAL units, packet for packet (MKV and MP4 are both AVCC here).
    assert [nal_units(p) for p in muxed] == [nal_units(p) for p in stored]
    assert muxed == stored


def test_faststart_layout(std_export):
    head = std_export.muxed_path.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def test_duration_and_probe_info(std_export):
    info = std_export.muxed_info
    assert info.kind == "video" and info.video_codec == "h264" and info.audio_codec == "aac"
    assert (info.width, info.height) == (320, 240)
    assert info.duration == pytest.approx(6.0, abs=0.5)
    assert std_export.duration == pytest.approx(6.0, abs=0.5)


def test_mix_has_stored_tones_not_the_ephemeral_one(std_export):
    x = decode_audio(std_export.muxed_path)
    assert tone_level(x[int(0.2 * R) : int(1.4 * R)], 440) > 0.1
    assert tone_level(x[int(3.2 * R) : int(3.9 * R)], 1000) > 0.1
    assert tone_level(x, 1500) < 0.005  # mic:headset was store:false (its decoy file is ignored)


def test_late_channel_aligned_and_holes_silent(std_export):
    x = decode_audio(std_export.muxed_path)
    onset = tone_onset(x, 1000)
    assert onset == pytest.approx(1.5, abs=0.1)
    # mic paused 2.0-3.0 s: 440 Hz absent inside, present around
    assert tone_level(x[int(2.15 * R) : int(2.85 * R)], 440) < 0.01
    assert tone_level(x[int(3.15 * R) : int(3.85 * R)], 440) > 0.1
    # system audio network gap 4.0-4.5 s: 1000 Hz absent inside
    assert tone_level(x[int(4.1 * R) : int(4.4 * R)], 1000) < 0.01
    assert tone_level(x[int(4.6 * R) : int(5.4 * R)], 1000) > 0.1
    assert np.abs(x).max() <= 1.0


def test_raw_channel_assets(std_export, std_session):
    assets = std_export.channels
    assert set(assets) == {"display:1", "display:2", "mic:default", "system_audio:default"}
    d2 = assets["display:2"]
    assert d2.kind == "video" and d2.path.suffix == ".mp4" and d2.copied
    assert video_packets(d2.path) == video_packets(std_session / "display_2.mkv")
    mic = assets["mic:default"]
    assert mic.path.suffix == ".webm" and mic.copied and mic.info.audio_codec == "opus"
    sys_a = assets["system_audio:default"]
    assert sys_a.offset == pytest.approx(1.5, abs=0.01)
    assert tone_level(decode_audio(sys_a.path)[: R], 1000) > 0.1
    for a in assets.values():
        assert a.path.exists() and a.path.parent == std_export.muxed_path.parent
    assert not list(std_export.muxed_path.parent.glob(".*part"))


def _mean_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)


def test_multi_display_export_uses_display_2(std_session, tmp_path):
    r = export_session(std_session, tmp_path, "display:2", include_raw=False)
    assert r.video_channel_id == "display:2" and r.channels == {}
    assert r.muxed_path.name == "muxed-display_2.mp4"
    rgb = _mean_rgb(r.muxed_path)
    assert rgb[2] > 150 and rgb[0] < 80  # blue display, not the red one
    assert video_packets(r.muxed_path) == video_packets(std_session / "display_2.mkv")
    assert _mean_rgb(std_session / "display_1.mkv")[0] > 150


def test_audio_only_session(tmp_path):
    folder = make_session(
        tmp_path,
        [VideoSpec("display:1", store=False)],
        [AudioSpec("mic:default", 440.0, duration=3.0), AudioSpec("system_audio:default", 1000.0, start=0.5, duration=2.5)],
        session_id="cap-audio",
    )
    r = export_session(folder, tmp_path / "out")
    assert r.video_channel_id is None and r.video_copied is None
    assert r.muxed_info.kind == "audio" and r.muxed_info.audio_codec == "aac"
    assert r.muxed_info.duration == pytest.approx(3.0, abs=0.5)
    x = decode_audio(r.muxed_path)
    assert tone_onset(x, 1000) == pytest.approx(0.5, abs=0.1)
    assert set(r.channels) == {"mic:default", "system_audio:default"}


def test_progress_is_monotonic_and_reaches_one(std_session, tmp_path):
    seen: list[float] = []
    export_session(std_session, tmp_path, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and len(seen) >= 3


def test_cancel_via_progress_removes_partial_outputs(std_session, tmp_path):
    def cancel(f):
        if f > 0.1:
            raise RuntimeError("job cancelled")

    with pytest.raises(ExportCancelled):
        export_session(std_session, tmp_path, progress=cancel)
    assert list(tmp_path.iterdir()) == []


def test_errors_unknown_and_unstored_channel(std_session, tmp_path):
    with pytest.raises(UnknownChannelError, match="display:7"):
        export_session(std_session, tmp_path, "display:7")
    data = json.loads((std_session / "manifest.json").read_text())
    ids = [c["channel_id"] for c in data["channels"] if not c["store"]]
    assert ids == ["mic:headset"]
    with pytest.raises(UnknownChannelError, match="not a video channel"):
        export_session(std_session, tmp_path, "mic:headset")


def test_error_nothing_stored(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(store=False)], [AudioSpec(store=False)], session_id="cap-none")
    with pytest.raises(NothingStoredError, match="nothing to export"):
        export_session(folder, tmp_path / "out")


def test_error_unstored_display(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(), VideoSpec("display:2", store=False)], [], session_id="cap-u")
    with pytest.raises(ChannelNotStoredError, match="display:2"):
        export_session(folder, tmp_path / "out", "display:2")


@pytest.mark.parametrize("keep", [0, 150, 2000])
def test_a_damaged_file_is_left_out_with_a_warning_and_input_is_untouched(std_session, tmp_path, keep):
    """Issue 17: a damaged channel costs that channel, never the recording."""
    folder = tmp_path / "cap-trunc"
    shutil.copytree(std_session, folder)
    data = (folder / "mic_default.mka").read_bytes()
    (folder / "mic_default.mka").write_bytes(data[:keep])
    before = folder_digest(folder)
    r = export_session(folder, tmp_path / "out")
    assert any("mic:default" in w for w in r.warnings), r.warnings
    assert "display:1" in r.channels and ("mic:default" in r.channels) == (keep == 2000)  # what was readable
    x = decode_audio(r.muxed_path)
    assert tone_level(x[int(3.2 * R): int(3.9 * R)], 440) < 0.01  # nothing of the mic that was lost
    assert tone_level(x[int(3.2 * R): int(3.9 * R)], 1000) > 0.1
    assert folder_digest(folder) == before


def test_missing_channel_file(std_session, tmp_path):
    folder = tmp_path / "cap-missing"
    shutil.copytree(std_session, folder)
    (folder / "display_1.mkv").unlink()
    r = export_session(folder, tmp_path / "out")
    assert any("display:1" in w and "missing" in w for w in r.warnings), r.warnings
    assert r.video_channel_id is None and r.muxed_info.kind == "audio"


def test_nothing_readable_is_a_clear_error(tmp_path):
    folder = make_session(tmp_path, [], [AudioSpec(duration=1.0)], session_id="cap-unreadable")
    (folder / "mic_default.mka").write_bytes(b"")
    with pytest.raises(ChannelFileError, match="mic:default") as err:
        export_session(folder, tmp_path / "out")
    assert err.value.channel_id == "mic:default"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_crash_truncated_tail_exports_readable_part(std_session, tmp_path):
    """Capture promises a crashed channel is readable up to its last second: export it."""
    folder = tmp_path / "cap-crash"
    shutil.copytree(std_session, folder)
    for name in ("display_1.mkv", "mic_default.mka"):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) * 2 // 3])
    manifest = json.loads((folder / "manifest.json").read_text())
    for c in manifest["channels"]:
        if c["channel_id"] in ("display:1", "mic:default"):
            c["complete"] = False  # what capture leaves after a crash
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = folder_digest(folder)
    r = export_session(folder, tmp_path / "out")
    assert any("mic:default" in w for w in r.warnings)
    assert r.muxed_info.duration == pytest.approx(6.0, abs=0.6)  # system audio still runs to 6 s
    x = decode_audio(r.muxed_path)
    assert tone_level(x[int(0.2 * R) : int(1.4 * R)], 440) > 0.1
    assert folder_digest(folder) == before


@pytest.mark.slow
def test_vp8_display_is_transcoded_to_h264(tmp_path):
    folder = make_session(
        tmp_path, [VideoSpec("display:1", (20, 200, 20), codec="vp8", duration=2.0)],
        [AudioSpec(duration=2.0)], session_id="cap-vp8",
    )  # fmt: skip
    r = export_session(folder, tmp_path / "out")
    assert r.video_copied is False
    assert r.muxed_info.video_codec == "h264" and r.muxed_info.audio_codec == "aac"
    assert r.muxed_info.duration == pytest.approx(2.0, abs=0.5)
    assert _mean_rgb(r.muxed_path)[1] > 150
    raw = r.channels["display:1"]
    assert raw.info.video_codec == "h264" and raw.copied is False


def test_late_video_with_pause_keeps_capture_timing(tmp_path):
    folder = make_session(
        tmp_path, [VideoSpec(start=0.5, duration=4.0, pauses=[(2.0, 2.5)])], [AudioSpec(duration=4.5)],
        session_id="cap-late-video",
    )  # fmt: skip
    r = export_session(folder, tmp_path / "out", include_raw=False)
    assert r.origin == pytest.approx(1_750_000_000.0, abs=0.01)  # the mic started first
    stored, muxed = packets_by_ms(folder / "display_1.mkv"), packets_by_ms(r.muxed_path)
    # The recorded frames sit at their capture times (0.5 s late, the pause a stretch of
    # 0.533 s between two of them); what lies between is the held picture (test_export_holds.py).
    assert all(muxed[ms + 500] == data for ms, data in stored.items())
    recorded = sorted(ms + 500 for ms in stored)
    jumps = [b - a for a, b in zip(recorded, recorded[1:]) if b - a > 100]
    assert recorded[0] == 500 and len(jumps) == 1 and jumps[0] == pytest.approx(533, abs=20)
    assert min(muxed) == 0
    assert r.muxed_info.duration == pytest.approx(4.5, abs=0.1)


def test_capture_writer_style_files(tmp_path):
    """capture/writer.py makes streams with add_mux_stream (PyAV extracts SPS/PPS from the first
    Annex-B keyframe); the export must copy those packets unchanged too."""
    folder = make_session(
        tmp_path, [VideoSpec(mux_stream=True, duration=3.0)], [AudioSpec(duration=3.0)], session_id="cap-writer"
    )
    r = export_session(folder, tmp_path / "out", include_raw=False)
    stored = video_packets(folder / "display_1.mkv")
    assert [nal_units(p) for p in video_packets(r.muxed_path)] == [nal_units(p) for p in stored]
    assert r.video_copied and r.muxed_info.duration == pytest.approx(3.0, abs=0.5)
