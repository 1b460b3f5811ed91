"""Screen recordings made in the test: slides, a terminal being typed into, a web page scrolled, drawn
with Pillow (DejaVu Sans / Mono) and encoded H.264 by PyAV at a capture-like bitrate.

Each screen is a function of time to a picture; :func:`record` encodes a list of (seconds, screen)
one after another and returns the times at which a new screen starts (the true scene cuts) and the
words each screen shows (what OCR must read).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
from PIL import Image, ImageDraw, ImageFont

SANS = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"

WORDS = ("invoice ledger quarterly budget deploy cluster kernel rollback migration tenant payload "
         "gateway latency throughput archive firewall dashboard onboarding roadmap milestone "
         "compliance forecast revenue pipeline escalation incident postmortem runbook sandbox "
         "telemetry").split()


def font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(MONO if mono else SANS, size)


def sentence(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize()


@dataclass
class Screen:
    """A screen shown for a while: ``draw(t)`` is its picture ``t`` seconds after it appeared."""

    draw: Callable[[float], Image.Image]
    #: The words it shows (all of them, over its time on screen).
    words: list[str]


def slide(size: tuple[int, int], title: str, bullets: Sequence[str], px: int = 28) -> Screen:
    w, h = size
    image = Image.new("RGB", size, (250, 250, 248))
    d = ImageDraw.Draw(image)
    d.rectangle((0, 0, w, int(h * 0.12)), fill=(30, 60, 120))
    d.text((int(w * 0.05), int(h * 0.03)), title, font=font(int(px * 1.4)), fill="white")
    y = int(h * 0.2)
    for b in bullets:
        d.text((int(w * 0.07), y), "• " + b, font=font(px), fill=(20, 20, 20))
        y += int(px * 1.8)
    words = [*title.split(), *(x for b in bullets for x in b.split())]
    return Screen(lambda t: image, words)


def terminal(size: tuple[int, int], lines: Sequence[str], px: int = 16, per_line: float = 0.5) -> Screen:
    """A dark terminal whose lines appear one by one (typing) with a blinking cursor."""
    w, h = size
    f = font(px, mono=True)
    step = int(px * 1.35)

    def draw(t: float) -> Image.Image:
        image = Image.new("RGB", size, (18, 18, 18))
        d = ImageDraw.Draw(image)
        shown = min(len(lines), 1 + int(t / per_line))
        visible = lines[:shown][-((h - 20) // step):]
        y = 10
        for line in visible:
            d.text((10, y), line, font=f, fill=(220, 220, 220))
            y += step
        if int(t * 2) % 2 == 0:  # the cursor blinks twice a second
            d.rectangle((10, y, 10 + px // 2, y + px), fill=(220, 220, 220))
        return image

    return Screen(draw, [x for line in lines for x in line.split()])


def page(size: tuple[int, int], title: str, paragraphs: Sequence[str], px: int = 18,
         scroll_px_per_s: float = 120.0) -> Screen:
    """A web page (a fixed header, a long body) scrolled smoothly down."""
    w, h = size
    f = font(px)
    body_h = max(h * 2, 60 + len(paragraphs) * int(px * 2.2))
    body = Image.new("RGB", (w, body_h), "white")
    d = ImageDraw.Draw(body)
    y = 20
    for p in paragraphs:
        d.text((40, y), p, font=f, fill=(30, 30, 30))
        y += int(px * 2.2)
    header = Image.new("RGB", (w, int(h * 0.1)), (235, 235, 240))
    ImageDraw.Draw(header).text((20, int(h * 0.025)), title, font=font(int(px * 1.2)), fill=(10, 10, 10))

    def draw(t: float) -> Image.Image:
        top = min(body_h - h, int(t * scroll_px_per_s))
        image = body.crop((0, top, w, top + h))
        image.paste(header, (0, 0))
        return image

    return Screen(draw, [*title.split(), *(x for p in paragraphs for x in p.split())])


def record(path: Path, shows: Sequence[tuple[float, Screen]], size: tuple[int, int], fps: int = 10,
           bit_rate: int = 400_000, gop_seconds: float = 5.0, relayable: bool = False) -> list[float]:
    """Encode the screens one after another (H.264, ``bit_rate`` b/s, no B-frames); the starts of
    every screen after the first (the true cuts), in seconds. ``relayable``: constrained baseline
    (what WebRTC negotiates), so the recorder relays a ``.ts`` of it as a display as is."""
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.bit_rate = bit_rate
    stream.codec_context.time_base = Fraction(1, fps)
    stream.codec_context.options = {"preset": "veryfast", "bf": "0", "g": str(int(gop_seconds * fps)),
                                    **({"profile": "baseline", "tune": "zerolatency"} if relayable else {})}
    cuts, n = [], 0
    for seconds, screen in shows:
        if n:
            cuts.append(n / fps)
        for i in range(int(round(seconds * fps))):
            frame = av.VideoFrame.from_image(screen.draw(i / fps))
            frame.pts = n
            n += 1
            out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    return cuts
