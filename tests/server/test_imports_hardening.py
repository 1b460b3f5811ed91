"""Imports from URLs and files reach only what the operator allows, end in time, keep only media,
and leave nothing behind (project issue 9, items 1, 6 and part of 9).

Every attack is made the way a client would make it, through the API of a real server process.
The one exception is the address rule's table of ranges, tested on the pure function: the test
machine has only loopback to listen on, so a non-loopback first hop cannot be served here.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import sqlite3
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
import videodb
from support.media import make_video
from videodb.exceptions import InvalidRequestError

from reeldb.server.netguard import address_refusal, import_roots, literal_address

REFUSED_FILE = "file:// imports read only regular files inside the directories listed in REELDB_IMPORT_DIRS"


# -- helpers -------------------------------------------------------------------------------------
class Recorder(http.server.BaseHTTPRequestHandler):
    """Counts the requests it gets; what it answers is set per server (see :func:`serve`)."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        self.server.answer(self)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(answer, host: str = "127.0.0.1"):
    """An HTTP server on ``host`` whose GETs call ``answer(handler)``; yields it (``.hits``, ``.port``)."""
    httpd = http.server.ThreadingHTTPServer((host, 0), Recorder)
    httpd.daemon_threads = True
    httpd.hits = []
    httpd.answer = answer
    httpd.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def send_file(path: Path):
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        data = path.read_bytes()
        h.send_response(200)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    return answer


def redirect_to(location: str):
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("location", location)
        h.send_header("content-length", "0")
        h.end_headers()
    return answer


def trickle(bytes_per_second: int = 20, length: int = 100_000, seconds: float = 60.0):
    """Announces ``length`` bytes and sends ``bytes_per_second`` of them each second."""
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("content-length", str(length))
        h.end_headers()
        try:
            for _ in range(int(seconds)):
                h.wfile.write(b"\0" * bytes_per_second)
                h.wfile.flush()
                time.sleep(1.0)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return answer


def upload_error(conn, url: str, **kwargs) -> str:
    """The message the server sent back (the SDK wraps it as ``Invalid request: <message> ``)."""
    with pytest.raises(InvalidRequestError) as info:
        conn.upload(url=url, **kwargs)
    return str(info.value).removeprefix("Invalid request: ").strip()


def leftovers(server) -> list[str]:
    """Anything an import may leave: files in uploads/, and asset folders without a source file."""
    found = [p.name for p in (server.data_dir / "uploads").iterdir()]
    for folder in (server.data_dir / "media").glob("*/*"):
        if folder.is_dir() and not list(folder.glob("source.*")):
            found.append(str(folder.relative_to(server.data_dir)))
    return found


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("imports")
    notes = d / "notes.txt"
    notes.write_text("Meeting notes\n" + "- one line of plain text\n" * 60)
    subtitles = d / "captions.vtt"
    subtitles.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n\n00:01.000 --> 00:02.000\nagain\n")
    return {"video": make_video(d / "clip.mp4", seconds=1.0), "notes": notes, "subtitles": subtitles, "dir": d}


def connect(server) -> videodb.Connection:
    return videodb.connect(api_key=server.api_key, base_url=server.url)


# -- 1. file:// reads only listed directories, never the data dir -------------------------------
def test_file_imports_are_off_unless_directories_are_listed(server, conn, media):
    message = upload_error(conn, media["video"].as_uri())
    assert "file:// imports are off" in message and "REELDB_IMPORT_DIRS" in message
    message = upload_error(conn, (server.data_dir / "reeldb.db").as_uri())
    assert "file:// imports are off" in message


def test_the_live_database_is_never_opened_by_an_import(in_process_factory, tmp_path):
    """Issue 9 item 1: ``file://<data dir>/reeldb.db`` made the probe open the live database in the
    server process, which drops SQLite's POSIX locks: the next process to close the database then
    believed itself the last user and deleted the live -wal/-shm. Listing a directory that holds the
    data dir, or reaching the database by a symlink, ``..`` or a hard link, must not get there either."""
    server = in_process_factory(import_dirs=f"{tmp_path},{tmp_path / 'data'}")
    conn = connect(server)
    db = server.data_dir / "reeldb.db"
    links = tmp_path / "links"
    links.mkdir()
    (links / "db.mp4").symlink_to(db)
    (links / "data").symlink_to(server.data_dir)
    os.link(db, links / "hard.mp4")
    attempts = [db.as_uri(), f"file://{links}/../data/reeldb.db", (links / "db.mp4").as_uri(),
                f"file://{links}/data/reeldb.db", (links / "hard.mp4").as_uri(),
                (server.data_dir / "reeldb.db-wal").as_uri(), (server.data_dir / "api_key").as_uri()]
    for url in attempts:
        assert upload_error(conn, url) == f"Cannot import {url}: {REFUSED_FILE}"

    # The server still holds its locks: a process that opens and closes the database leaves the WAL.
    assert Path(str(db) + "-wal").exists()
    other = sqlite3.connect(db)
    other.execute("select count(*) from sqlite_master").fetchall()
    other.close()
    assert Path(str(db) + "-wal").exists() and Path(str(db) + "-shm").exists()
    assert conn.get_collection().get_videos() == []  # and it keeps working


def test_file_imports_read_listed_directories_only_and_say_nothing_more(in_process_factory, tmp_path, media):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "clip.mp4"
    secret.write_bytes(media["video"].read_bytes())
    (media["dir"] / "escape.mp4").unlink(missing_ok=True)
    (media["dir"] / "escape.mp4").symlink_to(secret)
    server = in_process_factory(import_dirs=f"{media['dir']}{os.pathsep}{tmp_path / 'nowhere'}")
    conn = connect(server)

    video = conn.upload(url=media["video"].as_uri())
    assert video.id.startswith("m-") and abs(video.length - 1.0) < 0.15
    assert media["video"].exists(), "file:// imports copy, they never move the user's file"

    # Existing but outside, missing inside, a directory, a link out, a FIFO, /etc/passwd, a remote
    # host: one message each, the URL the user sent and nothing else.
    fifo = media["dir"] / "pipe.mp4"
    if not fifo.exists():
        os.mkfifo(fifo)
    for url in (secret.as_uri(), (media["dir"] / "missing.mp4").as_uri(), media["dir"].as_uri(),
                (media["dir"] / "escape.mp4").as_uri(), f"file://{media['dir']}/../outside/clip.mp4",
                fifo.as_uri(), "file:///etc/passwd", f"file://example.com{media['video']}"):
        message = upload_error(conn, url)
        assert message == f"Cannot import {url}: {REFUSED_FILE}"
        assert "No such" not in message and "Errno" not in message
    assert [v.id for v in conn.get_collection().get_videos()] == [video.id]
    assert leftovers(server) == []


def test_import_dirs_setting_is_split_and_resolved(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert import_roots(None) == [] and import_roots("") == [] and import_roots(" , ") == []
    assert import_roots(f"{tmp_path / 'link'}, {tmp_path}/real/../real{os.pathsep}") == [tmp_path / "real"] * 2


# -- 2. http(s):// reaches public addresses only, checked where the socket is made --------------
def test_urls_to_this_machine_are_refused_before_any_request(server, conn, media):
    with serve(send_file(media["video"])) as target:
        port = target.port
        for url, reason in ((f"http://127.0.0.1:{port}/clip.mp4", "a loopback address"),
                            (f"http://localhost:{port}/clip.mp4", "a loopback address"),  # resolved, then checked
                            (f"http://2130706433:{port}/clip.mp4", "a loopback address"),  # 127.0.0.1 in decimal
                            (f"http://[::ffff:127.0.0.1]:{port}/clip.mp4", "a loopback address"),
                            (f"http://0.0.0.0:{port}/clip.mp4", "an unspecified address"),
                            ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
                            ("http://10.1.2.3/clip.mp4", "a private or reserved address"),
                            ("http://[fd00::1]/clip.mp4", "a private or reserved address")):
            message = upload_error(conn, url)
            assert message.startswith(f"Refused to download {url}: ") and reason in message, message
        assert target.hits == [], "the refused URLs were never requested"
    assert conn.get_collection().get_videos() == []
    assert leftovers(server) == []


def test_a_redirect_is_checked_like_the_first_hop(in_process_factory, media):
    """Loopback is allowed here (the only address a test can serve from), so the first hop passes;
    each hop then meets the same connect-time rule: 0.0.0.0, which Linux connects to this machine,
    stays refused, and so does a redirect away from http(s)."""
    server = in_process_factory(import_allow_private="true")
    conn = connect(server)
    with serve(send_file(media["video"]), host="0.0.0.0") as target, serve(None) as hop:
        hop.answer = redirect_to(f"http://0.0.0.0:{target.port}/clip.mp4")
        url = f"http://127.0.0.1:{hop.port}/start.mp4"
        assert "is an unspecified address" in upload_error(conn, url)
        assert hop.hits == ["/start.mp4"] and target.hits == []

        hop.answer = redirect_to("file:///etc/passwd")
        assert upload_error(conn, url) == f"Could not download {url}: it redirects to a URL that is not http(s)"

        hop.answer = redirect_to(f"http://127.0.0.1:{target.port}/clip.mp4")  # allowed: it is followed
        video = conn.upload(url=url)
        assert abs(video.length - 1.0) < 0.15 and target.hits == ["/clip.mp4"]
    assert leftovers(server) == []


@pytest.mark.parametrize("address, allowed, allowed_private", [
    ("8.8.8.8", True, True), ("2606:4700::1111", True, True),
    ("127.0.0.1", False, True), ("127.8.9.10", False, True), ("::1", False, True),
    ("10.0.0.1", False, True), ("172.16.0.1", False, True), ("172.31.255.255", False, True),
    ("192.168.1.1", False, True), ("169.254.169.254", False, True), ("fe80::1", False, True),
    ("fe80::1%eth0", False, True), ("fc00::1", False, True), ("fd12:3456::1", False, True),
    ("100.64.0.1", False, True), ("0.0.0.0", False, False), ("::", False, False),
    ("224.0.0.1", False, False), ("239.255.255.250", False, False), ("ff02::1", False, False),
    ("::ffff:127.0.0.1", False, True), ("::ffff:8.8.8.8", True, True), ("2002:7f00:1::", False, True),
    ("64:ff9b::a00:1", False, True), ("64:ff9b::808:808", True, True), ("::ffff:0.0.0.0", False, False),
])
def test_address_rule(address, allowed, allowed_private):
    assert (address_refusal(address) is None) is allowed
    assert (address_refusal(address, allow_private=True) is None) is allowed_private


def test_literal_addresses():
    assert str(literal_address("[::1]")) == "::1" and str(literal_address("127.0.0.1")) == "127.0.0.1"
    assert literal_address("localhost") is None and literal_address(None) is None


# -- 3. one deadline and one size cap per import ------------------------------------------------
def test_a_trickling_source_fails_at_the_deadline(in_process_factory):
    server = in_process_factory(import_allow_private="true", import_timeout="3", sync_wait="10")
    conn = connect(server)
    with serve(trickle(bytes_per_second=20)) as slow, serve(trickle(bytes_per_second=0)) as silent:
        for source in (slow, silent):
            url = f"http://127.0.0.1:{source.port}/slow.mp4"
            assert upload_error(conn, url) == f"Could not import {url}: it did not arrive within 3 s " \
                                              "(REELDB_IMPORT_TIMEOUT)"
            assert source.hits == ["/slow.mp4"]
    assert leftovers(server) == []


def test_an_announced_length_over_the_cap_stops_before_the_body(in_process_factory):
    """The source announces more than the cap and sends nothing more: only a check of the announced
    length ends this import (reading on would wait for the body until the deadline)."""
    server = in_process_factory(import_allow_private="true", max_upload_bytes="100000", import_timeout="600")
    conn = connect(server)
    with serve(trickle(bytes_per_second=0, length=10**9)) as source:
        url = f"http://127.0.0.1:{source.port}/big.mp4"
        assert upload_error(conn, url) == "The file is larger than the server accepts"
    with serve(trickle(bytes_per_second=0, length=10**9)) as source, serve(None) as hop:  # after a redirect too
        hop.answer = redirect_to(f"http://127.0.0.1:{source.port}/big.mp4")
        assert upload_error(conn, f"http://127.0.0.1:{hop.port}/a.mp4") == \
                "The file is larger than the server accepts"
    assert leftovers(server) == []


def test_network_failures_share_one_message(in_process_factory):
    """A closed port and a server that hangs up say the same thing, and no OS error text."""
    server = in_process_factory(import_allow_private="true")
    conn = connect(server)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, never listening: connections are refused

    def hang_up(h: http.server.BaseHTTPRequestHandler) -> None:
        h.connection.shutdown(socket.SHUT_RDWR)

    with serve(hang_up) as rude:
        for url in (f"http://127.0.0.1:{closed}/x.mp4", f"http://127.0.0.1:{rude.port}/x.mp4",
                    "http://no-such-host.invalid/x.mp4"):
            assert upload_error(conn, url) == f"Could not download {url}: the server could not be reached " \
                                              "or the transfer broke off"


# -- 4. only audio, video and image formats -----------------------------------------------------
def test_text_subtitles_and_playlists_are_not_media(in_process_factory, media, tmp_path):
    """A ``.txt`` was accepted as "video/tty" (FFmpeg shows text as ANSI art); a playlist made FFmpeg
    fetch the URLs it lists, from inside the server."""
    with serve(send_file(media["video"])) as target:
        playlist = media["dir"] / "list.m3u8"
        playlist.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n"
                            f"http://127.0.0.1:{target.port}/clip.mp4\n#EXT-X-ENDLIST\n")
        concat = media["dir"] / "parts.ffconcat"
        concat.write_text(f"ffconcat version 1.0\nfile {media['video']}\n")
        server = in_process_factory(import_dirs=str(media["dir"]))
        conn = connect(server)
        for path in (media["notes"], media["subtitles"], playlist, concat):
            message = upload_error(conn, path.as_uri())
            assert message.startswith(f"Unsupported or unreadable media: {path.name}"), message
            with pytest.raises(InvalidRequestError, match="Unsupported or unreadable media"):
                conn.upload(file_path=str(path))
        assert target.hits == [], "nothing a playlist lists is fetched"
    coll = conn.get_collection()
    assert coll.get_videos() == [] and coll.get_audios() == [] and coll.get_images() == []
    assert leftovers(server) == []


# -- 5. nothing left behind ---------------------------------------------------------------------
def test_leftovers_of_a_crash_are_swept_at_startup(server_factory):
    server = server_factory()
    conn = connect(server)
    slot = conn.get("collection/default/upload_url", params={"name": "big.mp4"})["upload_url"]
    path = slot.split("://", 1)[1].split("/", 1)[1]
    upload_id = path.split("?")[0].rsplit("/", 1)[1]
    part = server.data_dir / "uploads" / f"{upload_id}.part"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:  # an upload cut by a crash
        body = b"--b\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n\r\n" + b"x" * 1000
        sock.sendall(f"POST /{path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: multipart/form-data; "
                     f"boundary=b\r\ncontent-length: 100000000\r\n\r\n".encode() + body)
        deadline = time.time() + 10
        while not part.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert part.exists()
        server.kill()
    orphan_folder = server.data_dir / "media" / "c-default-orphan" / "m-z-orphan"
    orphan_folder.mkdir(parents=True)
    download = server.data_dir / "uploads" / "job-gone.download"
    download.write_bytes(b"half")
    stray = server.data_dir / "uploads" / "up-00000000-0000-0000-0000-000000000000"
    stray.write_bytes(b"no slot")
    old = time.time() - 3600
    for p in (orphan_folder, orphan_folder.parent):
        os.utime(p, (old, old))

    server.start()
    deadline = time.time() + 15
    while leftovers(server) and time.time() < deadline:
        time.sleep(0.1)
    assert leftovers(server) == []
    assert not orphan_folder.parent.exists() and not stray.exists()
    connect(server).get_collection()  # still fine


# -- 6. a truncated MP4 counts what it holds, not what its header says --------------------------
def test_truncated_faststart_mp4_gets_its_real_length(conn, tmp_path):
    full = make_video(tmp_path / "plain.mp4", seconds=5.0)
    fast = tmp_path / "fast.mp4"
    with av.open(str(full)) as src, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    data = fast.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "faststart: the index comes first"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:int(len(data) * 0.4)])

    declared, real = _declared_and_real(cut)
    assert declared > 4.9 and real < declared - 1.5

    video = conn.upload(file_path=str(cut))
    assert abs(video.length - real) <= 0.2, (video.length, real, declared)


def _declared_and_real(path: Path) -> tuple[float, float]:
    """The header's duration, and the end of the last packet whose bytes are in the file."""
    size = path.stat().st_size
    with av.open(str(path)) as container:
        declared = container.duration / av.time_base
        end = 0.0
        for packet in container.demux():
            if packet.pts is None or packet.pos is None or packet.pos < 0 or packet.pos + packet.size > size:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * Fraction(packet.time_base)))
    return declared, end
