"""Export planning: pure functions over manifest data (no media)."""

from __future__ import annotations

import json

import pytest

from reeldb.export.errors import (
    ChannelNotStoredError,
    ManifestError,
    NothingStoredError,
    UnknownChannelError,
)
from reeldb.export.plan import load_manifest, make_plan, parse_manifest, realign

T = 1000.0


def ch(cid, kind=None, store=True, start=T, first=None, last=None, **kw):
    kind = kind or ("video" if cid.startswith("display") else "audio")
    d = {
        "channel_id": cid, "category": cid.split(":")[0], "kind": kind, "store": store,
        "file": (cid.replace(":", "_") + ".mkv") if store else None,
        "codec": "h264" if kind == "video" else "opus", "container": "matroska",
        "start_time": start, "clock": "rtcp", "pauses": [], "gaps": [],
        "first_frame_at": first if first is not None else start,
        "last_frame_at": last if last is not None else start + 10, "frames": 300, "complete": True,
    }  # fmt: skip
    d.update(kw)
    return d


def manifest(*channels, **top):
    return parse_manifest({"version": 1, "session_id": "cap-1", "created_at": T, "channels": list(channels), **top})


def test_default_is_first_stored_display_and_all_stored_audio():
    m = manifest(ch("display:1"), ch("display:2"), ch("mic:default"), ch("system_audio:default", store=False))
    plan = make_plan(m)
    assert plan.video_channel_id == "display:1"
    assert [p.channel_id for p in plan.audio] == ["mic:default"]
    assert plan.ephemeral == ("system_audio:default",)
    assert [c.channel_id for c in plan.raw] == ["display:1", "display:2", "mic:default"]
    assert not plan.audio_only and not plan.transcode_video


def test_primary_flag_wins_over_order():
    m = manifest(ch("display:1"), ch("display:2", is_primary=True), ch("mic:default"))
    assert make_plan(m).video_channel_id == "display:2"


def test_a_display_is_preferred_over_a_camera():
    m = manifest(ch("camera:1", kind="video"), ch("display:1"), ch("mic:default"))
    assert m.channel("camera:1").category == "camera"
    assert make_plan(m).video_channel_id == "display:1"
    assert make_plan(manifest(ch("camera:1", kind="video"))).video_channel_id == "camera:1"


def test_an_arrival_clock_channel_is_moved_onto_the_sender_clock():
    # The mic's file was timed by arrival; capture measured it 0.3 s behind the sender clock.
    m = manifest(ch("display:1"), ch("mic:default", clock="arrival", rtcp_offset=-0.3, start=T + 0.3,
                                     pauses=[[T + 5.3, T + 6.3]]))
    plan = make_plan(m)
    mic = plan.audio[0]
    assert mic.offset == pytest.approx(0.0) and plan.origin == pytest.approx(T)
    assert [(h.start, h.end) for h in plan.holes] == [pytest.approx((5.0, 6.0))]


def test_unstored_primary_falls_back_to_a_stored_display():
    m = manifest(ch("display:1", store=False, is_primary=True), ch("display:2"), ch("mic:default"))
    assert make_plan(m).video_channel_id == "display:2"


def test_explicit_channel():
    m = manifest(ch("display:1"), ch("display:2"), ch("mic:default"))
    assert make_plan(m, "display:2").video_channel_id == "display:2"


def test_unknown_channel_error_names_it_and_lists_known():
    m = manifest(ch("display:1"), ch("mic:default"))
    with pytest.raises(UnknownChannelError, match="display:9") as err:
        make_plan(m, "display:9")
    assert "display:1" in str(err.value) and err.value.channel_id == "display:9"
    with pytest.raises(UnknownChannelError, match="not a video channel"):
        make_plan(m, "mic:default")


def test_unstored_channel_error():
    m = manifest(ch("display:1"), ch("display:2", store=False), ch("mic:default"))
    with pytest.raises(ChannelNotStoredError, match="display:2.*not stored"):
        make_plan(m, "display:2")


def test_nothing_stored():
    m = manifest(ch("display:1", store=False), ch("mic:default", store=False))
    with pytest.raises(NothingStoredError, match="nothing to export"):
        make_plan(m)
    with pytest.raises(NothingStoredError):
        make_plan(m, "display:1")  # the root cause wins over "channel not stored"
    with pytest.raises(NothingStoredError):
        make_plan(manifest())


def test_audio_only_when_no_display_stored():
    m = manifest(ch("display:1", store=False), ch("mic:default"), ch("system_audio:default"))
    plan = make_plan(m)
    assert plan.audio_only and plan.video is None
    assert len(plan.audio) == 2


def test_offsets_align_by_capture_time_and_holes():
    m = manifest(
        ch("display:1", start=T + 0.2, first=T + 0.25, last=T + 10),
        ch("mic:default", start=T, first=T + 0.1, last=T + 9, pauses=[[T + 2, T + 3], [T + 8, None]]),
        ch("system_audio:default", start=T + 1.5, last=T + 11, gaps=[[T + 4, T + 4.5]]),
    )
    plan = make_plan(m)
    assert plan.origin == pytest.approx(T + 0.1)  # earliest first frame
    offsets = {p.channel_id: p.offset for p in plan.placements}
    assert offsets == pytest.approx({"display:1": 0.1, "mic:default": -0.1, "system_audio:default": 1.4})
    assert plan.duration == pytest.approx(10.9)
    holes = [(h.channel_id, h.reason, round(h.start, 3), round(h.end, 3)) for h in plan.holes]
    assert holes == [
        ("mic:default", "pause", 1.9, 2.9),
        ("system_audio:default", "gap", 3.9, 4.4),
        ("mic:default", "pause", 7.9, 8.9),  # open pause ends at the channel's last frame
    ]


def test_other_displays_do_not_move_the_origin():
    m = manifest(ch("display:1", start=T + 1), ch("display:2", start=T), ch("mic:default", start=T + 1))
    plan = make_plan(m)
    assert plan.origin == pytest.approx(T + 1)


def test_realign_uses_media_timestamps():
    m = manifest(ch("display:1", start=T), ch("mic:default", start=T + 1))
    plan = realign(make_plan(m), {"display:1": 0.5, "mic:default": 0.0}, {"display:1": 9.5, "mic:default": 9.0})
    assert plan.origin == pytest.approx(T + 0.5)
    assert {p.channel_id: p.offset for p in plan.placements} == pytest.approx({"display:1": -0.5, "mic:default": 0.5})
    assert plan.duration == pytest.approx(9.5)


def test_vp8_video_is_marked_for_transcode():
    assert make_plan(manifest(ch("display:1", codec="vp8"))).transcode_video


@pytest.mark.parametrize(
    "data, match",
    [
        ({"version": 3, "channels": []}, "version"),
        ({"version": 1}, "channels"),
        ({"version": 1, "channels": [{"kind": "video"}]}, "channel_id"),
        ({"version": 1, "channels": [ch("display:1", file="../x.mkv")]}, "inside the session"),
        ({"version": 1, "channels": [ch("display:1", file="/etc/passwd")]}, "inside the session"),
        ({"version": 1, "channels": [ch("display:1"), ch("display:1")]}, "more than once"),
        ({"version": 1, "channels": [ch("display:1", start_time="x")]}, "number"),
        ({"version": 1, "channels": [ch("display:1", kind="text")]}, "kind"),
    ],
)
def test_bad_manifests(data, match):
    with pytest.raises(ManifestError, match=match):
        parse_manifest(data)


def test_extra_fields_are_kept(tmp_path):
    data = {"version": 1, "session_id": "cap-x", "channels": [ch("display:1", future_field=1)], "new": True}
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    m = load_manifest(tmp_path)
    assert m.channels[0].extra == {"future_field": 1}


def test_missing_or_broken_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(tmp_path)
