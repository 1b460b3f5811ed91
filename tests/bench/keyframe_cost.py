"""Benchmark: what the keyframe cadence (``REELDB_KEYFRAME_INTERVAL``) costs in bitrate on a screen share.

    python tests/bench/keyframe_cost.py               # 40 s per recording, 4 recordings
    python tests/bench/keyframe_cost.py --seconds 15  # to check the script works

Two servers run side by side, one with the default cadence (a keyframe asked for whenever none came
for 4 s) and one with it off (``0``: Chromium then sends keyframes only at the start). Debian's
headless Chromium records the same screen into each through ``/capture``, one after the other:

- **fake screen**: Chromium's own fake display (an animated test pattern, every frame changes);
- **slide deck**: a canvas drawing slides (title, bullets, a chart) that change every 8 s with a
  blinking cursor, handed to the page as its getDisplayMedia stream (a real screen cannot run
  here; the encoder, packetiser and everything after are Chromium's and ReelDB's own).

For each it prints the stored display file's bitrate, keyframes and largest keyframe gap, and the
cadence's cost as the ratio of the two bitrates.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "browser"))

import videodb  # noqa: E402
from support.server_process import ServerProcess  # noqa: E402
from test_capture_page import CHROMIUM, beeping_wav, chromium_args, record_screen  # noqa: E402

# Replaces getDisplayMedia with a 1280x720 canvas at 15 fps showing a slide deck (and keeps the
# page's own audio request working: system audio is not stored here).
SLIDE_DECK = """
(() => {
  const slides = [
    ["Quarterly review", ["Revenue up 12% on last quarter", "Churn down to 2.1%", "Two new regions live"]],
    ["Roadmap", ["Capture on Linux laptops", "Exact clips and compile", "Editor: raw stems, PiP"]],
    ["Hiring", ["3 engineers, 1 designer", "Onboarding in two weeks", "Mentors assigned"]],
    ["Questions?", ["reeldb.example/docs", "#reeldb on chat", "Thank you"]],
  ];
  function draw(ctx, t) {
    const [title, bullets] = slides[Math.floor(t / 8000) % slides.length];
    ctx.fillStyle = "#fdfdfb"; ctx.fillRect(0, 0, 1280, 720);
    ctx.fillStyle = "#1b3a6b"; ctx.fillRect(0, 0, 1280, 110);
    ctx.fillStyle = "#fff"; ctx.font = "bold 56px sans-serif"; ctx.fillText(title, 60, 75);
    ctx.fillStyle = "#222"; ctx.font = "36px sans-serif";
    bullets.forEach((b, i) => ctx.fillText("\\u2022 " + b, 80, 210 + i * 70));
    const bars = [120, 180, 150, 240, 210];
    bars.forEach((h, i) => { ctx.fillStyle = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f"][i];
                             ctx.fillRect(820 + i * 80, 640 - h, 60, h); });
    ctx.fillStyle = "#888"; ctx.font = "22px sans-serif"; ctx.fillText("ReelDB all-hands", 60, 690);
    if (Math.floor(t / 500) % 2) { ctx.fillStyle = "#000"; ctx.fillRect(560, 400, 3, 34); }  // caret
  }
  const real = navigator.mediaDevices.getDisplayMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getDisplayMedia = async (constraints) => {
    const canvas = document.createElement("canvas");
    canvas.width = 1280; canvas.height = 720;
    const ctx = canvas.getContext("2d");
    const t0 = performance.now();
    setInterval(() => draw(ctx, performance.now() - t0), 1000 / 15);
    draw(ctx, 0);
    const stream = canvas.captureStream(15);
    const track = stream.getVideoTracks()[0];
    try { track.contentHint = "detail"; } catch (e) {}
    if (constraints && constraints.audio) {
      const other = await real({ video: true, audio: true });
      other.getVideoTracks().forEach(t => t.stop());
      other.getAudioTracks().forEach(t => stream.addTrack(t));
    }
    return stream;
  };
})();
"""


def record(browser, server: ServerProcess, seconds: float, slides: bool) -> dict:
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    context = browser.new_context(viewport={"width": 1000, "height": 720})
    if slides:
        context.add_init_script(SLIDE_DECK)
    cap_id = record_screen(context.new_page(), server, conn, seconds)
    context.close()

    folder = server.data_dir / "sessions" / cap_id
    entry = next(c for c in json.loads((folder / "manifest.json").read_text())["channels"]
                 if c["channel_id"] == "display:1")
    size, keys, first, last, key_bytes = 0, [], None, 0.0, 0
    with av.open(str(folder / entry["file"])) as c:
        stream = c.streams.video[0]
        codec = stream.codec_context.name
        for p in c.demux(stream):
            if p.pts is None:
                continue
            t = float(p.pts * p.time_base)
            first = t if first is None else first
            last = max(last, t)
            size += p.size
            if p.is_keyframe:
                keys.append(t)
                key_bytes += p.size
    span = max(1e-6, last - (first or 0.0))
    gaps = [b - a for a, b in zip(keys, keys[1:] + [last])]
    return {"kbps": size * 8 / span / 1000, "keyframes": len(keys), "max_gap": max(gaps) if gaps else span,
            "key_share": key_bytes / max(1, size), "seconds": span, "codec": codec}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-keyframes-"))
    servers = {interval: ServerProcess(root / f"data-{interval}", env={"REELDB_KEYFRAME_INTERVAL": interval,
                                                                        "REELDB_AUTO_EXPORT": "0"})
               for interval in ("4", "0")}
    results: dict[tuple[str, str], dict] = {}
    try:
        for server in servers.values():
            server.start()
        wav = beeping_wav(root / "mic.wav")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(wav))
            for content, slides in (("fake screen", False), ("slide deck", True)):
                for interval, server in servers.items():
                    results[(content, interval)] = record(browser, server, args.seconds, slides)
            browser.close()
    finally:
        for server in servers.values():
            server.stop()

    print(f"{args.seconds:.0f} s per recording, Chromium {CHROMIUM}, stored display:1")
    print(f"{'content':<12} {'interval':>8} {'codec':>6} {'kbps':>8} {'keyframes':>9} {'max gap s':>9} {'key bytes':>9}")
    for (content, interval), r in results.items():
        print(f"{content:<12} {interval + ' s' if interval != '0' else 'off':>8} {r['codec']:>6} {r['kbps']:>8.0f} "
              f"{r['keyframes']:>9} {r['max_gap']:>9.1f} {r['key_share']:>8.0%}")
    for content in ("fake screen", "slide deck"):
        on, off = results[(content, "4")], results[(content, "0")]
        print(f"{content}: the 4 s cadence costs {on['kbps'] / off['kbps']:.2f}x the bitrate without it "
              f"({on['kbps'] - off['kbps']:+.0f} kbps)")


if __name__ == "__main__":
    main()
