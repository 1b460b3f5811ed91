"""Migration m013 (per-channel transcripts): a database indexed before it keeps working."""

from __future__ import annotations

import json

import numpy as np
import sqlite_utils

from reeldb.index import store
from reeldb.index.search import SearchIndex
from reeldb.server.schema import migrate, migrations


def test_rows_from_before_read_as_one_track_with_whole_words(tmp_path):
    db = sqlite_utils.Database(tmp_path / "reeldb.db")
    migrations.apply(db, stop_before="m013_channel_transcripts")
    db.execute("INSERT INTO transcripts (asset_id, language, duration, model, text, words, created_at) "
               "VALUES ('m-1', 'en', 3, 'bundled:tiny.en', 'We raised 40 ,000 .', ?, 0)",
               [json.dumps([[0, 0.3, "We"], [0.3, 0.6, "raised"], [0.6, 0.9, "40"], [0.9, 1.2, ",000."]])])
    vector = np.ones(4, np.float32) / 2
    db.execute('INSERT INTO spoken_segments (asset_id, seq, start, "end", text, vector) VALUES (?, 0, 0, 1.2, ?, ?)',
               ["m-1", "We raised 40 ,000.", vector.tobytes()])
    db.execute("INSERT INTO spoken_indexes (asset_id, embed_model, dim, segment_count, generation, created_at) "
               "VALUES ('m-1', 'x', 4, 1, 1, 0)")
    migrate(db)
    assert store.get_transcript(db, "m-1").text == "We raised 40,000."
    hit = SearchIndex().semantic(db, "", query_vector=vector)[0]
    assert hit["text"] == "We raised 40 ,000." and "channel" not in hit  # old index rows: no label, as before
    assert store.keyword_rows(db, '"raised"')[0].get("channel") is None
