"""The seed's flow, run by ``test_offline_namespace.py`` inside a network namespace with no route out.

``python offline_flow.py WORKDIR``: starts ``reeldb serve`` (``HF_HUB_OFFLINE`` and
``TRANSFORMERS_OFFLINE`` unset), records speech and a test screen through the SDK's
``CaptureClient`` + ``reeldb-recorder``, waits for the export, indexes the spoken words, searches
them, and fetches the player page and everything it links to. Every Python process (this one, the
server, the recorder) runs with ``WORKDIR/hook`` on ``PYTHONPATH``, whose ``sitecustomize`` logs
each socket connect, sendto and name lookup to ``WORKDIR/net-<pid>.log``; the test reads them.
Writes ``WORKDIR/result.json`` when the flow succeeded.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SENTENCES = ["The quarterly budget review is scheduled for next Tuesday afternoon.",
             "Our database migration failed because a column was missing."]


def main(work: Path) -> None:
    import requests
    import videodb
    from support.recording import record, use_reeldb_recorder
    from support.server_process import free_port, wait_healthy, wait_until
    from support.speech import compose
    from support.media import screen_ts, write_wav

    use_reeldb_recorder()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = "sk-offline-" + "k" * 24
    env = {**os.environ, "REELDB_DATA_DIR": str(work / "data"), "REELDB_PORT": str(port), "REELDB_API_KEY": key,
           "REELDB_ICE_ADDRESSES": "127.0.0.1", "REELDB_SYNC_WAIT": "10"}
    with open(work / "server.log", "ab") as log:  # the child keeps its own descriptor
        server = subprocess.Popen([str(Path(sys.executable).with_name("reeldb")), "serve"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        wait_healthy(server, url, 60, work / "server.log")

        audio, _ = compose(SENTENCES, gap=1.0, lead=0.5)
        speech = write_wav(work / "speech.wav", audio)
        seconds = len(audio) / 48000 + 1.0
        screen = screen_ts(work / "screen.ts", seconds + 4, (0, 120, 0))

        conn = videodb.connect(api_key=key, base_url=url)
        coll = conn.get_collection()
        cap = conn.create_capture_session(end_user_id="offline-user")
        token = conn.generate_client_token(expires_in=600)
        asyncio.run(record(url, token, cap.id, {"mic:default": str(speech), "display:1": str(screen)},
                           {"mic:default": True, "display:1": True}, seconds))
        wait_until(lambda: conn.get_capture_session(cap.id).status in ("exported", "failed"), 120, "the export")
        cap = conn.get_capture_session(cap.id)
        assert cap.status == "exported", cap.status
        video = coll.get_video(cap.exported_video_id)
        video.index_spoken_words()
        shots = video.search("budget review").shots
        assert shots and "budget" in shots[0].text.lower(), [s.text for s in shots]

        page = requests.get(video.player_url, timeout=30)
        assert page.status_code == 200, page.status_code
        linked = sorted(set(re.findall(r'(?:src|href)="([^"#]+)"', page.text)))
        fetched = {}
        for link in linked:
            if link.startswith(("data:", "mailto:")):
                continue
            target = urljoin(video.player_url, link)
            fetched[target] = requests.get(target, timeout=30).status_code
        assert fetched and all(status == 200 for status in fetched.values()), fetched
        playlist = requests.get(video.stream_url, timeout=30)
        assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
        (work / "result.json").write_text(json.dumps({
            "video_id": video.id, "shot": shots[0].text, "player": video.player_url, "fetched": fetched}))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
