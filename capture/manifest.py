"""The session folder's ``manifest.json``: the one schema capture writes and export reads.

Why a file and not a row: stages meet at files (DESIGN §7). Export reads only the session folder,
so the manifest must say everything needed to line channels up: codec, the capture-clock time of
pts 0 in each file (``start_time``), pauses and gaps (holes in the pts, not squeezed out).

Why one module: the contract used to be written twice (capture wrote it, export parsed its own
copy) and the two drifted. This module owns the channel-id rules, the dataclasses and the one
parser (:func:`parse_manifest`); export imports them, and the server imports the channel-id rules
(:data:`CHANNEL_ID`, :func:`category`, :func:`kind_of`). It is pure apart from
:func:`save_manifest` / :func:`load_manifest`, and imports nothing of aiortc or PyAV.

Every field written has a reader: export places channels with ``start_time`` / ``first_frame_at``
/ ``last_frame_at`` / ``pauses`` / ``gaps`` (shifted by ``rtcp_offset`` for an arrival-clock file),
picks the video by ``is_primary``, checks ``frames`` / ``complete`` against the file and turns
``error`` / ``dropped_frames`` / ``dts_clamps`` into export warnings.

Versions: 2 (written now) adds ``is_primary`` and ``dts_clamps``, makes ``camera:*`` its own
category and escapes file names so two channel ids never share a file. Version 1 files are still
read: their category is recomputed from the channel id and the missing fields take defaults.
Optional fields added later within version 2 (no bump: older readers keep them in ``extra``):
the keyframe-cadence counters of video channels (``keyframe_interval``, ``keyframe_requests``,
``keyframes``, ``max_keyframe_gap``), informative for operators and tests; export does not need
them.

It is rewritten atomically (temp file + ``os.replace``) at least every second while recording, so
a SIGKILL leaves the last complete version.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)

# ---------------------------------------------------------------- channel-id rules (pure)

#: A device channel id as recorders announce it: ``<prefix>:<name>``, the name at most
#: :data:`MAX_CHANNEL_NAME` characters (it becomes a file name and an rtstream's name).
MAX_CHANNEL_NAME = 128
CHANNEL_ID = re.compile(r"^(mic|system_audio|display|screen|camera):[A-Za-z0-9_.\-]{1,%d}$" % MAX_CHANNEL_NAME)
#: Channel-id prefix → category (the rtstream's ``channel_id``; ``screen`` is the SDK's display).
PREFIX_CATEGORY = {"mic": "mic", "system_audio": "system_audio", "display": "display",
                   "screen": "display", "camera": "camera"}  # fmt: skip
#: Category → media kind.
CATEGORY_KIND = {"mic": "audio", "system_audio": "audio", "display": "video", "camera": "video"}
CATEGORIES = tuple(CATEGORY_KIND)
KINDS = ("audio", "video")
FILE_EXT = {"video": ".mkv", "audio": ".mka"}
_PLAIN = re.compile(r"[a-z0-9_\-]")


class ManifestError(ValueError):
    """manifest.json is missing or does not follow this schema (or a channel id is not valid).

    ``str(err)`` names no server path, so it can be shown to users.
    """

    code = "MANIFEST_INVALID"


def is_channel_id(channel_id: object) -> bool:
    """True for a well-formed device channel id (``mic:default``, ``display:2``, ...)."""
    return isinstance(channel_id, str) and CHANNEL_ID.match(channel_id) is not None


def category(channel_id: str) -> str:
    """``display:2`` → ``display``; ``screen:*`` → ``display``; ``camera:1`` → ``camera``.

    Raises ``ValueError`` for an id whose prefix is none of mic, system_audio, display, screen,
    camera (validate with :func:`is_channel_id` first).
    """
    prefix = channel_id.split(":", 1)[0] if isinstance(channel_id, str) else None
    try:
        return PREFIX_CATEGORY[prefix]
    except KeyError:
        raise ValueError(f"{channel_id!r} is not a channel id like 'mic:default' or 'display:1'") from None


def kind_of(channel_id: str) -> str:
    """``audio`` for mic and system audio, ``video`` for displays, screens and cameras."""
    return CATEGORY_KIND[category(channel_id)]


def file_stem(channel_id: str) -> str:
    """A file-name stem that is unique per channel id, on case-insensitive file systems too.

    ``display:1`` → ``display_1``, ``mic:default`` → ``mic_default`` (the first ``:`` of a valid
    id becomes ``_``). Every other character outside ``[a-z0-9_-]`` is escaped as ``~xx`` (its
    UTF-8 bytes in lower-case hex), so ``mic:a.b`` → ``mic_a~2eb`` and ``mic:a_b`` → ``mic_a_b``
    never collide, and ``mic:A`` → ``mic_~41`` differs from ``mic:a`` even on macOS. An id that
    is not valid keeps its ``:`` and ``_`` escaped too, so it cannot take a valid id's name.
    Why escape rather than replace: replacement mapped distinct ids to one file, and the second
    channel overwrote the first.
    """
    if is_channel_id(channel_id):
        prefix, rest = channel_id.split(":", 1)
        return f"{prefix}_{_escape(rest, keep_underscore=True)}"
    return _escape(str(channel_id), keep_underscore=False) or "~"


def _escape(text: str, *, keep_underscore: bool) -> str:
    out = []
    for c in text:
        if _PLAIN.match(c) and (keep_underscore or c != "_"):
            out.append(c)
        else:
            out.extend(f"~{b:02x}" for b in c.encode("utf-8"))
    return "".join(out)


def file_name_for(channel_id: str, kind: str) -> str:
    """The stored file of a channel: ``display:1`` → ``display_1.mkv``; audio uses ``.mka``."""
    if kind not in FILE_EXT:
        raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
    return file_stem(channel_id) + FILE_EXT[kind]


# ---------------------------------------------------------------- the schema


_VIDEO_ONLY = ("keyframe_interval", "keyframe_requests", "keyframes", "max_keyframe_gap")


@dataclass
class ChannelManifest:
    """One channel's entry. Times are unix seconds on the channel's capture clock (``clock``).

    ``start_time`` is the capture time of pts 0 in ``file``; ``pauses`` ([start, end|null]) and
    ``gaps`` ([start, end]) are holes in the pts; ``rtcp_offset`` is what to add to this channel's
    times to put them on the sender's (RTCP) clock when ``clock`` is ``arrival``; ``dts_clamps``
    counts packets whose timestamp the writer had to move forward to keep it increasing.
    """

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
    is_primary: bool = False
    dropped_frames: int = 0
    dts_clamps: int = 0
    rtcp_offset: Optional[float] = None
    error: Optional[str] = None
    # Keyframe cadence (video only; optional, absent from files written before it):
    #: the ingest's ``keyframe_interval`` in force (0: off; None: not recorded).
    keyframe_interval: Optional[float] = None
    #: keyframe requests (PLI/FIR) the ingest sent: at start, on resume and on the cadence.
    keyframe_requests: int = 0
    #: keyframes that arrived (written or not).
    keyframes: int = 0
    #: the longest wait between two keyframes while connected and not paused, in seconds.
    max_keyframe_gap: Optional[float] = None
    #: Fields a newer writer added that this reader does not know (never written back).
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_media(self) -> bool:
        """Stored with a file: the only channels export reads."""
        return self.store and bool(self.file)

    @property
    def first_at(self) -> float:
        """Capture time of the first frame (falls back to ``start_time``)."""
        if self.first_frame_at is not None:
            return self.first_frame_at
        return self.start_time if self.start_time is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        if self.kind == "video":
            d.pop("sample_rate")
            d.pop("audio_channels")
        else:
            for name in ("width", "height") + _VIDEO_ONLY:
                d.pop(name)
        return d


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

    def find(self, channel_id: str) -> Optional[ChannelManifest]:
        """Like :meth:`channel` but None when absent."""
        return next((c for c in self.channels if c.channel_id == channel_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "session_id": self.session_id,
            "created_at": self.created_at,
            "channels": [c.to_dict() for c in self.channels],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SessionManifest":
        return parse_manifest(d)


def new_channel(channel_id: str, kind: str, store: bool, *, is_primary: bool = False) -> ChannelManifest:
    """The entry capture starts a channel with (category from the id; audio is 48 kHz stereo)."""
    entry = ChannelManifest(channel_id=channel_id, category=category(channel_id), kind=kind,
                            store=store, is_primary=is_primary)
    if kind == "audio":
        entry.sample_rate, entry.audio_channels = 48000, 2
    return entry


# ---------------------------------------------------------------- the one parser


def _num(value: Any, name: str, cid: str, *, optional: bool = True) -> Optional[float]:
    if value is None:
        if optional:
            return None
        raise ManifestError(f"channel {cid!r}: field {name!r} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ManifestError(f"channel {cid!r}: field {name!r} must be a number, got {value!r}")
    return float(value)


def _int(value: Any, default: Optional[int] = None) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _intervals(raw: Any, name: str, cid: str, open_end: bool) -> list[list[Optional[float]]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ManifestError(f"channel {cid!r}: {name!r} must be a list of [start, end]")
    out = []
    for item in raw:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ManifestError(f"channel {cid!r}: bad {name!r} entry {item!r}")
        out.append([_num(item[0], name, cid, optional=False), _num(item[1], name, cid, optional=open_end)])
    return out


_FIELDS = set(ChannelManifest.__dataclass_fields__) - {"extra"}


def parse_channel(raw: Mapping[str, Any], version: int = MANIFEST_VERSION) -> ChannelManifest:
    """Validate one channel entry (version 1 entries are upgraded on the way)."""
    if not isinstance(raw, Mapping):
        raise ManifestError(f"channel entry must be an object, got {raw!r}")
    cid = raw.get("channel_id")
    if not isinstance(cid, str) or not cid:
        raise ManifestError(f"channel entry without a channel_id: {dict(raw)!r}")
    cat = raw.get("category")
    if version < 2 or not cat:
        # Version 1 wrote camera:* as display; the id is the truth where it has a known prefix.
        try:
            cat = category(cid)
        except ValueError:
            cat = cat or cid.split(":", 1)[0]
    kind = raw.get("kind") or CATEGORY_KIND.get(cat)
    if kind not in KINDS:
        raise ManifestError(f"channel {cid!r}: kind must be 'video' or 'audio', got {kind!r}")
    store = bool(raw.get("store", False))
    file = raw.get("file")
    if file is not None and (not isinstance(file, str) or Path(file).is_absolute() or ".." in Path(file).parts
                             or len(Path(file).parts) != 1):
        # Export reads only the session folder: a manifest cannot point outside it.
        raise ManifestError(f"channel {cid!r}: file must be a plain name inside the session, got {file!r}")
    container = raw.get("container") or "matroska"
    if container != "matroska":
        raise ManifestError(f"channel {cid!r}: container {container!r} is not supported (matroska)")
    offset = raw.get("rtcp_offset")
    complete = raw.get("complete")
    error = raw.get("error")
    return ChannelManifest(
        channel_id=cid,
        category=str(cat),
        kind=kind,
        store=store,
        file=file or None,
        codec=(str(raw["codec"]).lower() if raw.get("codec") else None),
        container=container,
        start_time=_num(raw.get("start_time"), "start_time", cid, optional=not (store and file)),
        clock=raw.get("clock") if raw.get("clock") in ("rtcp", "arrival") else "arrival",
        width=_int(raw.get("width")),
        height=_int(raw.get("height")),
        sample_rate=_int(raw.get("sample_rate")),
        audio_channels=_int(raw.get("audio_channels")),
        pauses=_intervals(raw.get("pauses"), "pauses", cid, open_end=True),
        gaps=_intervals(raw.get("gaps"), "gaps", cid, open_end=False),
        first_frame_at=_num(raw.get("first_frame_at"), "first_frame_at", cid),
        last_frame_at=_num(raw.get("last_frame_at"), "last_frame_at", cid),
        frames=_int(raw.get("frames"), 0),
        complete=complete if isinstance(complete, bool) else False,
        is_primary=raw.get("is_primary") is True,
        dropped_frames=_int(raw.get("dropped_frames"), 0),
        dts_clamps=_int(raw.get("dts_clamps"), 0),
        rtcp_offset=_num(offset, "rtcp_offset", cid),
        error=str(error) if error else None,
        keyframe_interval=_num(raw.get("keyframe_interval"), "keyframe_interval", cid),
        keyframe_requests=_int(raw.get("keyframe_requests"), 0),
        keyframes=_int(raw.get("keyframes"), 0),
        max_keyframe_gap=_num(raw.get("max_keyframe_gap"), "max_keyframe_gap", cid),
        extra={k: v for k, v in raw.items() if k not in _FIELDS},
    )


def parse_manifest(data: Mapping[str, Any]) -> SessionManifest:
    """Validate a decoded manifest.json; raises :class:`ManifestError`. Unknown fields are
    tolerated (a channel's are kept in ``extra``)."""
    if not isinstance(data, Mapping):
        raise ManifestError("manifest.json must hold a JSON object")
    version = data.get("version", 1)
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise ManifestError(f"manifest version {version!r} is not supported (known: {SUPPORTED_VERSIONS})")
    channels_raw = data.get("channels")
    if not isinstance(channels_raw, list):
        raise ManifestError("manifest.json has no 'channels' list")
    channels = [parse_channel(c, version) for c in channels_raw]
    ids = [c.channel_id for c in channels]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ManifestError(f"manifest lists channel(s) more than once: {', '.join(dupes)}")
    created = data.get("created_at")
    return SessionManifest(
        session_id=str(data.get("session_id") or ""),
        created_at=float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else 0.0,
        channels=channels,
        version=MANIFEST_VERSION,  # upgraded in memory; written back as the current version
    )


# ---------------------------------------------------------------- I/O edge


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
    """Read and validate ``manifest.json`` from a session folder; raises :class:`ManifestError`
    (the message names the session folder's last part only, never the server's path)."""
    folder = Path(folder)
    try:
        text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"session {folder.name} has no {MANIFEST_NAME}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {MANIFEST_NAME} of session {folder.name}: {type(exc).__name__}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{MANIFEST_NAME} of session {folder.name} is not valid JSON: {exc}") from exc
    return parse_manifest(data)
