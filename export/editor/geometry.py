"""Where a layer sits on the canvas, and which part of it shows (pure: no I/O).

The renderer places every visual clip with these, and the render budget sizes layers with the
same functions, so what the budget counts is what the renderer allocates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .model import Crop, TimelineError


def even(v: float) -> int:
    """A size rounded to an even number of pixels (4:2:0), at least 2."""
    return max(2, int(round(v / 2)) * 2)


def even_xy(xy: tuple[int, int]) -> tuple[int, int]:
    """Layers sit on even pixels, where their chroma lines up with the frame's."""
    return xy[0] - xy[0] % 2, xy[1] - xy[1] % 2


def fitted_size(fit: str, scale: float, src: tuple[int, int], viewport: tuple[int, int]) -> tuple[int, int]:
    """The asset's size on the canvas: ``fit`` (crop = fill keeping aspect, overflow cut; cover
    = stretch to the viewport; contain = inside keeping aspect; none = as it is), times ``scale``."""
    sw, sh = src
    W, H = viewport
    if fit == "crop":
        s = max(W / sw, H / sh)
        w, h = sw * s, sh * s
    elif fit == "cover":
        w, h = W, H
    elif fit == "contain":
        s = min(W / sw, H / sh)
        w, h = sw * s, sh * s
    else:
        w, h = sw, sh
    return even(w * scale), even(h * scale)


def placed_at(position: str, offset: tuple[float, float], size: tuple[int, int],
              viewport: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner on the canvas: one of nine anchors, then ``offset`` as fractions of the
    viewport (x to the right, y upwards, as Shotstack's, whose JSON VideoDB's editor follows)."""
    w, h = size
    W, H = viewport
    x = 0.0 if "left" in position else (W - w) if "right" in position else (W - w) / 2
    y = 0.0 if position.startswith("top") else (H - h) if position.startswith("bottom") else (H - h) / 2
    return int(round(x + offset[0] * W)), int(round(y - offset[1] * H))


def crop_box(crop: Crop, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part of a ``size`` asset a crop keeps, as (left, top, right, bottom) pixels."""
    w, h = size
    l, t = int(crop.left), int(crop.top)
    r, b = w - int(crop.right), h - int(crop.bottom)
    if r - l < 2 or b - t < 2:
        raise TimelineError(f"crop: leaves nothing of a {w}x{h} asset (got {crop})")
    return l, t, r, b


@dataclass(frozen=True)
class Visible:
    """The part of a layer that lands on the canvas: ``at`` (its top-left on the canvas, even),
    ``size`` (even), and ``part``, the same rectangle in the layer's own unscaled pixels
    (left, top, right, bottom; floats)."""

    at: tuple[int, int]
    size: tuple[int, int]
    part: tuple[float, float, float, float]


def visible(at: tuple[int, int], size: tuple[int, int], natural: tuple[float, float],
            viewport: tuple[int, int]) -> Optional[Visible]:
    """What shows of a layer of ``natural`` size drawn at ``size`` with its top-left at ``at``
    (even), clipped to the viewport; None when nothing does. Layers are drawn only this big,
    never beyond the frame: a huge text box or a scaled-up image costs at most a frame."""
    x, y = at
    w, h = size
    W, H = viewport
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2
    x1, y1 = x1 + x1 % 2, y1 + y1 % 2
    if x1 <= x0 or y1 <= y0:
        return None
    kx, ky = natural[0] / w, natural[1] / h
    return Visible((x0, y0), (x1 - x0, y1 - y0), ((x0 - x) * kx, (y0 - y) * ky, (x1 - x) * kx, (y1 - y) * ky))
