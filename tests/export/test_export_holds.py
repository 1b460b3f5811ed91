"""A recording's timeline has no holes (issue 17): the export holds the picture where the display
sent no frames — a pause in the middle, a display that joins late or ends before the audio, a
network gap — while every recorded packet stays a byte-for-byte copy.

Each case is a synthetic session folder (support/media.py: the display is a colour with a bar
that moves every frame, so a held picture is told from a recorded one). Checked on the muxed
file and on the display's raw asset: frames from 0 to the end with no stretch over half a second
between them, the recorded packets unchanged at their own times, the held frames showing the
picture they hold, the audio continuous to the end, and ffmpeg decoding it all without a word.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from support.export_helpers import decode_audio, packets_by_ms, tone_level
from support.media import AudioSpec, T0, VideoSpec, make_session
from reeldb.export.mux import export_session
from reeldb.export.plan import HOLD_INTERVALS, MAX_FRAME_GAP, hold_interval, held_times, parse_channel

R = 48000
SECONDS = 6.0
CASES = {
    # name: (display spec, audio spec, the stretch without recorded frames (timeline s))
    "pause": (VideoSpec(duration=SECONDS, pauses=[(2.0, 4.0)]), (2.0, 4.0)),
    "late": (VideoSpec(start=1.5, duration=SECONDS - 1.5), (0.0, 1.5)),
    "early_end": (VideoSpec(duration=3.5), (3.5, SECONDS)),
    "gap": (VideoSpec(duration=SECONDS, gaps=[(2.5, 3.5)]), (2.5, 3.5)),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("holds")
    out = {}
    for name, (video, _) in CASES.items():
        folder = make_session(root, [video], [AudioSpec(duration=SECONDS)], session_id=f"cap-{name}")
        out[name] = (folder, export_session(folder, root / f"out-{name}"))
    return out


def frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as c:
        return [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def ffmpeg_errors(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True).stderr


def assert_covers(shown: list[tuple[float, np.ndarray]], start: float, end: float) -> None:
    times = [t for t, _ in shown]
    assert times[0] == pytest.approx(start, abs=0.05)
    assert times[-1] == pytest.approx(end - HOLD_INTERVALS[0], abs=0.1)
    assert max(b - a for a, b in zip(times, times[1:])) < 0.1


def assert_holds(shown: list[tuple[float, np.ndarray]], hole: tuple[float, float], late: bool) -> None:
    """Inside the hole every frame is the picture held: the last one before it (the first one
    after it, for a display that joins late)."""
    inside = [img for t, img in shown if hole[0] + 0.05 < t < hole[1] - 0.05]
    assert len(inside) >= (hole[1] - hole[0]) * 25
    held = next(img for t, img in shown if t >= hole[1]) if late else [img for t, img in shown if t < hole[0]][-1]
    for img in inside:
        assert np.abs(img.astype(int) - held).mean() < 3
    recorded = [img for t, img in shown if t < hole[0]][-6:] or [img for t, img in shown if t >= hole[1]][:6]
    assert np.abs(recorded[0].astype(int) - recorded[5]).mean() > 3  # the bar moves: a held frame shows


@pytest.mark.parametrize("name", CASES)
def test_muxed_video_covers_the_recording(exports, name):
    folder, r = exports[name]
    video, hole = CASES[name]
    assert r.video_copied is True and r.warnings == []
    shown = frames(r.muxed_path)
    assert_covers(shown, 0.0, SECONDS)
    assert_holds(shown, hole, late=name == "late")
    assert r.muxed_info.duration == pytest.approx(SECONDS, abs=0.1)
    assert ffmpeg_errors(r.muxed_path) == ""
    # Every recorded packet is in the muxed file at its time, byte for byte.
    stored, muxed = packets_by_ms(folder / "display_1.mkv"), packets_by_ms(r.muxed_path)
    offset = round(video.start * 1000)
    assert stored and all(muxed.get(ms + offset) == data for ms, data in stored.items())
    assert len(muxed) > len(stored)


@pytest.mark.parametrize("name", CASES)
def test_muxed_audio_runs_on_across_the_hole(exports, name):
    _, r = exports[name]
    _, hole = CASES[name]
    x = decode_audio(r.muxed_path)
    assert len(x) / R == pytest.approx(SECONDS, abs=0.05)
    a, b = max(hole[0], 0.1), min(hole[1], SECONDS - 0.1)
    assert tone_level(x[int(a * R): int(b * R)], 440) > 0.1  # the mic was not paused


@pytest.mark.parametrize("name", ["pause", "gap"])
def test_raw_display_asset_holds_its_holes(exports, name):
    folder, r = exports[name]
    _, hole = CASES[name]
    raw = r.channels["display:1"]
    assert raw.copied
    shown = frames(raw.path)
    assert_covers(shown, 0.0, SECONDS)
    assert_holds(shown, hole, late=False)
    stored, copied = packets_by_ms(folder / "display_1.mkv"), packets_by_ms(raw.path)
    assert all(copied.get(ms) == data for ms, data in stored.items())
    assert ffmpeg_errors(raw.path) == ""


def test_raw_asset_of_a_late_display_starts_at_its_first_frame(exports):
    _, r = exports["late"]
    raw = r.channels["display:1"]
    assert raw.offset == pytest.approx(1.5, abs=0.01)
    shown = frames(raw.path)
    assert shown[0][0] == pytest.approx(0.0, abs=0.01) and shown[-1][0] == pytest.approx(4.5 - 1 / 30, abs=0.05)


def test_an_unlisted_stretch_without_frames_is_held_too(tmp_path):
    """The media decide, not the manifest: a hole capture did not record is filled as well."""
    folder = make_session(tmp_path, [VideoSpec(duration=4.0, pauses=[(1.0, 2.5)])], [AudioSpec(duration=4.0)])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["channels"][0]["pauses"] = []
    (folder / "manifest.json").write_text(json.dumps(manifest))
    r = export_session(folder, tmp_path / "out", include_raw=False)
    assert_covers(frames(r.muxed_path), 0.0, 4.0)


def test_vp8_display_is_held_across_a_pause(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(codec="vp8", duration=4.0, pauses=[(1.0, 2.5)], start=0.5)],
                          [AudioSpec(duration=4.5)], session_id="cap-vp8-pause")
    r = export_session(folder, tmp_path / "out")
    assert r.video_copied is False
    shown = frames(r.muxed_path)
    assert_covers(shown, 0.0, 4.5)
    assert_holds(shown, (1.0, 2.5), late=False)  # pauses are capture times (T0 + s), not the display's
    raw = frames(r.channels["display:1"].path)  # the muxed H.264 reused, on the display's clock
    assert raw[0][0] == pytest.approx(0.0, abs=0.01) and raw[-1][0] == pytest.approx(4.0 - 1 / 30, abs=0.05)
    assert_holds(raw, (0.5, 2.0), late=False)
    assert ffmpeg_errors(r.channels["display:1"].path) == ""


# ------------------------------------------------------------------ bad input: warn, export what exists


def test_a_pause_without_resume_is_held_to_the_end(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(duration=3.0)], [AudioSpec(duration=5.0)])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["channels"][0]["pauses"] = [[T0 + 3.0, None]]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    r = export_session(folder, tmp_path / "out", include_raw=False)
    assert any("no resume" in w for w in r.warnings), r.warnings
    assert_covers(frames(r.muxed_path), 0.0, 5.0)


@pytest.mark.parametrize("pause, words", [((2.0, 1.5), "without a pause"), ((2.0, 9.0), "past the channel's last"),
                                          ((7.0, 8.0), "after the channel's last")])
def test_odd_pauses_are_warnings(tmp_path, pause, words):
    folder = make_session(tmp_path, [VideoSpec(duration=3.0)], [AudioSpec(duration=3.0)])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["channels"][0]["pauses"] = [[T0 + pause[0], T0 + pause[1]]]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    r = export_session(folder, tmp_path / "out", include_raw=False)
    assert any(words in w for w in r.warnings), r.warnings
    assert_covers(frames(r.muxed_path), 0.0, 3.0)


def test_an_audio_channel_without_packets_is_left_out(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(duration=3.0)],
                          [AudioSpec(duration=3.0), AudioSpec("system_audio:default", 1000.0, duration=0.0)])
    r = export_session(folder, tmp_path / "out")
    assert any("system_audio:default" in w for w in r.warnings), r.warnings
    assert set(r.channels) == {"display:1", "mic:default"}
    assert tone_level(decode_audio(r.muxed_path)[R: 2 * R], 440) > 0.1


def test_a_corrupt_display_file_gives_an_audio_only_export(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(duration=3.0)], [AudioSpec(duration=3.0)])
    (folder / "display_1.mkv").write_bytes(b"\x1aE\xdf\xa3" + b"\x00" * 300)
    r = export_session(folder, tmp_path / "out")
    assert r.video_channel_id is None and r.muxed_info.kind == "audio"
    assert any("display:1" in w for w in r.warnings), r.warnings
    assert set(r.channels) == {"mic:default"}


# ------------------------------------------------------------------ the pure rules


def test_held_times_fill_only_holes():
    assert held_times(1.0, 1.0 + MAX_FRAME_GAP, 5.0, 0.1) == []  # a slow screen, not a hole
    assert held_times(1.0, 2.0, 5.0, 0.25) == [1.25, 1.5, 1.75]  # stops half an interval before the next
    assert held_times(None, 0.5, 5.0, 0.2) == [0.0, 0.2]  # before the first frame: from 0
    assert held_times(1.0, None, 1.9, 0.2) == pytest.approx([1.2, 1.4, 1.6, 1.8])  # after the last: up to upto
    assert held_times(1.0, None, 2.5, 0.2, after=1.8) == pytest.approx([2.0, 2.2, 2.4])  # block by block


def test_hold_interval_is_the_channels_own_frame_rate_within_bounds():
    def ch(frames, first, last, pauses=()):
        return parse_channel({"channel_id": "display:1", "kind": "video", "store": True, "file": "d.mkv",
                              "start_time": 0.0, "frames": frames, "first_frame_at": first,
                              "last_frame_at": last, "pauses": [list(p) for p in pauses]})
    assert hold_interval(ch(151, 0.0, 20.0, [(5.0, 15.0)])) == pytest.approx(1 / 15)
    assert hold_interval(ch(1000, 0.0, 10.0)) == HOLD_INTERVALS[0]
    assert hold_interval(ch(3, 0.0, 10.0)) == HOLD_INTERVALS[1]
    assert hold_interval(None) == HOLD_INTERVALS[0]
