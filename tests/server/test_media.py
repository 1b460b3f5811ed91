"""The media library: uploads (file, upload_url, file://, http), metadata, edits, deletes, jobs."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from pathlib import Path

import pytest
import requests
import videodb
from support.media import make_audio, make_image, make_video
from videodb.exceptions import InvalidRequestError


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "video": make_video(d / "clip.mp4", seconds=2.0),
        "audio": make_audio(d / "tone.wav", seconds=1.5),
        "image": make_image(d / "red.png"),
        "text": _write(d / "notes.mp4", b"this is not a video at all\n" * 100),
        "empty": _write(d / "empty.wav", b""),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def media_files(server) -> list[Path]:
    """One source file per asset (HLS renditions live beside it)."""
    return [p for p in (server.data_dir / "media").rglob("source.*") if p.is_file()]


def test_upload_file_reads_real_metadata(conn, files):
    video = conn.upload(file_path=str(files["video"]))
    assert isinstance(video, videodb.video.Video) and video.id.startswith("m-")
    assert video.name == "clip" and abs(video.length - 2.0) < 0.15
    coll = conn.get_collection()
    got = coll.get_video(video.id)
    assert (got.id, got.name) == (video.id, "clip")
    raw = conn.get(f"video/{video.id}")
    assert (raw["width"], raw["height"], raw["video_codec"], raw["audio_codec"]) == (320, 240, "h264", "aac")
    assert raw["size"] == files["video"].stat().st_size
    assert video.id in [v.id for v in coll.get_videos()]

    audio = coll.upload(file_path=str(files["audio"]), name="A tone")
    assert audio.id.startswith("a-") and audio.name == "A tone" and abs(audio.length - 1.5) < 0.1
    assert coll.get_audio(audio.id).length == audio.length
    signed = requests.get(audio.generate_url())
    assert signed.status_code == 200 and signed.content == files["audio"].read_bytes()

    image = coll.upload(file_path=str(files["image"]))
    assert image.id.startswith("img-")
    fetched = coll.get_image(image.id)
    assert requests.get(fetched.url).content == files["image"].read_bytes()
    assert requests.get(image.generate_url()).status_code == 200
    assert [i.id for i in coll.get_images()] == [image.id]


def test_update_and_delete(server, conn, files):
    coll = conn.get_collection()
    video = coll.upload(file_path=str(files["video"]), name="first")
    video.update(name="renamed")
    assert coll.get_video(video.id).name == "renamed"
    before = len(media_files(server))
    coll.delete_video(video.id)
    assert len(media_files(server)) == before - 1
    with pytest.raises(InvalidRequestError, match=f"Video not found: {video.id}"):
        coll.get_video(video.id)
    audio = coll.upload(file_path=str(files["audio"]))
    with pytest.raises(InvalidRequestError, match="Video not found"):
        coll.get_video(audio.id)  # an audio id is not a video
    other = conn.create_collection(name="o", description="")
    with pytest.raises(InvalidRequestError, match="Audio not found"):
        other.get_audio(audio.id)  # not in that collection
    coll.delete_audio(audio.id)
    with pytest.raises(InvalidRequestError, match="Audio not found"):
        coll.delete_audio(audio.id)


def test_upload_from_file_url_and_http(in_process_factory, files, tmp_path):
    server = in_process_factory(import_dirs=str(files["audio"].parent), import_allow_private="true")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    by_path = conn.upload(url=files["audio"].as_uri())
    assert by_path.id.startswith("a-") and abs(by_path.length - 1.5) < 0.1
    assert files["audio"].exists(), "file:// uploads copy, they never move the user's file"

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(files["video"].parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/clip.mp4"
        video = conn.upload(url=url, name="from http")
        assert video.id.startswith("m-") and video.name == "from http" and abs(video.length - 2.0) < 0.15
        with pytest.raises(InvalidRequestError, match="HTTP 404"):
            conn.upload(url=url.replace("clip", "missing"))
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_bad_media_is_refused_whole(server, conn, files):
    before = len(media_files(server))
    for bad in ("text", "empty"):
        with pytest.raises(InvalidRequestError, match="Unsupported or unreadable media"):
            conn.upload(file_path=str(files[bad]))
    with pytest.raises(InvalidRequestError, match="file:// imports are off"):
        conn.upload(url="file:///nonexistent/clip.mp4")
    with pytest.raises(InvalidRequestError, match=r"url must be an http\(s\):// or file:// URL"):
        conn.post("collection/default/upload", data={"url": "ftp://example/x.mp4"})
    with pytest.raises(InvalidRequestError, match="media_type must be one of"):
        conn.post("collection/default/upload", data={"url": files["video"].as_uri(), "media_type": "movie"})
    with pytest.raises(InvalidRequestError, match="media_type is 'image' but the file is video"):
        conn.upload(file_path=str(files["video"]), media_type="image")
    assert len(media_files(server)) == before
    assert "notes" not in [v.name for v in conn.get_collection().get_videos()]
    assert list((server.data_dir / "uploads").iterdir()) == [], "refused uploads leave no bytes behind"


def test_upload_url_refuses_forged_and_malformed_posts(server, conn):
    slot = conn.get("collection/default/upload_url", params={"name": "x"})["upload_url"]
    forged = slot.split("?sig=")[0] + "?sig=abc.1.def"
    assert requests.post(forged, files={"file": ("x", b"data")}).status_code == 404
    not_multipart = requests.post(slot, data=b"raw bytes")
    assert not_multipart.status_code == 400 and "multipart/form-data" in not_multipart.json()["message"]
    wrong_field = requests.post(slot, files={"upload": ("x", b"data")})
    assert wrong_field.status_code == 400 and "no field named 'file'" in wrong_field.json()["message"]
    with pytest.raises(InvalidRequestError, match="Nothing was uploaded to this upload_url"):
        conn.post("collection/default/upload", data={"url": slot})


def test_slow_upload_answers_processing_and_the_sdk_polls(in_process_factory, files):
    server = in_process_factory(sync_wait="0", import_dirs=str(files["video"].parent))
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    raw = requests.post(server.url + "/collection/default/upload", json={"url": files["video"].as_uri()},
                        headers={"x-access-token": server.api_key}).json()
    assert raw["status"] == "processing" and raw["data"]["output_url"].startswith(server.url + "/async-response/job-")
    job_id = raw["data"]["id"]
    deadline = time.time() + 20
    while (done := conn.get_async_response(job_id)).get("percentage") is not None and time.time() < deadline:
        time.sleep(0.1)
    assert done["id"].startswith("m-")
    video = conn.upload(file_path=str(files["video"]))  # the SDK's own poll loop (5 s interval)
    assert video.id.startswith("m-") and abs(video.length - 2.0) < 0.15
    with pytest.raises(InvalidRequestError, match="Unsupported or unreadable media"):
        conn.upload(file_path=str(files["text"]))
    with pytest.raises(InvalidRequestError, match="Response not found"):
        conn.get_async_response("job-nope")


class Trickle(http.server.BaseHTTPRequestHandler):
    """Serves a file slowly, so a server restart lands in the middle of the download."""

    payload = b""
    delay = 0.0

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("content-length", str(len(self.payload)))
        self.end_headers()
        try:
            for i in range(0, len(self.payload), 4096):
                self.wfile.write(self.payload[i:i + 4096])
                time.sleep(self.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def upload_killed_midway(server, payload: bytes, seconds: float):
    """Start a URL upload that takes ``seconds``, SIGKILL the server during it, restart; yield the job id."""
    Trickle.payload = payload
    Trickle.delay = seconds / (len(payload) / 4096)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/slow.mp4"
        job_id = requests.post(server.url + "/collection/default/upload", json={"url": url},
                               headers={"x-access-token": server.api_key}).json()["data"]["id"]
        time.sleep(1.0)
        server.kill()
        server.start()
        yield job_id
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_job_interrupted_by_a_restart_is_resumed(server_factory, files):
    server = server_factory(sync_wait="0", job_lease="2", import_allow_private="true", ingest_workers="0")
    with upload_killed_midway(server, files["video"].read_bytes(), seconds=3.0) as job_id:
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        deadline = time.time() + 30
        while (result := conn.get_async_response(job_id)).get("id") is None and time.time() < deadline:
            time.sleep(0.2)
        assert result["id"].startswith("m-") and abs(result["length"] - 2.0) < 0.15
        assert "requeued after a restart" in server.log()
        assert [v.id for v in conn.get_collection().get_videos()] == [result["id"]]


def test_job_interrupted_too_often_fails_cleanly(server_factory, files):
    server = server_factory(sync_wait="0", job_lease="2", job_max_attempts="1", import_allow_private="true", ingest_workers="0")
    with upload_killed_midway(server, files["video"].read_bytes(), seconds=5.0) as job_id:
        polled = requests.get(f"{server.url}/async-response/{job_id}",
                              headers={"x-access-token": server.api_key}).json()
        assert polled == {"success": False, "status": "failed",
                          "message": "The server stopped while this job was running, too many times"}
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        assert conn.get_collection().get_videos() == []


def test_every_video_streams_over_hls(conn, files):
    import av

    video = conn.upload(file_path=str(files["video"]))
    assert video.stream_url.endswith("/index.m3u8") and "/watch?v=" in video.player_url
    assert video.generate_stream() == video.stream_url
    playlist = requests.get(video.stream_url, headers={"origin": "http://player.example"})
    assert playlist.status_code == 200
    assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert playlist.headers["access-control-allow-origin"] == "*"  # hls.js on any page may fetch it
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist.text and "#EXT-X-ENDLIST" in playlist.text
    with av.open(video.stream_url) as container:  # PyAV reads the playlist and segments over HTTP
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 50  # 2 s at 25 fps, copied, every frame there
    segment = video.stream_url.replace("index.m3u8", "seg_00000.ts")
    whole = requests.get(segment)
    assert whole.headers["content-type"] == "video/mp2t" and whole.headers["accept-ranges"] == "bytes"
    part = requests.get(segment, headers={"range": "bytes=188-375"})
    assert part.status_code == 206 and part.content == whole.content[188:376]
    assert part.headers["content-range"] == f"bytes 188-375/{len(whole.content)}"
    tail = requests.get(segment, headers={"range": "bytes=-188"})
    assert tail.content == whole.content[-188:]
    assert requests.get(segment, headers={"range": f"bytes={len(whole.content)}-"}).status_code == 416
    page = requests.get(video.player_url)
    assert page.status_code == 200 and f'data-src="{video.stream_url}"' in page.text
    assert requests.get(video.player_url.replace("/watch?", "/embed?")).status_code == 200
    assert requests.get(video.stream_url.replace("index.m3u8", "../../etc/passwd")).status_code == 404
    forged = video.stream_url.split("/stream/")[0] + "/stream/m-x.1.y/index.m3u8"
    assert requests.get(forged).status_code == 404
    assert b"Hls" in requests.get(video.player_url.split("/watch")[0] + "/player/static/hls.min.js").content[:100000]
