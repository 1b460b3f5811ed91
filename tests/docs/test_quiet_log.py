"""A quiet server: a 60 s recording with its export and index logs at most 15 lines at INFO, and
none of them is WebRTC chatter, a model's progress bar or "waiting for the recorder" after a stop."""

from __future__ import annotations

import asyncio
import re

import pytest
from support.recording import record, use_reeldb_recorder
from support.server_process import ServerProcess, search_when_indexed, wait_until
from support.media import write_wav
from support.speech import compose, require_espeak

pytestmark = pytest.mark.slow

SECONDS = 60.0
#: A log record as `reeldb serve` formats it: "<date> <time> <LEVEL> <logger>: <message>".
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")


def test_a_minute_of_recording_logs_at_most_15_info_lines(tmp_path):
    require_espeak()
    use_reeldb_recorder()
    import videodb

    audio, _ = compose(["The budget discussion starts now.", "Alice will send the report on Friday."], gap=20.0)
    speech = write_wav(tmp_path / "speech.wav", audio)
    server = ServerProcess(tmp_path / "data").start()
    try:
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        cap = conn.create_capture_session(end_user_id="user-1")
        token = conn.generate_client_token(expires_in=600)
        sources = {"mic:default": str(speech), "display:1": "pattern:bars:320x240@15",
                   "system_audio:default": "pattern:silence"}
        store = {"mic:default": True, "display:1": True, "system_audio:default": False}
        asyncio.run(record(server.url, token, cap.id, sources, store, SECONDS, primary="display:1"))

        def exported() -> bool:
            return conn.get_capture_session(cap.id).status == "exported"

        wait_until(exported, 120, "the recording's export")
        video = conn.get_collection().get_video(conn.get_capture_session(cap.id).exported_video_id)
        assert search_when_indexed(video, "budget discussion").get_shots()
    finally:
        server.stop()
    log = server.log()
    lines = [line for line in log.splitlines() if line and not line.startswith(("ReelDB ", "  "))]  # the banners
    assert [line for line in lines if not RECORD.match(line)] == []  # one format: nothing logs on its own
    records = [(m["level"], m["logger"], line) for line in lines if (m := RECORD.match(line))]
    info = [line for level, _, line in records if level == "INFO"]
    assert len(info) <= 15, "\n".join(info)
    assert not [line for _, logger, line in records if logger.startswith(("aioice", "aiortc", "uvicorn.access"))]
    assert "waiting" not in log and "come back" not in log, log
    assert not re.search(r"\d+%\|", log) and "it/s]" not in log, log  # tqdm's progress bars
    # The operator's lines are there: the session started and stopped, its export, its index.
    for what in (" started", " stopped", " exported", " indexed"):
        assert any(what in line for line in info), (what, info)
