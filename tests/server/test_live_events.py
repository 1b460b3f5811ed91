"""Events and live-index routes without a recording: what is refused, and how (the recording's
side is tests/e2e/test_live_indexes.py)."""

from __future__ import annotations

import itertools
import re
import sys

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


def test_what_the_schema_allows_the_server_takes(server, conn):
    """Text the OpenAPI document's patterns allow is what the server takes, also where ECMA's regexes
    (the schema's) and Python's differ: their ``\\s`` are not the same set (schemathesis found a
    prompt of U+0085 refused as empty, and an alert's URL with U+001F refused, both schema-valid)."""
    key = {"x-access-token": server.api_key}
    for prompt in ("\u0085", " \u3000 ", "\x1c"):  # Python's whitespace only: refused, as the schema says
        answer = requests.post(server.url + "/rtstream/event", headers=key, json={"event_prompt": prompt, "label": "l"})
        assert answer.status_code == 400 and answer.json()["success"] is False, (prompt, answer.text)
    assert conn.create_event("\u0085budget\u0085", "\u00a0money")  # stripped, as Python strips
    alert, session = "/rtstream/rts-nope/index/rtsi-1/alert", "/collection/default/capture/session"
    for url, paths in (("http://\x1fhost/", (alert, session)), ("http://?x", (alert, session)),
                       ("http://[x/", (alert, session)), ("http://a b", (alert,))):  # no host, or whitespace
        for path in paths:
            body = {"event_id": "e", "callback_url": url} if path == alert else {"end_user_id": "u", "callback_url": url}
            answer = requests.post(server.url + path, headers=key, json=body)
            assert answer.status_code == 400 and "callback_url" in answer.json()["message"], (url, path, answer.text)


def test_name_pattern_is_the_rule_it_states():
    """A name: no control character, at least one that is not a space; written without a lookahead
    (schema-driven generators search a lookahead's lengths by rejection) and with no two parts
    that take the same character (a long refused name costs linear time)."""
    from reeldb.server.text import NAME_PATTERN, WORDS_PATTERN

    name = re.compile(NAME_PATTERN)
    alphabet = (" ", "a", "\x00", "\x1f", "\x7f", "\x85", "\t", "\u3000")
    for n in range(6):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            rule = bool(text) and all(c >= " " and c != "\x7f" for c in text) and text.strip(" ") != ""
            assert bool(name.search(text)) == rule, repr(text)
    words = re.compile(WORDS_PATTERN)
    assert [c for c in range(sys.maxunicode + 1) if bool(words.fullmatch(chr(c))) == chr(c).isspace()] == []
