"""The browser capture page in headless Chromium: getUserMedia + getDisplayMedia → WebRTC → stored files.

Chromium's fake devices stand in for the hardware: ``--use-fake-ui-for-media-stream`` accepts the
permission prompts and makes getDisplayMedia pick a screen on its own (no picker, even headless),
``--use-fake-device-for-media-stream`` makes that screen and its audio synthetic (Chromium's
animated test pattern and a beep: ``--use-file-for-fake-video-capture`` only feeds cameras, so the
screen cannot come from a file), and ``--use-file-for-fake-audio-capture`` feeds the microphone
from a WAV made here, so the stored mic file must carry its 440 Hz tone. Playwright drives
Debian's ``/usr/bin/chromium`` (tests/run.sh installs it; ``playwright install`` is never needed).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import av
import numpy as np
import pytest
from support.media import write_wav

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("REELDB_CHROMIUM", "/usr/bin/chromium")
RECORD_SECONDS = 5.0
PAUSE_SECONDS = 1.0
#: recorded after the resume at the least: enough to measure the frame rate after a pause
RESUMED_SECONDS = 3.0


def chromium_args(wav: Path) -> list[str]:
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
        "--allow-loopback-in-peer-connection",  # offer 127.0.0.1 too: the suite stays on loopback
        "--autoplay-policy=no-user-gesture-required",
    ]


def beeping_wav(path: Path, seconds: float = 4.0, hz: float = 440.0, rate: int = 48000) -> Path:
    """A beeping tone (0.5 s on, 0.5 s off), mono; Chromium loops it."""
    t = np.arange(int(seconds * rate)) / rate
    gate = (np.floor(t * 2) % 2 == 0).astype(np.float32)
    return write_wav(path, (0.4 * np.sin(2 * np.pi * hz * t) * gate).astype(np.float32), rate)


def file_duration(path: Path) -> float:
    """Seconds from the first to the last decoded frame (+ one frame), decoding everything."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0] if c.streams.video else c.streams.audio[0]
        times = []
        last_len = 0.0
        for frame in c.decode(stream):
            if frame.time is not None:
                times.append(frame.time)
            if stream.type == "audio":
                last_len = frame.samples / frame.sample_rate
        assert times, f"{path.name}: no decodable frames"
        return max(times) - min(times) + last_len


def wait_status(conn, session_id: str, wanted: set[str], timeout: float) -> str:
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = conn.get_capture_session(session_id).status
        if status in wanted:
            return status
        time.sleep(0.3)
    raise AssertionError(f"session {session_id} is {status!r}, not one of {sorted(wanted)}")


def record_screen(page, server, conn, seconds: float) -> str:
    """Record one shared screen (its system audio not stored) for ``seconds`` through ``/capture``
    in ``page``; returns the capture session's id once it has stopped (or failed)."""
    cap = conn.create_capture_session(end_user_id="browser-user")
    token = conn.generate_client_token(3600)
    page.goto(f"{server.url}/capture?session_id={cap.id}&token={token}")
    page.wait_for_function("document.body.dataset.serverStatus === 'created'", timeout=10_000)
    page.click("#add-screen")
    page.wait_for_selector('tr[data-channel="display:1"]')
    page.wait_for_selector('tr[data-channel="system_audio:default"]')
    page.uncheck('tr[data-channel="system_audio:default"] .store')
    page.click("#start")
    page.wait_for_function("document.body.dataset.phase === 'recording'", timeout=20_000)
    wait_status(conn, cap.id, {"active"}, timeout=20)
    time.sleep(seconds)
    page.click("#stop")
    page.wait_for_function("document.body.dataset.phase === 'stopped'", timeout=30_000)
    wait_status(conn, cap.id, {"stopped", "exported", "failed"}, timeout=60)
    return cap.id


@pytest.fixture
def browser(tmp_path):
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    wav = beeping_wav(tmp_path / "mic.wav")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(wav))
        yield b
        b.close()


def tone_power(samples: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > hz - 15) & (freqs < hz + 15)
    return float(spectrum[band].max() / (np.median(spectrum) + 1e-9))


@pytest.mark.process(ingest_workers="auto")  # reads the server's log; records through the ingest workers as served
def test_record_mic_and_screen_from_the_page(server, conn, hook, browser, tmp_path):
    cap = conn.create_capture_session(end_user_id="browser-user", callback_url=hook.url)
    token = conn.generate_client_token(600)
    page = browser.new_page(viewport={"width": 1000, "height": 720})
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page_url = f"{server.url}/capture"

    # A wrong token: the server refuses it and the page asks again, the session id kept.
    page.goto(f"{page_url}?session_id={cap.id}&token=st-wrong")
    page.wait_for_selector("#login", state="visible")
    assert page.locator("#error").is_visible() and page.input_value("#login-session") == cap.id
    assert "st-wrong" not in page.url

    # Without a token the page asks for the session and the token, and keeps the token out of the URL
    # (opened bare, /capture wants a signed-in browser: it redirects to the sign-in page).
    # (first it asks whether a signed-in browser may take the recording over: this one may not)
    page.goto(f"{page_url}?session_id={cap.id}")
    page.wait_for_selector("#login", state="visible")
    assert not page.locator("#recorder").is_visible()
    page.fill("#login-session", cap.id)
    page.fill("#login-token", token)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#recorder", state="visible")
    assert token not in page.url and f"session_id={cap.id}" in page.url
    page.wait_for_function("document.body.dataset.serverStatus === 'created'", timeout=10_000)
    assert page.locator("#error").is_hidden()
    console.clear()  # the refused token above logged its 401

    # The link a backend hands out: the token leaves the address bar (a screen recording shows it).
    page.goto(f"{page_url}?session_id={cap.id}&token={token}")
    page.wait_for_function("document.body.dataset.serverStatus === 'created'", timeout=10_000)
    assert token not in page.url

    page.click("#add-mic")
    page.wait_for_selector('tr[data-channel="mic:default"]')
    assert page.locator("#add-mic").is_disabled()
    page.click("#add-screen")
    page.wait_for_selector('tr[data-channel="display:1"]')
    page.wait_for_selector('tr[data-channel="system_audio:default"]')  # the fake screen shares audio
    assert page.locator("#add-screen").inner_text() == "Share another screen"
    page.click("#add-screen")
    page.wait_for_selector('tr[data-channel="display:2"]')
    assert page.locator("tr[data-channel]").count() == 4  # the second screen's audio is not a new channel
    assert page.is_checked('tr[data-channel="display:1"] .primary-choice')
    page.check('tr[data-channel="display:2"] .primary-choice')
    assert not page.is_checked('tr[data-channel="display:1"] .primary-choice')
    page.check('tr[data-channel="display:1"] .primary-choice')
    # Ephemeral channels: must never be written.
    page.uncheck('tr[data-channel="system_audio:default"] .store')
    page.uncheck('tr[data-channel="display:2"] .store')
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()

    page.click("#start")
    page.wait_for_function("document.body.dataset.phase === 'recording'", timeout=20_000)
    t0 = time.time()
    wait_status(conn, cap.id, {"active"}, timeout=10)
    assert page.locator("#rec").is_visible() and page.locator("#rec-label").inner_text() == "REC"
    assert page.locator('tr[data-channel="mic:default"] .store').is_disabled()

    time.sleep(2.0)
    shot = tmp_path / "capture-page-recording.png"
    page.screenshot(path=str(shot))
    if os.environ.get("REELDB_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["REELDB_SCREENSHOT_DIR"]) / shot.name)
    # the clock runs while recording (mm:ss, past 00:00) and holds while paused
    page.wait_for_function("/^[0-9]{2}:[0-9]{2}$/.test(document.querySelector('#elapsed').textContent) && "
                           "document.querySelector('#elapsed').textContent !== '00:00'", timeout=20_000)

    page.click("#pause")
    page.wait_for_function("document.body.dataset.phase === 'paused'")
    paused_at = time.time()
    assert page.locator("#rec-label").inner_text() == "PAUSED"
    assert page.evaluate("window.reeldbCapture.channels.every(c => !c.track.enabled)")
    held = page.locator("#elapsed").inner_text()
    time.sleep(PAUSE_SECONDS)
    assert page.locator("#elapsed").inner_text() == held
    page.click("#pause")  # now "Resume"
    page.wait_for_function("document.body.dataset.phase === 'recording'")
    pause_length = time.time() - paused_at
    assert page.evaluate("window.reeldbCapture.channels.every(c => c.track.enabled)")

    # at least RESUMED_SECONDS after the resume, however long the steps before took on a busy machine
    time.sleep(max(RESUMED_SECONDS, t0 + RECORD_SECONDS - time.time()))
    page.click("#stop")
    t1 = time.time()
    page.wait_for_function("document.body.dataset.phase === 'stopped'", timeout=30_000)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    assert page.locator("#rec").is_hidden()
    assert page.evaluate("window.reeldbCapture.pc === null")
    assert page.evaluate("window.reeldbCapture.channels.every(c => c.track.readyState === 'ended')")
    recorded = t1 - t0

    # The backend sees the whole lifecycle through the SDK and the webhook.
    status = wait_status(conn, cap.id, {"stopped", "exported"}, timeout=10)
    assert status in ("stopped", "exported")
    hooks = hook.wait_for(lambda ev: any(e["status"] in ("exported", "failed") for e in ev), timeout=60)
    assert [e["status"] for e in hooks] == ["created", "starting", "active", "stopping", "stopped", "exported"], \
        server.log()[-3000:]
    page.wait_for_function("document.body.dataset.serverStatus === 'exported'", timeout=10_000)
    session = conn.get(f"collection/default/capture/session/{cap.id}")

    # Once exported, the page links to the recording in the player, and the link opens it.
    page.wait_for_selector("#watch-link", state="visible", timeout=10_000)
    href = page.get_attribute("#watch-link", "href")
    assert href and href == session["player_url"] and href.startswith(f"{server.url}/watch?v="), (href, session)
    assert href == conn.get_collection().get_video(session["exported_video_id"]).player_url
    watch = browser.new_page()
    opened = watch.goto(href)
    assert opened.status == 200 and opened.headers["content-type"].startswith("text/html")
    watch.wait_for_function("document.documentElement.dataset.state === 'ready'", timeout=20_000)
    assert watch.evaluate("document.documentElement.dataset.src").endswith("/index.m3u8")
    watch.close()
    channels = {c["channel_id"]: c for c in session["channels"]}
    assert {k: (v["type"], v["store"], v["is_primary"]) for k, v in channels.items()} == {
        "mic:default": ("audio", True, False), "display:1": ("video", True, True),
        "system_audio:default": ("audio", False, False), "display:2": ("video", False, False)}

    # The session folder: stored channels have files that decode for the recorded time; the
    # ephemeral ones have none, under any name.
    folder = server.data_dir / "sessions" / cap.id
    manifest = json.loads((folder / "manifest.json").read_text())
    entries = {c["channel_id"]: c for c in manifest["channels"]}
    assert set(entries) == set(channels)
    assert entries["system_audio:default"]["file"] is None and entries["display:2"]["file"] is None
    assert not [p for p in server.data_dir.rglob("*system_audio*")]
    assert not [p for p in server.data_dir.rglob("*display_2*")]
    assert entries["display:1"]["codec"] == "h264", entries["display:1"]  # the page prefers H.264
    for cid in ("mic:default", "display:1"):
        entry = entries[cid]
        path = folder / entry["file"]
        assert path.exists() and entry["frames"] > 0 and entry["complete"], entry
        duration = file_duration(path)
        assert abs(duration - recorded) < 1.0, (cid, duration, recorded, entry)
        # The page's pause reached the server: one pause of about the time the page was paused.
        assert len(entry["pauses"]) == 1, entry["pauses"]
        start, end = entry["pauses"][0]
        assert abs((end - start) - pause_length) < 0.5, (entry["pauses"], pause_length)
    with av.open(str(folder / entries["display:1"]["file"])) as c:
        frames = [(f.time, f.width, f.height) for f in c.decode(video=0)]
    assert frames[0][1:] == (entries["display:1"]["width"], entries["display:1"]["height"])
    # The screen keeps its frame rate after the pause (Chromium's fake screen runs at ~20 fps): the
    # page takes the answer without aiortc's REMB, whose estimate collapses while paused.
    start = entries["display:1"]["start_time"]
    resumed = entries["display:1"]["pauses"][0][1] - start + 0.5
    ended = entries["mic:default"]["last_frame_at"] - start  # when the recording stopped
    after = [t for t, _, _ in frames if t > resumed]
    assert ended - resumed > RESUMED_SECONDS - 1.5, (ended, resumed, entries)
    assert len(after) / (ended - resumed) > 10, [round(t, 2) for t, _, _ in frames]
    with av.open(str(folder / entries["mic:default"]["file"])) as c:
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)]).astype(np.float32)
        rate = c.streams.audio[0].sample_rate
    # The fake microphone played our WAV: its 440 Hz tone is in the stored file.
    assert tone_power(samples, rate, 440) > 50 * tone_power(samples, rate, 1320), "no 440 Hz tone in the mic file"

    assert not [line for line in console if line.startswith(("error", "pageerror"))], console
