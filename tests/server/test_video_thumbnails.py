"""Thumbnails through the official SDK: a poster on every video, frames at a time as image
assets, a seek storyboard beside the stream (issue 10, "Thumbnails")."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import requests
from videodb.exceptions import InvalidRequestError


def two_colour_video(path, fps: int = 10) -> str:
    """1 s red then 1 s blue, a keyframe every second: which frame a thumbnail shows is visible."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps)})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(2 * fps):
            rgb = np.zeros((120, 160, 3), np.uint8)
            rgb[..., 0 if i < fps else 2] = 220
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def mean_rgb(url: str, tmp_path) -> np.ndarray:
    response = requests.get(url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/jpeg")
    jpg = tmp_path / "t.jpg"
    jpg.write_bytes(response.content)
    with av.open(str(jpg)) as c:
        frame = next(c.decode(video=0))
    return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)


def test_thumbnails_poster_and_storyboard(conn, tmp_path):
    video = conn.get_collection().upload(file_path=two_colour_video(tmp_path / "rb.mp4"))
    assert video.thumbnail_url and video.thumbnail_url.endswith("/poster.jpg")
    assert video.generate_thumbnail() == video.thumbnail_url
    shown = mean_rgb(video.thumbnail_url, tmp_path)  # a frame of the video (both halves are flat colour)
    assert max(shown[0], shown[2]) > 150 and shown[1] < 80
    red = mean_rgb(video.generate_thumbnail(time=0.5).url, tmp_path)
    assert red[0] > 150 and red[2] < 80

    image = video.generate_thumbnail(time=1.5)
    assert image.id.startswith("img-") and image.url
    blue = mean_rgb(image.url, tmp_path)
    assert blue[2] > 150 and blue[0] < 80
    assert image.id in [i.id for i in video.get_thumbnails()] and len(video.get_thumbnails()) == 2
    assert conn.get_collection().get_image(image.id).id == image.id

    vtt = requests.get(video.thumbnail_url.replace("poster.jpg", "storyboard.vtt"))
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT") and "#xywh=" in vtt.text
    for url in (video.stream_url, video.thumbnail_url):  # a VOD rendition never changes: cached for good
        assert "immutable" in requests.get(url).headers["cache-control"]
    sprite = vtt.text.split("#xywh=")[0].split()[-1]
    assert requests.get(video.thumbnail_url.replace("poster.jpg", sprite)).status_code == 200


def test_thumbnail_times_outside_the_video_are_refused(conn, tmp_path):
    video = conn.get_collection().upload(file_path=two_colour_video(tmp_path / "rb.mp4"))
    for bad in (-1, 60):
        with pytest.raises(InvalidRequestError):
            video.generate_thumbnail(time=bad)
    assert video.get_thumbnails() == []


def test_an_upload_plays_before_its_previews_which_follow_as_a_job(server, conn, tmp_path):
    """The upload's import ends once its stream exists; its poster and storyboard are a ``previews``
    job queued with the upload's row, and the player's info.json shows them once made."""
    import sqlite3
    from pathlib import Path

    from support.server_process import wait_until

    video = conn.get_collection().upload(file_path=two_colour_video(tmp_path / "rb.mp4"))
    playlist = requests.get(video.stream_url)
    assert playlist.status_code == 200 and "#EXTINF" in playlist.text
    segment = playlist.text.split("#EXTINF", 1)[1].splitlines()[1]
    assert requests.get(video.stream_url.rsplit("/", 1)[0] + "/" + segment).status_code == 200

    db = sqlite3.connect(Path(server.data_dir) / "reeldb.db")
    db.row_factory = sqlite3.Row
    jobs = {r["kind"]: r for r in db.execute("select * from jobs where params like ?", [f'%{video.id}%'])}
    assert {"upload", "previews"} <= set(jobs), jobs.keys()
    assert jobs["previews"]["lane"] == "previews" and jobs["previews"]["created_at"] >= jobs["upload"]["created_at"]

    folder = video.stream_url.rsplit("/", 1)[0]

    def previews_shown() -> bool:  # what the player reads (watch.js asks again while they are missing)
        info = requests.get(folder + "/info.json").json()
        return bool(info["storyboard"] and info["poster"])

    wait_until(previews_shown, 60, "the poster and storyboard in info.json")
    info = requests.get(folder + "/info.json").json()
    assert info["storyboard"] and info["poster"]
    assert db.execute("select status from jobs where id = ?", [jobs["previews"]["id"]]).fetchone()[0] == "done"
    media = db.execute("select path, hls_path, previews from media where id = ?", [video.id]).fetchone()
    assert media["previews"] == 1
    hls = (Path(server.data_dir) / media["hls_path"]).parent
    assert (hls / "storyboard.vtt").stat().st_mtime >= (hls / "index.m3u8").stat().st_mtime  # made after it
    vtt = requests.get(folder + "/" + info["storyboard"])
    assert vtt.status_code == 200 and "#xywh=" in vtt.text
    assert requests.get(folder + "/" + info["poster"]).content[:2] == b"\xff\xd8"
