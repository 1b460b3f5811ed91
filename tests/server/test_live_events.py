"""Events and live-index routes without a recording: what is refused, and how (the recording's
side is tests/e2e/test_live_indexes.py)."""

from __future__ import annotations

import pytest
import requests
from videodb.exceptions import InvalidRequestError


def test_events_are_kept_and_bad_prompts_refused(server, conn):
    phrase = conn.create_event('"the quarterly budget"', "budget")
    prose = conn.create_event("someone talks about money", "money")
    assert [(e["event_id"], e["label"]) for e in conn.list_events()] == [(phrase, "budget"), (prose, "money")]
    key = {"x-access-token": server.api_key}
    big = requests.post(server.url + "/rtstream/event", headers=key, json={"event_prompt": "x" * 100_000, "label": "l"})
    assert big.status_code == 413 and big.json()["success"] is False
    for prompt, why in (("/(a+)+$/", "backtracks"), ("/(unclosed/", "not a valid"), ('""', "empty")):
        answer = requests.post(server.url + "/rtstream/event", headers=key, json={"event_prompt": prompt, "label": "l"})
        assert answer.status_code == 400 and why in answer.json()["message"], (prompt, answer.text)


def test_live_index_routes_name_what_is_missing(server):
    key = {"x-access-token": server.api_key}
    spoken = {"extraction_type": "transcript", "extraction_config": {"segmenter": "word", "segmentation_value": 10}}
    assert requests.post(server.url + "/rtstream/rts-nope/index/scene", headers=key, json=spoken).status_code == 404
    for path in ("/rtstream/rts-nope/index/scene", "/rtstream/rts-nope/index/rtsi-1",
                 "/rtstream/rts-nope/index/scene/rtsi-1", "/rtstream/rts-nope/index/rtsi-1/alert"):
        answer = requests.get(server.url + path, headers=key)
        assert answer.status_code == 404 and answer.json()["success"] is False, (path, answer.text)
    for query in ({"page": 0}, {"page_size": 0}, {"page_size": 1001}):  # refused as declared
        answer = requests.get(server.url + "/rtstream/rts-nope/index/scene/rtsi-1", headers=key, params=query)
        assert answer.status_code == 400 and answer.json()["success"] is False, (query, answer.text)
        assert "page" in answer.json()["message"], answer.text
    alert = requests.post(server.url + "/rtstream/rts-nope/index/rtsi-1/alert", headers=key,
                          json={"event_id": "event-1", "callback_url": "ftp://example.com"})
    assert alert.status_code == 400 and "http" in alert.json()["message"]
    # typed (v2) indexes' alerts stay VideoDB's cloud feature
    typed = requests.get(server.url + "/rtstream/rts-nope/indexes/i-1/alert", headers=key)
    assert typed.status_code == 501 and "not available in ReelDB" in typed.json()["message"]


def test_the_sdk_raises_the_refusals(conn):
    with pytest.raises(InvalidRequestError, match="backtracks"):
        conn.create_event("/(x+x+)+y/", "runaway")
