"""The deprecated ``videodb.timeline.Timeline`` (``POST /timeline``) as an editor timeline (pure).

Its JSON is a list: inline video assets ``{asset_id, start, end}`` played one after another, and
overlays carrying ``overlay_start``: audio ``{asset_id, start, end, disable_other_tracks,
fade_in_duration, fade_out_duration}``, images ``{asset_id, width, height, x, y, duration}`` and
text ``{text, duration, style: TextStyle}`` (ffmpeg ``drawtext`` options). Everything maps onto
the editor's model, so both timelines share one renderer:

- inline videos → clips of track 0 laid end to end; the timeline takes the first video's size;
- an audio overlay → an audio clip with its fades; ``disable_other_tracks`` (the SDK's default)
  silences the inline videos while it plays (their clips are split at its edges);
- an image overlay → an image clip of exactly ``width``×``height`` with its top-left at ``x, y``;
- a text overlay → a text clip; ``x``/``y`` as pixels or the default centring expressions.

Whatever has no faithful mapping (other drawtext expressions, ``fontcolor_expr``, ``expansion``
other than ``normal``, ...) is a :class:`TimelineError` naming field and value.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from PIL import ImageColor

from .model import (AssetNotFound, AudioAsset, Clip, ImageAsset, TextAsset, Timeline, Track, VideoAsset, _fail,
                    _Obj, drawable_text)
from .plan import SourceInfo

CENTRE_X = {"(main_w-text_w)/2", "(w-text_w)/2", "(W-tw)/2"}
CENTRE_Y = {"(main_h-text_h)/2", "(h-text_h)/2", "(H-th)/2"}
TEXT_ALIGN = {"T": "top", "M": "center", "B": "bottom", "L": "left", "R": "right", "C": "center"}


def legacy_ids(items: Any) -> list[str]:
    if not isinstance(items, list) or not items:
        raise _fail("timeline", items, "must be a non-empty list of assets")
    return [i["asset_id"] for i in items if isinstance(i, dict) and isinstance(i.get("asset_id"), str)
            and not i["asset_id"].startswith("txt-")]


def _colour(value: Any, path: str, alpha: float = 1.0) -> tuple[int, int, int, int]:
    if not isinstance(value, str) or not (value in ImageColor.colormap or re.fullmatch(
            r"(#|0x)([0-9a-fA-F]{6}|[0-9a-fA-F]{8})", value)):
        raise _fail(path, value, "must be a colour name or #RRGGBB")
    text = value.strip()
    text = "#" + text[2:] if text.lower().startswith("0x") else text
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise _fail(path, value, "is not a colour ReelDB knows") from None
    a = rgb[3] if len(rgb) == 4 else 255
    return rgb[0], rgb[1], rgb[2], round(a * alpha)


def _pixels(value: Any, path: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= 100000:
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,6}(\.\d+)?", value):
        return float(value)
    raise _fail(path, value, "must be pixels (drawtext expressions are not supported)")


def _span(o: _Obj, src: SourceInfo) -> tuple[float, float]:
    start = o.num("start", 0.0, 0)
    end = o.raw("end")
    stop = src.duration if end is None else o.num("end", None, 0)
    stop = min(stop, src.duration)
    if stop <= start:
        raise _fail(o.sub("end"), end, f"must be after start ({start:g}) and inside the asset ({src.duration:.2f} s)")
    return start, stop


def from_legacy(items: Any, sources: Mapping[str, SourceInfo]) -> Timeline:
    legacy_ids(items)
    videos: list[Clip] = []
    overlays: list[tuple[int, Clip, bool]] = []  # (position in the list, clip, silences the videos)
    at = 0.0
    size = None
    for n, item in enumerate(items):
        path = f"timeline[{n}]"
        o = _Obj(item, path)
        if "overlay_start" not in item:
            asset_id = o.text("asset_id", required=True)
            src = sources.get(asset_id)
            if src is None or not src.has_video:
                raise AssetNotFound(f"{o.sub('asset_id')}: no video with a picture has this id ({asset_id!r})")
            start, stop = _span(o, src)
            o.done()
            size = size or (src.width, src.height)
            videos.append(Clip(VideoAsset(asset_id, start), at, stop - start, fit="contain"))
            at += stop - start
            continue
        when = o.num("overlay_start", None, 0, required=True)
        if "text" in item:
            overlays.append((n, _text(o, when), False))
            continue
        asset_id = o.text("asset_id", required=True)
        src = sources.get(asset_id)
        if src is None:
            raise AssetNotFound(f"{o.sub('asset_id')}: no such asset ({asset_id!r})")
        if src.kind == "image":
            w, h = _pixels(o.raw("width", 100), o.sub("width")), _pixels(o.raw("height", 100), o.sub("height"))
            x, y = _pixels(o.raw("x", 80), o.sub("x")), _pixels(o.raw("y", 20), o.sub("y"))
            duration = o.raw("duration")
            length = o.num("duration", None, 0) if duration is not None else None
            o.done()
            overlays.append((n, Clip(ImageAsset(asset_id), when, length or 0.0, fit="none", position="top_left",
                                     offset_x=x, offset_y=-y, size=(max(1, round(w)), max(1, round(h)))), False))
            continue
        if not src.has_audio or (src.kind == "image") != asset_id.startswith("img-"):
            raise AssetNotFound(f"{o.sub('asset_id')}: no audio (or video with sound) has this id ({asset_id!r})")
        start, stop = _span(o, src)
        silence = o.flag("disable_other_tracks", True)
        fade_in = o.num("fade_in_duration", 0.0, 0, 5)
        fade_out = o.num("fade_out_duration", 0.0, 0, 5)
        o.done()
        overlays.append((n, Clip(AudioAsset(asset_id, start), when, stop - start, fade_in=fade_in,
                                 fade_out=fade_out), silence))
    if not videos:
        raise _fail("timeline", [], "needs at least one inline video asset (add_inline)")
    W, H = size or (1280, 720)
    W, H = W - W % 2, H - H % 2
    total = at
    placed: list[Clip] = []
    silences: list[tuple[float, float]] = []
    for n, clip, silence in overlays:
        duration = clip.duration or (total - clip.start)
        if clip.start >= total or duration <= 0:
            raise _fail(f"timeline[{n}].overlay_start", clip.start,
                        f"the overlay starts after the inline videos end ({total:.2f} s)")
        duration = min(duration, total - clip.start)
        if silence:
            silences.append((clip.start, clip.start + duration))
        offset = (clip.offset_x / W, clip.offset_y / H)  # overlays are placed in pixels
        placed.append(Clip(clip.asset, clip.start, duration, fit=clip.fit, position=clip.position,
                           offset_x=offset[0], offset_y=offset[1], fade_in=min(clip.fade_in, duration),
                           fade_out=min(clip.fade_out, max(0.0, duration - clip.fade_in)), size=clip.size))
    tracks = [Track(0, 0, tuple(_silenced(videos, silences)))]
    for i, clip in enumerate(placed):
        tracks.append(Track(1 + i, 1 + i, (clip,)))
    return Timeline(W, H, (0, 0, 0, 255), tuple(tracks))


def _silenced(videos: list[Clip], spans: list[tuple[float, float]]) -> list[Clip]:
    """The inline videos, split where an overlay silences them, those parts at volume 0."""
    cuts = sorted({t for span in spans for t in span})
    out = []
    for clip in videos:
        edges = [clip.start] + [t for t in cuts if clip.start < t < clip.end] + [clip.end]
        for a, b in zip(edges, edges[1:]):
            mid = (a + b) / 2
            quiet = any(s <= mid < e for s, e in spans)
            asset: VideoAsset = clip.asset  # type: ignore[assignment]
            out.append(Clip(VideoAsset(asset.id, asset.start + (a - clip.start), 0.0 if quiet else asset.volume),
                            a, b - a, fit=clip.fit))
    return out


def _text(o: _Obj, when: float) -> Clip:
    text = drawable_text(o.text("text", required=True, max_length=5000), o.sub("text"))
    o.text("asset_id", "", max_length=200)
    duration = o.raw("duration")
    length = o.num("duration", None, 0) if duration is not None else 0.0
    st = _Obj(o.raw("style", {}) or {}, o.sub("style"))
    size = st.num("fontsize", 24, 1, 1000)
    alpha = st.num("alpha", 1.0, 0, 1)
    colour = _colour(st.raw("fontcolor", "black"), st.sub("fontcolor"), alpha)
    if st.text("fontcolor_expr", ""):
        raise _fail(st.sub("fontcolor_expr"), st.raw("fontcolor_expr"), "drawtext expressions are not supported")
    family = st.text("font", "Sans", max_length=200)
    box = st.flag("box", True)
    box_colour = _colour(st.raw("boxcolor", "white"), st.sub("boxcolor"), alpha)
    pad = _pixels(st.raw("boxborderw", "10"), st.sub("boxborderw"))
    boxw, boxh = st.num("boxw", 0, 0), st.num("boxh", 0, 0)
    spacing = st.num("line_spacing", 0, 0)
    align = st.text("text_align", "T")
    if not re.fullmatch(r"[TMBLRC]{1,2}", align):
        raise _fail(st.sub("text_align"), align, "must be one or two of T, M, B, L, R, C")
    horizontal = next((TEXT_ALIGN[c] for c in align if c in "LRC"), "left")
    vertical = next((TEXT_ALIGN[c] for c in align if c in "TMB"), "top")
    y_align = st.text("y_align", "text")
    if y_align not in ("text", "baseline", "font"):
        raise _fail(st.sub("y_align"), y_align, "must be text, baseline or font")
    border = st.num("borderw", 0, 0, 100)
    border_colour = _colour(st.raw("bordercolor", "black"), st.sub("bordercolor"), alpha)
    expansion = st.text("expansion", "normal")
    if expansion not in ("normal", "none"):
        raise _fail(st.sub("expansion"), expansion, "only normal or none")
    st.num("basetime", 0)
    st.flag("fix_bounds")
    st.flag("text_shaping", True)
    shadow = _colour(st.raw("shadowcolor", "black"), st.sub("shadowcolor"), alpha)
    sx, sy = st.num("shadowx", 0, 0, 200), st.num("shadowy", 0, 0, 200)
    tabsize = int(st.num("tabsize", 4, 1, 64, integer=True))
    x, y = st.raw("x", "(main_w-text_w)/2"), st.raw("y", "(main_h-text_h)/2")
    st.done()
    o.done()
    centre_x = isinstance(x, str) and x.replace(" ", "") in CENTRE_X
    centre_y = isinstance(y, str) and y.replace(" ", "") in CENTRE_Y
    px = 0.0 if centre_x else _pixels(x, st.sub("x"))
    py = 0.0 if centre_y else _pixels(y, st.sub("y"))
    position = {(True, True): "center", (True, False): "top", (False, True): "left"}.get((centre_x, centre_y),
                                                                                          "top_left")
    asset = TextAsset(text=text, family=family, size=size, color=colour, border_color=border_colour,
                      border_width=border, shadow_color=shadow if (sx or sy) else None, shadow_x=sx, shadow_y=sy,
                      background_color=box_colour if box else None, background_width=boxw, background_height=boxh,
                      background_border=pad, background_alignment=_nine(horizontal, vertical),
                      horizontal=horizontal, vertical=vertical, tabsize=tabsize, line_spacing=spacing)
    # pixel offsets are turned into fractions of the frame by from_legacy (it knows the size)
    return Clip(asset, when, length, fit="none", position=position, offset_x=px, offset_y=-py)


def _nine(horizontal: str, vertical: str) -> str:
    if vertical == "center":
        return horizontal
    return vertical if horizontal == "center" else f"{vertical}_{horizontal}"


# -- add_subtitle(style): the SDK's SubtitleStyle as a caption clip -------------------------------

#: ASS's legacy alignment numbers, as the SDK's SubtitleAlignment names them.
SUBTITLE_ALIGNMENTS = {1: "bottom_left", 2: "bottom_center", 3: "bottom_right", 9: "middle_left",
                       10: "middle_center", 11: "middle_right", 5: "top_left", 6: "top_center", 7: "top_right"}
#: SubtitleBorderStyle: no_border (1, ASS's outline + shadow), opaque_box (3), outline (4).
SUBTITLE_BORDERS = {1: "outline_and_shadow", 3: "opaque_box", 4: "outline_and_shadow"}
#: ASS sizes are in script units of a 288-line frame (libass's default PlayResY), as burned by
#: ffmpeg's ``subtitles`` filter: scaled to the video's height.
ASS_PLAY_RES_Y = 288


def subtitle_caption(style: Any, height: int):
    """``video.add_subtitle(SubtitleStyle(...))``'s ``subtitle_style`` → a :class:`CaptionAsset`."""
    from .model import CaptionAsset, parse_ass

    o = _Obj(style or {}, "subtitle_style")
    k = height / ASS_PLAY_RES_Y
    kw: dict[str, Any] = {"font_name": o.text("font_name", "Arial"), "font_size": o.num("font_size", 18, 1, 500) * k,
                          "bold": o.flag("bold")}
    for key in ("italic", "underline", "strike_out"):
        if o.flag(key):
            raise _fail(o.sub(key), True, "is not supported by the renderer")
    for key, default in (("scale_x", 1.0), ("scale_y", 1.0), ("spacing", 0.0), ("angle", 0.0)):
        v = o.num(key, default)
        if v != default and not (key.startswith("scale") and v == 100):
            raise _fail(o.sub(key), v, f"is not supported by the renderer (only {default:g})")
    for key, name in (("primary_colour", "primary"), ("secondary_colour", "secondary"),
                      ("outline_colour", "outline_color"), ("back_colour", "back")):
        default = {"primary": "&H00FFFFFF", "secondary": "&H000000FF"}.get(name, "&H00000000")
        kw[name] = parse_ass(o.raw(key, default), o.sub(key))
    border = o.raw("border_style", 4)
    if border not in SUBTITLE_BORDERS:
        raise _fail(o.sub("border_style"), border, "unsupported border style; supported: 1, 3, 4")
    kw["style"] = SUBTITLE_BORDERS[border]
    kw["outline"] = o.num("outline", 1.0, 0, 50) * k
    kw["shadow"] = o.num("shadow", 0.0, 0, 50) * k
    alignment = o.raw("alignment", 2)
    if alignment not in SUBTITLE_ALIGNMENTS:
        raise _fail(o.sub("alignment"), alignment, "unsupported alignment; supported: 1-3, 5-7, 9-11")
    kw["alignment"] = SUBTITLE_ALIGNMENTS[alignment]
    for key in ("margin_l", "margin_r", "margin_v"):
        kw[key] = o.num(key, 10, 0, 10000) * k
    o.done()
    return CaptionAsset(**kw)


def subtitled(video: SourceInfo, style: Any) -> Timeline:
    """The whole video with its transcript burned in as styled captions."""
    if not video.has_video or not video.width or not video.height:
        raise _fail("video", video.id, "has no picture to burn subtitles into")
    W, H = video.width - video.width % 2, video.height - video.height % 2
    caption = subtitle_caption(style, H)
    return Timeline(W, H, (0, 0, 0, 255), (
        Track(0, 0, (Clip(VideoAsset(video.id), 0.0, video.duration),)),
        Track(1, 1, (Clip(caption, 0.0, video.duration),))))
