"""The watch page (issue 10, "The player") in Debian's headless Chromium, against a real server.

A spoken video (espeak-ng sentences at known times) is uploaded and indexed through the SDK; the
page at ``video.player_url`` must then play it (hls.js on Chromium: Debian's build plays H.264
and AAC through MSE), start and stop where ``t=`` says, show the spoken words as captions at the
right time, seek from the transcript and from a search hit's mark on the progress bar, answer the
keyboard, and render at phone and desktop sizes. Every page runs twice: once plainly, and once
with every request to a host other than the server aborted, which must never happen.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote, urlsplit

import av
import numpy as np
import pytest
from support import media
from support.speech import MEETING_A, compose, normalise_words, require_espeak

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def write_video(path: Path, audio: np.ndarray, rate: int = 48000, fps: int = 10, size=(320, 180)) -> Path:
    """H.264 + AAC MP4 carrying ``audio``, with a colour per second and a moving square (so a
    screenshot of the player is visibly not blank) and a 2 s GOP (so the rendition has segments)."""
    w, h = size

    def picture(i: int) -> np.ndarray:
        sec = i // fps
        img = np.empty((h, w, 3), np.uint8)
        img[:] = ((sec * 53) % 256, (sec * 97 + 80) % 256, (sec * 31 + 160) % 256)
        x = int((i % fps) / fps * (w - 24))
        img[h // 2 - 12 : h // 2 + 12, x : x + 24] = 255
        return img

    return media.write_video(path, audio, rate, fps, size, picture=picture, gop=2 * fps)


def png_pixels(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


@pytest.fixture
def spoken_video(conn, tmp_path):
    require_espeak()
    audio, placed = compose(MEETING_A, gap=2.0)
    video = conn.get_collection().upload(file_path=str(write_video(tmp_path / "meeting.mp4", audio)))
    video.index_spoken_words()
    # generate_stream() rewrites the object's stream_url/player_url: keep the whole video's.
    return video, placed, video.player_url, video.stream_url


class Session:
    """Pages in one browser context; with ``guard`` every request off the server is aborted."""

    def __init__(self, browser, server, guard: bool, viewport: dict) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.server_host = urlsplit(server.url).netloc
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.guard = guard
        if guard:
            self.context.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != self.server_host:
            self.foreign.append(url)
            route.abort()
        else:
            route.continue_()

    def open(self, url: str):
        page = self.context.new_page()
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status}: {r.url}"))
        if not self.guard:  # without the guard, still notice any request leaving the server
            page.on("request", lambda r: urlsplit(r.url).netloc not in ("", self.server_host)
                    and self.foreign.append(r.url))
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.state === 'ready'", timeout=20_000)
        return page


def now(page) -> float:
    return page.evaluate("reeldbPlayer.video.currentTime")


def pause_at(page, seconds: float) -> None:
    page.evaluate("""async (t) => {
        const v = reeldbPlayer.video;
        v.pause();
        if (Math.abs(v.currentTime - t) > 0.01) {
            const seeked = new Promise(r => v.addEventListener('seeked', r, { once: true }));
            v.currentTime = t;
            await seeked;
        }
    }""", seconds)


def caption_text(page) -> str:
    return page.evaluate("""() => {
        const t = [...reeldbPlayer.video.textTracks].find(t => t.kind === 'captions');
        return t && t.mode === 'showing' && t.activeCues ? [...t.activeCues].map(c => c.text).join(' ') : '';
    }""")


def has_words(text: str, sentence: str, share: float = 0.6) -> bool:
    """Most of the sentence's words are there (whisper tiny.en on espeak is not word-perfect)."""
    want, got = normalise_words(sentence), set(normalise_words(text))
    return sum(w in got for w in want) >= share * len(want)


def check_page(session: Session, video, placed, player_url: str, stream_url: str, shots: Path, label: str) -> None:
    s1, s2, s3, s4 = placed  # MEETING_A's four sentences, where they were said

    # --- playback advances, with the title, poster, captions on by default and a transcript.
    page = session.open(player_url)
    assert page.evaluate("reeldbPlayer.engine") == "hls.js"
    page.wait_for_function("document.documentElement.dataset.transcript === '4'", timeout=10_000)
    assert page.locator("#title").inner_text() == video.name
    assert page.evaluate("reeldbPlayer.video.poster").endswith("/poster.jpg")
    t0 = now(page)
    page.wait_for_function(f"reeldbPlayer.video.currentTime > {t0 + 1.0}", timeout=10_000)
    assert not page.evaluate("reeldbPlayer.video.paused")
    assert page.evaluate("[...reeldbPlayer.video.textTracks].find(t => t.kind === 'captions').mode") == "showing"

    # --- captions show the spoken text at the right time, and nothing between sentences.
    pause_at(page, s2.start + 1.0)
    page.wait_for_function("(() => { const t = [...reeldbPlayer.video.textTracks].find(t => t.kind === 'captions');"
                           " return t.activeCues && t.activeCues.length > 0; })()", timeout=5_000)
    assert has_words(caption_text(page), s2.text), caption_text(page)
    pause_at(page, s4.start + 1.0)
    page.wait_for_function("(() => { const t = [...reeldbPlayer.video.textTracks].find(t => t.kind === 'captions');"
                           " return t.activeCues && [...t.activeCues].some(c => /berlin/i.test(c.text)); })()",
                           timeout=5_000)
    pause_at(page, (s1.end + s2.start) / 2 + 0.4)  # the silence between sentences 1 and 2
    page.wait_for_timeout(200)
    assert caption_text(page) == ""

    # --- keyboard: c toggles captions, ←/→ ±5 s, j/l ±10 s, >/< speed, k/space play and pause.
    page.evaluate("document.activeElement && document.activeElement.blur()")  # keys go to the page
    pause_at(page, 12.0)
    page.keyboard.press("c")
    page.wait_for_function("[...reeldbPlayer.video.textTracks].find(t => t.kind === 'captions').mode !== 'showing'")
    page.keyboard.press("c")
    page.wait_for_function("[...reeldbPlayer.video.textTracks].find(t => t.kind === 'captions').mode === 'showing'")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("Math.abs(reeldbPlayer.video.currentTime - 17) < 0.05", timeout=5_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("Math.abs(reeldbPlayer.video.currentTime - 12) < 0.05", timeout=5_000)
    page.keyboard.press("j")
    page.wait_for_function("Math.abs(reeldbPlayer.video.currentTime - 2) < 0.05", timeout=5_000)
    page.keyboard.press("l")
    page.wait_for_function("Math.abs(reeldbPlayer.video.currentTime - 12) < 0.05", timeout=5_000)
    page.keyboard.press(">")
    page.wait_for_function("reeldbPlayer.video.playbackRate === 1.25", timeout=5_000)
    # Media Chrome steps from the rate it last saw: let its state catch up, as a human would.
    page.wait_for_function("reeldbPlayer.player.getAttribute('mediaplaybackrate') === '1.25'", timeout=5_000)
    page.keyboard.press("<")
    page.wait_for_function("reeldbPlayer.video.playbackRate === 1", timeout=5_000)
    page.keyboard.press("k")
    page.wait_for_function("!reeldbPlayer.video.paused && !reeldbPlayer.player.hasAttribute('mediapaused')",
                           timeout=5_000)
    page.keyboard.press(" ")
    page.wait_for_function("reeldbPlayer.video.paused && reeldbPlayer.player.hasAttribute('mediapaused')",
                           timeout=5_000)

    # --- a transcript line click seeks to its sentence (and plays).
    pause_at(page, 0.5)
    line = page.locator("#transcript .line", has_text="Berlin")
    start = float(line.get_attribute("data-start"))
    assert abs(start - s4.start) < 1.0, (start, s4)
    line.click()
    page.wait_for_function("!reeldbPlayer.video.paused", timeout=5_000)
    assert start - 0.05 <= now(page) < start + 1.5
    page.wait_for_function("document.querySelector('#transcript [aria-current=\"true\"]') !== null")
    assert "Berlin" in page.locator('#transcript [aria-current="true"]').inner_text()

    # --- search marks its hit on the progress bar; clicking the mark jumps there.
    pause_at(page, 0.5)
    page.fill("#q", "database migration")
    page.press("#q", "Enter")
    page.wait_for_selector("#marks .hit", timeout=10_000)
    mark = page.locator("#marks .hit").first
    hit = float(mark.get_attribute("data-start"))
    assert abs(hit - s2.start) < 1.0, (hit, s2)
    bar = page.locator("#seekbar").bounding_box()
    box = mark.bounding_box()
    assert bar["x"] <= box["x"] and box["x"] + box["width"] <= bar["x"] + bar["width"]
    expected_x = bar["x"] + 12 + (bar["width"] - 24) * hit / page.evaluate("reeldbPlayer.video.duration")
    assert abs(box["x"] + box["width"] / 2 - expected_x) < 3
    page.hover("#player")  # the controls show on activity
    mark.click()
    page.wait_for_function("!reeldbPlayer.video.paused", timeout=5_000)
    assert hit - 0.05 <= now(page) < hit + 1.5

    # --- screenshots: the player and the page are drawn at this viewport.
    pause_at(page, s3.start + 1.0)
    page.wait_for_timeout(300)
    shot = shots / f"player-{label}.png"
    page.screenshot(path=str(shot))
    pixels = png_pixels(shot)
    assert pixels.std() > 20, f"{shot.name} looks blank"
    vb = page.locator("#video").bounding_box()
    region = pixels[int(vb["y"]) : int(vb["y"] + vb["height"]), int(vb["x"]) : int(vb["x"] + vb["width"])]
    assert region.size and region.std() > 10 and region.mean() > 20, f"{shot.name}: the video area is blank"
    page.close()

    # --- t= as a start: in the hash and in the query, as t=1:30 or t=90.
    page = session.open(f"{player_url}#t=0:12")
    page.wait_for_function("reeldbPlayer.video.currentTime > 12.2", timeout=10_000)
    assert 12.0 <= now(page) < 14.5
    page.close()
    page = session.open(f"{player_url}&t=0:14")
    page.wait_for_function("reeldbPlayer.video.currentTime > 14.2", timeout=10_000)
    assert 14.0 <= now(page) < 16.5
    page.close()
    page = session.open(f"{session_server(session)}/player?url={quote(stream_url, safe='')}&t=15")
    page.wait_for_function("reeldbPlayer.video.currentTime > 15.2", timeout=10_000)
    assert 15.0 <= now(page) < 17.5
    page.close()

    # --- t= as a span: starts at its start and stops at its end, with the player's own URL
    # (server-side spans) and with the SDK's play() of a timeline stream.
    for url, (a, b) in [
        (f"{player_url}&t=6.9-9.4", (6.9, 9.4)),
        (f"{player_url}#t=17-18.5", (17.0, 18.5)),
        (f"{session_server(session)}/player?url={quote(video.generate_stream(timeline=[(12.0, 14.0)]), safe='')}",
         (12.0, 14.0)),
    ]:
        page = session.open(url)
        assert page.evaluate("reeldbPlayer.spans") == [[a, b]], url
        page.wait_for_function(f"reeldbPlayer.video.currentTime > {a + 0.2}", timeout=10_000)
        assert a <= now(page) < a + 1.0
        page.wait_for_function("document.documentElement.dataset.spanDone === 'true'", timeout=(b - a + 8) * 1000)
        stopped = page.evaluate("reeldbPlayer.stoppedAt")
        # where the player caught the end: on time on a quiet machine (< 0.15 s), up to half a
        # second late when every core is busy (the page's timer fired late); where it leaves the
        # viewer is exact either way (below)
        assert b - 0.01 <= stopped < b + 0.6, (url, stopped)
        page.wait_for_timeout(500)
        assert page.evaluate("reeldbPlayer.video.paused") and abs(now(page) - b) < 0.05
        assert page.locator("#span-band").is_visible()
        page.close()


def session_server(session: Session) -> str:
    return f"http://{session.server_host}"


def test_player_page(server, conn, spoken_video, chromium, tmp_path):
    video, placed, player_url, stream_url = spoken_video
    shots = tmp_path / "shots"
    shots.mkdir()
    for guard in (False, True):
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            session = Session(chromium, server, guard, viewport)
            label = f"{name}{'-offline' if guard else ''}"
            try:
                check_page(session, video, placed, player_url, stream_url, shots, label)
            finally:
                session.context.close()
            assert session.foreign == [], f"{label}: requests left the server: {session.foreign}"
            assert session.errors == [], f"{label}: {session.errors}"
    if os.environ.get("REELDB_SCREENSHOT_DIR"):
        for shot in shots.iterdir():
            shutil.copy(shot, Path(os.environ["REELDB_SCREENSHOT_DIR"]) / shot.name)


def test_the_player_shows_indexing_progress_then_the_transcript(server_factory, chromium, tmp_path):
    """A video whose index runs when the page opens (an upload with ``REELDB_AUTO_INDEX_UPLOADS``, as a
    recording right after its export) says so with its progress, then shows the transcript when
    the index is done, without a reload."""
    import videodb

    require_espeak()
    server = server_factory(auto_index_uploads="true", sync_wait="5", ingest_workers="0")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    audio, placed = compose(MEETING_A * 4, gap=2.0)  # long enough that its index outlasts the page's load
    video = conn.get_collection().upload(file_path=str(write_video(tmp_path / "long.mp4", audio)))
    session = Session(chromium, server, False, DESKTOP)
    page = session.open(video.player_url)
    page.wait_for_function("document.getElementById('search-status').textContent.startsWith('Indexing spoken words')",
                           timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#transcript li').length > 0", timeout=180_000)
    assert page.evaluate("document.getElementById('search-status').textContent") == ""
    assert not session.errors and not session.foreign
    session.context.close()
    # The recording's own index, unasked: index_spoken_words() joins it and then refuses a second.
    video.index_spoken_words()
    with pytest.raises(videodb.exceptions.InvalidRequestError, match="Spoken word index for video already exists"):
        video.index_spoken_words()
