"""Events for live alerts: ``conn.create_event(event_prompt, label)`` and ``list_events()``.

An event is a prompt and a label, kept in ``rtstream_events`` (an application makes its events
once and uses them for many sessions). Its prompt is compiled (``index/event_match.py``) when it is
created, so a prompt that cannot match (or a pattern that would backtrack without end) is refused
then, not when a record arrives; compiled matchers are cached here by event id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reeldb.index import embed
from reeldb.index.event_match import MAX_PROMPT, BadPrompt, Matcher, compile_prompt

from .database import Database, rows
from .errors import BadRequest, NotFound, PayloadTooLarge
from .ids import new_id
from .runtime import Runtime
from .settings import Settings


@dataclass(frozen=True)
class RtEvent:
    id: str
    event_prompt: str
    label: str
    created_at: float

    def view(self) -> dict[str, Any]:
        return {"event_id": self.id, "event_prompt": self.event_prompt, "label": self.label}


class RtEvents:
    """Owns ``rtstream_events`` and the compiled matcher of each."""

    def __init__(self, db: Database, settings: Settings, runtime: Runtime) -> None:
        self.db = db
        self.settings = settings
        self.runtime = runtime
        self._pool = runtime.pool("live-match", 1)
        self._matchers: dict[str, Matcher] = {}

    def embedder(self, texts: list[str]):
        """The bundled MiniLM (blocking: call on :attr:`pool`)."""
        return embed.embed_texts(texts, model_spec=self.settings.embed_model)

    @property
    def pool(self):
        return self._pool

    async def create(self, api_key_id: str, event_prompt: str, label: str) -> RtEvent:
        if len(event_prompt) > MAX_PROMPT:
            raise PayloadTooLarge(f"event_prompt is {len(event_prompt)} characters; at most {MAX_PROMPT}")
        if not label.strip() or len(label) > 200:
            raise BadRequest("label must be 1..200 characters")
        try:
            matcher = await self.runtime.run_in(self._pool, lambda: compile_prompt(event_prompt, self.embedder))
        except BadPrompt as exc:
            raise BadRequest(str(exc)) from None
        event = RtEvent(new_id("rtstream_event"), event_prompt, label.strip(), time.time())
        await self.db.execute_write_fn(lambda conn: conn["rtstream_events"].insert(
            {"id": event.id, "api_key_id": api_key_id, "event_prompt": event.event_prompt, "label": event.label,
             "created_at": event.created_at}))
        self._matchers[event.id] = matcher
        return event

    async def list(self) -> list[RtEvent]:
        found = await self.db.execute_fn(lambda conn: list(rows(
            conn, "select id, event_prompt, label, created_at from rtstream_events order by created_at")))
        return [RtEvent(**r) for r in found]

    async def get(self, event_id: str) -> tuple[RtEvent, Matcher]:
        found = await self.db.execute_fn(lambda conn: list(rows(
            conn, "select id, event_prompt, label, created_at from rtstream_events where id = ?", [event_id])))
        if not found:
            raise NotFound(f"event {event_id} not found")
        event = RtEvent(**found[0])
        if event.id not in self._matchers:  # made before this server started
            self._matchers[event.id] = await self.runtime.run_in(
                self._pool, lambda: compile_prompt(event.event_prompt, self.embedder))
        return event, self._matchers[event.id]
