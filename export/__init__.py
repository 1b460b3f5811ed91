"""The export stage: turns a capture session folder into assets and HLS renditions.

Reads only ``<data_dir>/sessions/<cap-id>/`` (manifest.json + one file per stored channel),
writes only into the folder it is given, never imports the server. Blocking, CPU-bound
functions: the server calls them from a worker thread.

    result = export_session(session_dir, out_dir, video_channel_id=None, progress=None)
    playlist = make_hls(result.muxed_path, hls_dir)
    info = probe(uploaded_file)
    spans = clip_segments(source, hls_dir, [(start, end), ...], hls_dir / "clips")  # exact clips
    text = clip_playlist([(spans, prefix), ...])
"""

from .clips import ClipCancelled, ClipError, Piece, clip_entries, clip_playlist, clip_segments, shift_timestamps
from .errors import (
    ChannelFileError,
    ChannelNotStoredError,
    ExportCancelled,
    ExportError,
    ManifestError,
    NothingStoredError,
    UnknownChannelError,
)
from .hls import HlsError, make_hls
from .mux import ChannelAsset, ExportResult, export_session
from .plan import ExportPlan, Manifest, load_manifest, make_plan
from .probe import MediaError, MediaInfo, probe

__all__ = [
    "ChannelAsset", "ChannelFileError", "ClipCancelled", "ClipError", "clip_entries", "Piece", "clip_playlist", "clip_segments", "shift_timestamps", "ChannelNotStoredError", "ExportCancelled", "ExportError",
    "ExportPlan", "ExportResult", "HlsError", "Manifest", "ManifestError", "MediaError", "MediaInfo",
    "NothingStoredError", "UnknownChannelError", "export_session", "load_manifest", "make_hls",
    "make_plan", "probe",
]  # fmt: skip
