"""reeldb-recorder: the SDK capture binary's stdio protocol, and a full recording against a
stand-in server (litestar + IngestSession) on loopback."""

import json
import queue
import os
import subprocess
import sys
import threading
import time
import uuid
import asyncio

import pytest

from support.media import probe
from reeldb.capture.manifest import load_manifest

PREFIX = "videodb_recorder|"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SOURCES = {"mic:default": "pattern:tone:440", "display:1": "pattern:bars:320x240@15",
           "system_audio:default": "pattern:tone:880"}


class Binary:
    """Drives the recorder like the SDK does: one JSON line per command, replies matched by id."""

    def __init__(self, sources=SOURCES):
        env = dict(os.environ, REELDB_CAPTURE_SOURCES=json.dumps(sources))
        self.proc = subprocess.Popen([sys.executable, "-m", "reeldb.capture.recorder"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.events = []
        self.stderr_lines = []
        self.lines = queue.Queue()
        threading.Thread(target=lambda: self.stderr_lines.extend(self.proc.stderr), daemon=True).start()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send_raw(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def command(self, name, params=None, timeout=20.0):
        cid = str(uuid.uuid4())
        self.send_raw(PREFIX + json.dumps({"command": name, "commandId": cid, "params": params or {}}))
        return self.wait(lambda m: m.get("type") == "response" and m.get("commandId") == cid, timeout)

    def wait(self, pred, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError("recorder exited: " + "".join(self.stderr_lines[-20:]))
            assert line.startswith(PREFIX), f"stdout must carry only protocol lines: {line!r}"
            msg = json.loads(line[len(PREFIX):])
            if msg.get("type") == "event":
                self.events.append(msg)
            if pred(msg):
                return msg
        raise AssertionError("timeout; recorder stderr:\n" + "".join(self.stderr_lines[-30:]))

    def wait_event(self, name, timeout=20.0):
        for e in self.events:
            if e.get("event") == name:
                return e
        return self.wait(lambda m: m.get("type") == "event" and m.get("event") == name, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def binary():
    b = Binary()
    yield b
    b.close()


def test_protocol_basics(binary):
    r = binary.command("init", {"apiUrl": "http://127.0.0.1:9"})
    assert r["status"] == "success"
    assert binary.command("ping")["status"] == "success"
    chans = binary.command("getChannels")["result"]["channels"]
    assert chans == [
        {"channel_id": "mic:default", "name": "Default Microphone", "type": "audio", "is_default": True},
        {"channel_id": "display:1", "name": "Display 1", "type": "video", "is_default": True},
        {"channel_id": "system_audio:default", "name": "System Audio", "type": "audio", "is_default": True},
    ]
    perm = binary.command("requestPermission", {"permission": "screen-capture"})
    assert perm["result"] == {"status": "granted"}
    assert binary.command("setLogLevel", {"level": "debug"})["status"] == "success"


def test_protocol_errors(binary):
    binary.send_raw("some debug noise without the prefix")
    binary.send_raw(PREFIX + "{not json")
    r = binary.command("frobnicate")
    assert r["status"] == "error" and r["result"]["code"] == "UNKNOWN_COMMAND"
    r = binary.command("requestPermission", {})
    assert r["status"] == "error" and r["result"]["code"] == "INVALID_REQUEST"
    assert "permission" in r["result"]["message"]
    r = binary.command("requestPermission", {"permission": "telepathy"})
    assert r["result"]["code"] == "INVALID_PERMISSION"
    r = binary.command("startRecording", {"sessionId": "cap-1", "uploadToken": "st-x", "channels": []})
    assert r["result"]["code"] == "MISSING_CHANNELS"
    r = binary.command("startRecording", {"sessionId": "cap-1", "uploadToken": "st-x",
                                          "channels": [{"channel_id": "mic:default", "type": "audio"}]})
    assert r["result"]["code"] == "INVALID_STATE"  # no init yet
    binary.command("init", {"apiUrl": "http://127.0.0.1:9"})
    r = binary.command("startRecording", {"sessionId": "cap-1", "uploadToken": "st-x",
                                          "channels": [{"channel_id": "camera:1", "type": "video"}]})
    assert r["result"]["code"] == "INVALID_CHANNELS"
    r = binary.command("startRecording", {"sessionId": "cap-1", "uploadToken": "st-x",
                                          "channels": [{"channel_id": "mic:default", "type": "audio"}]})
    assert r["status"] == "error" and r["result"]["code"] == "SERVER_ERROR"  # nothing listens on :9
    assert binary.command("stopRecording", {"sessionId": "cap-1"})["result"]["code"] == "NO_ACTIVE_SESSION"
    assert binary.command("pauseTracks", {"tracks": ["mic"]})["result"]["code"] == "NO_ACTIVE_SESSION"
    assert binary.command("pauseTracks", {"tracks": ["nose"]})["result"]["code"] == "INVALID_REQUEST"
    assert binary.command("setLogLevel", {"level": "loud"})["result"]["code"] == "INVALID_LOG_LEVEL"
    assert binary.command("shutdown")["status"] == "success"
    assert binary.proc.wait(timeout=10) == 0


def test_bad_sources_env_exits_2():
    env = dict(os.environ, REELDB_CAPTURE_SOURCES="[1, 2]")
    p = subprocess.run([sys.executable, "-m", "reeldb.capture.recorder"], env=env, capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "REELDB_CAPTURE_SOURCES" in p.stderr


class StandInServer:
    """The three recorder-facing endpoints, backed by IngestSession, served by uvicorn in a thread."""

    def __init__(self, data_dir):
        from litestar import Litestar, Request, post
        import uvicorn
        from reeldb.capture.ingest import IngestSession

        self.sessions = {}
        self.calls = []
        self.tokens = []
        server = self

        @post("/capture/session/start")
        async def start(request: Request, data: dict) -> dict:
            server.calls.append("start")
            server.tokens.append(request.headers.get("x-access-token"))
            sid = data["session_id"]
            chans = [{"channel_id": c["channel_id"], "kind": c["type"], "store": c["store"]} for c in data["channels"]]
            server.sessions[sid] = IngestSession(data_dir / "sessions" / sid, sid, chans)
            return {"success": True, "data": {"session_id": sid, "status": "starting", "webrtc_url": ""}}

        @post("/capture/session/{sid:str}/offer")
        async def offer(sid: str, data: dict) -> dict:
            server.calls.append("offer")
            answer = await server.sessions[sid].accept_offer(data["sdp"], data["tracks"])
            return {"success": True, "data": {"sdp": answer, "type": "answer"}}

        @post("/capture/session/{sid:str}/stop")
        async def stop(sid: str) -> dict:
            server.calls.append("stop")
            await server.sessions[sid].close()
            return {"success": True}

        @post("/capture/session/{sid:str}/{verb:str}")
        async def pause(sid: str, verb: str, data: dict) -> dict:
            server.calls.append(verb)
            s = server.sessions[sid]
            (s.pause if verb == "pause" else s.resume)(data["channels"])
            return {"success": True}

        app = Litestar([start, offer, stop, pause])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.mark.slow
def test_full_recording_through_the_stand_in_server(tmp_path, binary):
    server = StandInServer(tmp_path)
    try:
        assert binary.command("init", {"apiUrl": f"http://127.0.0.1:{server.port}"})["status"] == "success"
        channels = [
            {"channel_id": "mic:default", "type": "audio", "name": "Mic", "store": True, "is_primary": False},
            {"channel_id": "display:1", "type": "video", "name": "Screen", "store": True, "is_primary": True},
            {"channel_id": "system_audio:default", "type": "audio", "name": "Sys", "store": False, "is_primary": False},
        ]
        r = binary.command("startRecording", {"sessionId": "cap-rec", "uploadToken": "st-token", "channels": channels})
        assert r["status"] == "success", r
        binary.wait_event("recording-started", timeout=10)
        time.sleep(1.5)
        assert binary.command("pauseTracks", {"tracks": ["mic"]})["result"]["channels"] == ["mic:default"]
        time.sleep(1.0)
        assert binary.command("resumeTracks", {"tracks": ["mic"]})["status"] == "success"
        time.sleep(1.5)
        assert binary.command("stopRecording", {"sessionId": "cap-rec"})["status"] == "success"
        binary.wait_event("recording-complete", timeout=10)
        assert binary.command("shutdown")["status"] == "success"
        assert binary.proc.wait(timeout=10) == 0
    finally:
        server.close()

    assert server.calls == ["start", "offer", "pause", "resume", "stop"]
    assert server.tokens == ["st-token"]
    folder = tmp_path / "sessions" / "cap-rec"
    m = load_manifest(folder)
    mic, disp, sysa = (m.channel(c["channel_id"]) for c in channels)
    assert sorted(os.listdir(folder)) == ["display_1.mkv", "manifest.json", "mic_default.mka"]
    assert disp.codec == "h264" and mic.codec == "opus" and disp.complete and mic.complete
    assert len(mic.pauses) == 1 and mic.pauses[0][1] - mic.pauses[0][0] == pytest.approx(1.0, abs=0.4)
    assert sysa.file is None
    for ch in (mic, disp):
        info = probe(folder / ch.file)
        assert info["errors"] == 0 and info["last"] == pytest.approx(4.0, abs=0.7), (ch.channel_id, info)


def test_sdk_capture_client_drives_the_recorder(monkeypatch):
    """The unmodified videodb 0.5.1 CaptureClient, pointed at reeldb-recorder."""
    import shutil
    import videodb.capture as sdk_capture

    exe = shutil.which("reeldb-recorder", path=os.path.dirname(sys.executable))
    assert exe, "console script reeldb-recorder not installed"
    monkeypatch.setattr(sdk_capture, "get_capture_binary_path", lambda: exe)
    monkeypatch.setenv("REELDB_CAPTURE_SOURCES", json.dumps(SOURCES))

    async def main():
        client = sdk_capture.CaptureClient(client_token="st-x", base_url="http://127.0.0.1:9")
        try:
            channels = await client.list_channels()
            granted = await client.request_permission("screen_capture")
            with pytest.raises(RuntimeError, match="NO_ACTIVE_SESSION"):
                await channels.mics.default.pause()
        finally:
            await client.shutdown()
        return channels, granted

    channels, granted = asyncio.run(main())
    assert granted is True
    assert [c.id for c in channels.all()] == ["mic:default", "display:1", "system_audio:default"]
    assert channels.displays.default.type == "video"
