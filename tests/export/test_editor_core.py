"""The editor's pure core (parse, validate, plan, captions) and its audio mix, without a server."""

from __future__ import annotations

import importlib

import av
import numpy as np
import pytest
from support.media import make_audio

from reeldb.export import probe
from reeldb.export.editor import SourceInfo, TimelineError, map_captions, parse_timeline, plan_copy
from reeldb.export.editor.model import CaptionsUnavailable, to_json

R = importlib.import_module("reeldb.export.editor.render")

VIDEO = SourceInfo("m-v", "video", "/nowhere.mp4", 30.0, 1280, 720, 25.0, True, True, "/nowhere/hls")


def clip(asset: dict, duration: float, **kw) -> dict:
    return {"asset": asset, "duration": duration, "effect": None, "scale": 1, "opacity": 1, "fit": "crop",
            "position": "center", "offset": {"x": 0, "y": 0}, "z_index": 0, **kw}


def timeline(*tracks: list, **kw) -> dict:
    return {"background": "#000000", "resolution": "1280x720",
            "tracks": [{"z_index": 0, "clips": [{"start": s, "clip": c} for s, c in t]} for t in tracks], **kw}


def video(start=0.0, volume=1.0, **kw) -> dict:
    return {"type": "video", "id": "m-v", "start": start, "volume": volume,
            "crop": {"top": 0, "right": 0, "bottom": 0, "left": 0}, **kw}


def test_parse_fills_defaults_and_round_trips():
    t = parse_timeline(timeline([(0, clip(video(), 10, transition={"in": "fade", "out": None, "duration": 1}))],
                                [(2, clip({"type": "text", "text": "Hi"}, 3, position="top", fit=None))]))
    assert t.duration == 10 and t.tracks[1].clips[0].fit == "none" and t.tracks[0].clips[0].fade_in == 1
    assert parse_timeline(to_json(t)) == t


@pytest.mark.parametrize("change, field", [
    (lambda c: c.update(filter="sepia"), "clip.filter"),
    (lambda c: c.update(transition={"in": "wipeLeft", "out": None, "duration": 1}), "transition.in"),
    (lambda c: c.update(z_index=1.5), "clip.z_index"),
    (lambda c: c.update(scale=None), "clip.scale"),
    (lambda c: c["asset"].update(volume=None), "asset.volume"),
    (lambda c: c.update(size=[10, 10]), "clip.size"),  # internal only
])
def test_refusals_name_the_field(change, field):
    c = clip(video(), 5)
    change(c)
    with pytest.raises(TimelineError, match=field.replace(".", r"\.")):
        parse_timeline(timeline([(0, c)]))


def test_copy_plan_only_when_the_frames_are_one_sources_unchanged():
    sources = {"m-v": VIDEO, "a-m": SourceInfo("a-m", "audio", "/m.webm", 60.0, has_audio=True)}
    plan = plan_copy(parse_timeline(timeline([(0, clip(video(2), 5)), (5, clip(video(10), 3))])), sources)
    assert plan is not None and plan.spans == ((0, 2, 7), (5, 10, 13)) and plan.audio == "source"
    with_mic = timeline([(0, clip(video(), 5))], [(0, clip({"type": "audio", "id": "a-m", "start": 0, "volume": 1}, 5))])
    assert plan_copy(parse_timeline(with_mic), sources).audio == "mix"
    for changed in (clip(video(), 5, scale=0.5), clip(video(), 5, filter="greyscale"),
                    clip(video(), 5, offset={"x": 0.1, "y": 0}), clip(video(), 40),  # past the source's end
                    clip(video(crop={"top": 10, "right": 0, "bottom": 0, "left": 0}), 5)):
        assert plan_copy(parse_timeline(timeline([(0, changed)])), sources) is None
    assert plan_copy(parse_timeline(timeline([(1, clip(video(), 5))])), sources) is None  # a gap at 0
    assert plan_copy(parse_timeline(timeline([(0, clip(video(), 5))], [(0, clip({"type": "text", "text": "x"}, 1))])),
                     sources) is None
    smaller = {**sources, "m-v": SourceInfo("m-v", "video", "/v", 30.0, 640, 360, 25.0, True, True, "/h")}
    assert plan_copy(parse_timeline(timeline([(0, clip(video(), 5))])), smaller) is None


def test_captions_follow_the_clip_that_shows_the_words():
    t = parse_timeline(timeline([(10, clip(video(start=100), 5))],
                                [(0, clip({"type": "caption", "src": "auto"}, 20))]))
    words = [(99.0, 99.5, "before"), (100.5, 101.0, "Hello"), (101.2, 101.6, "there."), (103.0, 103.4, "Next"),
             (106.0, 106.5, "after")]
    lines = map_captions(t, {"m-v": words})
    assert [(round(c.start, 2), c.text) for c in lines] == [(10.5, "Hello there."), (13.0, "Next")]
    with pytest.raises(CaptionsUnavailable, match="index_spoken_words"):
        map_captions(t, {})


def test_mix_blocks_equal_the_whole_and_the_streaming_encoder_lasts_the_mix(tmp_path):
    path = make_audio(tmp_path / "tone.m4a", 30, 700)
    info = probe(path)
    sources = {"a-1": SourceInfo("a-1", "audio", str(path), info.duration, has_audio=True)}
    t = parse_timeline(timeline(
        [(0, clip({"type": "audio", "id": "a-1", "start": 2, "volume": 0.5}, 20,
                  transition={"in": "fade", "out": "fade", "duration": 1})),
         (15, clip({"type": "audio", "id": "a-1", "start": 0, "volume": 1}, 10))]))
    mix = R.mix_audio(t, sources)
    whole = mix.array()
    assert whole.shape == (2, 25 * 48000)
    assert np.array_equal(whole, np.concatenate(list(mix.blocks(block=4800)), axis=1))
    assert np.abs(whole[:, :480]).max() < 0.01 < np.abs(whole[:, 2 * 48000:3 * 48000]).max()  # faded in
    assert np.abs(whole[:, 21 * 48000:]).max() > 0.1  # the second clip, alone after 20 s
    R.Mix.WHOLE_UP_TO, before = 10, R.Mix.WHOLE_UP_TO  # a long mix: encoded block by block
    try:
        with av.open(str(tmp_path / "long.m4a"), "w") as out:
            R._AudioQueue(out, mix).rest()
    finally:
        R.Mix.WHOLE_UP_TO = before
    with av.open(str(tmp_path / "long.m4a")) as c:
        n = sum(f.samples for f in c.decode(audio=0))
    assert abs(n / 48000 - 25.0) < 0.05


@pytest.mark.parametrize("bframes", [False, True])
def test_copy_path_plays_exactly_the_spans_with_the_sources_audio(tmp_path, bframes):
    """Two spans of one source, its own sound: frames copied (numbered frames in order), audio copied."""
    from support.media import frame_number, make_numbered

    from reeldb.export import clip_segments, make_hls

    src = make_numbered(tmp_path / "n.mp4", 6.0, 2.0, bframes=bframes, preset="fast" if bframes else "ultrafast")
    make_hls(src, tmp_path / "hls")
    info = probe(src)
    sources = {"m-v": SourceInfo("m-v", "video", str(src), info.duration, info.width, info.height, info.fps,
                                 True, True, str(tmp_path / "hls"))}
    t = parse_timeline({"background": "#000000", "resolution": "320x240", "tracks": [{"clips": [
        {"start": 0, "clip": {"asset": {"type": "video", "id": "m-v", "start": 1.28}, "duration": 2.2}},
        {"start": 2.2, "clip": {"asset": {"type": "video", "id": "m-v", "start": 0.2}, "duration": 1.0}}]}]})
    plan = plan_copy(t, sources)
    assert plan is not None and plan.audio == "source"
    pieces = clip_segments(src, tmp_path / "hls", [(a, b) for _, a, b in plan.spans], tmp_path / "clips")
    out = tmp_path / "out.mp4"
    R.write_copy(plan, [[p.path for p in span] for span in pieces], None, out)
    with av.open(str(out)) as c:
        numbers = [frame_number(f) for f in c.decode(video=0)]
    assert numbers == list(range(32, 87)) + list(range(5, 30))
    with av.open(str(out)) as c:
        seconds = sum(f.samples for f in c.decode(audio=0)) / 48000
    assert abs(seconds - 3.2) < 0.03


def test_a_clip_longer_than_its_source_shows_background_after_it_ends(tmp_path):
    from support.media import make_video

    src = make_video(tmp_path / "red.mp4", 1.0, (64, 48), 10, tone_hz=440, background=(200, 0, 0))
    info = probe(src)
    sources = {"m-v": SourceInfo("m-v", "video", str(src), info.duration, 64, 48, 10.0, True, True, None)}
    t = parse_timeline({"background": "#0000FF", "resolution": "64x48", "tracks": [{"clips": [
        {"start": 0, "clip": {"asset": {"type": "video", "id": "m-v"}, "duration": 2.0}}]}]})
    assert plan_copy(t, sources) is None  # (no rendition to cut, and it runs past the end anyway)
    out = tmp_path / "out.mp4"
    R.render(t, sources, out, mix=R.mix_audio(t, sources))
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24")[24, 5] for f in c.decode(video=0)]
        c.seek(0)
    assert len(frames) == 20
    assert frames[5][0] > 150 and frames[5][2] < 60    # the red source
    assert frames[15][2] > 150 and frames[15][0] < 60  # then the background
    with av.open(str(out)) as c:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert np.abs(sound[int(1.3 * 48000):int(1.9 * 48000)]).max() < 0.01 < np.abs(sound[:int(0.8 * 48000)]).max()
