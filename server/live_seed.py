"""A recording searchable the moment it is exported: its live transcripts as its first index.

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
"""

from __future__ import annotations

from reeldb.capture.manifest import category
from reeldb.index.segmenter import timeline_words

from .exports import SeedWrite
from .live import LiveTranscripts
from .rows import RTStream
from .spoken import Spoken

#: Seconds after a channel's first audio its live transcript may start and still count as
#: having heard it: an application asks for it once the session is active, which is after the
#: first media arrived (a few seconds on a busy machine).
START_SLACK = 10.0


class LiveSeed:
    """``Exports.seed``: a session's live transcripts as an early index of its exported video."""

    def __init__(self, live: LiveTranscripts, spoken: Spoken) -> None:
        self.live = live
        self.spoken = spoken

    async def __call__(self, rtstreams: list[RTStream], origin: float, starts: dict[str, float],
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
