"""``reeldb record``: record this machine's screen and microphone into ReelDB from a terminal.

One command: it uses the server at ``--url`` / ``REELDB_URL`` (with ``--api-key`` /
``REELDB_API_KEY``, or the data dir's ``api_key``), or one already answering on
``127.0.0.1:<port>``, or starts ``reeldb serve`` itself (data in ``--data-dir``); creates a
capture session and a client token; records with the recorder's own state machine in this
process (:class:`capture.recorder.Recorder`, the code ``reeldb-recorder`` runs, on this machine's
devices: ``devices.py``) with one progress line (elapsed, bitrate, disk used, CPU); stops on
Ctrl-C (SIGINT) or after ``--duration``; waits for the export and prints the player link; then
indexes the spoken words (unless ``--no-index``) and says the recording is searchable. A server
it started keeps serving the link until the next Ctrl-C (``--exit``: stop it at once).

It is a client of the HTTP API only (no import of the server stage).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import httpx

from .ice import from_env_value, restrict_host_addresses
from .recorder import CommandError, Recorder, recorder_options
from .sources import SourceError, plan_sources


class RecordError(Exception):
    """Something a user can fix; printed as one line, exit status 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("REELDB_URL"),
                        help="a running ReelDB server (REELDB_URL); default: start one (or use the one on --port)")
    parser.add_argument("--api-key", default=os.environ.get("REELDB_API_KEY"),
                        help="its API key (REELDB_API_KEY; default: <data dir>/api_key)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("REELDB_DATA_DIR") or "data"),
                        help="data dir of the server started here (REELDB_DATA_DIR, default ./data)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("REELDB_PORT") or 8700),
                        help="port of the local server (REELDB_PORT, default 8700)")
    parser.add_argument("--display", default=None, help="channel to record as the screen (default display:1)")
    parser.add_argument("--no-mic", action="store_true", help="record no microphone")
    parser.add_argument("--system-audio", action="store_true", help="record the speakers' sound too (system_audio)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument("--no-index", action="store_true", help="do not index the spoken words after the export")
    parser.add_argument("--exit", action="store_true", help="stop the server started here once the link is printed")
    parser.add_argument("--name", default=None, help="the session's end_user_id (default: your login name)")


def command(args: argparse.Namespace) -> int:
    logging_quiet()
    try:
        return asyncio.run(_main(args))
    except RecordError as exc:
        print(f"reeldb record: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


def logging_quiet() -> None:
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    logging.getLogger("aioice").setLevel(logging.ERROR)


def _say(text: str) -> None:
    print(text, flush=True)


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} GB"


def _dir_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


class _Server:
    """The server used: its URL, key, data dir (None when remote), and the process started here."""

    def __init__(self, url: str, key: str, data_dir: Optional[Path], proc: Optional[subprocess.Popen]) -> None:
        self.url, self.key, self.data_dir, self.proc = url.rstrip("/"), key, data_dir, proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _key_from(data_dir: Path, given: Optional[str]) -> str:
    if given:
        return given
    path = data_dir / "api_key"
    if path.exists():
        return path.read_text().strip()
    raise RecordError(f"no API key: pass --api-key (or REELDB_API_KEY), or keep {path} (see README, Secrets)")


async def _server(args: argparse.Namespace) -> _Server:
    if args.url:
        if not _healthy(args.url.rstrip("/")):
            raise RecordError(f"no ReelDB server answers at {args.url}")
        key = args.api_key or _key_from(args.data_dir, None)
        local = args.data_dir if (args.data_dir / "sessions").is_dir() else None
        return _Server(args.url, key, local, None)
    url = f"http://127.0.0.1:{args.port}"
    if _healthy(url):
        _say(f"Using the server at {url}")
        return _Server(url, _key_from(args.data_dir, args.api_key), args.data_dir, None)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    log = open(args.data_dir / "record-server.log", "ab")
    env = {**os.environ, "REELDB_DATA_DIR": str(args.data_dir), "REELDB_PORT": str(args.port), "REELDB_HOST": "127.0.0.1"}
    if args.api_key:
        env["REELDB_API_KEY"] = args.api_key
    # The server ignores SIGINT from the terminal (its own process group): we stop it when we choose.
    proc = subprocess.Popen([sys.executable, "-m", "reeldb.server.cli", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while not _healthy(url):
        if proc.poll() is not None:
            raise RecordError(f"the server exited ({proc.returncode}); see {args.data_dir / 'record-server.log'}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RecordError(f"the server did not start in 90 s; see {args.data_dir / 'record-server.log'}")
        await asyncio.sleep(0.2)
    _say(f"Started a ReelDB server at {url} (data in {args.data_dir})")
    server = _Server(url, "", args.data_dir, proc)
    try:
        server.key = _key_from(args.data_dir, args.api_key)
    except RecordError:
        server.stop()
        raise
    return server


async def _api(http: httpx.AsyncClient, method: str, path: str, token: str, body: Any = None) -> Any:
    r = await http.request(method, path, json=body, headers={"x-access-token": token})
    try:
        payload = r.json()
    except ValueError:
        payload = {}
    if r.status_code >= 400 or not payload.get("success", False) and payload.get("status") != "processing":
        raise RecordError(f"{method} {path}: {payload.get('message') or f'HTTP {r.status_code}'}")
    if payload.get("status") == "processing":  # a job: poll its output_url as the SDK does
        output = payload["data"]["output_url"]
        while True:
            await asyncio.sleep(0.5)
            polled = (await http.get(output, headers={"x-access-token": token})).json()
            if polled.get("status") not in ("processing", "in progress"):
                if polled.get("success") is False or polled.get("status") == "failed":
                    raise RecordError(f"{path}: {polled.get('message') or polled}")
                return polled.get("response") or polled.get("data") or polled
    return payload.get("data")


def _choose(channels: list[dict], args: argparse.Namespace) -> list[dict]:
    by_id = {c["channel_id"]: c for c in channels}
    chosen = []
    display = args.display or next((c["channel_id"] for c in channels if c["type"] == "video"), None)
    if display is not None:
        if display not in by_id:
            raise RecordError(f"no screen {display}; this machine has: {', '.join(by_id)}")
        chosen.append({**by_id[display], "store": True, "is_primary": True})
    if not args.no_mic and "mic:default" in by_id:
        chosen.append({**by_id["mic:default"], "store": True, "is_primary": False})
    if args.system_audio:
        if "system_audio:default" not in by_id:
            raise RecordError("no system audio on this machine")
        chosen.append({**by_id["system_audio:default"], "store": True, "is_primary": False})
    if not chosen:
        raise RecordError("nothing to record: no screen and no microphone found")
    return chosen


async def _main(args: argparse.Namespace) -> int:
    restrict_host_addresses(from_env_value(os.environ.get("REELDB_ICE_ADDRESSES")))
    try:
        plan = plan_sources(os.environ)
        options = recorder_options(os.environ)
    except (SourceError, ValueError) as exc:
        raise RecordError(str(exc)) from exc
    for note in plan.notes:
        _say(f"note: {note}")
    server = await _server(args)
    try:
        return await _record(args, server, plan, options)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            _say("Stopping the server")
            server.stop()


async def _record(args: argparse.Namespace, server: _Server, plan: Any, options: dict) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    progress: dict[str, Any] = {}
    problems: list[str] = []

    def emit(message: dict) -> None:
        if message.get("type") != "event":
            return
        if message["event"] == "recording-progress":
            progress.update(message["payload"])
        elif message["event"] == "error":
            problems.append(message["payload"].get("message", "error"))
            stop.set()

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        key = server.key
        session = await _api(http, "POST", "/collection/default/capture/session", key,
                             {"end_user_id": args.name or getpass.getuser() or "reeldb-record",
                              "metadata": {"client": "reeldb record"}})
        session_id = session.get("session_id") or session.get("id")
        token = (await _api(http, "POST", "/capture/session/token", key, {"expires_in": 86400}))["token"]
        options.update(names=plan.names, notes=plan.notes, progress_interval=1.0)
        recorder = Recorder(plan.sources, emit, **options)
        try:
            await recorder.cmd_init({"apiUrl": server.url})
            channels = _choose((await recorder.cmd_getChannels({}))["channels"], args)
            try:
                await recorder.cmd_startRecording({"sessionId": session_id, "uploadToken": token, "channels": channels})
            except CommandError as exc:
                raise RecordError(f"cannot start recording: {exc.message}") from exc
            _say(f"Recording {', '.join(c['name'] for c in channels)} into {session_id}: Ctrl-C to stop")
            started = time.monotonic()
            folder = server.data_dir / "sessions" / session_id if server.data_dir else None
            tty = sys.stdout.isatty()
            last_line = 0.0
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
                elapsed = time.monotonic() - started
                if args.duration is not None and elapsed >= args.duration:
                    stop.set()
                if tty or elapsed - last_line >= 5 or stop.is_set():
                    last_line = elapsed
                    line = _progress_line(elapsed, progress, folder)
                    print(("\r" + line + "   ") if tty else line, end="" if tty else "\n", flush=True)
            if tty:
                print(flush=True)
            _say("Stopping…")
            await recorder.cmd_stopRecording({"sessionId": session_id})
        finally:
            await recorder.close()
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        if problems:
            _say(f"recorder error: {'; '.join(problems)}")
        _say("Exporting…")
        deadline = time.monotonic() + 600
        while True:
            view = await _api(http, "GET", f"/collection/default/capture/session/{session_id}", key)
            if view.get("status") == "exported" and view.get("player_url"):
                break
            if view.get("export_status") == "failed" or view.get("status") == "failed":
                raise RecordError(f"the export failed: {view.get('export_error') or view.get('error') or view}")
            if time.monotonic() > deadline:
                raise RecordError("the export did not finish in 10 minutes")
            await asyncio.sleep(0.5)
        video_id = view["exported_video_id"]
        _say(f"Video {video_id}: {view['stream_url']}")
        _say(f"Player: {view['player_url']}")
        if not args.no_index:
            _say("Indexing the spoken words…")
            await _api(http, "POST", f"/video/{video_id}/index", key, {"index_type": "spoken_word"})
            _say(f"Searchable: the recording's words are indexed (search them in the player, or "
                 f"coll.get_video({video_id!r}).search(...) with the SDK)")
    if server.proc is not None and not args.exit:
        _say(f"The server keeps serving at {server.url}: Ctrl-C to stop it")
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGINT, stopped.set)
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        while not stopped.is_set() and server.proc.poll() is None:
            try:
                await asyncio.wait_for(stopped.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
    return 0


def _progress_line(elapsed: float, progress: dict, folder: Optional[Path]) -> str:
    minutes, seconds = divmod(int(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"
    rate = progress.get("bitrate", 0) / 1e6
    if folder is not None and folder.exists():
        disk = _human_bytes(_dir_bytes(folder))
    else:
        disk = "~" + _human_bytes(progress.get("bytes_sent", 0))
    cpu = progress.get("cpu", {}).get("percent")
    cpu_text = f"  cpu {cpu:.0f}%" if cpu is not None else ""
    return f"● REC {clock}  {rate:.2f} Mbit/s  disk {disk}{cpu_text}"
