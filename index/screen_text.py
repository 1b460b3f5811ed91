"""A video's screen text, scene by scene: :mod:`.scenes` cuts and keeps frames, :mod:`.ocr` reads
them, and each scene's description is the clean union of its frames' lines. Files in, data out (the
server's ``scene_index`` job calls :func:`read_scenes` on a worker, then :func:`embed_scenes`).

Frames are read as their scene closes, on a second thread (one engine for the whole video, no frame
kept after it is read), so memory stays flat over an hour of recording.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

from . import embed, ocr, scenes

#: A screen-text index reads up to this many frames of one scene (its first settled frame, then
#: each time enough new text has appeared: a scroll, a terminal filling up).
READS_PER_SCENE = 6
#: Kept frames that may wait to be read while decoding goes on (each up to 2560 × 1440 RGB).
READ_AHEAD = 8


@dataclass
class SceneText:
    start: float
    end: float
    description: str
    frame_times: list[float]


def read_scenes(path: str | os.PathLike[str], config: scenes.ShotBased | scenes.TimeBased, *,
                langs: Sequence[str] = ("eng",), data: Iterable[str] = (),
                progress: Optional[Callable[[float], None]] = None) -> list[SceneText]:
    """Cut, keep and read. Raises :class:`scenes.NoVideo`, :class:`ocr.MissingLanguage`.

    Frames are read on a thread of their own while decoding goes on (libtesseract and FFmpeg both
    run without the GIL: two cores, both busy); at most :data:`READ_AHEAD` kept frames wait for it,
    so memory stays bounded when reading is slower than decoding."""
    pages: dict[int, list[Future[list[ocr.Line]]]] = {}
    waiting: deque[Future[list[ocr.Line]]] = deque()
    with ocr.Reader(langs, data) as reader, ThreadPoolExecutor(1, thread_name_prefix="ocr") as pool:
        def keep(index: int, t: float, image: Image.Image) -> None:
            while len(waiting) >= READ_AHEAD:
                waiting.popleft().result()
            read = pool.submit(reader.read, image)
            waiting.append(read)
            pages.setdefault(index, []).append(read)

        cap = max(READS_PER_SCENE, config.frame_count)
        spans = scenes.extract(str(path), config, keep, frames_per_scene=cap, progress=progress)
        read = {i: [f.result() for f in futures] for i, futures in pages.items()}
    return [SceneText(s.start, s.end, ocr.describe(ocr.merge(*read.get(i, []))), list(s.frame_times))
            for i, s in enumerate(spans)]


def embed_scenes(texts: Sequence[str], embed_model: Optional[str] = None) -> np.ndarray:
    """One unit vector per description; an empty description gets a zero row (it never matches)."""
    vecs = np.zeros((len(texts), embed.dimension(embed_model)), np.float32)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    if filled:
        vecs[filled] = embed.embed_texts([texts[i] for i in filled], model_spec=embed_model)
    return vecs
