"""The pages for people (issue 22): what the library, search, upload and "New recording" ask of
the services, one method a page action, so a route parses, calls one method and presents.

Nothing here is stored on its own: the sign-ins are :class:`~.auth.WebSessions`' (``web_sessions``),
the videos the library's, the index the spoken-word service's. The pages' HTML is
``server/views/web.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .auth import Auth, Principal, token_fingerprint
from .collections import Collections
from .errors import BadRequest, NotFound
from .jobs import JobQueue
from .library import MediaLibrary
from .links import Links
from .rows import Collection
from .sessions import Sessions
from .settings import Settings
from .spoken import Spoken
from .text import strip
from .uploads import UPLOAD_PATH, Uploads

#: Videos on one page of the library.
PAGE_SIZE = 24
#: Moments a search from the library shows.
MOMENTS = 12
#: How long the client token minted for a browser recording lasts (the tab keeps it while open).
RECORDING_TOKEN_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Shelf:
    """One page of the library: the collection, its videos (each with its URLs and index state)."""

    collections: list[Collection]
    collection: Collection
    items: list[dict[str, Any]]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class FrontDoor:
    settings: Settings
    auth: Auth
    collections: Collections
    library: MediaLibrary
    spoken: Spoken
    sessions: Sessions
    uploads: Uploads
    jobs: JobQueue
    links: Links

    async def shelf(self, collection_id: str, recordings: bool | None, since: float | None, until: float | None,
                    page: int, base: str) -> Shelf:
        collections = await self.collections.list()
        collection = await self.collections.get(collection_id)
        page = max(1, page)
        found, total = await self.library.browse(collection.id, recordings, since, until, PAGE_SIZE,
                                                 (page - 1) * PAGE_SIZE)
        states = await self.spoken.index_states([m["id"] for m in found])
        items = [{**m, **self.links.media_urls(m, base), "index_state": states.get(m["id"], "none")} for m in found]
        return Shelf(collections, collection, items, total, page, max(1, -(-total // PAGE_SIZE)))

    async def search(self, collection_id: str, query: str, base: str) -> list[dict[str, Any]]:
        """Moments whose spoken words match ``query``, best first: each with its video, the span,
        the words said, a link that plays exactly that span and the storyboard for its thumbnail."""
        if not strip(query):
            raise BadRequest("Type the words to look for.")
        try:
            videos = await self.spoken.indexed_in_collection(collection_id)
        except BadRequest:
            return []  # nothing indexed yet: nothing matches
        hits = await self.spoken.search(query, [v["id"] for v in videos], mode=self.settings.search_mode,
                                        score_threshold=None if self.settings.search_mode == "keyword" else 0.2,
                                        result_threshold=MOMENTS)
        by_id = {v["id"]: v for v in videos}
        return [{"video": by_id[h["asset_id"]], "start": h["start"], "end": h["end"], "text": h["text"],
                 "channel": h.get("channel"), **self.links.media_urls(by_id[h["asset_id"]], base)}
                for h in hits]

    async def player_url(self, media_id: str, start: float | None, end: float | None, base: str) -> str:
        """Where to watch a video of the library (or one span of it); NotFound once it is deleted."""
        video = await self._video(media_id)
        spans = [(start, end)] if start is not None and end is not None and end > start else None
        url = self.links.stream_urls(video["id"], bool(video.get("hls_path")), base, spans)["player_url"]
        if url is None:
            raise BadRequest(f"“{video['name']}” is still being prepared: try again in a moment.")
        return url

    async def video(self, media_id: str) -> dict[str, Any]:
        return await self._video(media_id)

    async def rename(self, media_id: str, name: str) -> dict[str, Any]:
        if not strip(name):
            raise BadRequest("A title cannot be empty.")
        await self._video(media_id)
        return await self.library.update("video", media_id, None, name.strip()[:300], None)

    async def delete(self, media_id: str) -> dict[str, Any]:
        video = await self._video(media_id)
        await self.library.delete_video(media_id, None)
        return video

    async def new_recording(self, viewer: Principal, collection_id: str) -> tuple[str, str]:
        """A capture session and its client token for the signed-in user: (session id, token)."""
        collection = await self.collections.get(collection_id)
        session = await self.sessions.create(collection.id, viewer.api_key_id, "web", None, None, None,
                                                {"started_from": "library"})
        token, _ = await self.auth.mint_client_token(viewer.api_key_id, RECORDING_TOKEN_SECONDS, "web")
        return session.id, token

    async def recording_token(self, viewer: Principal, session_id: str) -> str:
        """A new client token for a recording of the signed-in user's, for its capture page opened
        where the first token is not (another tab, a link from history): the page takes it over."""
        await self.sessions.load_for(session_id, viewer)  # 404 for no such session
        token, _ = await self.auth.mint_client_token(viewer.api_key_id, RECORDING_TOKEN_SECONDS, "web")
        await self.sessions.hand_over(session_id, token_fingerprint(token))
        return token

    async def upload_slot(self, collection_id: str, name: str | None, base: str) -> str:
        collection = await self.collections.get(collection_id)
        return await self.uploads.create_slot(collection.id, name, base)

    async def import_upload(self, collection_id: str, url: str, name: str | None) -> str:
        """The uploaded file into the library (an import job); its job id."""
        collection = await self.collections.get(collection_id)
        if not UPLOAD_PATH.match(urlparse(url).path or ""):
            raise BadRequest("Only a file uploaded here can be added.")
        return await self.uploads.start_import(collection.id, url, name, None, "video")

    async def upload_state(self, job_id: str) -> dict[str, Any]:
        """How an upload's import is going: ``status`` (queued, running, done, failed) and, failed, why."""
        job = await self.jobs.get(job_id)
        if job is None or job["kind"] != "upload":
            raise NotFound("No such upload")
        error = job.get("error")
        if error and "media_type is" in error:  # the library keeps videos
            error = "it is not a video (an audio file or an image can be added with the SDK)"
        return {"status": job["status"], "error": error}

    async def _video(self, media_id: str) -> dict[str, Any]:
        try:
            return await self.library.find("video", media_id)
        except NotFound:
            raise NotFound("This video is no longer in the library: it was deleted, perhaps in another tab.") from None
