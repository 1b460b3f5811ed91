"""``POST /compile`` (``SearchResult.compile()``/``play()``): shots of several videos as one stream."""

from __future__ import annotations

import subprocess

import av
import pytest
import requests
from support.media import make_video
from videodb.exceptions import InvalidRequestError


def test_compile_two_videos_plays_their_shots_in_order(conn, tmp_path):
    coll = conn.get_collection()
    a = coll.upload(file_path=str(make_video(tmp_path / "a.mp4", 4.0, background=(200, 0, 0))))
    b = coll.upload(file_path=str(make_video(tmp_path / "b.mp4", 4.0, background=(0, 0, 200))))
    data = conn.post(path="compile", data=[
        {"video_id": a.id, "collection_id": coll.id, "shots": [(0.5, 2.2)]},
        {"video_id": b.id, "collection_id": coll.id, "shots": [(1.0, 2.0)]},
    ])
    playlist = requests.get(data["stream_url"])
    assert playlist.status_code == 200 and "#EXT-X-DISCONTINUITY" in playlist.text
    assert requests.get(data["player_url"]).status_code == 200
    colours = []
    with av.open(data["stream_url"]) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            colours.append("red" if rgb[..., 0].mean() > rgb[..., 2].mean() else "blue")
    # exactly the first video's shot (0.5-2.2 s), then the second's (1-2 s), at 25 fps: smart cut
    assert colours[0] == "red" and colours[-1] == "blue"
    assert colours == sorted(colours, key=lambda c: c == "blue")  # no going back
    assert abs(colours.count("red") - 1.7 * 25) <= 1 and abs(colours.count("blue") - 1.0 * 25) <= 1
    # ffmpeg reads it without a warning (no DTS going back across the two videos)
    check = subprocess.run(["ffmpeg", "-v", "warning", "-i", data["stream_url"], "-f", "null", "-"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and check.stderr.strip() == "", check.stderr


def test_compile_refuses_what_cannot_play(conn, tmp_path):
    video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "a.mp4", 2.0)))
    for body, message in [
        ([], "at least"),
        ([{"video_id": "m-z-nothing", "shots": [(0, 1)]}], "not found"),
        ([{"video_id": video.id, "shots": [(1.5, 1.0)]}], "start < end"),
        ([{"video_id": video.id, "shots": [(30, 31)]}], "after it ends"),
    ]:
        with pytest.raises(InvalidRequestError, match=message):
            conn.post(path="compile", data=body)


def test_shot_play_opens_reeldbs_player_offline(conn, server, tmp_path, monkeypatch):
    """The docs' one line (docs/recording.md) points the SDK's player constant at ReelDB; ``play()`` then opens a
    page this server serves (the desktop browser is the one thing faked: it cannot run here)."""
    import webbrowser

    import videodb._utils._video as sdk_video

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    monkeypatch.setattr(sdk_video, "PLAYER_URL", f"{server.url}/player")  # the docs' line
    video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "a.mp4", 2.0)))
    video.play()
    page = requests.get(opened[0])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert f'data-src="{video.stream_url}"' in page.text
    for hostile in ("https://evil.example/x.m3u8", "javascript:alert(1)", f"{server.url}/files/abc"):
        assert requests.get(f"{server.url}/player", params={"url": hostile}).status_code == 404


def test_watch_takes_a_start_time_or_spans(conn, tmp_path):
    video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "a.mp4", 2.0)))
    for t in ("1", "0.5", "0:01", "0:00:01", "0.5-1.5"):
        page = requests.get(video.player_url, params={"t": t})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], t
    one_span = requests.get(video.player_url, params={"t": "0.5-1.5"}).text  # the video, started and stopped
    assert 'data-start="0.5"' in one_span and 'data-end="1.5"' in one_span and "/index.m3u8" in one_span
    assert "/t/0.500-1,1.500-2.m3u8" in requests.get(video.player_url, params={"t": "0.5-1,1.5-2"}).text
    bad = requests.get(video.player_url, params={"t": "soon"})
    assert bad.status_code == 404 and "text/html" in bad.headers["content-type"] and "data-error=" in bad.text
