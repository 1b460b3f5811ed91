"""Live spoken-word and screen-text indexes of capture rtstreams and their alerts (issue 21).

``rts.index_spoken_words(segmenter, length)`` on an audio rtstream of a running session: the live
transcript's finals (server/live.py, which starts one for the index if the caller has not) go
through the index stage's :class:`~reeldb.index.segmenter.Segmenter`; each record it completes is
kept in memory, pushed to the index's websocket (``audio_index``, times in ms) and read against the
index's enabled alerts (``index/event_match.py``, on a worker thread: a pattern has a time limit and
a prose prompt needs the embedder). An alert that matches goes to its websocket (``alert``) and to
its ``callback_url``: a stored channel's through the outbox (``Events.alert``), an ephemeral
channel's from memory only (``Events.alert_from_memory``).

``rts.index_scenes()`` / ``index_visuals()`` on a display rtstream: the display's live screen
reader (server/live_screens.py, one per display whatever the number of indexes) tells each record
of text read on screen; it is kept, pushed (``scene_index``) and read against the alerts the same
way, except that a screen record is read alone (no context from the one before: a slide is whole)
and an alert fires once per occurrence: not again while the record before showed what it matched
(a slide read again after a scroll), again once the slide comes back after another.

Why in memory: an ephemeral channel's words must never reach the disk, and a stored channel's are
indexed durably from its export. Records, indexes and alerts are forgotten ``live_retention``
seconds after their session ended, as live transcripts are.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from reeldb.index.event_match import CONTEXT, Hit, Matcher
from reeldb.index.segmenter import Segmenter

from .capture_runtime import CaptureRuntime
from .errors import BadRequest, Conflict, NotFound
from .events import Events, WebSocketHub, iso
from .ids import new_id
from .links import Links
from .live import MAX_RECORDS, LiveTranscripts, forget_ended
from .live_screens import LiveScreens
from .rows import RTStream
from .rt_events import RtEvent, RtEvents
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger("reeldb.live")


@dataclass
class Alert:
    id: str
    event: RtEvent
    matcher: Matcher
    callback_url: str
    ws_connection_id: str | None
    api_key_id: str
    enabled: bool = True
    #: The screen scene it last fired in (a prose prompt fires once per scene).
    fired_scene: int | None = None

    def view(self) -> dict[str, Any]:
        return {"alert_id": self.id, "event_id": self.event.id, "prompt": self.event.event_prompt,
                "label": self.event.label, "callback_url": self.callback_url,
                "status": "enabled" if self.enabled else "disabled"}


@dataclass(frozen=True)
class ScreenConfig:
    """A screen-text index as asked for (VideoDB's ``extraction_type`` / ``extraction_config`` /
    ``prompt``): recorded and shown; the display's one reader reads on change whatever they say."""

    extraction_type: str
    extraction_config: dict[str, Any]
    prompt: str | None


@dataclass
class LiveIndex:
    id: str
    rtstream: RTStream
    #: A spoken-word index's segmenter, or a screen-text index's configuration.
    segmenter: Segmenter | ScreenConfig
    name: str | None
    ws_connection_id: str | None
    running: bool = True
    records: deque = field(default_factory=lambda: deque(maxlen=MAX_RECORDS))
    alerts: dict[str, Alert] = field(default_factory=dict)
    ended_at: float | None = None

    @property
    def screen(self) -> bool:
        return isinstance(self.segmenter, ScreenConfig)

    @property
    def config(self) -> dict[str, Any]:
        if isinstance(self.segmenter, ScreenConfig):
            return self.segmenter.extraction_config
        value = self.segmenter.value
        return {"segmenter": self.segmenter.kind, "segmentation_value": int(value) if value == int(value) else value}

    @property
    def asked(self) -> tuple[Any, ...]:
        """What the index was asked for: two running indexes asked alike are one."""
        view = self.view()
        return view["extraction_type"], view["extraction_config"], view["prompt"], self.name

    def view(self) -> dict[str, Any]:
        screen = self.segmenter if isinstance(self.segmenter, ScreenConfig) else None
        return {"rtstream_index_id": self.id, "rtstream_id": self.rtstream.id,
                "extraction_type": screen.extraction_type if screen else "transcript",
                "extraction_config": self.config, "prompt": screen.prompt if screen else None, "name": self.name,
                "status": "connected" if self.running else "stopped", "sandbox_id": None}


def still_shown(alert: Alert, hit: Hit, scene: int | None, previous: str) -> bool:
    """Whether a screen record's match is an occurrence that already fired: a phrase or pattern the
    record before showed too (the same slide read again; the slide shown again after another one
    fires again), or a prose prompt in the scene it fired in."""
    if alert.matcher.kind == "semantic":
        return alert.fired_scene == scene
    return hit.matched.lower() in previous.lower()


class LiveIndexes:
    """Owns live spoken-word and screen-text indexes, their records and their alerts (all in memory)."""

    def __init__(self, settings: Settings, hub: WebSocketHub, capture: CaptureRuntime, live: LiveTranscripts,
                 screens: LiveScreens, events: Events, rt_events: RtEvents, runtime: Runtime, links: Links) -> None:
        self.settings = settings
        self.links = links
        self.hub = hub
        self.live = live
        self.screens = screens
        self.events = events
        self.rt_events = rt_events
        self.runtime = runtime
        self._indexes: dict[str, LiveIndex] = {}
        capture.on_closing(self.end_session)  # after LiveTranscripts' (built first): its flush comes first

    # -- indexes -----------------------------------------------------------------------------------
    async def create(self, rtstream: RTStream, segmenter: str, value: float, name: str | None,
                     ws_connection_id: str | None) -> LiveIndex:
        if "audio" not in rtstream.media_types:
            raise BadRequest(f"{rtstream.name} is not an audio stream; spoken-word indexes read audio")
        try:
            made = Segmenter(segmenter, value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        made_index = LiveIndex(new_id("rtstream_index"), rtstream, made, name, ws_connection_id)
        return await self._open(made_index, f"spoken ({segmenter} {value})")

    async def create_screen(self, rtstream: RTStream, config: ScreenConfig, name: str | None,
                            ws_connection_id: str | None) -> LiveIndex:
        """``index_scenes()`` / ``index_visuals()`` of a display: its screen text as it changes."""
        if "video" not in rtstream.media_types:
            raise BadRequest(f"{rtstream.name} is not a display; screen-text indexes read video")
        return await self._open(LiveIndex(new_id("rtstream_index"), rtstream, config, name, ws_connection_id),
                                "screen-text")

    async def _open(self, made: LiveIndex, what: str) -> LiveIndex:
        """``made``, reading from now on; or the running index of its rtstream that was asked for
        the same way (a second identical index answers the first)."""
        for index in self.of(made.rtstream.id):
            if index.running and index.asked == made.asked:
                index.ws_connection_id = made.ws_connection_id or index.ws_connection_id
                return index
        await self._attach(made)
        self._indexes[made.id] = made
        log.info("live %s index %s of %s started", what, made.id, made.rtstream.id)
        return made

    def of(self, rtstream_id: str) -> list[LiveIndex]:
        return [i for i in self._indexes.values() if i.rtstream.id == rtstream_id]

    def get(self, rtstream_id: str, index_id: str) -> LiveIndex:
        index = self._indexes.get(index_id)
        if index is None or index.rtstream.id != rtstream_id:
            raise NotFound(f"index {index_id} of rtstream {rtstream_id} not found")
        return index

    async def start(self, index: LiveIndex) -> None:
        if not index.running:
            await self._attach(index)
            index.running = True

    async def stop(self, index: LiveIndex) -> None:
        if index.running:  # tells the listener None: it flushes
            await self._source(index).detach(index.rtstream.id, index.id)

    def _source(self, index: LiveIndex) -> LiveTranscripts | LiveScreens:
        """What an index reads: its rtstream's live transcript, or its display's screen reader."""
        return self.screens if index.screen else self.live

    async def _attach(self, index: LiveIndex) -> None:
        async def listener(final: dict[str, Any] | None) -> None:
            if final is None:
                index.running = False
            if isinstance(index.segmenter, ScreenConfig):
                records = [] if final is None else [final]
            else:
                records = index.segmenter.flush() if final is None else index.segmenter.push(final)
            for record in records:
                try:
                    await self._recorded(index, record)
                except Exception:  # an index's trouble must not stop the transcript it reads
                    log.exception("live index %s could not take a record", index.id)

        try:
            await self._source(index).attach(index.rtstream, index.id, listener)
        except Conflict:
            raise Conflict(f"{index.rtstream.name} is not streaming; live indexes run while the session is live") \
                from None

    def records(self, index: LiveIndex, start: float | None, end: float | None) -> list[dict[str, Any]]:
        return [r for r in index.records
                if (start is None or r["end"] >= start) and (end is None or r["start"] <= end)]

    # -- records and alerts -----------------------------------------------------------------------------
    async def _recorded(self, index: LiveIndex, record: dict[str, Any]) -> None:
        # A transcript's phrase may start in the record before; a screen's text is read whole, and
        # what the record before already showed is the same occurrence still on screen.
        previous = index.records[-1]["text"] if index.records else ""
        before = previous[-CONTEXT:] if not index.screen else ""
        index.records.append({**record, "description": record["text"]})
        rts = index.rtstream
        await self.hub.send(index.ws_connection_id, {
            "channel": "scene_index" if index.screen else "audio_index", "rtstream_id": rts.id,
            "rtstream_name": rts.name, "rtstream_index_id": index.id,
            "data": {"text": record["text"], "start": round(record["start"] * 1000),
                     "end": round(record["end"] * 1000),
                     **({"description": record["text"], "scene": record.get("scene", 0)} if index.screen else {})}})
        scene = record.get("scene") if index.screen else None
        alerts = [a for a in index.alerts.values() if a.enabled]
        if not alerts:
            return

        def match() -> list[tuple[Alert, Any]]:
            vectors: dict[str, Any] = {}

            def embed(texts: list[str]):  # one embedding of the record for every prose alert
                if "v" not in vectors:
                    vectors["v"] = self.rt_events.embedder(texts)
                return vectors["v"]

            return [(a, hit) for a in alerts if (hit := a.matcher.match(record["text"], before, embed))]

        for alert, hit in await self.runtime.run_in(self.rt_events.pool, match):
            if index.screen and still_shown(alert, hit, scene, previous):
                continue  # a screen read again (a scroll, a typed line): the occurrence has fired
            alert.fired_scene = scene
            await self._fire(index, alert, hit, record)

    async def _fire(self, index: LiveIndex, alert: Alert, hit: Any, record: dict[str, Any]) -> None:
        rts = index.rtstream
        payload = {
            "event_id": alert.event.id, "label": alert.event.label, "confidence": hit.confidence,
            "explanation": f"{rts.name}{' (on screen)' if index.screen else ''}: \"{hit.matched}\"",
            "timestamp": iso(time.time()),
            "start_time": record["start"], "end_time": record["end"],
            # A stored channel's moment: links signed now that open its exact clip once the
            # session is exported (/moment/…; "not yet" until then). An ephemeral one has none.
            **(self.links.moment_urls(self.links.default_base(), rts.id, record["start"], record["end"]) if rts.store
               else {"stream_url": None, "player_url": None}),
            "alert_id": alert.id, "event_label": alert.event.label, "triggered": True, "text": record["text"],
            "rtstream_id": rts.id, "rtstream_name": rts.name, "rtstream_index_id": index.id,
        }
        log.info("alert %s (%s) fired on %s", alert.id, alert.event.label, rts.id)
        await self.hub.send(alert.ws_connection_id or index.ws_connection_id, {
            "channel": "alert", "rtstream_id": rts.id, "rtstream_name": rts.name, "rtstream_index_id": index.id,
            "data": {**payload, "start": round(record["start"] * 1000), "end": round(record["end"] * 1000)}})
        if alert.callback_url:
            if rts.store:
                await self.events.alert(rts.session_id, payload, alert.callback_url, alert.api_key_id)
            else:
                self.runtime.spawn(self.events.alert_from_memory(payload, alert.callback_url, alert.api_key_id),
                                   name=f"alert-{alert.id}")

    async def create_alert(self, index: LiveIndex, event_id: str, callback_url: str, ws_connection_id: str | None,
                           api_key_id: str) -> Alert:
        if not index.running:
            raise Conflict(f"index {index.id} is stopped; start() it before adding alerts")
        event, matcher = await self.rt_events.get(event_id)
        alert = Alert(new_id("alert"), event, matcher, callback_url, ws_connection_id, api_key_id)
        index.alerts[alert.id] = alert
        return alert

    def alert(self, index: LiveIndex, alert_id: str) -> Alert:
        if alert_id not in index.alerts:
            raise NotFound(f"alert {alert_id} of index {index.id} not found")
        return index.alerts[alert_id]

    # -- lifetime ---------------------------------------------------------------------------------
    async def end_session(self, session_id: str) -> None:
        now = time.time()
        for index in self._indexes.values():
            if index.rtstream.session_id == session_id and index.ended_at is None:
                index.ended_at = now
                index.running = False

    def evict(self, now: float | None = None) -> int:
        """Forget indexes (records, alerts) of sessions that ended ``live_retention`` seconds ago."""
        return forget_ended(self._indexes, self.settings.live_retention, now)
