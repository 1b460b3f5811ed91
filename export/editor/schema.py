"""The JSON Schema of the editor's bodies, as the parsers (:mod:`.model`, :mod:`.legacy`) accept
them: the OpenAPI document publishes these, so a body valid here is parsed (a 404 for an asset id
that is not in the library, a 409 for a caption without an indexed video, nothing else), and one
invalid here is refused with a 400 naming field and value."""

from __future__ import annotations

from typing import Any

from PIL import ImageColor

from .model import (CAPTION_ALIGNMENTS, CAPTION_ANIMATIONS, CAPTION_BORDER_STYLES, FILTERS, HORIZONTAL,
                    MAX_CLIPS_PER_TRACK, MAX_DURATION, MAX_SIDE, MAX_TRACKS, POSITIONS, TEXT_ALIGNMENTS,
                    TRANSITIONS, VERTICAL)

HEX_PATTERN = r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8}|[0-9a-fA-F]{3})$"
ASS_PATTERN = r"^&H[0-9a-fA-F]{1,8}&?$"
#: Even sides from 16 to 3998 (x264's 4:2:0 wants even sizes).
SIDE = r"(1[68]|[2-9][02468]|[1-9][0-9][02468]|[1-3][0-9]{2}[02468])"
RESOLUTION_PATTERN = rf"^{SIDE}x{SIDE}$"


def _num(lo: float | None = None, hi: float | None = None, exclusive_lo: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number"}
    if lo is not None:
        out["exclusiveMinimum" if exclusive_lo else "minimum"] = lo
    if hi is not None:
        out["maximum"] = hi
    return out


def _int(lo: int, hi: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _id(*prefixes: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "^(" + "|".join(p.replace("-", "\\-") for p in prefixes) + ")",
            "maxLength": 200}


HEX = {"type": "string", "pattern": HEX_PATTERN}
#: Text the renderer draws (``model.drawable_text``): line breaks and tabs, no other control character.
DRAWABLE = {"type": "string", "maxLength": 5000, "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"}
ASS = {"type": "string", "pattern": ASS_PATTERN}
CROP = _nullable(_obj({k: _num(0, 100000) for k in ("top", "right", "bottom", "left")}))

VIDEO = _obj({"type": {"const": "video"}, "id": _id("m-"), "start": _num(0, MAX_DURATION), "volume": _num(0, 5),
              "crop": CROP}, ("type", "id"))
AUDIO = _obj({"type": {"const": "audio"}, "id": _id("a-", "m-"), "start": _num(0, MAX_DURATION),
              "volume": _num(0, 5)}, ("type", "id"))
IMAGE = _obj({"type": {"const": "image"}, "id": _id("img-"), "crop": CROP}, ("type", "id"))
TEXT = _obj({
    "type": {"const": "text"}, "text": DRAWABLE,
    "font": _nullable(_obj({"family": {"type": "string", "maxLength": 200}, "size": _num(1, 1000), "color": HEX,
                            "opacity": _num(0, 1)})),
    "border": _nullable(_obj({"color": HEX, "width": _num(0, 100)})),
    "shadow": _nullable(_obj({"color": HEX, "x": _num(0, 200), "y": _num(0, 200)})),
    "background": _nullable(_obj({"width": _num(0, MAX_SIDE), "height": _num(0, MAX_SIDE), "color": HEX,
                                  "border_width": _num(0, 500), "opacity": _num(0, 1),
                                  "text_alignment": _enum(TEXT_ALIGNMENTS)})),
    "alignment": _nullable(_obj({"horizontal": _enum(HORIZONTAL), "vertical": _enum(VERTICAL)})),
    "tabsize": _int(1, 64), "line_spacing": _num(0, 1000),
    "width": _nullable(_int(1, MAX_SIDE)), "height": _nullable(_int(1, MAX_SIDE)),
}, ("type", "text"))
CAPTION = _obj({
    "type": {"const": "caption"}, "src": {"const": "auto"},
    "font": _nullable(_obj({"font_name": {"type": "string", "maxLength": 200}, "font_size": _num(1, 500),
                            "bold": {"type": "boolean"}, "italic": {"const": False}, "underline": {"const": False},
                            "strikeout": {"const": False}, "scale_x": {"const": 100}, "scale_y": {"const": 100},
                            "spacing": {"const": 0}, "angle": {"const": 0}})),
    "primary_color": ASS, "secondary_color": ASS, "back_color": ASS,
    "border": _nullable(_obj({"style": _enum(CAPTION_BORDER_STYLES), "outline": _num(0, 50), "outline_color": ASS,
                              "shadow": _num(0, 50)})),
    "position": _nullable(_obj({"alignment": _enum(CAPTION_ALIGNMENTS), "margin_l": _num(0, MAX_SIDE),
                                "margin_r": _num(0, MAX_SIDE), "margin_v": _num(0, MAX_SIDE)})),
    "animation": _nullable(_enum(CAPTION_ANIMATIONS)),
}, ("type",))

TRANSITION = _nullable(_obj({"in": _nullable(_enum(TRANSITIONS)), "out": _nullable(_enum(TRANSITIONS)),
                             "duration": _num(0, MAX_DURATION)}))
FIT = {"anyOf": [{"type": "string", "enum": ["crop", "cover", "contain", "None"]}, {"type": "null"}]}
OFFSET = _nullable(_obj({"x": _num(-10, 10), "y": _num(-10, 10)}))


def _clip(asset: dict[str, Any], visual: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "asset": asset, "duration": _num(0, MAX_DURATION, exclusive_lo=True), "effect": {"type": "null"},
        "fit": FIT, "z_index": _nullable(_int(-10000, 10000)), "transition": TRANSITION}
    if visual:
        props.update(scale=_num(0, 10), opacity=_num(0, 1), position=_nullable(_enum(POSITIONS)), offset=OFFSET,
                     filter=_nullable(_enum(FILTERS)))
    else:  # the SDK sends its visual defaults with an audio clip; anything else has no meaning there
        props.update(scale={"const": 1}, opacity={"const": 1}, position={"anyOf": [{"const": "center"},
                                                                                    {"type": "null"}]},
                     offset=_nullable(_obj({"x": {"const": 0}, "y": {"const": 0}})), filter={"type": "null"})
    return _obj(props, ("asset", "duration"))


CLIP = {"oneOf": [_clip({"oneOf": [VIDEO, IMAGE, TEXT, CAPTION]}, True), _clip(AUDIO, False)]}
TRACK = _obj({"z_index": _nullable(_int(-10000, 10000)),
              "clips": {"type": "array", "minItems": 1, "maxItems": MAX_CLIPS_PER_TRACK,
                        "items": _obj({"start": _num(0, MAX_DURATION), "clip": CLIP}, ("start", "clip"))}},
             ("clips",))
TIMELINE = _obj({"background": HEX, "resolution": {"type": "string", "pattern": RESOLUTION_PATTERN},
                 "tracks": {"type": "array", "minItems": 1, "maxItems": MAX_TRACKS, "items": TRACK}}, ("tracks",))

#: ``POST /editor``: the Timeline's ``to_json()``, or ``{"timeline_url": <an upload URL>}``.
EDITOR_BODY = {"oneOf": [_obj({"timeline": TIMELINE}, ("timeline",)),
                         _obj({"timeline_url": {"type": "string", "maxLength": 4000}}, ("timeline_url",))]}

# -- the deprecated timeline ----------------------------------------------------------------------

COLOUR_NAMES = sorted(ImageColor.colormap)
COLOUR = {"anyOf": [{"type": "string", "enum": COLOUR_NAMES},
                    {"type": "string", "pattern": r"^(#|0x)([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"}]}
PIXELS = {"anyOf": [_num(-100000, 100000), {"type": "string", "pattern": r"^-?\d{1,6}(\.\d+)?$"}]}
CENTRE = ["(main_w-text_w)/2", "(w-text_w)/2", "(W-tw)/2", "(main_h-text_h)/2", "(h-text_h)/2", "(H-th)/2"]
TEXT_STYLE = _obj({
    "fontsize": _num(1, 1000), "fontcolor": COLOUR, "fontcolor_expr": {"const": ""}, "alpha": _num(0, 1),
    "font": {"type": "string", "maxLength": 200}, "box": {"type": "boolean"}, "boxcolor": COLOUR,
    "boxborderw": PIXELS, "boxw": _num(0, MAX_SIDE), "boxh": _num(0, MAX_SIDE), "line_spacing": _num(0, 1000),
    "text_align": {"type": "string", "pattern": "^[TMBLRC]{1,2}$"}, "y_align": _enum(("text", "baseline", "font")),
    "borderw": _num(0, 100), "bordercolor": COLOUR, "expansion": _enum(("normal", "none")),
    "basetime": {"type": "number"}, "fix_bounds": {"type": "boolean"}, "text_shaping": {"type": "boolean"},
    "shadowcolor": COLOUR, "shadowx": _num(0, 200), "shadowy": _num(0, 200), "tabsize": _int(1, 64),
    "x": {"anyOf": [PIXELS, {"type": "string", "enum": CENTRE[:3]}]},
    "y": {"anyOf": [PIXELS, {"type": "string", "enum": CENTRE[3:]}]},
})
_SPAN = {"start": _num(0, MAX_DURATION), "end": _nullable(_num(0, MAX_DURATION, exclusive_lo=True))}
INLINE = _obj({"asset_id": _id("m-"), **_SPAN}, ("asset_id",))
AUDIO_OVERLAY = _obj({"asset_id": _id("a-", "m-"), **_SPAN, "disable_other_tracks": {"type": "boolean"},
                      "fade_in_duration": _num(0, 5), "fade_out_duration": _num(0, 5),
                      "overlay_start": _num(0, MAX_DURATION)}, ("asset_id", "overlay_start"))
IMAGE_OVERLAY = _obj({"asset_id": _id("img-"), "width": PIXELS, "height": PIXELS, "x": PIXELS, "y": PIXELS,
                      "duration": _nullable(_num(0, MAX_DURATION, exclusive_lo=True)),
                      "overlay_start": _num(0, MAX_DURATION)}, ("asset_id", "overlay_start"))
TEXT_OVERLAY = _obj({"text": DRAWABLE, "asset_id": {"type": "string", "maxLength": 200},
                     "duration": _nullable(_num(0, MAX_DURATION, exclusive_lo=True)), "style": _nullable(TEXT_STYLE),
                     "overlay_start": _num(0, MAX_DURATION)}, ("text", "overlay_start"))

#: ``POST /timeline``: ``{"request_type": "compile", "timeline": [...]}`` with at least one inline video.
LEGACY_BODY = _obj({"request_type": {"const": "compile"},
                    "timeline": {"type": "array", "minItems": 1, "maxItems": 2000, "contains": INLINE,
                                 "items": {"oneOf": [INLINE, AUDIO_OVERLAY, IMAGE_OVERLAY, TEXT_OVERLAY]}}},
                   ("timeline",))
