"""The pages for people (issue 22) in Debian's headless Chromium, through a real server.

Sign in with the key (or the one-time link ``reeldb serve`` prints), the library at ``/`` with
human titles, a search from the library that plays the matching moment, rename and delete (also
of a video deleted in another tab), drag-and-drop upload, and the guards: no cookie → sign-in
page, a cross-site form refused, a revoked key's session refused, the sign-in form rate limited,
an expired link explained. Every browser here runs with each non-loopback request aborted, and
axe-core (vendored, ``tests/browser/vendor/``) checks each page for serious or critical violations.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import videodb
from support.media import write_video, write_wav
from support.server_process import REELDB, wait_until
from support.speech import compose, require_espeak

pytestmark = pytest.mark.slow

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SENTENCES = ["The quarterly budget review is scheduled for next Tuesday afternoon.",
             "Please bring the printed slides about the garden project."]


CHROMIUM = os.environ.get("REELDB_CHROMIUM", "/usr/bin/chromium")
RECORDING = re.compile(r"^Recording, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}$")


@pytest.fixture
def fake_devices(tmp_path):
    """Chromium with its fake screen, and a microphone that says the test's sentences."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium (apt-get install chromium)")
    require_espeak()
    from playwright.sync_api import sync_playwright

    audio, _ = compose(SENTENCES, gap=1.0, lead=0.5)
    wav = write_wav(tmp_path / "mic.wav", audio)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
            "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


# -- helpers ---------------------------------------------------------------------------------------
def loopback_only(context) -> list[str]:
    """Abort every request that would leave the machine; returns the list of what was aborted."""
    aborted: list[str] = []

    def handle(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            aborted.append(url)
            route.abort()

    context.route("**/*", handle)
    return aborted


def new_page(browser, bypass_csp: bool = True, **options):
    context = browser.new_context(bypass_csp=bypass_csp, **options)  # axe-core is injected into each page
    aborted = loopback_only(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.aborted, page.errors = aborted, errors  # type: ignore[attr-defined]
    return page


def serious_violations(page, include: str | None = None) -> list[tuple[str, str, list]]:
    """axe-core's serious and critical violations on the page (or inside ``include``)."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("(sel) => axe.run(sel ? { include: [[sel]] } : document, "
                           "{ resultTypes: ['violations'] })", include)
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def sign_in(page, server, key: str | None = None) -> None:
    page.goto(f"{server.url}/signin")
    page.fill("#key", key or server.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")


def sign_in_link(server) -> str:
    found = re.findall(r"(http://\S+/signin/link\?token=\S+)", server.log())
    assert found, server.log()
    return found[-1]


def spoken_video(path: Path) -> Path:
    require_espeak()
    audio, _ = compose(SENTENCES, gap=1.0, lead=0.5)
    return write_video(path, audio)


# -- tests -----------------------------------------------------------------------------------------
def test_sign_in_find_search_and_watch(server, conn, chromium, tmp_path):
    video = conn.upload(file_path=str(spoken_video(tmp_path / "budget-meeting.mp4")), name="Budget meeting")
    video.index_spoken_words()
    page = new_page(chromium, viewport={"width": 1100, "height": 800})

    # Without the cookie: the sign-in page, which comes back to where the browser was going.
    page.goto(f"{server.url}/?kind=uploads")
    assert urlsplit(page.url).path == "/signin"
    assert serious_violations(page) == []
    page.fill("#key", "sk-not-a-key-" + "x" * 20)
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "That key did not work. Check it and try again."
    page.fill("#key", server.api_key)
    page.press("#key", "Enter")  # the keyboard alone
    page.wait_for_url(f"{server.url}/?kind=uploads")
    cookie = next(c for c in page.context.cookies() if c["name"] == "reeldb_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # The library: the upload with its title, length, date and index state, opened in the player.
    page.goto(f"{server.url}/")
    item = page.locator(f"#m-{video.id}")
    assert "Budget meeting" in item.locator("h3").inner_text()
    meta = item.locator(".meta").inner_text()
    assert "Video" in meta and "Searchable" in meta and time.strftime("%Y") in meta
    assert serious_violations(page) == []

    # Search from the library, with the keyboard alone: the moment, its words highlighted, plays
    # exactly there.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    page.keyboard.type("budget review")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results .moment")
    assert serious_violations(page) == []
    first = page.locator("#results .moment").first
    assert "budget" in first.locator("mark").first.inner_text().lower()
    href = first.locator("a").get_attribute("href")
    start, end = (float(x) for x in re.search(r"start=([\d.]+)&end=([\d.]+)", href).groups())
    first.locator("a").click()
    page.wait_for_url(re.compile(r"/watch\?"))
    page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.currentTime > 0 }",
                           timeout=30_000)
    now = page.evaluate("document.querySelector('video').currentTime")
    assert start - 0.5 <= now <= end + 0.5, (now, start, end)
    assert serious_violations(page) == []
    page.goto(page.url.replace("/watch?", "/embed?"))
    page.wait_for_selector("video")
    assert serious_violations(page) == []

    # The search results page itself (reloaded from its address) passes too.
    page.goto(f"{server.url}/library/search?q=garden+slides")
    assert page.locator("#results .moment").count() >= 1
    assert serious_violations(page) == []

    # Filters: by kind, by date.
    page.goto(f"{server.url}/?kind=recordings")
    assert page.locator(".shelf .item").count() == 0 and "0 videos" in page.locator("#shelf h2").inner_text()
    tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
    page.goto(f"{server.url}/?since={tomorrow}")
    assert page.locator(".shelf .item").count() == 0
    page.goto(f"{server.url}/?until={tomorrow}&kind=uploads")
    assert page.locator(".shelf .item").count() == 1

    # Rename in place.
    page.goto(f"{server.url}/")
    item = page.locator(f"#m-{video.id}")
    item.locator("summary").click()
    item.locator("input[name=name]").fill("Budget meeting, Tuesday")
    item.locator("form button").click()
    page.wait_for_selector("p.notice")
    assert page.locator(f"#m-{video.id} h3").inner_text() == "Budget meeting, Tuesday"
    assert conn.get_collection().get_video(video.id).name == "Budget meeting, Tuesday"

    # Deleted in another tab: this tab's rename says so; delete asks first, then removes it.
    other = page.context.new_page()
    other.goto(f"{server.url}/library/media/{video.id}/delete")
    assert "cannot be undone" in other.locator("main").inner_text()
    assert serious_violations(other) == []
    other.click("button.danger")
    other.wait_for_selector("p.notice")
    assert "deleted" in other.locator("p.notice").inner_text()
    page.locator(f"#m-{video.id} summary").click()
    page.locator(f"#m-{video.id} form button").click()
    page.wait_for_selector("p.notice")
    assert "deleted, perhaps in another tab" in page.locator("p.notice").inner_text()
    with pytest.raises(Exception):
        conn.get_collection().get_video(video.id)
    assert page.aborted == [] and page.errors == []


@pytest.mark.process  # drives `reeldb keys` beside the server
def test_the_guards(server, chromium):
    # Pages without the cookie go to the sign-in page; the API keeps x-access-token.
    for path in ("/", "/library/search?q=x", "/capture", "/watch", "/embed", "/library/open/v-x"):
        response = requests.get(server.url + path, allow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/signin"), path
    assert requests.get(server.url + "/collection/default", headers={"x-access-token": server.api_key}).ok

    # A signed-in browser; a form posted to ReelDB from another site is refused.
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    page = new_page(chromium)
    sign_in(page, server)
    other = f"http://localhost:{server.port}"  # another site: SameSite=Strict keeps the cookie home
    page.goto(f"{other}/signin")
    page.set_content(f'<form method="post" action="{server.url}/library/record">'
                     '<input name="collection" value="default"></form>')
    page.evaluate("document.forms[0].submit()")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/signin"
    assert _session_ids(server) == [cap.id]  # nothing was started
    response = requests.post(f"{server.url}/library/record", data={"collection": "default"},
                             headers={"origin": "http://evil.example", "cookie": _cookie_header(page)},
                             allow_redirects=False)
    assert response.status_code == 403

    # A revoked key's session ends.
    made = dict(line.split("=", 1) for line in _keys(server, "create").stdout.split())
    second = new_page(chromium)
    sign_in(second, server, made["api_key"])
    _keys(server, "revoke", made["key_id"])
    second.goto(f"{server.url}/")
    assert urlsplit(second.url).path == "/signin"

    # Sign out, and the old cookie no longer opens anything.
    page.goto(f"{server.url}/")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/signin"))
    page.goto(f"{server.url}/")
    assert urlsplit(page.url).path == "/signin"

    # The sign-in form is rate limited: past a few wrong keys even the right one waits.
    for _ in range(5):
        page.fill("#key", "sk-wrong-" + "y" * 20)
        page.click("button[type=submit]")
    assert "Too many attempts" not in page.locator("main").inner_text()
    page.fill("#key", server.api_key)
    page.click("button[type=submit]")
    assert "Too many attempts" in page.locator("[role=alert]").inner_text()
    assert urlsplit(page.url).path == "/signin"
    assert page.aborted == [] and second.aborted == []


def test_one_time_sign_in_link(server_factory, chromium):
    server = server_factory("linked", ingest_workers="0")
    link = sign_in_link(server)
    page = new_page(chromium)
    page.goto(link)
    page.wait_for_url(f"{server.url}/")
    assert page.locator("h1").inner_text() == "Library"
    again = new_page(chromium)
    again.goto(link)  # once only
    assert "expired or was already used" in again.locator("main").inner_text()
    assert "reeldb serve" in again.locator("main").inner_text()

    expiring = server_factory("expiring", signin_link_ttl="1", ingest_workers="0")
    time.sleep(1.5)
    again.goto(sign_in_link(expiring))
    assert "Ask for a new one" in again.locator("main").inner_text()
    assert serious_violations(again) == []


def test_drag_and_drop_upload(server_factory, chromium, tmp_path):
    server = server_factory(max_upload_bytes=str(3 * 1024 * 1024), ingest_workers="0")
    clip = spoken_video(tmp_path / "garden-walk.mp4")
    page = new_page(chromium, viewport={"width": 390, "height": 844})  # a phone
    page.goto(sign_in_link(server))
    page.wait_for_url(f"{server.url}/")
    assert serious_violations(page) == []

    def drop(name: str, data: bytes | int) -> None:
        """Drop a file of ``data`` (or of that many zero bytes) on the page; the bytes travel as
        base64 (a list of numbers costs a core for a minute at 4 MB)."""
        page.evaluate("""([name, b64, size]) => {
            const bytes = b64 === null ? new Uint8Array(size) : Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: 'video/mp4' }));
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true }));
        }""", [name, None, data] if isinstance(data, int) else [name, base64.b64encode(data).decode(), len(data)])

    # Over the limit: refused before a byte is sent, the limit in words.
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/upload" in r.url else None)
    drop("huge.mp4", 4 * 1024 * 1024)
    state = page.locator("#upload-state")
    wait_until(lambda: "larger than the upload limit of 3 MB" in state.inner_text(), 10, "the refusal")
    assert "4 MB" in state.inner_text() and sent == []

    # Not a video: sent, refused by the import, said so, and Try again offered.
    drop("notes.mp4", b"not a video at all " * 100)
    wait_until(lambda: "could not be added" in state.inner_text(), 60, "the failed import")
    assert page.locator("#upload-retry").is_visible()

    # A real video: the progress bar fills, then the video is listed.
    seen: list[str] = []
    page.expose_function("uploadState", lambda text: seen.append(text))
    page.evaluate("""() => { const state = document.getElementById('upload-state');
        new MutationObserver(() => window.uploadState(state.textContent)).observe(state, { childList: true }); }""")
    drop("garden-walk.mp4", clip.read_bytes())
    page.wait_for_selector(".shelf .item h3:has-text('garden-walk')", timeout=120_000)
    assert any(re.match(r"Uploading “garden-walk.mp4”: \d+ %", s) for s in seen), seen
    item = page.locator(".shelf .item").first
    assert item.locator("h3").inner_text() == "garden-walk"
    assert "Video" in item.locator(".meta").inner_text()
    assert page.aborted == [] and page.errors == []


def start_recording(page, server) -> str:
    """From the library: New recording, the microphone and a screen, Start; the session id."""
    page.goto(f"{server.url}/")
    page.click("text=New recording")
    page.wait_for_url(re.compile(r"/capture\?session_id="))
    assert "token" not in page.url  # it came in the fragment and waits in the tab's sessionStorage
    page.wait_for_function("document.body.dataset.serverStatus === 'created'", timeout=15_000)
    page.click("#add-mic")
    page.wait_for_selector('tr[data-channel="mic:default"]')
    page.click("#add-screen")
    page.wait_for_selector('tr[data-channel="display:1"]')
    page.click("#start")
    page.wait_for_function("document.body.dataset.phase === 'recording'", timeout=30_000)
    return re.search(r"session_id=([\w-]+)", page.url).group(1)


def test_record_from_the_library_and_reload_midway(server, fake_devices):
    page = new_page(fake_devices, viewport={"width": 1000, "height": 800})
    sign_in(page, server)
    session_id = start_recording(page, server)
    assert serious_violations(page) == []
    for control in (".store", ".remove"):  # each named with its channel
        names = page.eval_on_selector_all(f"#channel-rows {control}",
                                          "els => els.map(e => e.getAttribute('aria-label'))")
        assert len(names) == 3 and len(set(names)) == 3, names
    assert page.locator('[aria-label="Remove Screen 1"]').count() == 1
    explained = page.locator(".explain").inner_text()
    assert "Store: keep" in explained and "Primary: the screen" in explained
    time.sleep(4)

    # A reload mid-recording: the page finds the session still live and continues it.
    page.reload()
    page.wait_for_function("document.body.dataset.phase === 'interrupted'", timeout=15_000)
    assert page.locator("#rec-label").inner_text() == "ON HOLD"
    held = page.locator("#elapsed").inner_text()
    assert held >= "00:03", held
    page.click("#resume")
    page.wait_for_function("document.body.dataset.phase === 'recording'", timeout=60_000)
    page.wait_for_function(f"document.getElementById('elapsed').textContent > '{held}'", timeout=15_000)
    time.sleep(5)
    page.click("#stop")
    page.wait_for_function("document.body.dataset.phase === 'stopped'", timeout=60_000)
    page.wait_for_selector("#watch-link", state="visible", timeout=180_000)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()

    # Opened again in another tab (from history: no token there), the signed-in page takes the
    # recording over instead of asking for a token; a browser that is not signed in is asked.
    address = f"{server.url}/capture?session_id={session_id}"
    other = page.context.new_page()
    other.goto(address)
    other.wait_for_function("document.body.dataset.phase === 'kept'", timeout=30_000)
    other.wait_for_selector("#watch-link", state="visible", timeout=30_000)
    assert other.locator("#login").is_hidden()
    other.close()
    stranger = new_page(fake_devices)
    stranger.goto(address)
    stranger.wait_for_selector("#login", state="visible")
    assert stranger.locator("#recorder").is_hidden()
    stranger.context.close()

    # The library lists it with a human title and its channels.
    page.goto(f"{server.url}/?kind=recordings")
    item = page.locator(".shelf .item").first
    assert RECORDING.match(item.locator("h3").inner_text()), item.locator("h3").inner_text()
    meta = item.locator(".meta").inner_text()
    assert "Recording" in meta and "mic:default" in meta and "display:1" in meta
    assert _listed(server, "audio")  # the raw channel files (the microphone's)

    # Deleting the recording takes its raw channel files with it.
    item.locator("a", has_text="Delete").click()
    page.click("button.danger")
    page.wait_for_selector("p.notice")
    assert page.locator(".shelf .item").count() == 0
    assert _listed(server, "video") == [] and _listed(server, "audio") == []
    assert page.aborted == [] and page.errors == []


def test_a_server_killed_mid_recording(server_factory, fake_devices):
    server = server_factory()
    page = new_page(fake_devices, viewport={"width": 1000, "height": 800})
    page.goto(sign_in_link(server))
    page.wait_for_url(f"{server.url}/")
    start_recording(page, server)
    time.sleep(4)
    server.stop(signal.SIGKILL)

    # Unreachable: the clock stops, the page says so and offers to try again.
    page.wait_for_selector("#offline", state="visible", timeout=30_000)
    assert "kept" in page.locator("#offline").inner_text()
    assert "/capture/session" not in page.locator("body").inner_text()  # worded for a person
    held = page.locator("#elapsed").inner_text()
    time.sleep(2)
    assert page.locator("#elapsed").inner_text() == held
    assert serious_violations(page) == []
    page.click("#retry")  # still down: still said
    time.sleep(1)
    assert page.locator("#offline").is_visible()

    # Back up: the recording was kept and exported; the page (asking again by itself) says so and links to it.
    server.start()
    page.wait_for_function("document.body.dataset.phase === 'kept'", timeout=60_000)
    page.wait_for_selector("#watch-link", state="visible", timeout=180_000)
    assert "kept" in page.locator("#status").inner_text()
    assert "/watch?v=" in page.locator("#watch-link").get_attribute("href")
    assert page.locator("#again").is_visible() and page.locator("#offline").is_hidden()
    page.goto(f"{server.url}/?kind=recordings")
    assert RECORDING.match(page.locator(".shelf .item h3").first.inner_text())


def test_api_docs_page(server, chromium):
    document = requests.get(f"{server.url}/schema/openapi.json").json()
    assert [t["name"] for t in document["tags"]] == ["collections", "media", "capture", "search", "streams",
                                                     "editor", "jobs", "operations"]
    operations = [(m, p, op) for p, item in document["paths"].items() for m, op in item.items()]
    assert not any(p in ("/", "/watch", "/embed", "/capture", "/player", "/signin") or p.startswith("/library")
                   for _, p, _ in operations)
    for method, path, op in operations:
        assert len(op["tags"]) == 1 and op["tags"][0] in {t["name"] for t in document["tags"]}, (method, path)
        assert " " in op["summary"] and not re.match(r"^[A-Z][a-z]+[A-Z]", op["summary"]), (method, path, op["summary"])
    assert list(document["paths"]["/health"]["get"]["responses"]) == ["200"]
    video = document["paths"]["/video/{media_id}"]["get"]
    assert {"401", "404"} <= set(video["responses"]) and "416" not in video["responses"]
    assert "416" in document["paths"]["/stream/{token}/{name}"]["get"]["responses"]

    page = new_page(chromium, bypass_csp=False)  # the page's own policy: nothing leaves this server
    page.goto(f"{server.url}/schema")
    page.wait_for_selector("#redoc-container [data-item-id]", timeout=30_000)
    assert page.locator("header.top a[href$='/']").count() >= 1
    page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run({ exclude: [['#redoc-container']] }, { resultTypes: ['violations'] })")
    assert [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")] == []
    assert page.aborted == []


def _keys(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REELDB, "keys", *args, "--data-dir", str(server.data_dir)], capture_output=True,
                          text=True, check=True)


def _listed(server, kind: str) -> list[str]:
    answer = requests.get(f"{server.url}/{kind}", headers={"x-access-token": server.api_key})
    return [m["id"] for m in answer.json()["data"][f"{kind}s"]]


def _session_ids(server) -> list[str]:
    answer = requests.get(f"{server.url}/collection/default/capture/session",
                          headers={"x-access-token": server.api_key})
    return [s["session_id"] if "session_id" in s else s["id"] for s in answer.json()["data"]["sessions"]]


def _cookie_header(page) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
