"""The capture stage: receives channels over WebRTC and writes the stored ones to a session folder.

Modules (stages meet at files: this stage writes ``<data_dir>/sessions/<cap-id>/``):
- ``tap``: the only module touching aiortc internals; encoded frames + RTCP sender reports.
- ``clock``: RTP timestamp → capture (wall-clock) time, pure.
- ``writer``: encoded H.264/VP8/Opus → Matroska, no re-encoding, crash-tolerant.
- ``manifest``: ``manifest.json``, the contract with the export stage.
- ``live``: decoded audio for live consumers (level meter, transcript), only while attached.
- ``ingest``: ``IngestSession``, one peer connection per capture session (no HTTP, no DB).
- ``sources`` / ``recorder``: ``reeldb-recorder``, the SDK capture binary's stand-in.
"""
