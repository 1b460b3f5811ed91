"""The session folder's ``manifest.json``: the contract between capture and export.

Why a file and not a row: stages meet at files (DESIGN §7). Export reads only the session folder,
so the manifest must say everything needed to line channels up: codec, the capture-clock time of
pts 0 in each file (``start_time``), pauses and gaps (holes in the pts, not squeezed out).

It is rewritten atomically (temp file + ``os.replace``) at least every second while recording, so
a SIGKILL leaves the last complete version. Fields beyond the contract may be added; the
contract's fields must not change.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
CATEGORIES = ("display", "mic", "system_audio")


def category_of(channel_id: str, kind: str) -> str:
    """Category from a channel id (``display:1`` → display). ``screen:*`` counts as display;
    unknown prefixes fall back on the kind (video → display, audio → mic)."""
    prefix = channel_id.split(":", 1)[0]
    if prefix in CATEGORIES:
        return prefix
    if prefix == "screen":
        return "display"
    return "display" if kind == "video" else "mic"


def file_name_for(channel_id: str, kind: str) -> str:
    """File name for a stored channel: ``display:1`` → ``display_1.mkv``; audio uses ``.mka``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in channel_id)
    return safe + (".mkv" if kind == "video" else ".mka")


@dataclass
class ChannelManifest:
    """One channel's entry (see the contract in the module doc / capture README)."""

    channel_id: str
    category: str
    kind: str
    store: bool
    file: Optional[str] = None
    codec: Optional[str] = None
    container: str = "matroska"
    start_time: Optional[float] = None
    clock: str = "arrival"
    width: Optional[int] = None
    height: Optional[int] = None
    sample_rate: Optional[int] = None
    audio_channels: Optional[int] = None
    pauses: list[list[Optional[float]]] = field(default_factory=list)
    gaps: list[list[float]] = field(default_factory=list)
    first_frame_at: Optional[float] = None
    last_frame_at: Optional[float] = None
    frames: int = 0
    complete: bool = False
    # Additions beyond the contract:
    dropped_frames: int = 0
    rtcp_offset: Optional[float] = None  # add to this file's times to get RTCP (sender) time
    error: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.kind == "video":
            d.pop("sample_rate")
            d.pop("audio_channels")
        else:
            d.pop("width")
            d.pop("height")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ChannelManifest":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class SessionManifest:
    """The whole ``manifest.json``."""

    session_id: str
    created_at: float = field(default_factory=time.time)
    channels: list[ChannelManifest] = field(default_factory=list)
    version: int = MANIFEST_VERSION

    def channel(self, channel_id: str) -> ChannelManifest:
        for ch in self.channels:
            if ch.channel_id == channel_id:
                return ch
        raise KeyError(channel_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "session_id": self.session_id,
            "created_at": self.created_at,
            "channels": [c.to_dict() for c in self.channels],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SessionManifest":
        return cls(
            session_id=d["session_id"],
            created_at=d.get("created_at", 0.0),
            channels=[ChannelManifest.from_dict(c) for c in d.get("channels", [])],
            version=d.get("version", MANIFEST_VERSION),
        )


def save_manifest(folder: str | Path, manifest: SessionManifest) -> Path:
    """Write ``manifest.json`` atomically: a reader (or a crash) sees the old or the new file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(manifest.to_dict(), indent=1).encode()
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / MANIFEST_NAME)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return folder / MANIFEST_NAME


def load_manifest(folder: str | Path) -> SessionManifest:
    """Read ``manifest.json`` from a session folder."""
    with open(Path(folder) / MANIFEST_NAME, "rb") as f:
        return SessionManifest.from_dict(json.load(f))
