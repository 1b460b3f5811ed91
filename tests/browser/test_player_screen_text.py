"""The watch page's screen text (issue 20) in Debian's headless Chromium: a video of two slides with a
scene index lists its scenes under "Text on screen" with their pictures (a click seeks there), and
its search marks screen-text hits apart from spoken ones."""

from __future__ import annotations

import pytest
from support.screens import record, slide

pytestmark = pytest.mark.slow


def test_the_text_on_screen_list_and_screen_hits(conn, chromium, tmp_path):
    size = (1280, 720)
    path = tmp_path / "slides.mp4"
    record(path, [(3.0, slide(size, "Quarterly budget review", ["Invoice 4471 overdue"])),
                  (3.0, slide(size, "Kubernetes cluster upgrade", ["Drain nodes before rollout"]))], size)
    video = conn.get_collection().upload(file_path=str(path))
    video.index_scenes()
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(video.player_url)
    page.wait_for_function("document.documentElement.dataset.scenes === '2'", timeout=20_000)
    assert page.locator("#screen-heading").is_visible()
    assert "Kubernetes cluster upgrade" in page.locator("#screen li").nth(1).inner_text()
    page.wait_for_function("[...document.querySelectorAll('#screen img')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=20_000)
    page.evaluate("reeldbPlayer.video.pause()")
    page.locator("#screen button").nth(1).click()
    page.wait_for_function("Math.abs(reeldbPlayer.video.currentTime - 3) < 0.3", timeout=10_000)

    page.fill("#q", "Drain nodes before rollout")
    page.press("#q", "Enter")
    page.wait_for_selector("#results .speaker[data-index='scene']", timeout=20_000)
    assert page.locator("#marks .hit.screen").count() >= 1
    assert page.locator("#results li").first.inner_text().startswith("0:03")
    assert not errors, errors
