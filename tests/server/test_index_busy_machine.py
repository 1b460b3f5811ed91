"""Indexing on a machine whose cores are all busy is slow, not hung (issue 17).

Busy-looping processes keep the cores busy (``support.load``) while a real server indexes two
minutes of speech with a lease of 3 s: one whisper batch then takes longer than a lease, and no
progress is reported during it.
Liveness by time keeps the job: one attempt, never "presumed hung", the transcript whole.
"""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
import videodb
from support.load import busy_cpu
from support.speech import MEETING_A, MEETING_B, compose, require_espeak
from support.media import write_video

pytestmark = pytest.mark.slow


def test_an_index_on_busy_cores_runs_in_one_attempt(server_factory, tmp_path):
    require_espeak()
    audio, placed = compose((MEETING_A + MEETING_B) * 3, gap=1.0)
    path = write_video(tmp_path / "talk.mp4", audio)
    server = server_factory(job_lease="3", sync_wait="10", ingest_workers="0")  # the SDK polls after that (its reads time out at 30 s)
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = conn.get_collection().upload(file_path=str(path))
    with busy_cpu(at_least=1):  # a whisper batch must outlast the lease, whatever the other workers do
        video.index_spoken_words()
    with contextlib.closing(sqlite3.connect(server.data_dir / "reeldb.db")) as db:
        kind, status, attempts = db.execute("select kind, status, attempts from jobs where kind = 'index'").fetchone()
    assert (status, attempts) == ("done", 1)
    assert "presumed hung" not in server.log()
    words = " ".join(w["text"] for w in video.get_transcript())
    assert "budget" in words.lower() and "greenhouse" in words.lower()
