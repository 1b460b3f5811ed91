"""The API page's examples (``server/api_examples.json``) are real bodies: every operation there is
done again against the real server, and its answer must have the example's shape (the same keys
and JSON types all the way down; ``null`` stands for any type). Recorded by this module:
``python tests/server/test_api_examples.py`` writes the file again from a fresh server.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.media import write_video  # noqa: E402
from support.speech import MEETING_A, compose, require_espeak  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "server" / "api_examples.json"


def record(base_url: str, api_key: str, video: Path) -> dict[str, dict[str, Any]]:
    """Each documented operation done once, in the order a client does them: ``"METHOD /path"``
    (as the schema names it) → the request body sent and the answer's body."""
    out: dict[str, dict[str, Any]] = {}
    session = requests.Session()
    session.headers["x-access-token"] = api_key

    def call(method: str, template: str, body: dict[str, Any] | None = None, **ids: str) -> dict[str, Any]:
        answer = session.request(method, base_url + template.format(**ids), json=body, timeout=120)
        assert answer.status_code < 300, (method, template, answer.status_code, answer.text)
        # the first call of an operation is its example (an upload's job, not the index's after it)
        out.setdefault(f"{method} {template}", {"request": body, "response": answer.json()})
        return answer.json()

    def finished(job: dict[str, Any]) -> dict[str, Any]:
        job_id = job["data"]["id"]
        for _ in range(1200):
            done = session.get(f"{base_url}/async-response/{job_id}", timeout=30).json()
            if done.get("status") != "processing":
                break
            time.sleep(0.1)
        return call("GET", "/async-response/{job_id}", job_id=job_id)

    call("GET", "/health")
    collection_id = call("POST", "/collection", {"name": "Meetings", "description": "Weekly calls"})["data"]["id"]
    call("GET", "/collection/{collection_id}", collection_id=collection_id)
    upload_url = call("GET", "/collection/{collection_id}/upload_url", collection_id=collection_id)["data"]["upload_url"]
    with open(video, "rb") as f:
        requests.post(upload_url, files={"file": (video.name, f)}, timeout=60).raise_for_status()
    imported = finished(call("POST", "/collection/{collection_id}/upload",
                             {"url": upload_url, "name": "Stand-up", "media_type": "video"},
                             collection_id=collection_id))
    video_id = imported["data"]["id"]
    call("GET", "/video/{media_id}", media_id=video_id)
    finished(call("POST", "/video/{media_id}/index", {"index_type": "spoken_word", "force": False},
                  media_id=video_id))
    call("GET", "/video/{media_id}/transcription", media_id=video_id)
    call("POST", "/video/{media_id}/search", {"query": "budget", "index_type": "spoken_word",
                                              "search_type": "semantic", "result_threshold": 5},
         media_id=video_id)
    call("POST", "/collection/{collection_id}/search", {"query": "budget", "index_type": "spoken_word",
                                                       "search_type": "semantic", "result_threshold": 5},
         collection_id=collection_id)
    session_id = call("POST", "/collection/{collection_id}/capture/session",
                      {"end_user_id": "user-42", "metadata": {"room": "stand-up"}},
                      collection_id=collection_id)["data"]["session_id"]
    call("GET", "/collection/{collection_id}/capture/session/{session_id}",
         collection_id=collection_id, session_id=session_id)
    call("POST", "/capture/session/token", {"expires_in": 600})
    return out


def differences(example: Any, real: Any, where: str = "") -> list[str]:
    """Where ``real`` has not the shape of ``example``: other keys, or another JSON type."""
    if example is None or real is None:
        return []
    if isinstance(example, dict) and isinstance(real, dict):
        found = [f"{where}: keys {sorted(set(example) ^ set(real))}"] if set(example) != set(real) else []
        return found + [d for k in set(example) & set(real) for d in differences(example[k], real[k], f"{where}.{k}")]
    if isinstance(example, list) and isinstance(real, list):
        return differences(example[0], real[0], f"{where}[0]") if example and real else []
    kinds = (bool, (int, float), str, list, dict)
    same = any(isinstance(example, k) and isinstance(real, k) for k in kinds)
    if isinstance(example, bool) != isinstance(real, bool):
        same = False
    return [] if same else [f"{where}: {type(example).__name__} in the example, {type(real).__name__} answered"]


def shortened(value: Any) -> Any:
    """The same body with lists cut to their first three items, for the page."""
    if isinstance(value, dict):
        return {k: shortened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shortened(v) for v in value[:3]]
    return value


@pytest.fixture(scope="module")
def meeting(tmp_path_factory):
    require_espeak()
    audio, _ = compose(MEETING_A[:2], gap=1.0, lead=0.5)
    return write_video(tmp_path_factory.mktemp("examples") / "stand-up.mp4", audio)


#: Asynchronous work always answers VideoDB's ``processing`` pattern first (no waiting inside the
#: request), so each example is the same whatever the machine's speed.
SETTINGS = {"sync_wait": "0"}


@pytest.fixture
def server(tmp_path):
    from support.in_process import InProcessServer

    running = InProcessServer(tmp_path / "data", env=SETTINGS).start()
    yield running
    running.stop()


@pytest.mark.slow  # transcribes and indexes a short meeting
def test_the_examples_are_what_the_server_answers(server, meeting):
    documented = json.loads(EXAMPLES.read_text())
    answered = record(server.url, server.api_key, meeting)
    assert set(documented) == set(answered)
    for operation, example in documented.items():
        assert differences(example["request"], answered[operation]["request"], operation) == []
        assert differences(example["response"], answered[operation]["response"], operation) == []


def test_the_schema_shows_them(server):
    document = requests.get(f"{server.url}/schema/openapi.json", timeout=30).json()
    documented = json.loads(EXAMPLES.read_text())
    for operation, example in documented.items():
        method, path = operation.split(" ", 1)
        shown = document["paths"][path][method.lower()]
        success = next(r for code, r in shown["responses"].items() if code.startswith("2"))
        # (the document leaves out a null field: litestar writes no None)
        assert success["content"]["application/json"]["example"] == without_nulls(example["response"]), operation
        if example["request"] is not None:
            assert shown["requestBody"]["content"]["application/json"]["example"] == example["request"], operation


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


if __name__ == "__main__":  # record the examples again
    import tempfile

    from support.in_process import InProcessServer

    with tempfile.TemporaryDirectory() as tmp:
        audio, _ = compose(MEETING_A[:2], gap=1.0, lead=0.5)
        path = write_video(Path(tmp) / "stand-up.mp4", audio)
        server = InProcessServer(Path(tmp) / "data", env=SETTINGS).start()
        try:
            text = json.dumps(shortened(record(server.url, server.api_key, path)), indent=2) + "\n"
            EXAMPLES.write_text(text.replace(server.url, "http://127.0.0.1:8700"))  # the address serve prints
        finally:
            server.stop()
    print(f"wrote {EXAMPLES}")
