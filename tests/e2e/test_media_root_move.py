"""The media root can move: a data dir's media copied elsewhere, ``REELDB_MEDIA_ROOT`` pointed
there and the server restarted still serves every stream and file through the official SDK; and
``reeldb backup`` / ``restore`` of a server with a media root of its own lands in a working server.

Why it matters: job workers on other machines mount the media root under their own path, so the
database must hold paths relative to it (server/storage.py)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import av
import pytest
import requests
from support.media import make_audio, make_image, write_video
from support.server_process import NO_INGEST, REELDB, ServerProcess
from support.speech import MEETING_A, compose, require_espeak

pytestmark = pytest.mark.slow


def _fetch_everything(conn, ids: dict[str, str]) -> None:
    """Every stream and file of the library, read through the SDK's URLs."""
    video = conn.get_collection().get_video(ids["video"])
    stream = video.generate_stream()
    with av.open(stream) as played:
        assert played.duration / 1e6 > 5
    with av.open(video.generate_stream(timeline=[(1.0, 3.0)])) as clip:  # an exact clip (re-cut edges)
        assert 1.8 < clip.duration / 1e6 < 2.3
    from videodb.editor import Timeline

    download = Timeline(conn).download_stream(stream)  # the source file, through /files/
    assert requests.get(download["download_url"], timeout=30).content[:12].find(b"ftyp") >= 0
    assert requests.get(video.thumbnail_url, timeout=30).content[:2] == b"\xff\xd8"
    assert [s.video_id for s in video.search("budget").shots][:1] == [video.id]
    words = video.get_transcript_text()
    assert "budget" in words.lower()
    audio = conn.get_collection().get_audio(ids["audio"])
    assert len(requests.get(audio.generate_url(), timeout=30).content) > 1000
    image = conn.get_collection().get_image(ids["image"])
    assert requests.get(image.generate_url(), timeout=30).status_code == 200
    thumbs = video.get_thumbnails()
    assert any(t.id == ids["thumbnail"] for t in thumbs)
    assert requests.get(next(t for t in thumbs if t.id == ids["thumbnail"]).url, timeout=30).status_code == 200


def test_moved_media_root_serves_everything(tmp_path):
    require_espeak()
    import videodb

    audio, _ = compose(MEETING_A, gap=1.0, lead=0.5)
    talk = write_video(tmp_path / "talk.mp4", audio)
    server = ServerProcess(tmp_path / "data", env={**NO_INGEST, "REELDB_SYNC_WAIT": "10"}).start()
    try:
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        coll = conn.get_collection()
        video = coll.upload(file_path=str(talk))
        video.index_spoken_words()
        ids = {"video": video.id, "audio": coll.upload(file_path=str(make_audio(tmp_path / "a.wav", 2.0))).id,
               "image": coll.upload(file_path=str(make_image(tmp_path / "i.png"))).id,
               "thumbnail": video.generate_thumbnail(time=2.0).id}
        _fetch_everything(conn, ids)
    finally:
        server.stop()

    # The database holds paths relative to the media root, never the data dir's place.
    db = sqlite3.connect(tmp_path / "data" / "reeldb.db")
    stored = [p for row in db.execute("select path, hls_path from media") for p in row if p]
    db.close()
    assert stored and all(not os.path.isabs(p) and p.startswith("media/") for p in stored), stored

    # Move the media elsewhere (the old copy gone: nothing may still read it) and restart there.
    moved = tmp_path / "elsewhere" / "root"
    moved.mkdir(parents=True)
    for name in ("media", "sessions", "uploads"):
        shutil.move(str(tmp_path / "data" / name), str(moved / name))
    server.env["REELDB_MEDIA_ROOT"] = str(moved)
    server.start()
    try:
        _fetch_everything(videodb.connect(api_key=server.api_key, base_url=server.url), ids)
        assert not (tmp_path / "data" / "media").exists() or not any((tmp_path / "data" / "media").iterdir())

        # Backup of a server whose media root is elsewhere, restored into a plain data dir.
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "REELDB_MEDIA_ROOT": str(moved)}
        done = subprocess.run([REELDB, "backup", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "data")],
                              capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        server.stop()
    env = {k: v for k, v in os.environ.items() if k != "REELDB_MEDIA_ROOT"}
    done = subprocess.run([REELDB, "restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored")],
                          capture_output=True, text=True, timeout=300, env={**env, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    restored = ServerProcess(tmp_path / "restored", env=NO_INGEST).start()
    try:
        _fetch_everything(videodb.connect(api_key=restored.api_key, base_url=restored.url), ids)
    finally:
        restored.stop()
