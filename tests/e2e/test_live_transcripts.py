"""Live transcripts of stored and ephemeral channels while a capture streams, through the SDK."""

from __future__ import annotations

import asyncio
import time

import pytest
import videodb
from support.recording import record, two_speakers, use_reeldb_recorder, when_active
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow


def _said(messages: list[tuple[float, dict]], category: str, word: str) -> bool:
    """Whether a final transcript message of the ``category`` channel holds ``word``."""
    return any(m.get("channel") == "transcript" and m["data"]["is_final"]
               and m["rtstream_name"].startswith(category + ":") and word in m["data"]["text"].lower()
               for _, m in messages)


def test_live_transcript_of_an_ephemeral_channel_never_reaches_the_export(server_factory, tmp_path):
    sources, seconds = two_speakers(tmp_path)
    use_reeldb_recorder()
    server = server_factory(sync_wait="10", live_retention="20")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    token = conn.generate_client_token(expires_in=600)
    messages: list[tuple[float, dict]] = []
    streams = {}

    async def during(client, channels):
        started = time.time()
        live, ws = await when_active(conn, cap.id)
        for category in ("mic", "system_audio"):
            rts = live.get_rtstream(category)[0]
            streams[category] = rts
            status = await asyncio.to_thread(rts.start_transcript, ws.connection_id)
            assert status["status"] == "running"

        async def listen():
            async for message in ws.receive():
                messages.append((time.time(), message))
        listener = asyncio.create_task(listen())
        await asyncio.sleep(max(0.0, seconds - (time.time() - started)))
        # A machine whose cores are busy decodes late: keep streaming (and listening) until both
        # channels' finals have come, or a minute has gone by.
        deadline = time.time() + 60
        while time.time() < deadline and not (_said(messages, "system_audio", "tomato")
                                               and _said(messages, "mic", "budget")):
            await asyncio.sleep(0.2)
        listener.cancel()
        await ws.close()

    asyncio.run(record(server.url, token, cap.id, sources,
                       {"mic:default": True, "system_audio:default": False, "display:1": True}, 0, during=during))

    finals = [(t, m) for t, m in messages if m.get("channel") == "transcript" and m["data"]["is_final"]]
    system = [(t, m) for t, m in finals if m["rtstream_name"] == "system_audio:default"]
    assert system and "tomato" in " ".join(m["data"]["text"].lower() for _, m in system)
    assert any("budget" in m["data"]["text"].lower() for _, m in finals if m["rtstream_name"] == "mic:default")
    for arrived, message in finals:
        assert message["rtstream_id"] == streams[message["rtstream_name"].split(":")[0]].id
        # how soon is a speed figure (tests/bench/index.py); here: after the words, never before
        assert arrived >= message["data"]["end"] / 1000 - 0.5
    # What was said stays readable and searchable on the rtstream after the fact (from memory).
    records = streams["system_audio"].get_transcript()["transcription_records"]
    assert "tomato" in " ".join(r["text"].lower() for r in records)
    hits = streams["system_audio"].search("looking after vegetables under glass").shots
    assert hits and "tomato" in hits[0].text.lower()

    # The ephemeral channel's words are nowhere in the export or on disk.
    deadline = time.time() + 60
    while (done := conn.get_capture_session(cap.id)).status != "exported" and time.time() < deadline:
        time.sleep(0.2)
    video = conn.get_collection().get_video(done.exported_video_id)
    video.index_spoken_words()
    text = video.get_transcript_text().lower()
    assert "budget" in text and "tomato" not in text
    with pytest.raises(InvalidRequestError, match="No results found"):  # VideoDB's legacy words for none
        video.search("tomato", search_type="keyword")
    for path in server.data_dir.rglob("*"):
        if path.is_file() and path.suffix in (".db", ".json", ".log", "-wal"):
            assert b"tomato" not in path.read_bytes().lower(), path
    with pytest.raises(InvalidRequestError, match="not streaming"):
        streams["mic"].start_transcript()
    # Memory is not kept for ever: REELDB_LIVE_RETENTION after the session ended, it is forgotten.
    deadline = time.time() + 90
    while streams["system_audio"].get_transcript()["transcription_records"] and time.time() < deadline:
        time.sleep(1)
    assert streams["system_audio"].get_transcript()["transcription_records"] == []
    assert "forgot the live transcripts" in server.log()
