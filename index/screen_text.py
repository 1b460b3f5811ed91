"""A video's screen text, scene by scene: :mod:`.scenes` cuts and keeps frames, :mod:`.ocr` reads
them, and each scene's description is the clean union of its frames' lines. Files in, data out (the
server's ``scene_index`` job calls :func:`read_scenes` on a worker, then :func:`embed_scenes`).

Frames are read as their scene closes (one engine for the whole video, no frame kept after it is
read), so memory stays flat over an hour of recording.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

from . import embed, ocr, scenes

#: A screen-text index reads up to this many frames of one scene (its first settled frame, then
#: each time enough new text has appeared: a scroll, a terminal filling up).
READS_PER_SCENE = 6


@dataclass
class SceneText:
    start: float
    end: float
    description: str
    frame_times: list[float]


def read_scenes(path: str | os.PathLike[str], config: scenes.ShotBased | scenes.TimeBased, *,
                langs: Sequence[str] = ("eng",), data: Iterable[str] = (),
                progress: Optional[Callable[[float], None]] = None) -> list[SceneText]:
    """Cut, keep and read. Raises :class:`scenes.NoVideo`, :class:`ocr.MissingLanguage`."""
    pages: dict[int, list[list[ocr.Line]]] = {}
    with ocr.Reader(langs, data) as reader:
        def keep(index: int, t: float, image: Image.Image) -> None:
            pages.setdefault(index, []).append(reader.read(image))

        cap = max(READS_PER_SCENE, config.frame_count)
        spans = scenes.extract(str(path), config, keep, frames_per_scene=cap, progress=progress)
    return [SceneText(s.start, s.end, ocr.describe(ocr.merge(*pages.get(i, []))), list(s.frame_times))
            for i, s in enumerate(spans)]


def embed_scenes(texts: Sequence[str], embed_model: Optional[str] = None) -> np.ndarray:
    """One unit vector per description; an empty description gets a zero row (it never matches)."""
    vecs = np.zeros((len(texts), embed.dimension(embed_model)), np.float32)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    if filled:
        vecs[filled] = embed.embed_texts([texts[i] for i in filled], model_spec=embed_model)
    return vecs
