"""The drop-in's 501s (issue 12): every row of ``server/routes/unavailable.py`` answers in the
envelope with 501 and its message after the usual credential checks, none shadows an implemented
route, and none is in the OpenAPI document."""

from __future__ import annotations

import re

import requests
import videodb
from reeldb.server.routes.unavailable import ON_IMPLEMENTED_PATHS, TABLE, scene_index_feature


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def test_every_row_answers_501_with_its_message_after_credentials(server):
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    token = conn.generate_client_token(expires_in=600)
    key = {"x-access-token": server.api_key}
    assert len(TABLE) > 60  # (a table that lost most of its rows is a bug; issue 20 took the video scene rows)
    for row in TABLE:
        url = server.url + concrete(row.path)
        answer = requests.request(row.method, url, headers=key, json={})
        body = answer.json()
        assert body == {"success": False, "message": row.message, "error_code": "NOT_AVAILABLE"}, (row, body)
        verb = "are" if row.plural else "is"
        assert f"{row.feature} {verb} not available in ReelDB: ".lower() in body["message"].lower(), body
        if (row.method, row.path) in ON_IMPLEMENTED_PATHS:  # a 405 with the document's Allow, and the message
            assert answer.status_code == 405 and row.method not in answer.headers["allow"], (row, answer.headers)
            continue
        assert answer.status_code == 501, (row.method, row.path, answer.status_code, answer.text[:200])
        assert requests.request(row.method, url, json={}).status_code == 401, (row.method, row.path)
        assert requests.request(row.method, url, json={},
                                headers={"x-access-token": token}).status_code == 403, (row.method, row.path)
        # a path it does not take is a 405 that names what it does take
        other = "PUT" if row.method != "PUT" else "POST"
        refused = requests.request(other, url, headers=key, json={})
        assert refused.status_code == 405 and row.method in refused.headers["allow"], (row.method, row.path)


def test_the_sdk_gets_the_message_as_its_error(server):
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    try:
        conn.get_collection().generate_image(prompt="a lighthouse at dusk")
    except videodb.exceptions.InvalidRequestError as exc:
        assert exc.response.status_code == 501
        assert "Generative media is not available in ReelDB: generative media needs a cloud model" in str(exc)
    else:
        raise AssertionError("generate_image() returned")


def test_implemented_routes_beside_the_rows_are_not_shadowed(server):
    """Same prefixes, other tails or methods: the implemented handler still answers (its own 404)."""
    key = {"x-access-token": server.api_key}
    for method, path, status in [("POST", "/video/m-nope/index", 404), ("GET", "/video/m-nope", 404),
                                 ("GET", "/video/m-nope/index", 404), ("POST", "/video/m-nope/index/scene", 404),
                                 ("GET", "/video/m-nope/scenes", 404),
                                 ("POST", "/video/m-nope/search", 404), ("GET", "/rtstream/rts-nope", 404),
                                 ("PATCH", "/rtstream/rts-nope/status", 404), ("GET", "/rtstream", 200),
                                 ("POST", "/rtstream/rts-nope/search", 404), ("GET", "/collection/default", 200),
                                 ("POST", "/collection/default/search", 400), ("GET", "/async-response/job-nope", 404),
                                 ("GET", "/video/m-nope/thumbnails", 404), ("POST", "/video/m-nope/workflow", 400)]:
        answer = requests.request(method, server.url + path, headers=key, json={})
        assert answer.status_code == status, (method, path, answer.status_code, answer.text[:200])
        assert answer.json().get("error_code") != "NOT_AVAILABLE"
    # a scene search of a collection without scene indexes says what to call (issue 20: implemented)
    video_search = requests.post(server.url + "/collection/default/search", headers=key,
                                 json={"query": "budget", "index_type": "scene"})
    assert video_search.status_code == 400 and "index_scenes()" in video_search.json()["message"]


def test_the_rows_are_not_in_the_openapi_document_and_only_two_share_a_path_with_it(server):
    paths = requests.get(server.url + "/schema/openapi.json").json()["paths"]
    documented = {(m.upper(), p) for p, item in paths.items() for m in item}
    shared = set()
    for row in TABLE:
        plain = re.sub(r"\{(\w+):\w+\}", r"{\1}", row.path)
        assert (row.method, plain) not in documented, row
        if plain in paths:
            shared.add((row.method, row.path))
    assert shared == ON_IMPLEMENTED_PATHS


def test_scene_index_calls_name_their_own_missing_piece(server):
    """One path, four SDK methods: each 501 names what that method lacks (live spoken-word and
    screen-text indexes are implemented)."""
    key = {"x-access-token": server.api_key}
    cases = [("/rtstream/rts-1/index/scene", {"extraction_type": "transcript", "prompt": "summarise"},
              "Audio indexes are not available in ReelDB: an audio index describes"),
             ("/video/m-1/index/scene", {"extraction_type": "transcript", "extraction_config": None},
              "Audio indexes are not available")]
    for path, body, message in cases:
        answer = requests.post(server.url + path, headers=key, json=body)
        if path.startswith("/rtstream/"):  # an unknown rtstream is a 404 first, as on every rtstream route
            assert answer.status_code == 404 and answer.json()["error_code"] == "NOT_FOUND", (path, answer.text)
            continue
        assert answer.status_code == 501 and answer.json()["message"].startswith(message), (path, body, answer.text)
    garbage = requests.post(server.url + "/video/m-1/index/scene", headers=key, data=b"\xff{", timeout=10)
    assert garbage.status_code in (400, 501) and garbage.json()["success"] is False
    assert scene_index_feature(["not", "a", "dict"]).name == "live screen-text indexes"
    # live spoken-word (a transcript segmented, no prompt) and screen-text (a shot or time extraction)
    # indexes are implemented: the unknown rtstream's 404
    for body in ({"extraction_type": "transcript", "extraction_config": {"segmenter": "word", "segmentation_value": 10}},
                 {"extraction_type": "time_based", "extraction_config": {"time": 2, "frame_count": 5}}):
        live = requests.post(server.url + "/rtstream/rts-1/index/scene", headers=key, json=body)
        assert live.status_code == 404 and live.json()["error_code"] != "NOT_AVAILABLE"
    # a video's screen-text index is implemented: its route answers (here, the video's 404)
    shot = requests.post(server.url + "/video/m-1/index/scene", headers=key, json={"extraction_type": "shot"})
    assert shot.status_code == 404 and shot.json()["error_code"] != "NOT_AVAILABLE"
