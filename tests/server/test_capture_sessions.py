"""Capture sessions, client tokens and the status machine, through the official SDK."""

from __future__ import annotations

import subprocess
import time

import pytest
import videodb
from support.server_process import REELDB
from videodb.exceptions import AuthenticationError, InvalidRequestError

CHANNELS = [
    {"channel_id": "mic:default", "name": "Mic", "type": "audio", "store": True, "is_primary": False},
    {"channel_id": "display:1", "name": "Screen", "type": "video", "store": True, "is_primary": True},
    {"channel_id": "system_audio:default", "name": "System", "type": "audio", "store": False, "is_primary": False},
]


def recorder(server, conn) -> videodb.client.Connection:
    """A connection as the recorder holds it: a client token, not the API key."""
    return videodb.connect(session_token=conn.generate_client_token(expires_in=600), base_url=server.url)


def test_create_get_list_with_every_field(conn):
    cap = conn.create_capture_session(end_user_id="user-1", callback_url="http://127.0.0.1:9/hook",
                                      metadata={"app": "tests"})
    assert cap.id.startswith("cap-") and cap.status == "created"
    assert (cap.end_user_id, cap.metadata, cap.callback_url) == ("user-1", {"app": "tests"}, "http://127.0.0.1:9/hook")
    assert cap.rtstreams == [] and cap.channels == []
    got = conn.get_capture_session(cap.id)
    assert (got.id, got.status, got.end_user_id, got.metadata) == (cap.id, "created", "user-1", {"app": "tests"})
    assert got.export_status is None and got.exported_video_id is None
    coll = conn.get_collection()
    assert coll.get_capture_session(cap.id).id == cap.id
    listed = [s.id for s in conn.list_capture_sessions()]
    assert cap.id in listed
    assert cap.id in [s.id for s in coll.list_capture_sessions(status="created")]
    assert cap.id not in [s.id for s in conn.list_capture_sessions(status="active")]
    with pytest.raises(InvalidRequestError, match="status must be one of"):
        conn.list_capture_sessions(status="bogus")


def test_session_in_another_collection_is_not_found(conn):
    other = conn.create_collection(name="other", description="")
    cap = other.create_capture_session(end_user_id="u")
    assert other.get_capture_session(cap.id).id == cap.id
    with pytest.raises(InvalidRequestError, match="not found"):
        conn.get_capture_session(cap.id)  # looked up in the default collection


def test_recorder_lifecycle_with_client_token(server, conn):
    cap = conn.create_capture_session(end_user_id="u")
    rec = recorder(server, conn)
    started = rec.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    assert started["status"] == "starting" and started["session_id"] == cap.id
    assert started["webrtc_url"].endswith(f"/capture/session/{cap.id}/offer")
    seen = rec.get(f"capture/session/{cap.id}")
    assert seen["status"] == "starting"
    assert [c["channel_id"] for c in seen["channels"]] == ["mic:default", "display:1", "system_audio:default"]
    assert seen["primary_video_channel_id"] == "display:1"
    session = conn.get_capture_session(cap.id)
    assert [(c.id, c.store, c.is_primary) for c in session.channels] == [
        ("mic:default", True, False), ("display:1", True, True), ("system_audio:default", False, False)]
    assert [d.id for d in session.displays] == ["display:1"]
    rec.post(f"capture/session/{cap.id}/stop")
    assert conn.get_capture_session(cap.id).status == "stopped"


def test_illegal_transitions_are_refused(server, conn):
    rec = recorder(server, conn)
    cap = conn.create_capture_session(end_user_id="u")
    with pytest.raises(InvalidRequestError, match="from 'created' to 'stopping': the session was never started"):
        rec.post(f"capture/session/{cap.id}/stop")
    rec.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    with pytest.raises(InvalidRequestError, match="already starting: another recorder"):
        rec.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    rec.post(f"capture/session/{cap.id}/stop")
    with pytest.raises(InvalidRequestError, match="already stopped"):
        rec.post(f"capture/session/{cap.id}/stop")
    with pytest.raises(InvalidRequestError, match="cannot be restarted"):
        rec.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    assert conn.get_capture_session(cap.id).status == "stopped"


@pytest.mark.parametrize("channels, message", [
    ([], "channels must be a non-empty list"),
    ([{"channel_id": "webcam", "type": "video"}], "is not a channel id"),
    ([{"channel_id": "mic:default"}, {"channel_id": "mic:default"}], "listed twice"),
    ([{"channel_id": "mic:default", "type": "video"}], "is audio, not video"),
    ([{"channel_id": "mic:default", "type": "sound"}], "must be 'audio' or 'video'"),
    ([{"channel_id": "mic:default", "is_primary": True}], "is not a video channel"),
    ([{"channel_id": "display:1", "is_primary": True}, {"channel_id": "display:2", "is_primary": True}], "Only one"),
    ([{"channel_id": f"display:{i}"} for i in range(9)], "Too many channels: 9"),
    ([{"channel_id": "mic:default", "store": "yes"}], "must be true or false"),
])
def test_bad_channel_lists(server, conn, channels, message):
    rec = recorder(server, conn)
    cap = conn.create_capture_session(end_user_id="u")
    with pytest.raises(InvalidRequestError, match=message):
        rec.post("capture/session/start", data={"session_id": cap.id, "channels": channels})
    assert conn.get_capture_session(cap.id).status == "created"


def test_client_token_scope(server, conn):
    rec = recorder(server, conn)
    for call in (rec.get_collections, lambda: rec.get_collection("default"), rec.list_capture_sessions,
                 lambda: rec.get_capture_session("cap-x"), rec.generate_client_token,
                 lambda: rec.get("video", params={"collection_id": "default"})):
        with pytest.raises(InvalidRequestError, match="Client tokens can only"):
            call()
    # A token of another API key cannot touch this key's session.
    out = subprocess.run([REELDB, "keys", "create", "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, check=True).stdout
    other_key = dict(line.split("=", 1) for line in out.split())["api_key"]
    other = videodb.connect(api_key=other_key, base_url=server.url)
    stranger = videodb.connect(session_token=other.generate_client_token(), base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    with pytest.raises(InvalidRequestError, match=f"cannot access capture session {cap.id}"):
        stranger.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    with pytest.raises(InvalidRequestError, match="cannot access"):
        stranger.get(f"capture/session/{cap.id}")
    with pytest.raises(InvalidRequestError, match="cannot access"):
        stranger.post(f"capture/session/{cap.id}/stop")
    assert conn.get_capture_session(cap.id).status == "created"


def test_expired_and_invalid_tokens(server, conn):
    token = conn.generate_client_token(expires_in=1)
    rec = videodb.connect(session_token=token, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    assert rec.get(f"capture/session/{cap.id}")["status"] == "created"
    time.sleep(1.6)
    with pytest.raises(AuthenticationError, match="Client token expired"):
        rec.get(f"capture/session/{cap.id}")
    forged = videodb.connect(session_token="st-forged", base_url=server.url)
    with pytest.raises(AuthenticationError, match="Invalid client token"):
        forged.get(f"capture/session/{cap.id}")
    for bad in (0, -5, 10**9):
        with pytest.raises(InvalidRequestError, match="expires_in must be between"):
            conn.generate_client_token(expires_in=bad)


def test_bad_session_requests(server, conn):
    rec = recorder(server, conn)
    with pytest.raises(InvalidRequestError, match="end_user_id is required"):
        conn.create_capture_session(end_user_id="")
    with pytest.raises(InvalidRequestError, match="callback_url must be an http"):
        conn.create_capture_session(end_user_id="u", callback_url="ftp://x")
    with pytest.raises(InvalidRequestError, match="Collection not found"):
        conn.create_capture_session(end_user_id="u", collection_id="c-nope")
    with pytest.raises(InvalidRequestError, match="Capture session not found: cap-nope"):
        rec.post("capture/session/start", data={"session_id": "cap-nope", "channels": CHANNELS})
    with pytest.raises(InvalidRequestError, match="session_id is required"):
        rec.post("capture/session/start", data={"channels": CHANNELS})


def test_export_before_stop_and_without_storage(server, conn):
    rec = recorder(server, conn)
    cap = conn.create_capture_session(end_user_id="u")
    ephemeral = [{**c, "store": False} for c in CHANNELS]
    rec.post("capture/session/start", data={"session_id": cap.id, "channels": ephemeral})
    with pytest.raises(InvalidRequestError, match="no channel of this session has store: true"):
        cap.export()
    cap2 = conn.create_capture_session(end_user_id="u")
    rec.post("capture/session/start", data={"session_id": cap2.id, "channels": CHANNELS})
    with pytest.raises(InvalidRequestError, match="not a video channel"):
        conn.get_capture_session(cap2.id).export(video_channel_id="display:9")
    with pytest.raises(InvalidRequestError, match="export runs once it has stopped"):
        conn.get_capture_session(cap2.id).export()
