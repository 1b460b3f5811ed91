"""A capture whose mic and system audio carry the same speech 1 s apart (a call played through the
speakers), recorded through the SDK's CaptureClient, exported and indexed by the server on its
own: the video's transcript comes from each channel alone, each sentence once, every word and
search hit naming its channel; each raw channel asset has its own transcript."""

from __future__ import annotations

import asyncio

import pytest
import requests
import videodb
from support.recording import record, use_reeldb_recorder
from support.media import screen_ts, write_wav
from support.speech import compose, echoed, require_espeak
from support.server_process import wait_until

pytestmark = pytest.mark.slow

SENTENCES = {
    "budget": "The quarterly budget review is scheduled for next Tuesday afternoon.",
    "slides": "Please send the slides to the marketing team before Friday.",
    "berlin": "The new office in Berlin opens in September.",
}


def test_a_captured_call_is_indexed_per_channel_and_searchable(server_factory, tmp_path, hook):
    require_espeak()
    use_reeldb_recorder()
    server = server_factory(sync_wait="10", auto_index="true")
    audio, placed = compose(list(SENTENCES.values()), gap=1.5, lead=0.5)
    mic = write_wav(tmp_path / "mic.wav", audio)
    system = write_wav(tmp_path / "system.wav", echoed(audio, 1.0))
    screen = screen_ts(tmp_path / "screen.ts", len(audio) / 48000 + 4, (40, 90, 200))
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u", callback_url=hook.url)
    token = conn.generate_client_token(expires_in=600)
    asyncio.run(record(server.url, token, cap.id,
                       {"mic:default": str(mic), "system_audio:default": str(system), "display:1": str(screen)},
                       {"mic:default": True, "system_audio:default": True, "display:1": True},
                       len(audio) / 48000 + 2.0))
    hook.wait_for(lambda ev: any(e["status"] == "exported" for e in ev), timeout=90)
    headers = {"x-access-token": server.api_key}
    session = requests.get(f"{server.url}/collection/default/capture/session/{cap.id}", headers=headers).json()["data"]
    video_id = session["exported_video_id"]
    raw = {r["channel_id"]: r["exported_asset_id"] for r in session["rtstreams"]}
    assert raw["mic"].startswith("a-") and raw["system_audio"].startswith("a-")

    def search(query: str) -> dict | None:
        body = requests.post(f"{server.url}/video/{video_id}/search/v2", headers=headers,
                             json={"query": query, "search_type": "semantic", "index_type": "spoken_word"}).json()
        return body if body["success"] else None

    wait_until(lambda: search("budget review") is not None, 120, "the export to be indexed (REELDB_AUTO_INDEX)")
    # the video's transcript: each sentence once, every word labelled (VideoDB's shape plus `channel`)
    words = conn.get_collection().get_video(video_id).get_transcript()
    assert words and all(set(w) == {"start", "end", "text", "channel"} for w in words)
    assert {w["channel"] for w in words} <= {"mic", "system_audio"}
    text = " ".join(w["text"] for w in words).lower()
    for key in SENTENCES:
        assert text.count(key) == 1, text
    sentences = requests.get(f"{server.url}/video/{video_id}/transcription", headers=headers,
                             params={"segmenter": "sentence"}).json()["data"]["word_timestamps"]
    assert sentences and all(s["channel"] in ("mic", "system_audio") for s in sentences)
    # search finds each sentence, and its hit names the channel
    for key, sentence in SENTENCES.items():
        docs = search(sentence)["data"]["results"][0]["docs"]
        assert key in docs[0]["text"].lower() and docs[0]["channel"] in ("mic", "system_audio")
        assert {"start", "end", "text", "score", "stream_url", "player_url"} <= set(docs[0])
    # each raw channel asset has its own transcript (echo included: it is what that channel heard)
    for channel in ("mic", "system_audio"):
        body = requests.get(f"{server.url}/audio/{raw[channel]}/transcription", headers=headers).json()
        assert body["success"] and "budget" in body["data"]["text"].lower(), body
    # captions and the player's transcript say who spoke
    folder = conn.get_collection().get_video(video_id).stream_url.rsplit("/", 1)[0]
    vtt = requests.get(f"{folder}/captions.vtt").text
    assert "<v Mic>Mic: " in vtt or "<v System audio>System audio: " in vtt
    segments = requests.get(f"{folder}/transcript.json").json()["segments"]
    assert segments and all(s["channel"] in ("mic", "system_audio") for s in segments)
