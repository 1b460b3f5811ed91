"""Text and captions drawn with Pillow into RGBA images (libavfilter in PyAV's wheels has no
``drawtext``, ``subtitles`` or ``ass`` filter).

Fonts: a family named in the timeline (``font.family``, ``font_name``) is looked up among the
TrueType/OpenType files under ``/usr/share/fonts`` and ``/usr/local/share/fonts`` by the family
name inside each file; a family that is not installed falls back, as a browser's CSS does, to
DejaVu Sans (Debian's ``fonts-dejavu-core``, which tests/run.sh and .ci/run install), else to the
TrueType font Pillow ships (``ImageFont.load_default(size=…)``, Pillow ≥ 10.1). Bold picks the
family's bold face where it has one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .model import CaptionAsset, TextAsset, TimelineError

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
SYSTEM_FONTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
REGULAR = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"

RGBA = tuple[int, int, int, int]
T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def installed_families() -> dict[tuple[str, bool], str]:
    """(lower-case family, bold) → font file, for every font file installed (read once)."""
    found: dict[tuple[str, bool], str] = {}
    for root in SYSTEM_FONTS:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in (".ttf", ".otf"):
                continue
            try:
                family, style = ImageFont.truetype(str(path), 12).getname()
            except OSError:
                continue
            style = (style or "").lower()
            if "italic" in style or "oblique" in style:
                continue
            bold = "bold" in style
            if style in ("regular", "book", "roman", "normal", "bold", ""):
                found.setdefault(((family or "").lower(), bold), str(path))
    return found


@functools.lru_cache(maxsize=64)
def font(size: int, bold: bool = False, family: str = "") -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if family:
        families = installed_families()
        path = families.get((family.lower(), bold)) or families.get((family.lower(), False))
        if path:
            return ImageFont.truetype(path, size)
    for folder in FONT_DIRS:
        path = folder / (BOLD if bold else REGULAR)
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _anchor_xy(alignment: str, box_w: float, box_h: float, w: float, h: float) -> tuple[float, float]:
    """Top-left of a w×h block inside a box, for one of nine anchors (top, top_right, …, center)."""
    x = {"left": 0.0, "right": box_w - w}.get(_horizontal(alignment), (box_w - w) / 2)
    y = {"top": 0.0, "bottom": box_h - h}.get(_vertical(alignment), (box_h - h) / 2)
    return x, y


def _horizontal(a: str) -> str:
    return "left" if "left" in a else "right" if "right" in a else "center"


def _vertical(a: str) -> str:
    return "top" if a.startswith("top") else "bottom" if a.startswith("bottom") else "center"


@dataclass(frozen=True)
class TextLayout:
    """A text asset measured at the size it is shown (``scale`` applied to every length): its
    box, and where its text goes inside the box. Drawing any part of it (:func:`draw_text`) costs
    that part's pixels, never the whole box's."""

    asset: TextAsset
    text: str
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    size: tuple[int, int]
    origin: tuple[float, float]
    stroke: int
    spacing: float
    shadow: tuple[float, float]


def layout_text(asset: TextAsset, scale: float = 1.0) -> TextLayout:
    """Measure ``asset`` drawn ``scale`` times its size: its box (width/height, or the
    background's size, or the text's own extent) and the text's top-left inside it. Text Pillow
    cannot lay out raises :class:`TimelineError`."""
    k = max(scale, 1e-3)
    text = asset.text.expandtabs(asset.tabsize)
    f = font(max(1, round(asset.size * k)), False, asset.family)
    stroke = round(asset.border_width * k)
    spacing = (4 + asset.line_spacing) * k
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    l, t, r, b = guarded(lambda: probe.multiline_textbbox((0, 0), text, font=f, stroke_width=stroke,
                                                           align=asset.horizontal, spacing=spacing))
    tw, th = r - l, b - t
    shadow = (asset.shadow_x * k, asset.shadow_y * k) if asset.shadow_color else (0.0, 0.0)
    tw_s, th_s = tw + shadow[0], th + shadow[1]
    if asset.background_color is not None:
        pad = max(8.0, asset.background_border) * k
        bw = asset.background_width * k or (tw_s + 2 * pad)
        bh = asset.background_height * k or (th_s + 2 * pad)
        bw, bh = max(bw, (asset.width or 0) * k), max(bh, (asset.height or 0) * k)
        alignment = asset.background_alignment
    else:
        bw = (asset.width or 0) * k or tw_s
        bh = (asset.height or 0) * k or th_s
        alignment = _nine(asset.horizontal, asset.vertical)
    bw, bh = max(1, round(bw)), max(1, round(bh))
    x, y = _anchor_xy(alignment, bw, bh, tw_s, th_s)
    return TextLayout(asset, text, f, (bw, bh), (x - l, y - t), stroke, spacing, shadow)


def draw_text(layout: TextLayout, part: Optional[tuple[int, int, int, int]] = None) -> np.ndarray:
    """The part (left, top, right, bottom, in the box's pixels; default: all) of a laid-out text
    box as an RGBA array: only that part is ever allocated."""
    a = layout.asset
    l, t, r, b = part or (0, 0, *layout.size)
    w, h = max(1, r - l), max(1, b - t)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    if a.background_color is not None:
        ImageDraw.Draw(img).rectangle((-l, -t, layout.size[0] - 1 - l, layout.size[1] - 1 - t),
                                      fill=a.background_color)
    x, y = layout.origin[0] - l, layout.origin[1] - t
    text_layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ld = ImageDraw.Draw(text_layer)
    kw = {"font": layout.font, "stroke_width": layout.stroke, "align": a.horizontal, "spacing": layout.spacing}
    if a.shadow_color is not None and any(layout.shadow):
        sx, sy = layout.shadow
        guarded(lambda: ld.multiline_text((x + sx, y + sy), layout.text, fill=a.shadow_color,
                                           stroke_fill=a.shadow_color, **kw))
    guarded(lambda: ld.multiline_text((x, y), layout.text, fill=a.color,
                                       stroke_fill=a.border_color if layout.stroke else None, **kw))
    return np.asarray(Image.alpha_composite(img, text_layer))


def render_text(asset: TextAsset, viewport: tuple[int, int]) -> np.ndarray:
    """The whole text box at its own size as RGBA (the renderer draws only what shows:
    :func:`layout_text` and :func:`draw_text`)."""
    return draw_text(layout_text(asset))


def guarded(draw: Callable[[], T]) -> T:
    """Pillow's layout (raqm) or rasterising failed on this text, or a line would be an image
    beyond Pillow's size guard: the render refuses the text, naming why."""
    try:
        return draw()
    except (OSError, ValueError, RuntimeError, Image.DecompressionBombError) as exc:
        raise TimelineError(f"text: cannot be drawn at this size and font ({exc})") from None


def _nine(horizontal: str, vertical: str) -> str:
    if vertical == "center":
        return horizontal if horizontal != "center" else "center"
    return vertical if horizontal == "center" else f"{vertical}_{horizontal}"


def render_caption(asset: CaptionAsset, text: str, viewport: tuple[int, int],
                   highlight: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, int, int]:
    """A caption line (wrapped to the margins) as RGBA, and where its top-left goes in the
    viewport. ``highlight``: character range drawn in the secondary colour (color_highlight)."""
    W, H = viewport
    f = font(max(1, round(asset.font_size)), asset.bold, asset.font_name)
    outline = round(asset.outline) if asset.style == "outline_and_shadow" else 0
    max_w = max(20, W - asset.margin_l - asset.margin_r)
    lines = _wrap(text, f, max_w)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    ascent, descent = f.getmetrics() if hasattr(f, "getmetrics") else (asset.font_size, 0)
    line_h = ascent + descent + 2 * outline
    widths = [probe.textlength(line, font=f) + 2 * outline for line in lines]
    pad = 6 if asset.style == "opaque_box" else 0
    shadow = round(asset.shadow)
    bw = round(max(widths, default=1) + 2 * pad + shadow)
    bh = round(line_h * len(lines) + 2 * pad + shadow)
    img = Image.new("RGBA", (max(1, bw), max(1, bh)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if asset.style == "opaque_box":
        draw.rectangle((0, 0, bw - 1 - shadow, bh - 1 - shadow), fill=asset.back)
    h_align = _horizontal(asset.alignment.replace("middle", "center"))
    offset = 0
    for i, line in enumerate(lines):
        lw = widths[i]
        x = pad + outline + {"left": 0, "right": (bw - 2 * pad - shadow) - lw}.get(h_align, ((bw - 2 * pad - shadow) - lw) / 2)
        y = pad + outline + i * line_h
        if shadow and asset.style == "outline_and_shadow":
            draw.text((x + shadow, y + shadow), line, font=f, fill=asset.back)
        draw.text((x, y), line, font=f, fill=asset.primary, stroke_width=outline,
                  stroke_fill=asset.outline_color if outline else None)
        if highlight is not None:
            lo, hi = highlight[0] - offset, highlight[1] - offset
            if hi > 0 and lo < len(line):
                lo, hi = max(0, lo), min(len(line), hi)
                hx = x + probe.textlength(line[:lo], font=f)
                draw.text((hx, y), line[lo:hi], font=f, fill=asset.secondary, stroke_width=outline,
                          stroke_fill=asset.outline_color if outline else None)
        offset += len(line) + 1
    vertical = asset.alignment.split("_")[0]
    x = {"left": asset.margin_l, "right": W - asset.margin_r - bw}.get(h_align, (W - bw) / 2)
    y = {"top": asset.margin_v, "bottom": H - asset.margin_v - bh}.get(vertical, (H - bh) / 2)
    return np.asarray(img), round(x), round(y)


def _wrap(text: str, f, max_w: float) -> list[str]:
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if current and probe.textlength(trial, font=f) > max_w:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines or [""]
