"""A recording searchable the moment it is exported: its live transcripts and live screen text as
its first indexes.

When every stored audio channel of a session was transcribed live (an application's
``rts.index_spoken_words()`` or ``start_transcript()``) from its first audio to the session's end,
what was heard is already words with times. At export those words, moved onto the exported video's
timeline, become its spoken-word index in the same transaction that makes the session ``exported``
(``Exports._seed``): ``video.search()`` answers as soon as the status says so, instead of after
the index job has transcribed the recording again (22 s for a 60-s recording on a busy 2-core
machine; minutes for an hour). The index job still runs (``REELDB_AUTO_INDEX``): it stores the
transcript the player's captions need and replaces this index with one made from the whole
recording (whisper on the whole file sees more context than on live chunks).

A channel heard only in part (its live transcript started over START_SLACK seconds after the
channel's first audio, was stopped before the end, or its oldest records fell off) gives no early
index at all: a search then waits for the index job, as it did before. (Words said in the first
START_SLACK seconds, before an application could ask for a live transcript, may be missing from
the early index until the index job replaces it.)

The display the exported video shows, when its live screen reader (a live screen-text index) ran
from within START_SLACK seconds of its first frame to the session's end, gives the video's first
screen-text index the same way (``Scenes.seed``): each scene read live, its text the union of its
reads, from its start to the next scene's. The automatic screen-text job replaces it when it has
read the recording whole.
"""

from __future__ import annotations

from typing import Any

from reeldb.capture.manifest import category
from reeldb.index.segmenter import timeline_words
from reeldb.index.segments import Segment

from .exports import SeedWrite
from .live import LiveTranscripts
from .live_screens import LiveScreens
from .rows import RTStream
from .scenes import Scenes
from .spoken import Spoken

#: Seconds after a channel's first audio its live transcript may start and still count as
#: having heard it: an application asks for it once the session is active, which is after the
#: first media arrived (a few seconds on a busy machine).
START_SLACK = 10.0


class LiveSeed:
    """``Exports.seed``: a session's live transcripts and screen text as early indexes of its
    exported video."""

    def __init__(self, live: LiveTranscripts, spoken: Spoken, screens: LiveScreens, scenes: Scenes) -> None:
        self.live = live
        self.spoken = spoken
        self.screens = screens
        self.scenes = scenes

    async def __call__(self, rtstreams: list[RTStream], origin: float, starts: dict[str, float],
                       length: float, display: str | None) -> SeedWrite | None:
        writes = [w for w in (await self._spoken(rtstreams, origin, starts, length),
                              await self._screen(rtstreams, origin, starts, length, display)) if w is not None]
        if not writes:
            return None

        def write(conn: Any, video_id: str) -> None:
            for each in writes:
                each(conn, video_id)

        return write

    async def _spoken(self, rtstreams: list[RTStream], origin: float, starts: dict[str, float],
                      length: float) -> SeedWrite | None:
        stored = [r for r in rtstreams if r.store and "audio" in r.media_types]
        if not stored:
            return None
        words = []
        for rts in stored:
            heard = self.live.heard(rts.id)
            first = starts.get(rts.name)
            if heard is None or first is None or heard.started_at > float(first) + START_SLACK:
                return None  # not all of it was heard: the index job alone makes the index
            words += timeline_words(heard.finals, origin, length, category(rts.name))
        return await self.spoken.seed(sorted(words, key=lambda w: (w.start, w.end)), length)

    async def _screen(self, rtstreams: list[RTStream], origin: float, starts: dict[str, float], length: float,
                      display: str | None) -> SeedWrite | None:
        rts = next((r for r in rtstreams if r.name == display and r.store and "video" in r.media_types), None)
        seen = self.screens.seen(rts.id) if rts is not None else None
        first = starts.get(display or "")
        if seen is None or first is None or seen.started_at > float(first) + START_SLACK:
            return None
        return await self.scenes.seed(timeline_scenes(seen.finals, origin, length))


def timeline_scenes(records: list[dict[str, Any]], origin: float, length: float) -> list[Segment]:
    """Live screen records (unix seconds, ``scene`` numbers) as scenes of the video: one per scene,
    its lines in the order first read, from its start to the next scene's (the last to ``length``)."""
    scenes: dict[int, tuple[float, list[str]]] = {}
    for r in sorted(records, key=lambda r: r["start"]):
        start, lines = scenes.setdefault(int(r.get("scene", 0)), (r["start"] - origin, []))
        lines += [line for line in r["text"].splitlines() if line not in lines]
    ordered = sorted((max(0.0, min(length, start)), lines) for start, lines in scenes.values())
    ends = [start for start, _ in ordered[1:]] + [length]
    return [Segment(start, end, "\n".join(lines)) for (start, lines), end in zip(ordered, ends) if end > start]
