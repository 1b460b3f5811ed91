"""Validating the channel list a recorder announces at ``capture/session/start`` (pure)."""

from __future__ import annotations

from typing import Any

# The channel-id rules live with the manifest schema, the one contract capture and export share;
# the rtstream's ``channel_id`` is the channel's category (``display:2`` → ``display``, DESIGN §2).
from reeldb.capture.manifest import category, is_channel_id, kind_of

__all__ = ["ChannelError", "category", "normalize"]

MAX_NAME = 256


class ChannelError(ValueError):
    pass


def normalize(raw: Any, max_channels: int, primary: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Channels as stored on the session, and the primary video channel id.

    Accepts the SDK's, the Node SDK's and the OpenAPI's spellings (``type``/``channel_type``,
    ``name``/``channel_name``); ``store`` defaults to true as in the OpenAPI, though the Python
    SDK always sends it.
    """
    if not isinstance(raw, list) or not raw:
        raise ChannelError("channels must be a non-empty list")
    if len(raw) > max_channels:
        raise ChannelError(f"Too many channels: {len(raw)} (this server accepts at most {max_channels})")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, ch in enumerate(raw):
        if not isinstance(ch, dict):
            raise ChannelError(f"channels[{i}] must be an object")
        cid = ch.get("channel_id") or ch.get("id")
        if not isinstance(cid, str) or not is_channel_id(cid):
            shown = repr(cid) if len(repr(cid)) <= 80 else repr(cid)[:60] + "…"
            raise ChannelError(
                f"channels[{i}].channel_id {shown} is not a channel id like 'mic:default', "
                "'system_audio:default' or 'display:1' (letters, digits, '_', '.', '-' after the colon, "
                "at most 128)"
            )
        if cid in seen:
            raise ChannelError(f"Channel {cid} is listed twice")
        seen.add(cid)
        expected = kind_of(cid)
        kind = ch.get("type") or ch.get("channel_type") or expected
        if kind not in ("audio", "video"):
            raise ChannelError(f"Invalid channel type {kind!r} for {cid}: must be 'audio' or 'video'")
        if kind != expected:
            raise ChannelError(f"Channel {cid} is {expected}, not {kind}")
        store = ch.get("store", True)
        is_primary = ch.get("is_primary", False)
        if not isinstance(store, bool) or not isinstance(is_primary, bool):
            raise ChannelError(f"store and is_primary of {cid} must be true or false")
        name = ch.get("name") or ch.get("channel_name") or cid
        if len(str(name)) > MAX_NAME:
            raise ChannelError(f"The name of {cid} is longer than {MAX_NAME} characters")
        out.append({"channel_id": cid, "name": str(name), "type": kind, "store": store,
                    "is_primary": is_primary})
    primaries = [c["channel_id"] for c in out if c["is_primary"]]
    if len(primaries) > 1:
        raise ChannelError(f"Only one channel can be primary, got {', '.join(primaries)}")
    if primary is not None:
        if primary not in seen:
            raise ChannelError(f"primary_video_channel_id {primary} is not one of the channels")
        if kind_of(primary) != "video":
            raise ChannelError(f"primary_video_channel_id {primary} is not a video channel")
    elif primaries:
        if kind_of(primaries[0]) != "video":
            raise ChannelError(f"The primary channel {primaries[0]} is not a video channel")
        primary = primaries[0]
    else:
        videos = [c["channel_id"] for c in out if c["type"] == "video"]
        stored = [c["channel_id"] for c in out if c["type"] == "video" and c["store"]]
        primary = (stored or videos or [None])[0]
    for c in out:
        c["is_primary"] = c["channel_id"] == primary
    return out, primary
