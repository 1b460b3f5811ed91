"""Compose the server: build each service once, with its collaborators given explicitly, and hand
them one by one to the routes (litestar dependencies by name). Nothing else builds a service.

Who owns which tables, and who calls whom, is read off :class:`Server`'s constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, AsyncIterator

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from .apidocs import OfflineRedoc
from .auth import (Auth, Keyring, Principal, SignInRequired, WebSession, WebSessions, ensure_api_key,
                   mint_signin_link, require_key)
from .capture_runtime import CaptureRuntime
from .collections import Collections, ensure_default
from .clips import Clips
from .compilations import Compilations
from .database import Database
from .editor import Editor
from .error_responses import handle_exception
from .events import Events, WebSocketHub
from .exports import Exports
from .guard import Guard
from . import heap
from .jobs.backend import make_jobs
from .library import MediaLibrary
from .links import Links
from .live import LiveTranscripts
from .live_indexes import LiveIndexes
from .live_screens import LiveScreens
from .live_seed import LiveSeed
from .rt_events import RtEvents
from .metrics import Metrics
from .openapi import describe_bodies, describe_errors, organize
from .ingest.backend import IngestBackend, LocalIngest, new_worker_token, worker_token
from .ingest.remote import RemoteIngest
from .ingest.supervisor import IngestSupervisor, worker_count
from .routes import (capture, collections, docs, editor, jobs, live_indexes, media, rtstreams, scenes, spoken, streams,
                     system, unavailable, uploads, web, workers)
from .retention import Retention
from .views.jobs import Presenters
from .runtime import Runtime
from .schema import migrate
from .sessions import Sessions
from .settings import Settings
from .storage import MediaRoot
from .scenes import Scenes
from .spoken import Spoken
from .strict import strict_body
from .uploads import Uploads
from .web import FrontDoor

log = logging.getLogger("reeldb.server")

HOUSEKEEPING_EVERY = 600.0
#: How often open websockets are checked against revoked keys (the auth cache's span, too).
REVOKED_SOCKETS_EVERY = 3.0


class Server:
    """Every long-lived part of a running server, built in dependency order."""

    def __init__(self, settings: Settings) -> None:
        for path in (settings.data_dir, settings.media_root_dir, settings.media_dir, settings.sessions_dir,
                     settings.uploads_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.runtime = Runtime()
        self.db = Database(settings.db_path)
        self.db.write_sync(migrate)
        self.db.write_sync(ensure_default)
        #: A key generated on this start, to print once (kept in <data_dir>/api_key unless REELDB_SECRET_KEY is set).
        keyring = Keyring.load(settings)  # REELDB_SECRET_KEY, else <data_dir>/server_secret
        self.new_key = self.db.write_sync(lambda conn: ensure_api_key(conn, keyring, settings.data_dir, settings.api_key))
        self.links = Links(settings, keyring.link_secret)
        self.auth = Auth(self.db, keyring)                                     # api_keys, client_tokens
        self.web_sessions = WebSessions(self.auth)                             # web_sessions, signin_links
        #: A one-time sign-in link's token for the local user, printed by ``reeldb serve``.
        self.signin_token = self.db.write_sync(lambda conn: mint_signin_link(conn, keyring, settings.signin_link_ttl))
        self.hub = WebSocketHub(settings.max_websockets_per_key)
        self.events = Events(self.db, settings, self.hub)                      # events, deliveries
        self.jobs = make_jobs(self.db, settings, self.runtime)                 # jobs (REELDB_JOBS)
        self.collections = Collections(self.db)                                # collections
        self.storage = MediaRoot(settings.media_root_dir)                      # files under the media root
        self.library = MediaLibrary(self.db, settings, self.runtime, self.storage, self.jobs)  # media; previews jobs
        self.spoken = Spoken(self.db, settings, self.jobs, self.runtime)       # the index stage's tables
        self.scenes = Scenes(self.db, settings, self.jobs, self.runtime)       # its scene tables
        self.uploads = Uploads(self.db, settings, self.runtime, self.links, self.jobs, self.library,
                               self.spoken.auto_index if settings.auto_index_uploads else None)  # uploads
        self.sessions = Sessions(self.db, self.events)                         # capture_sessions, rtstreams
        self.exports = Exports(self.db, settings, self.jobs, self.sessions, self.library, self.links,
                               self.hub, self.runtime,
                               self.spoken.auto_index if settings.auto_index else None,
                               self.scenes.auto_index if settings.auto_index else None)  # exports
        # REELDB_INGEST_WORKERS: 0 receives media on this loop; otherwise on ingest workers (N started here).
        started = worker_count(settings.ingest_workers)
        self.ingest_supervisor: IngestSupervisor | None = None
        backend: IngestBackend = LocalIngest(settings)
        if started != 0:
            token = worker_token(settings, create=started is None) or new_worker_token()  # None: external
            backend = RemoteIngest(settings, self.runtime, token)
            if started:
                self.ingest_supervisor = IngestSupervisor(settings, self.runtime, started, token)
        self.capture = CaptureRuntime(settings, self.sessions, self.runtime, on_stopped=self.exports.after_stop,
                                      backend=backend)
        self.live = LiveTranscripts(settings, self.hub, self.capture, self.runtime)
        self.screens = LiveScreens(settings, self.capture, self.runtime)
        if settings.auto_index:  # a recording searchable the moment it is exported, from what was heard live
            self.exports.seed = LiveSeed(self.live, self.spoken, self.screens, self.scenes)
        self.rt_events = RtEvents(self.db, settings, self.runtime)             # rtstream_events
        self.indexes = LiveIndexes(settings, self.hub, self.capture, self.live, self.screens, self.events,
                                   self.rt_events, self.runtime, self.links)                   # live indexes, alerts (memory)
        self.clips = Clips(settings, self.runtime, self.library)               # exact clips, their cache
        self.compilations = Compilations(self.db, self.clips, self.links, settings)  # compilations
        self.editor = Editor(self.db, settings, self.jobs, self.library, self.links,
                             self.uploads)  # renders
        self.front = FrontDoor(settings, self.auth, self.collections, self.library, self.spoken, self.sessions,
                               self.uploads, self.jobs, self.links)              # the pages for people: reads the rest
        self.presenters = Presenters(self.library, self.links, self.spoken, self.editor, self.scenes)
        self.retention = Retention(self.db, settings, self.jobs, self.library)  # the retention job
        self.metrics = Metrics(self.db, settings, self.capture, self.runtime)  # /metrics: reads the rest

    def dependencies(self) -> dict[str, Provide]:
        values: dict[str, Any] = {
            "settings": self.settings, "runtime": self.runtime, "links": self.links, "auth": self.auth,
            "hub": self.hub, "jobs": self.jobs, "collections": self.collections, "library": self.library,
            "uploads": self.uploads, "sessions": self.sessions, "exports": self.exports, "spoken": self.spoken,
            "scenes": self.scenes,
            "capture": self.capture, "live": self.live, "presenters": self.presenters,
            "indexes": self.indexes, "rt_events": self.rt_events,
            "compilations": self.compilations, "clips": self.clips, "editor": self.editor, "metrics": self.metrics,
            "web_sessions": self.web_sessions, "front": self.front,
        }
        provided = {name: Provide(_constant(value), use_cache=True, sync_to_thread=False)
                    for name, value in values.items()}
        auth = self.auth

        async def actor(request: Request) -> Principal:
            """An API key or a client token; handlers that take ``actor`` accept both."""
            return await _principal(request, auth)

        async def key(request: Request) -> Principal:
            """An API key only: everything but capture refuses client tokens."""
            return require_key(await _principal(request, auth))

        web_sessions = self.web_sessions

        async def viewer(request: Request) -> WebSession:
            """A browser signed in to the pages (its cookie); without one, the sign-in page answers."""
            found = await web.signed_in(request, web_sessions)
            if found is None:
                raise SignInRequired()
            return found

        provided["actor"] = Provide(actor)
        provided["viewer"] = Provide(viewer)
        provided["key"] = Provide(key)
        return provided

    async def before_request(self, request: Request) -> None:
        """Credentials first, then the body: a handler that needs a key (or a client token) refuses a
        request without one before a byte of its body is read (then ``strict_body`` checks the body)."""
        wants = _credentials_wanted(request.scope.get("route_handler"))
        if wants:
            principal = await _principal(request, self.auth)
            if wants == "key":
                require_key(principal)
        await strict_body(request)

    async def start(self) -> None:
        await self.capture.recover()
        if self.ingest_supervisor is not None:
            self.ingest_supervisor.start()
        self.runtime.spawn(self.events.run(), name="webhooks")
        self.runtime.spawn(self.jobs.run(), name="jobs")
        self.runtime.spawn(self._housekeeping(), name="housekeeping")
        self.runtime.spawn(self._close_revoked_sockets(), name="revoked-sockets")
        if self.retention.enabled:
            self.runtime.spawn(self.retention.run(), name="retention")
        if self.settings.heap_trim_every > 0:
            self.runtime.spawn(heap.keep_trimmed(self.settings.heap_trim_every, self.runtime.io), name="heap-trim")
        if self.settings.loop_warn_ms > 0:
            self.runtime.spawn(self.runtime.watch_loop(self.settings.loop_warn_ms / 1000), name="loop-watch")

    async def stop(self) -> None:
        await self.live.close()
        await self.screens.close()
        await self.capture.close()
        if self.ingest_supervisor is not None:
            await self.ingest_supervisor.close()
        await self.runtime.close()
        self.db.close()

    async def _close_revoked_sockets(self) -> None:
        """Websockets of a revoked API key close within a few seconds, as its requests stop working
        (``reeldb keys revoke`` may run in another process: the database is what says so)."""
        while True:
            await asyncio.sleep(REVOKED_SOCKETS_EVERY)
            try:
                for owner in await self.auth.revoked(self.hub.owners()):
                    closed = await self.hub.close_owner(owner, 4401, "the API key was revoked")
                    log.info("closed %d websockets of revoked API key %s", closed, owner)
            except Exception:
                log.exception("could not check websockets for revoked keys")

    async def _housekeeping(self) -> None:
        while True:
            swept = await self.runtime.io(self.uploads.sweep_expired)
            if swept:
                log.info("removed %d expired upload slots", swept)
            evicted = self.live.evict() + self.screens.evict() + self.indexes.evict()
            if evicted:
                log.info("forgot the live transcripts, screen text and indexes of %d rtstreams whose sessions ended",
                         evicted)
            await asyncio.sleep(min(HOUSEKEEPING_EVERY, max(1.0, self.settings.live_retention / 2)))


#: Where a request keeps the credential ``before_request`` resolved, for its ``key``/``actor``
#: dependency (one lookup a request, not two).
PRINCIPAL = "reeldb.principal"
#: What each route handler wants of a credential (``key``, ``actor`` or nothing), read off its
#: signature once rather than on every request (the handler is kept with its answer, so its id
#: is never reused by another while the entry lives).
_WANTED: dict[int, tuple[Any, str | None]] = {}


def _credentials_wanted(handler: Any) -> str | None:
    entry = _WANTED.get(id(handler))
    if entry is None or entry[0] is not handler:
        signature = getattr(handler, "parsed_fn_signature", None)
        params = signature.parameters if signature is not None else {}
        entry = _WANTED[id(handler)] = (handler, "key" if "key" in params else "actor" if "actor" in params else None)
    return entry[1]


async def _principal(request: Request, auth: Auth) -> Principal:
    principal = request.scope.get(PRINCIPAL)  # type: ignore[call-overload]
    if principal is None:
        principal = request.scope[PRINCIPAL] = await auth.resolve(request.headers.get("x-access-token"))  # type: ignore[literal-required]
    return principal


def _operations(app: Litestar) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(method, path as the OpenAPI document writes it) → (the credential its handler wants, its docstring)."""
    found: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", ()):
            for method in getattr(handler, "http_methods", ()):
                found[(method, path)] = (_credentials_wanted(handler), getattr(handler.fn, "__doc__", None))
    return found


def _constant(value: Any) -> Any:
    def provide() -> Any:
        return value

    return provide


def create_app(settings: Settings) -> Litestar:
    server = Server(settings)
    if server.new_key:
        kept = "" if settings.secret_key else f" (saved in {settings.data_dir / 'api_key'})"
        print(f"ReelDB generated an API key{kept}:\n  {server.new_key}", flush=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    request_guard = Guard()
    app = Litestar(
        route_handlers=[*system.handlers, *collections.handlers, *media.handlers, *uploads.handlers, *jobs.handlers,
                        *capture.handlers, *streams.handlers, *rtstreams.handlers, *live_indexes.handlers, *spoken.handlers, *scenes.handlers,
                        *editor.handlers, *unavailable.handlers, *workers.handlers, *docs.handlers, *web.handlers],
        dependencies=server.dependencies(),
        exception_handlers={Exception: handle_exception, SignInRequired: web.sign_in_redirect},
        middleware=[request_guard.wrap],
        before_request=server.before_request,
        lifespan=[lifespan],
        cors_config=CORSConfig(allow_origins=["*"], allow_headers=["*"], expose_headers=["*"]),
        openapi_config=OpenAPIConfig(
            title="ReelDB", version="0.1.0", path="/schema",
            description="A self-hosted, VideoDB-compatible capture, storage and search API.",
            render_plugins=[OfflineRedoc(server.links.base_url)],
        ),
        debug=False,
    )
    organize(describe_bodies(describe_errors(app.openapi_schema)), _operations(app))
    request_guard.learn(app.routes)
    app.state.signin_url = (f"{server.links.default_base()}/signin/link?token={server.signin_token}"
                            if server.signin_token else None)  # printed once by `reeldb serve`
    app.state.settings = settings  # for request hooks, which take no dependencies (routes/streams.py)
    app.state.guard = request_guard  # errors.py reads the full method set for a 405's Allow
    app.state.unoffered = unavailable.UNOFFERED_METHODS  # errors.py: a 405 that says what a 501 would
    app.asgi_handler = request_guard.head(app.asgi_handler)  # HEAD on streams and pages, before routing
    return app
