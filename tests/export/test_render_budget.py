"""The render budget (pure), the renderer's geometry at any even size, and text it can or cannot draw
(issue 18): the attacks replayed against the budget and the renderer, without a server."""

from __future__ import annotations

import av
import numpy as np
import pytest

from reeldb.export.editor import SourceInfo, TimelineError, parse_timeline, render
from reeldb.export.editor.budget import MB, RenderLimits, RenderTooLarge, check_budget, render_cost

LIMITS = RenderLimits()


def text_timeline(resolution: str, duration: float, text: str = "Hi", size: float = 48, **clip) -> dict:
    return {"resolution": resolution, "tracks": [{"clips": [{"start": 0, "clip": {
        "asset": {"type": "text", "text": text, "font": {"size": size}}, "duration": duration, **clip}}]}]}


ATTACK_TEXT = "\n".join(["W" * 70] * 70)


def test_the_5kib_attack_is_refused_naming_the_pixel_limit_then_the_memory_budget():
    t = parse_timeline(text_timeline("3996x3996", 10, ATTACK_TEXT, 1000))
    with pytest.raises(RenderTooLarge, match=r"3996x3996 .*REELDB_RENDER_MAX_PIXELS"):
        check_budget(render_cost(t, {}), LIMITS)
    lifted = RenderLimits(max_pixels=0)
    with pytest.raises(RenderTooLarge, match=r"REELDB_RENDER_MEMORY_MB"):
        check_budget(render_cost(t, {}), lifted)
    # the text layer costs what shows (at most the frame), never the box the text would need
    small = render_cost(parse_timeline(text_timeline("640x360", 10, ATTACK_TEXT, 1000)), {})
    check_budget(small, LIMITS)
    assert small.memory < 1024 * MB


def test_the_175_byte_day_long_render_is_refused_naming_a_limit():
    t = parse_timeline(text_timeline("3996x3996", 14400))
    with pytest.raises(RenderTooLarge, match=r"REELDB_RENDER_MAX_PIXELS"):
        check_budget(render_cost(t, {}), LIMITS)
    with pytest.raises(RenderTooLarge, match=r"14400 s .*10800 s \(REELDB_RENDER_MAX_SECONDS\)"):
        check_budget(render_cost(t, {}), RenderLimits(max_pixels=0))
    with pytest.raises(RenderTooLarge, match=r"3996x3996 for 14400 s at 30 fps: 6.9e\+12 pixel-frames.*"
                                             r"\(REELDB_RENDER_MAX_PIXEL_FRAMES\)"):
        check_budget(render_cost(t, {}), RenderLimits(max_pixels=0, max_seconds=0))
    # an hour of 720p is within the defaults
    check_budget(render_cost(parse_timeline(text_timeline("1280x720", 3600)), {}), LIMITS)


def test_frames_follow_the_fastest_video_and_the_copy_path_is_held_to_seconds_only():
    video = SourceInfo("m-v", "video", "/v.mp4", 100.0, 3840, 2160, 60.0, True, True, "/hls")
    t = parse_timeline({"resolution": "3840x2160", "tracks": [{"clips": [
        {"start": 0, "clip": {"asset": {"type": "video", "id": "m-v"}, "duration": 100}}]}]})
    cost = render_cost(t, {"m-v": video})
    assert cost.fps == 60 and cost.frames == 6000 and cost.pixel_frames == 3840 * 2160 * 6000
    check_budget(render_cost(t, {"m-v": video}, composited=False), RenderLimits(max_pixels=1, max_pixel_frames=1))
    with pytest.raises(RenderTooLarge, match="REELDB_RENDER_MAX_SECONDS"):
        check_budget(render_cost(t, {"m-v": video}, composited=False), RenderLimits(max_seconds=10))


def test_memory_counts_layers_alive_together_and_images_only_where_they_show():
    image = SourceInfo("img-1", "image", "/i.png", 0.0, 1920, 1080)
    sources = {"img-1": image}

    def images(*spans, scale=1.0):
        return parse_timeline({"resolution": "1920x1080", "tracks": [{"clips": [
            {"start": s, "clip": {"asset": {"type": "image", "id": "img-1"}, "duration": d, "scale": scale}}]}
            for s, d in spans]})

    one = render_cost(images((0, 5)), sources).memory
    after = render_cost(images((0, 5), (5, 5)), sources).memory
    together = render_cost(images((0, 5), (2, 5)), sources).memory
    assert after == one < together
    # ten times the frame's size: still a frame's worth on the canvas
    assert render_cost(images((0, 5), scale=10), sources).memory == one


@pytest.mark.parametrize("resolution", ["480x270", "320x242", "16x18", "1282x722"])
def test_any_even_size_renders(tmp_path, resolution):
    """Heights 2 mod 4: 4:2:0 chroma planes are H/2 rows of W/2, not H/4 rows of the buffer."""
    t = parse_timeline(text_timeline(resolution, 0.2, "Hi", 12, position="bottom_right", scale=3))
    out = tmp_path / "out.mp4"
    render(t, {}, out)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == tuple(int(v) for v in resolution.split("x"))


@pytest.mark.parametrize("resolution", ["2x2", "481x270", "480x271", "3999x100"])
def test_odd_and_tiny_sizes_are_refused_by_name(resolution):
    with pytest.raises(TimelineError, match="resolution.*even and between 16 and 3998"):
        parse_timeline(text_timeline(resolution, 1))


@pytest.mark.parametrize("text", ["right to left: שלום עולם, مرحبا بالعالم", "emoji 👋🏽 👨‍👩‍👧 🇫🇷",
                                  "combining e\u0301 a\u0308 " + "o" + "\u0336" * 50, "zero width a\u200bb\ufeffc",
                                  "bidi overrides \u202eabc\u202c \u2066x\u2069", "tabs\tand\r\nbreaks\rhere",
                                  "private use \ue000 and unassigned \U000e0fff", "line sep \u2028 para \u2029"])
def test_any_unicode_text_renders(tmp_path, text):
    t = parse_timeline(text_timeline("320x180", 0.2, text, 24))
    out = tmp_path / "out.mp4"
    render(t, {}, out)
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6


@pytest.mark.parametrize("char", ["\x1d", "\x00", "\x07", "\x7f", "\x85", "\ud800"])
def test_control_characters_are_refused_naming_the_code_point(char):
    with pytest.raises(TimelineError, match=rf"text: contains the control character U\+{ord(char):04X}"):
        parse_timeline(text_timeline("320x180", 1, f"a{char}b"))


def test_a_huge_text_box_is_drawn_only_where_it_shows(tmp_path):
    """The first attack's text (70 lines at size 1000) on a small frame: the frame is what is drawn."""
    t = parse_timeline(text_timeline("320x180", 0.1, ATTACK_TEXT, 1000, position="top_left"))
    out = tmp_path / "out.mp4"
    render(t, {}, out)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (180, 320, 3) and (frame > 200).all(axis=2).mean() > 0.3  # white glyphs fill it
