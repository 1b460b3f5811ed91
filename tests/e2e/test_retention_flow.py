"""Retention run by the job system: raw channel assets go after REELDB_RAW_RETENTION_DAYS, a
session's whole media after REELDB_RETENTION_DAYS; the API answers 404 for what went, the rest
(the session's record, other media) remains, and /metrics counts it."""

from __future__ import annotations

import asyncio

import pytest
import requests
from support.media import make_video, screen_ts
from prometheus_client.parser import text_string_to_metric_families
from support.recording import record, use_reeldb_recorder
from support.server_process import wait_until

pytestmark = pytest.mark.slow

SECONDS = 3.0
TWO_SECONDS = 2 / 86400  # in days


def metric(url: str, name: str, **labels: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def status(server, path: str) -> int:
    return requests.get(f"{server.url}/{path}", headers={"x-access-token": server.api_key}, timeout=10).status_code


def test_raw_then_full_retention(server_factory, hook, tmp_path):
    use_reeldb_recorder()
    import videodb

    server = server_factory(raw_retention_days=str(TWO_SECONDS), retention_interval="0.5")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    coll = conn.get_collection()
    upload = coll.upload(file_path=str(make_video(tmp_path / "keep.mp4", 1.0)))
    cap = conn.create_capture_session(end_user_id="ret", callback_url=hook.url)
    token = conn.generate_client_token(expires_in=600)
    sources = {"mic:default": "pattern:tone:440:0.3",
               "display:1": str(screen_ts(tmp_path / "screen.ts", SECONDS + 3, (90, 90, 0)))}
    asyncio.run(record(server.url, token, cap.id, sources, {"mic:default": True, "display:1": True}, SECONDS,
                       primary="display:1"))
    hook.wait_for(lambda ev: any(e["event"] == "capture_session.exported" for e in ev), timeout=60)
    raw = conn.get(f"collection/{coll.id}/capture/session/{cap.id}")
    assets = {r["name"]: r["exported_asset_id"] for r in raw["rtstreams"]}
    video_id = raw["exported_video_id"]
    folder = server.data_dir / "sessions" / cap.id

    # Raw retention: the channel assets and the session's channel files go; the muxed export stays.
    wait_until(lambda: metric(server.url, "reeldb_retention_deleted_assets_total", scope="raw") == 2, 30,
               "raw retention")
    assert status(server, f"audio/{assets['mic:default']}") == 404
    assert status(server, f"video/{assets['display:1']}") == 404
    body = requests.get(f"{server.url}/video/{assets['display:1']}", headers={"x-access-token": server.api_key},
                        timeout=10).json()
    assert body["success"] is False and body["message"]
    assert not folder.exists()
    assert status(server, f"video/{video_id}") == 200
    assert coll.get_video(video_id).length > SECONDS - 1
    assert metric(server.url, "reeldb_retention_runs_total") >= 1
    assert metric(server.url, "reeldb_retention_freed_bytes_total") > 0
    assert "retention (raw" in server.log()

    # Full retention: the session's remaining media goes; the session and the upload remain.
    server.env["REELDB_RETENTION_DAYS"] = str(TWO_SECONDS)
    server.restart()
    wait_until(lambda: metric(server.url, "reeldb_retention_deleted_assets_total", scope="media") == 1, 30,
               "full retention")
    assert status(server, f"video/{video_id}") == 404
    assert conn.get_capture_session(cap.id).status == "exported"
    assert status(server, f"video/{upload.id}") == 200
    assert coll.get_video(upload.id).length == upload.length
    assert not (server.data_dir / "media" / coll.id / video_id).exists()
