"""The server's log: what an operator reads at INFO, everything else one ``REELDB_LOG_LEVEL=debug`` away.

At ``info`` only ReelDB's own loggers (``reeldb.*``) speak at INFO: sessions started and stopped,
exports, indexes, failed jobs, ingest workers up and down. The libraries' INFO chatter (aioice's
ICE pair checks, aiortc, uvicorn's lifecycle and access lines, faster-whisper, sentence-transformers,
huggingface_hub) shows from ``debug`` on; their warnings and errors always show. Model progress
bars (tqdm) never reach the log, at any level: they are terminal animations, not records.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

from .settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Environment that turns off tqdm's bars in this process and the ones it starts (ingest workers,
#: renders): tqdm reads ``TQDM_DISABLE``, huggingface_hub and transformers ``HF_HUB_DISABLE_PROGRESS_BARS``.
QUIET_PROGRESS = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and
    ``exc`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def level_of(settings: Settings) -> int:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise ValueError(f"REELDB_LOG_LEVEL={settings.log_level!r}: debug, info, warning or error")
    return level


def setup_logging(settings: Settings) -> None:
    """One handler on the root logger (stderr, text or JSON per ``REELDB_LOG_FORMAT``), ReelDB's
    loggers at ``REELDB_LOG_LEVEL`` and every other logger at WARNING unless that level is lower.
    Call again after something (litestar, uvicorn) installed handlers of its own: it takes them off."""
    for name, value in QUIET_PROGRESS.items():
        os.environ.setdefault(name, value)
    level = level_of(settings)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=max(level, logging.WARNING), handlers=[handler], force=True)
    logging.getLogger("reeldb").setLevel(level)
    logging.captureWarnings(True)  # Python warnings (litestar's at import, say) as records too
    for name in ("litestar", "uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
        named.setLevel(logging.NOTSET)
