"""The editor's timeline, parsed and validated (pure: no I/O).

Accepts what ``videodb==0.5.1``'s ``videodb.editor.Timeline.to_json()`` emits (its ``timeline``
object) and turns it into frozen dataclasses. Every field the renderer does not support, and
every value it does not know, is refused with :class:`TimelineError` naming the field (a JSON
path such as ``tracks[1].clips[0].clip.filter``) and the value: nothing is silently ignored.

    timeline = parse_timeline(body["timeline"])
    key = canonical_key(timeline)     # the render cache key
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Optional

from ..errors import ExportError

MAX_SIDE = 3998
MAX_DURATION = 4 * 3600.0
MAX_TRACKS = 64
MAX_CLIPS_PER_TRACK = 500
MAX_CLIPS = 2000
MAX_NAME = 200

FITS = ("crop", "cover", "contain", "none")
POSITIONS = ("top", "bottom", "left", "right", "center", "top_left", "top_right", "bottom_left", "bottom_right")
#: The SDK's Filter enum, each mapped to a per-frame colour operation (render.py).
FILTERS = ("blur", "boost", "contrast", "darken", "greyscale", "lighten", "muted", "negative")
TRANSITIONS = ("fade",)
#: Transition names the renderer knows of but does not draw: refused by name.
TEXT_ALIGNMENTS = ("top", "top_right", "right", "bottom_right", "bottom", "bottom_left", "left", "top_left", "center")
HORIZONTAL = ("left", "center", "right")
VERTICAL = ("top", "center", "bottom")
CAPTION_ALIGNMENTS = ("bottom_left", "bottom_center", "bottom_right", "middle_left", "middle_center",
                      "middle_right", "top_left", "top_center", "top_right")
CAPTION_BORDER_STYLES = ("outline_and_shadow", "opaque_box")
#: The SDK's CaptionAnimation values the renderer draws (the others are refused by name).
CAPTION_ANIMATIONS = ("color_highlight",)
HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8}|[0-9a-fA-F]{3})$")
ASS = re.compile(r"^&H([0-9a-fA-F]{1,8})&?$")


@dataclass(frozen=True)
class Caption:
    """One caption line (a transcript's, placed by the plan and drawn by the render) on the timeline's clock; ``words`` for word timing (start, end, text)."""

    start: float
    end: float
    text: str
    words: tuple[tuple[float, float, str], ...] = ()


class TimelineError(ExportError):
    """The timeline asks for something invalid or unsupported; the message names field and value."""

    code = "INVALID_TIMELINE"


class AssetNotFound(ExportError):
    """An asset id of the timeline is not in the library (or is not of the kind its clip needs): a 404."""

    code = "NOT_FOUND"


class CaptionsUnavailable(ExportError):
    """A caption clip, but no video of the timeline has its spoken words indexed yet: a 409."""

    code = "INVALID_STATE"


def _fail(path: str, value: Any, why: str) -> TimelineError:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return TimelineError(f"{path}: {why} (got {shown})")


# -- value readers ------------------------------------------------------------------------------

class _Obj:
    """A JSON object being read: each key taken is checked off; leftovers are refused."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, value, "must be an object")
        self.value = value
        self.path = path
        self.seen: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.value and self.value[key] is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self.value.get(key, default)

    def _null(self, key: str, nullable: bool, what: str) -> None:
        """A key sent as null where the schema has no null: refused (the SDK never sends one)."""
        if key in self.value and self.value[key] is None and not nullable:
            raise _fail(self.sub(key), None, f"must be {what}, not null")

    def num(self, key: str, default: Optional[float], lo: float | None = None, hi: float | None = None,
            required: bool = False, integer: bool = False, nullable: bool = False) -> float:
        self.seen.add(key)
        v = self.value.get(key)
        self._null(key, nullable or required, "an integer" if integer else "a number")
        if v is None:
            if required or default is None:
                raise _fail(self.sub(key), v, "is required")
            return default
        if integer and (isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v)):
            raise _fail(self.sub(key), v, "must be an integer")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(self.sub(key), v, "must be a number")
        if lo is not None and v < lo or hi is not None and v > hi:
            raise _fail(self.sub(key), v, f"must be between {lo:g} and {hi:g}" if hi is not None
                        else f"must be at least {lo:g}")
        return float(v)

    def text(self, key: str, default: Optional[str] = None, required: bool = False,
             max_length: int | None = None) -> str:
        self.seen.add(key)
        v = self.value.get(key)
        self._null(key, required, "a string")
        if v is None:
            if required or default is None:
                raise _fail(self.sub(key), v, "is required")
            return default
        if not isinstance(v, str):
            raise _fail(self.sub(key), v, "must be a string")
        if max_length is not None and len(v) > max_length:
            raise _fail(self.sub(key), v, f"is longer than {max_length} characters")
        return v

    def choice(self, key: str, options: tuple[str, ...], default: Optional[str], none_means: Optional[str] = None,
               what: str = "value", nullable: bool = False) -> Optional[str]:
        self.seen.add(key)
        v = self.value.get(key)
        self._null(key, nullable or none_means is not None, f"one of {', '.join(options)}")
        if v == "None" and none_means is None:
            raise _fail(self.sub(key), v, f"unsupported {what}; supported: {', '.join(options)}")
        if v is None or v == "None":  # the SDK's Fit.none serialises as "None" (str-enum of None)
            if key in self.value and none_means is not None:
                return none_means
            return default
        if not isinstance(v, str) or v not in options:
            raise _fail(self.sub(key), v, f"unsupported {what}; supported: {', '.join(options)}")
        return v

    def flag(self, key: str, default: bool = False) -> bool:
        self.seen.add(key)
        v = self.value.get(key, default)
        if not isinstance(v, bool):
            raise _fail(self.sub(key), v, "must be true or false")
        return v

    def colour(self, key: str, default: str) -> tuple[int, int, int, int]:
        return parse_hex(self.text(key, default), self.sub(key))

    def done(self) -> None:
        extra = sorted(set(self.value) - self.seen)
        if extra:
            raise _fail(self.sub(extra[0]), self.value[extra[0]], "is not a field the editor supports")


def parse_hex(text: str, path: str) -> tuple[int, int, int, int]:
    """``#RRGGBB``, ``#RRGGBBAA`` or ``#RGB`` → (r, g, b, a)."""
    m = HEX.match(text.strip())
    if not m:
        raise _fail(path, text, "must be a colour as #RRGGBB")
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    a = int(h[6:8], 16) if len(h) == 8 else 255
    return r, g, b, a


def parse_ass(text: Any, path: str) -> tuple[int, int, int, int]:
    """ASS ``&HAABBGGRR`` (alpha 00 = opaque) → (r, g, b, a)."""
    m = ASS.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise _fail(path, text, "must be an ASS colour as &HAABBGGRR")
    v = int(m.group(1), 16)
    return v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, 255 - ((v >> 24) & 0xFF)


# -- the model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Crop:
    top: float = 0
    right: float = 0
    bottom: float = 0
    left: float = 0

    @property
    def empty(self) -> bool:
        return not (self.top or self.right or self.bottom or self.left)


@dataclass(frozen=True)
class VideoAsset:
    id: str
    start: float = 0.0
    volume: float = 1.0
    crop: Crop = Crop()
    kind: str = "video"


@dataclass(frozen=True)
class AudioAsset:
    id: str
    start: float = 0.0
    volume: float = 1.0
    kind: str = "audio"


@dataclass(frozen=True)
class ImageAsset:
    id: str
    crop: Crop = Crop()
    kind: str = "image"


@dataclass(frozen=True)
class TextAsset:
    text: str
    family: str = "Clear Sans"
    size: float = 48
    color: tuple[int, int, int, int] = (255, 255, 255, 255)
    border_color: tuple[int, int, int, int] = (0, 0, 0, 255)
    border_width: float = 0.0
    shadow_color: Optional[tuple[int, int, int, int]] = None
    shadow_x: float = 0.0
    shadow_y: float = 0.0
    background_color: Optional[tuple[int, int, int, int]] = None
    background_width: float = 0.0
    background_height: float = 0.0
    background_border: float = 0.0
    background_alignment: str = "center"
    horizontal: str = "center"
    vertical: str = "center"
    tabsize: int = 4
    line_spacing: float = 0.0
    width: Optional[int] = None
    height: Optional[int] = None
    kind: str = "text"


@dataclass(frozen=True)
class CaptionAsset:
    font_name: str = "Clear Sans"
    font_size: float = 30
    bold: bool = False
    primary: tuple[int, int, int, int] = (255, 255, 255, 255)
    secondary: tuple[int, int, int, int] = (0, 0, 255, 255)
    back: tuple[int, int, int, int] = (0, 0, 0, 255)
    style: str = "outline_and_shadow"
    outline: float = 1
    outline_color: tuple[int, int, int, int] = (0, 0, 0, 255)
    shadow: float = 0
    alignment: str = "bottom_center"
    margin_l: float = 30
    margin_r: float = 30
    margin_v: float = 30
    animation: Optional[str] = None
    kind: str = "caption"


Asset = VideoAsset | AudioAsset | ImageAsset | TextAsset | CaptionAsset


@dataclass(frozen=True)
class Clip:
    asset: Asset
    start: float              # on the timeline
    duration: float
    fit: str = "crop"
    position: str = "center"
    offset_x: float = 0.0
    offset_y: float = 0.0
    scale: float = 1.0
    opacity: float = 1.0
    fade_in: float = 0.0      # seconds of fade at the start (0: none)
    fade_out: float = 0.0
    filter: Optional[str] = None
    z_index: int = 0
    #: An exact size on the canvas (the legacy timeline's image overlays); not in the editor's JSON.
    size: Optional[tuple[int, int]] = None

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def visual(self) -> bool:
        return self.asset.kind != "audio"


@dataclass(frozen=True)
class Track:
    z_index: int
    order: int
    clips: tuple[Clip, ...]


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    background: tuple[int, int, int, int]
    tracks: tuple[Track, ...]

    @property
    def duration(self) -> float:
        return max((c.end for t in self.tracks for c in t.clips), default=0.0)

    def clips(self) -> list[Clip]:
        return [c for t in self.tracks for c in t.clips]

    def layers(self) -> list[Clip]:
        """Visual clips from the bottom up: tracks by z_index then order (later tracks on top),
        and inside a track by the clip's own z_index then order."""
        out = []
        for track in sorted(self.tracks, key=lambda t: (t.z_index, t.order)):
            out += [c for _, c in sorted(enumerate(track.clips), key=lambda ic: (ic[1].z_index, ic[0])) if c.visual]
        return out

    def media_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.clips():
            if isinstance(c.asset, (VideoAsset, AudioAsset, ImageAsset)):
                seen.setdefault(c.asset.id, None)
        return list(seen)


def canonical_key(timeline: Timeline, extra: Any = None) -> str:
    """The render cache key: the parsed timeline (defaults filled in, so equal timelines that
    the SDK spells differently meet) as sorted JSON, hashed."""
    text = json.dumps({"timeline": asdict(timeline), "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# -- parsing ------------------------------------------------------------------------------------

def _crop(o: _Obj, key: str) -> Crop:
    if not o.has(key):
        o.raw(key)
        return Crop()
    c = _Obj(o.raw(key), o.sub(key))
    crop = Crop(*(c.num(k, 0.0, 0, 100000) for k in ("top", "right", "bottom", "left")))
    c.done()
    return crop


def _asset(value: Any, path: str) -> Asset:
    o = _Obj(value, path)
    kind = o.choice("type", ("video", "audio", "image", "text", "caption"), None, what="asset type")
    if kind is None:
        raise _fail(o.sub("type"), None, "is required")
    if kind == "video":
        a: Asset = VideoAsset(_media_id(o, "m-"), o.num("start", 0.0, 0, MAX_DURATION), o.num("volume", 1.0, 0, 5),
                              _crop(o, "crop"))
    elif kind == "audio":
        a = AudioAsset(_media_id(o, "a-", "m-"), o.num("start", 0.0, 0, MAX_DURATION), o.num("volume", 1.0, 0, 5))
    elif kind == "image":
        a = ImageAsset(_media_id(o, "img-"), _crop(o, "crop"))
    elif kind == "text":
        a = _text(o)
    else:
        a = _caption(o)
    o.done()
    return a


def _media_id(o: _Obj, *prefixes: str) -> str:
    v = o.text("id", required=True)
    if not v.startswith(prefixes) or len(v) > 200:
        raise _fail(o.sub("id"), v, f"must be an asset id ({' or '.join(p + '…' for p in prefixes)})")
    return v


#: Line breaks other than ``\n`` that become one: raqm, Pillow's layout, fails on a paragraph
#: separator inside a line (\r, U+2029; checked over every code point up to U+2FFFF).
LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029]")


def drawable_text(text: str, path: str) -> str:
    """Text the renderer draws: line breaks as ``\\n`` (``\\r\\n``, ``\\r``, U+2028 and U+2029 become
    one), tabs kept; any other control character (U+0000-U+001F, U+007F-U+009F) or a lone
    surrogate is refused by its code point: raqm fails on some and Pillow draws boxes for others."""
    text = LINE_BREAKS.sub("\n", text)
    for i, ch in enumerate(text):
        if ch in "\n\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise TimelineError(f"{path}: contains the control character U+{ord(ch):04X} at {i}; "
                                "text may hold line breaks and tabs, no other control characters")
    return text


def _text(o: _Obj) -> TextAsset:
    text = drawable_text(o.text("text", required=True), o.sub("text"))
    if len(text) > 5000:
        raise _fail(o.sub("text"), text, "is longer than 5000 characters")
    kw: dict[str, Any] = {"text": text}
    if o.has("font"):
        f = _Obj(o.raw("font"), o.sub("font"))
        kw.update(family=f.text("family", "Clear Sans", max_length=MAX_NAME), size=f.num("size", 48, 1, 1000),
                  color=_with_opacity(f.colour("color", "#FFFFFF"), f.num("opacity", 1.0, 0, 1)))
        f.done()
    else:
        o.raw("font")
    if o.has("border"):
        b = _Obj(o.raw("border"), o.sub("border"))
        kw.update(border_color=b.colour("color", "#000000"), border_width=b.num("width", 0.0, 0, 100))
        b.done()
    else:
        o.raw("border")
    if o.has("shadow"):
        s = _Obj(o.raw("shadow"), o.sub("shadow"))
        kw.update(shadow_color=s.colour("color", "#000000"), shadow_x=s.num("x", 0.0, 0, 200),
                  shadow_y=s.num("y", 0.0, 0, 200))
        s.done()
    else:
        o.raw("shadow")
    if o.has("background"):
        b = _Obj(o.raw("background"), o.sub("background"))
        kw.update(background_width=b.num("width", 0.0, 0, MAX_SIDE), background_height=b.num("height", 0.0, 0, MAX_SIDE),
                  background_color=b.colour("color", "#000000"), background_border=b.num("border_width", 0.0, 0, 500))
        kw["background_color"] = _with_opacity(kw["background_color"], b.num("opacity", 1.0, 0, 1))
        kw["background_alignment"] = b.choice("text_alignment", TEXT_ALIGNMENTS, "center", what="text_alignment")
        b.done()
    else:
        o.raw("background")
    if o.has("alignment"):
        al = _Obj(o.raw("alignment"), o.sub("alignment"))
        kw.update(horizontal=al.choice("horizontal", HORIZONTAL, "center", what="horizontal alignment"),
                  vertical=al.choice("vertical", VERTICAL, "center", what="vertical alignment"))
        al.done()
    else:
        o.raw("alignment")
    kw["tabsize"] = int(o.num("tabsize", 4, 1, 64, integer=True))
    kw["line_spacing"] = o.num("line_spacing", 0.0, 0, 1000)
    for key in ("width", "height"):
        if o.has(key):
            kw[key] = int(o.num(key, None, 1, MAX_SIDE, integer=True))
        else:
            o.raw(key)
    return TextAsset(**kw)


def _with_opacity(c: tuple[int, int, int, int], opacity: float) -> tuple[int, int, int, int]:
    return c[0], c[1], c[2], round(c[3] * opacity)


def _caption(o: _Obj) -> CaptionAsset:
    src = o.text("src", "auto")
    if src != "auto":
        raise _fail(o.sub("src"), src, "only 'auto' (the video's transcript) is supported; ASS files are not")
    kw: dict[str, Any] = {}
    if o.has("font"):
        f = _Obj(o.raw("font"), o.sub("font"))
        kw.update(font_name=f.text("font_name", "Clear Sans", max_length=MAX_NAME),
                  font_size=f.num("font_size", 30, 1, 500),
                  bold=f.flag("bold"))
        for key, default, unsupported in (("italic", False, True), ("underline", False, True),
                                          ("strikeout", False, True)):
            if f.flag(key, default) == unsupported:
                raise _fail(f.sub(key), True, "is not supported by the renderer")
        for key, default in (("scale_x", 100.0), ("scale_y", 100.0), ("spacing", 0.0), ("angle", 0.0)):
            v = f.num(key, default)
            if v != default:
                raise _fail(f.sub(key), v, f"is not supported by the renderer (only {default:g})")
        f.done()
    else:
        o.raw("font")
    kw["primary"] = parse_ass(o.raw("primary_color", "&H00FFFFFF"), o.sub("primary_color"))
    kw["secondary"] = parse_ass(o.raw("secondary_color", "&H000000FF"), o.sub("secondary_color"))
    kw["back"] = parse_ass(o.raw("back_color", "&H00000000"), o.sub("back_color"))
    if o.has("border"):
        b = _Obj(o.raw("border"), o.sub("border"))
        kw.update(style=b.choice("style", CAPTION_BORDER_STYLES, "outline_and_shadow", what="border style"),
                  outline=b.num("outline", 1, 0, 50),
                  outline_color=parse_ass(b.raw("outline_color", "&H00000000"), b.sub("outline_color")),
                  shadow=b.num("shadow", 0, 0, 50))
        b.done()
    else:
        o.raw("border")
    if o.has("position"):
        p = _Obj(o.raw("position"), o.sub("position"))
        kw.update(alignment=p.choice("alignment", CAPTION_ALIGNMENTS, "bottom_center", what="caption alignment"),
                  margin_l=p.num("margin_l", 30, 0, MAX_SIDE), margin_r=p.num("margin_r", 30, 0, MAX_SIDE),
                  margin_v=p.num("margin_v", 30, 0, MAX_SIDE))
        p.done()
    else:
        o.raw("position")
    kw["animation"] = o.choice("animation", CAPTION_ANIMATIONS, None, what="caption animation", nullable=True)
    return CaptionAsset(**kw)


def _clip(value: Any, path: str, z_order: int, internal: bool = False) -> Clip:
    item = _Obj(value, path)
    start = item.num("start", None, 0, MAX_DURATION, required=True)
    o = _Obj(item.raw("clip"), item.sub("clip"))
    item.done()
    asset = _asset(o.raw("asset"), o.sub("asset"))
    duration = o.num("duration", None, 0, MAX_DURATION, required=True)
    if duration <= 0:
        raise _fail(o.sub("duration"), duration, "must be more than 0")
    effect = o.raw("effect")
    if effect is not None:
        raise _fail(o.sub("effect"), effect, "effects are not supported by the renderer")
    kw: dict[str, Any] = {}
    kw["fit"] = o.choice("fit", FITS, "crop", none_means="none", what="fit")
    kw["position"] = o.choice("position", POSITIONS, "center", what="position", nullable=True)
    if o.has("offset"):
        off = _Obj(o.raw("offset"), o.sub("offset"))
        kw.update(offset_x=off.num("x", 0.0, -10, 10), offset_y=off.num("y", 0.0, -10, 10))
        off.done()
    else:
        o.raw("offset")
    kw["scale"] = o.num("scale", 1.0, 0, 10)
    kw["opacity"] = o.num("opacity", 1.0, 0, 1)
    kw["filter"] = o.choice("filter", FILTERS, None, what="filter", nullable=True)
    kw["z_index"] = int(o.num("z_index", 0, -10000, 10000, integer=True, nullable=True))
    if o.has("transition"):
        t = _Obj(o.raw("transition"), o.sub("transition"))
        fade_in = t.choice("in", TRANSITIONS, None, what="transition", nullable=True)
        fade_out = t.choice("out", TRANSITIONS, None, what="transition", nullable=True)
        length = t.num("duration", 0.5, 0, MAX_DURATION)
        out_length = t.num("out_duration", length, 0, MAX_DURATION) if internal else length
        t.done()
        # fades longer than the clip, or overlapping, are well defined: the ramps multiply
        kw["fade_in"] = length if fade_in else 0.0
        kw["fade_out"] = out_length if fade_out else 0.0
    else:
        o.raw("transition")
    if internal and o.has("size"):
        w, h = o.raw("size")
        kw["size"] = (int(w), int(h))
    o.done()
    if asset.kind == "audio":
        for key, default in (("fit", "crop"), ("position", "center"), ("scale", 1.0), ("opacity", 1.0),
                             ("filter", None), ("offset_x", 0.0), ("offset_y", 0.0)):
            if kw.get(key, default) != default and not (key == "fit" and kw[key] in FITS):
                raise _fail(f"{o.sub(key)}", kw[key], "does not apply to an audio clip")
    return Clip(asset=asset, start=start, duration=duration, **kw)


def parse_resolution(text: Any, path: str = "resolution") -> tuple[int, int]:
    m = re.match(r"^([1-9]\d{0,4})x([1-9]\d{0,4})$", text) if isinstance(text, str) else None
    if not m:
        raise _fail(path, text, "must be WIDTHxHEIGHT, e.g. 1280x720")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE) or w % 2 or h % 2:
        raise _fail(path, text, f"each side must be even and between 16 and {MAX_SIDE}")
    return w, h


def parse_timeline(value: Any, internal: bool = False) -> Timeline:
    """The ``timeline`` object of ``POST /editor`` → :class:`Timeline`, or :class:`TimelineError`.
    ``internal``: also accept what only :func:`to_json` writes (a clip's exact ``size``)."""
    o = _Obj(value, "timeline")
    background = o.colour("background", "#000000")
    o._null("resolution", False, "WIDTHxHEIGHT")
    width, height = parse_resolution(o.raw("resolution", "1280x720"), "timeline.resolution")
    tracks_value = o.raw("tracks")
    if not isinstance(tracks_value, list) or not tracks_value:
        raise _fail("timeline.tracks", tracks_value, "must be a non-empty list of tracks")
    if len(tracks_value) > MAX_TRACKS:
        raise _fail("timeline.tracks", len(tracks_value), f"at most {MAX_TRACKS} tracks")
    tracks = []
    total = 0
    for i, tv in enumerate(tracks_value):
        t = _Obj(tv, f"timeline.tracks[{i}]")
        z = int(t.num("z_index", 0, -10000, 10000, integer=True, nullable=True))
        clips_value = t.raw("clips")
        if not isinstance(clips_value, list) or not clips_value:
            raise _fail(t.sub("clips"), clips_value, "must be a non-empty list of clips")
        if len(clips_value) > MAX_CLIPS_PER_TRACK:
            raise _fail(t.sub("clips"), len(clips_value), f"at most {MAX_CLIPS_PER_TRACK} clips in a track")
        total += len(clips_value)
        if total > MAX_CLIPS:
            raise _fail(t.sub("clips"), total, f"at most {MAX_CLIPS} clips in a timeline")
        clips = tuple(_clip(cv, f"{t.sub('clips')}[{j}]", j, internal) for j, cv in enumerate(clips_value))
        t.done()
        tracks.append(Track(z, i, clips))
    o.done()
    timeline = Timeline(width, height, background, tuple(tracks))
    if timeline.duration <= 0:
        raise _fail("timeline.tracks", [], "the timeline has no clips")
    return timeline


# -- back to JSON (what a job stores and parses again) -------------------------------------------

def _hex(c: tuple[int, int, int, int]) -> str:
    return "#%02x%02x%02x%02x" % c


def _ass(c: tuple[int, int, int, int]) -> str:
    r, g, b, a = c
    return "&H%02X%02X%02X%02X" % (255 - a, b, g, r)


def _crop_json(c: Crop) -> dict[str, float]:
    return {"top": c.top, "right": c.right, "bottom": c.bottom, "left": c.left}


def _asset_json(a: Asset) -> dict[str, Any]:
    if isinstance(a, VideoAsset):
        return {"type": "video", "id": a.id, "start": a.start, "volume": a.volume, "crop": _crop_json(a.crop)}
    if isinstance(a, AudioAsset):
        return {"type": "audio", "id": a.id, "start": a.start, "volume": a.volume}
    if isinstance(a, ImageAsset):
        return {"type": "image", "id": a.id, "crop": _crop_json(a.crop)}
    if isinstance(a, TextAsset):
        out: dict[str, Any] = {
            "type": "text", "text": a.text,
            "font": {"family": a.family, "size": a.size, "color": _hex(a.color), "opacity": 1.0},
            "border": {"color": _hex(a.border_color), "width": a.border_width},
            "alignment": {"horizontal": a.horizontal, "vertical": a.vertical},
            "tabsize": a.tabsize, "line_spacing": a.line_spacing}
        if a.shadow_color is not None:
            out["shadow"] = {"color": _hex(a.shadow_color), "x": a.shadow_x, "y": a.shadow_y}
        if a.background_color is not None:
            out["background"] = {"width": a.background_width, "height": a.background_height,
                                 "color": _hex(a.background_color), "border_width": a.background_border,
                                 "opacity": 1.0, "text_alignment": a.background_alignment}
        if a.width is not None:
            out["width"] = a.width
        if a.height is not None:
            out["height"] = a.height
        return out
    out = {"type": "caption", "src": "auto",
           "font": {"font_name": a.font_name, "font_size": a.font_size, "bold": a.bold},
           "primary_color": _ass(a.primary), "secondary_color": _ass(a.secondary), "back_color": _ass(a.back),
           "border": {"style": a.style, "outline": a.outline, "outline_color": _ass(a.outline_color),
                      "shadow": a.shadow},
           "position": {"alignment": a.alignment, "margin_l": a.margin_l, "margin_r": a.margin_r,
                        "margin_v": a.margin_v}}
    if a.animation:
        out["animation"] = a.animation
    return out


def _transition_json(c: Clip) -> Optional[dict[str, Any]]:
    if not (c.fade_in or c.fade_out):
        return None
    out = {"in": "fade" if c.fade_in else None, "out": "fade" if c.fade_out else None,
           "duration": c.fade_in or c.fade_out}
    if c.fade_in and c.fade_out and c.fade_in != c.fade_out:
        out["out_duration"] = c.fade_out  # internal: the legacy timeline's two fade lengths
    return out


def to_json(timeline: Timeline) -> dict[str, Any]:
    """The timeline as the editor's JSON; ``parse_timeline(to_json(t)) == t``."""
    tracks = []
    for track in sorted(timeline.tracks, key=lambda t: t.order):
        clips = []
        for c in track.clips:
            clip: dict[str, Any] = {"asset": _asset_json(c.asset), "duration": c.duration,
                                    "fit": None if c.fit == "none" else c.fit, "position": c.position,
                                    "offset": {"x": c.offset_x, "y": c.offset_y}, "scale": c.scale,
                                    "opacity": c.opacity, "z_index": c.z_index}
            if c.filter:
                clip["filter"] = c.filter
            if c.size:
                clip["size"] = list(c.size)
            transition = _transition_json(c)
            if transition:
                clip["transition"] = transition
            clips.append({"start": c.start, "clip": clip})
        tracks.append({"z_index": track.z_index, "clips": clips})
    return {"background": _hex(timeline.background), "resolution": f"{timeline.width}x{timeline.height}",
            "tracks": tracks}
