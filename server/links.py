"""The URLs ReelDB hands out: streams, the player, files, uploads and websockets (pure, no I/O).

Services and routes build every link here, each signed for its purpose (``signing``), so a link
made for one thing never opens another, and each link's lifetime is in one place.
"""

from __future__ import annotations

import math
import socket
from typing import TYPE_CHECKING, Any

from reeldb.export import playlists

from .clip_budget import widen
from .settings import Settings
from .signing import Purpose, sign, verify

if TYPE_CHECKING:  # the app's request type; links are built in processes without the web stack too
    from litestar.connection import ASGIConnection


def default_trusted_hosts(settings: Settings) -> frozenset[str]:
    """Loopback, where we listen, and this machine's own name and addresses."""
    hosts = {"127.0.0.1", "localhost", "::1", settings.host}
    try:
        name = socket.gethostname()
        hosts.add(name)
        hosts.update(info[4][0] for info in socket.getaddrinfo(name, None))
    except OSError:
        pass
    return frozenset(h.lower() for h in hosts if h)


class Links:
    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.settings = settings
        self._secret = secret
        configured = [h.strip().lower() for h in (settings.trusted_hosts or "").split(",") if h.strip()]
        self._trusted = frozenset(configured) if configured else default_trusted_hosts(settings)

    # -- bases -----------------------------------------------------------------------------------
    def default_base(self) -> str:
        """For URLs made outside a request (events): the public URL, else where we listen."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.settings.port}"

    def base_url(self, request: ASGIConnection[Any, Any, Any, Any]) -> str:
        """Where the caller reached us (URLs we hand out must work from its side of the network),
        if its ``Host`` is one we trust; a forged Host is never echoed into links or pages."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = request.url.hostname or ""
        if host.lower().strip("[]") not in self._trusted and "*" not in self._trusted:
            return self.default_base()
        return str(request.base_url).rstrip("/")

    # -- tokens ----------------------------------------------------------------------------------
    def token(self, purpose: Purpose, payload: str, ttl: float) -> str:
        return sign(self._secret, purpose, payload, ttl)

    def check(self, purpose: Purpose, token: str) -> str | None:
        return verify(self._secret, purpose, token)

    # -- links -----------------------------------------------------------------------------------
    def stream_urls(self, media_id: str, has_stream: bool, base: str,
                    spans: list[tuple[float, float]] | None = None) -> dict[str, Any]:
        """``stream_url``/``player_url`` of a video, or of spans of it (a timeline, a search hit)."""
        if not has_stream:
            return {"stream_url": None, "player_url": None}
        token = self.token("stream", media_id, self.settings.stream_link_ttl)
        if not spans:
            return {"stream_url": f"{base}/stream/{token}/index.m3u8", "player_url": f"{base}/watch?v={token}"}
        text = playlists.format_spans(widen(spans, self.settings.clip_min_span))
        return {"stream_url": f"{base}/stream/{token}/t/{text}.m3u8",
                "player_url": f"{base}/watch?v={token}&t={text}"}

    def moment_urls(self, base: str, rtstream_id: str, start: float, end: float) -> dict[str, str]:
        """An alert's ``stream_url``/``player_url``: a moment of a stored channel (unix seconds),
        signed before the recording can play; they open its exact clip once the session is
        exported (``/moment/…``), and say "not yet" until then."""
        payload = f"{rtstream_id}~{int(start * 1000)}~{math.ceil(end * 1000)}"
        token = self.token("moment", payload, self.settings.stream_link_ttl)
        return {"stream_url": f"{base}/moment/{token}/index.m3u8", "player_url": f"{base}/moment/{token}"}

    @staticmethod
    def moment_of(payload: str) -> tuple[str, float, float] | None:
        """(rtstream id, start, end) of a verified moment payload; None for one of another shape."""
        parts = payload.split("~")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return parts[0], int(parts[1]) / 1000, int(parts[2]) / 1000

    def file_url(self, base: str, media_id: str) -> str:
        return f"{base}/files/{self.token('file', media_id, self.settings.file_link_ttl)}"

    def frame_url(self, base: str, frame_id: str) -> str:
        """A scene frame's image (``Frame.url``), signed like a file link."""
        return f"{base}/frames/{self.token('frame', frame_id, self.settings.file_link_ttl)}.jpg"

    def upload_url(self, base: str, upload_id: str) -> str:
        return f"{base}/upload/{upload_id}?sig={self.token('upload', upload_id, self.settings.upload_link_ttl)}"

    def websocket_url(self, base: str, api_key_id: str) -> str:
        ws_base = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{ws_base}/ws?token={self.token('ws', api_key_id, self.settings.websocket_link_ttl)}"

    def media_urls(self, media: dict[str, Any], base: str) -> dict[str, Any]:
        """The URLs a media row's view carries, by kind."""
        if media["kind"] == "image":
            return {"url": self.file_url(base, media["id"])}
        if media["kind"] == "video":
            urls = self.stream_urls(media["id"], bool(media.get("hls_path")), base)
            if media.get("hls_path"):  # previews follow the stream; asked for first, they are made then
                stream = urls["stream_url"].rsplit("/", 1)[0]
                urls["thumbnail_url"] = f"{stream}/poster.jpg"
                urls["storyboard_url"] = f"{stream}/storyboard.vtt"
            return urls
        return {}
