"""Operations during a real recording: /metrics scraped while the SDK's CaptureClient records
through reeldb-recorder (the server's media on REELDB_ICE_PORT_RANGE), and a `reeldb backup` taken
mid-recording restored into a second server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import av
import pytest
import requests
from support.media import make_video, screen_ts
from prometheus_client.parser import text_string_to_metric_families
from support.recording import record, use_reeldb_recorder
from support.server_process import REELDB, process_family

pytestmark = pytest.mark.slow

SECONDS = 8.0


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple], float]:
    answer = requests.get(url + "/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def udp_ports(pid: int) -> set[int]:
    """Local ports of the UDP sockets process ``pid`` and its children hold (from /proc)."""
    inodes = set()
    for member in process_family(pid):
        try:
            fds = list(Path(f"/proc/{member}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def value(sample: dict, name: str, **labels: str) -> float:
    return sample.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_and_backup_during_a_recording(server_factory, hook, tmp_path):
    use_reeldb_recorder()
    import videodb

    low = 43000 + os.getpid() % 500 * 20  # a range of 20 ports for this run's WebRTC host candidates
    server = server_factory(webhook_backoff="0.2", ice_port_range=f"{low}-{low + 19}")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    coll = conn.get_collection()
    upload = coll.upload(file_path=str(make_video(tmp_path / "clip.mp4", 2.0)))
    cap = conn.create_capture_session(end_user_id="ops", callback_url=hook.url)
    token = conn.generate_client_token(expires_in=600)
    sources = {"mic:default": "pattern:tone:440:0.3",
               "display:1": str(screen_ts(tmp_path / "screen.ts", SECONDS + 4, (0, 160, 0)))}
    store = {"mic:default": True, "display:1": True}
    before = scrape(server.url)
    assert value(before, "reeldb_capture_sessions", status="created") == 1
    assert value(before, "reeldb_data_dir_free_bytes") > 0
    samples: list[dict] = []
    backup_dir = tmp_path / "backup"
    backup_run: list[subprocess.CompletedProcess] = []
    media_ports: set[int] = set()

    async def during(client, channels):
        start = time.time()
        while time.time() - start < SECONDS:
            samples.append(await asyncio.to_thread(scrape, server.url))
            media_ports.update(udp_ports(server.proc.pid))
            if not backup_run and time.time() - start > SECONDS / 2:
                backup_run.append(await asyncio.to_thread(
                    subprocess.run, [REELDB, "backup", str(backup_dir), "--data-dir", str(server.data_dir)],
                    capture_output=True, text=True, timeout=60))
            await asyncio.sleep(0.7)

    asyncio.run(record(server.url, token, cap.id, sources, store, SECONDS, primary="display:1", during=during))
    hook.wait_for(lambda ev: any(e["event"] == "capture_session.exported" for e in ev), timeout=60)

    # REELDB_ICE_PORT_RANGE: the server's media sockets were bound inside the range.
    assert media_ports and all(low <= p <= low + 19 for p in media_ports), (media_ports, low)

    # During: one session active with a live ingest, its stored channels' bytes and frames rising.
    live = [s for s in samples if value(s, "reeldb_capture_sessions", status="active") == 1]
    assert len(live) >= 4, [value(s, "reeldb_capture_sessions", status="active") for s in samples]
    assert all(value(s, "reeldb_ingest_sessions") == 1 for s in live)
    for channel in ("display:1", "mic:default"):
        key = {"session_id": cap.id, "channel_id": channel}
        frames = [value(s, "reeldb_ingest_frames_total", **key) for s in live]
        sizes = [value(s, "reeldb_ingest_bytes_total", **key) for s in live]
        assert frames == sorted(frames) and frames[-1] > frames[0] and frames[-1] > 0, (channel, frames)
        assert sizes == sorted(sizes) and sizes[-1] > sizes[0] and sizes[-1] > 0, (channel, sizes)
        assert value(live[-1], "reeldb_ingest_bitrate_bits_per_second", **key) > 1000
        assert value(live[-1], "reeldb_ingest_dropped_frames_total", **key) == 0
        packets = [value(s, "reeldb_ingest_rtp_packets_total", **key) for s in live]
        assert packets == sorted(packets) and packets[-1] > packets[0], (channel, packets)
        assert value(live[-1], "reeldb_ingest_rtp_packets_lost_total", **key) == 0  # loopback
    # No live transcript: no speech shed (the counter is there for every audio channel, none for video)
    shed = "reeldb_live_speech_shed_seconds_total"
    assert live[-1][(shed, (("channel_id", "mic:default"), ("session_id", cap.id)))] == 0
    assert (shed, (("channel_id", "display:1"), ("session_id", cap.id))) not in live[-1]
    skipped = "reeldb_live_screen_shed_frames_total"  # and no screen reader: no picture skipped (video only)
    assert live[-1][(skipped, (("channel_id", "display:1"), ("session_id", cap.id)))] == 0
    assert (skipped, (("channel_id", "mic:default"), ("session_id", cap.id))) not in live[-1]
    display = {"session_id": cap.id, "channel_id": "display:1"}
    assert value(live[-1], "reeldb_ingest_keyframes_total", **display) >= 2  # a keyframe a second
    assert ("reeldb_ingest_keyframe_requests_total", tuple(sorted(display.items()))) in live[-1]

    # After: nothing active, the session exported, the export job counted with its duration.
    deadline = time.time() + 20
    while True:
        after = scrape(server.url)
        if value(after, "reeldb_webhook_deliveries", status="pending") == 0 or time.time() > deadline:
            break
        time.sleep(0.3)
    assert value(after, "reeldb_capture_sessions", status="active") == 0
    assert value(after, "reeldb_capture_sessions", status="exported") == 1
    assert value(after, "reeldb_ingest_sessions") == 0
    assert not [k for k in after if k[0] == "reeldb_ingest_frames_total"]
    assert value(after, "reeldb_jobs_finished_total", kind="export", status="done") == 1
    assert value(after, "reeldb_jobs_finished_total", kind="upload", status="done") == 1
    assert value(after, "reeldb_job_duration_seconds_count", lane="exports") == 1
    assert value(after, "reeldb_job_duration_seconds_sum", lane="exports") > 0
    assert value(after, "reeldb_job_queue_depth", lane="exports") == 0
    assert value(after, "reeldb_webhook_attempts_total") >= 6  # created … exported, each delivered
    assert value(after, "reeldb_webhook_failed_attempts_total") == 0

    # The backup was taken mid-recording; restored, a second server lists the same sessions and plays
    # the same media. The session was live in the copy: the second server stops and exports it.
    assert backup_run and backup_run[0].returncode == 0, backup_run[0].stderr if backup_run else "no backup"
    assert (backup_dir / "reeldb.db").exists() and not (backup_dir / "api_key").exists()
    target = tmp_path / "restored"
    done = subprocess.run([REELDB, "restore", str(backup_dir), "--data-dir", str(target)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([REELDB, "restore", str(backup_dir), "--data-dir", str(target)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "not empty" in again.stderr
    second = server_factory("restored", webhook_backoff="0.2", ingest_workers="0")
    conn2 = videodb.connect(api_key=second.api_key, base_url=second.url)
    coll2 = conn2.get_collection()
    assert [s.id for s in conn2.list_capture_sessions()] == [s.id for s in conn.list_capture_sessions()] == [cap.id]
    copy = coll2.get_video(upload.id)
    assert (copy.length, copy.name) == (upload.length, upload.name)
    with av.open(copy.stream_url) as a, av.open(coll.get_video(upload.id).stream_url) as b:
        assert sum(1 for _ in a.decode(video=0)) == sum(1 for _ in b.decode(video=0)) > 0
    deadline = time.time() + 60
    restored_cap = conn2.get_capture_session(cap.id)
    while restored_cap.status != "exported" and time.time() < deadline:
        time.sleep(0.5)
        restored_cap = conn2.get_capture_session(cap.id)
    assert restored_cap.status == "exported", restored_cap.status
    partial = coll2.get_video(restored_cap.exported_video_id)
    assert SECONDS / 2 - 2 < partial.length < SECONDS, partial.length  # what was flushed at backup time
    with av.open(partial.stream_url) as c:
        assert sum(1 for _ in c.decode(video=0)) > (SECONDS / 2 - 2) * 15 * 0.8
