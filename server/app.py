"""Compose the server: one litestar app over the database, events, jobs and the stages' routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from . import db as dbm
from reeldb.capture.ice import from_env_value, restrict_host_addresses

from .auth import ensure_api_key
from .capture_runtime import CaptureRuntime
from .errors import handle_exception
from .events import Events, WebSocketHub
from .jobs import Jobs
from .live import LiveTranscripts
from .exports import Exports
from .routes import capture, collections, media, rtstreams, spoken, streams, system
from .spoken import Spoken
from .services import Services, provide_actor, provide_key, provide_services
from .settings import Settings
from .signing import load_secret
from .uploads import register_upload_jobs, sweep_expired

log = logging.getLogger("reeldb.server")


def build_services(settings: Settings) -> tuple[Services, str | None]:
    restrict_host_addresses(from_env_value(settings.ice_addresses))
    for path in (settings.data_dir, settings.media_dir, settings.sessions_dir, settings.uploads_dir):
        path.mkdir(parents=True, exist_ok=True)
    db = dbm.open_db(settings.db_path)
    dbm.migrate(db)
    new_key = ensure_api_key(db, settings.data_dir, settings.api_key)
    collections.ensure_default_collection(db)
    hub = WebSocketHub()
    services = Services(settings, db, hub, Events(db, settings, hub), Jobs(db, settings),
                        load_secret(settings.data_dir))
    register_upload_jobs(services)
    services.presenters["upload"] = media.present_upload
    services.exports = Exports(services, streams.stream_urls)
    services.spoken = Spoken(services)
    services.live = LiveTranscripts(services)
    services.capture = CaptureRuntime(services, on_stopped=services.exports.after_stop,
                                      on_closing=services.live.end_session)
    return services, new_key


async def housekeeping(services: Services) -> None:
    while True:
        swept = sweep_expired(services.db, services.settings.uploads_dir)
        if swept:
            log.info("removed %d expired upload slots", swept)
        await asyncio.sleep(600)


def create_app(settings: Settings) -> Litestar:
    services, new_key = build_services(settings)
    if new_key:
        # Printed once, on the start that created it; it is also kept in <data_dir>/api_key.
        print(f"ReelDB generated an API key (saved in {settings.data_dir / 'api_key'}):\n  {new_key}", flush=True)

    @contextlib.asynccontextmanager
    async def background(app: Litestar) -> AsyncIterator[None]:
        await services.capture.recover()
        tasks = [asyncio.create_task(services.events.run(), name="webhooks"),
                 asyncio.create_task(services.jobs.run(), name="jobs"),
                 asyncio.create_task(housekeeping(services), name="housekeeping")]
        try:
            yield
        finally:
            await services.live.close()
            await services.capture.close()
            services.spoken.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = Litestar(
        route_handlers=[*system.handlers, *collections.handlers, *media.handlers, *capture.handlers,
                        *streams.handlers, *rtstreams.handlers,
                        *spoken.handlers],
        dependencies={
            "svc": Provide(provide_services, sync_to_thread=False),
            "actor": Provide(provide_actor, sync_to_thread=False),
            "key": Provide(provide_key, sync_to_thread=False),
        },
        exception_handlers={Exception: handle_exception},
        lifespan=[background],
        cors_config=CORSConfig(allow_origins=["*"], allow_headers=["*"], expose_headers=["*"]),
        openapi_config=OpenAPIConfig(
            title="ReelDB", version="0.1.0", path="/schema",
            description="A self-hosted, VideoDB-compatible capture, storage and search API.",
            render_plugins=[ScalarRenderPlugin()],
        ),
        debug=False,
    )
    app.state.services = services
    return app
