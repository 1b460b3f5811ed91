"""``Database.execute_cached``: a repeated read answered from memory, never a stale one.

What a polled ``get_capture_session`` relies on (issue 24): the answer is kept only while SQLite's
``data_version`` says no connection committed since, whichever connection or process it was, and
each caller gets its own copy.
"""

from __future__ import annotations

import asyncio
import sqlite3

from reeldb.server.database import Database, row


def test_a_cached_read_follows_every_commit_and_hands_out_copies(tmp_path):
    db = Database(tmp_path / "t.db")
    db.write_sync(lambda conn: conn.execute("create table t (id integer primary key, v text)"))
    db.write_sync(lambda conn: conn.execute("insert into t values (1, 'a')"))
    reads = []

    def read(conn):
        reads.append(1)
        return row(conn, "select * from t where id = 1")

    async def main() -> None:
        first = await db.execute_cached("t1", read)
        again = await db.execute_cached("t1", read)
        assert first == again == {"id": 1, "v": "a"} and len(reads) == 1  # the second from memory
        again["v"] = "changed by its caller"
        assert (await db.execute_cached("t1", read))["v"] == "a" and len(reads) == 1  # a copy each time

        await db.execute_write_fn(lambda conn: conn.execute("update t set v = 'b' where id = 1"))  # this process
        assert (await db.execute_cached("t1", read))["v"] == "b" and len(reads) == 2
        other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)  # another process's connection
        other.execute("update t set v = 'c' where id = 1")
        other.close()
        assert (await db.execute_cached("t1", read))["v"] == "c" and len(reads) == 3
        assert (await db.execute_cached("t1", read))["v"] == "c" and len(reads) == 3

    try:
        asyncio.run(main())
    finally:
        db.close()



def test_a_kept_row_type_is_handed_out_with_its_own_json_columns():
    from reeldb.server.database import _copied
    from reeldb.server.rows import RTStream

    kept = RTStream("rts-1", "cap-1", "c-1", "mic:1", "mic:1", ["audio"], 48000, "active", True, 0.0)
    given = _copied((kept, [kept]))
    given[0].media_types.append("video")
    given[1][0].media_types.append("video")
    assert kept.media_types == ["audio"] and given[0] == given[1][0] != kept
