"""The index stage: turns audio into transcripts and screens into their text, both searchable.

Modules (import the one you need; importing this package loads no model):
- ``models``: shared whisper / sentence-transformers instances, from disk only.
- ``transcribe``: media file → ``Transcript`` of timestamped words (blocking).
- ``segments``: pure segmenters (SDK ``get_transcript`` shapes; sentences for indexing).
- ``embed``: texts → unit float32 vectors (blocking).
- ``store``: schema and rows in the server's SQLite database.
- ``pipeline``: ``index_asset`` = transcribe + segment + embed + store (blocking; a job's body).
- ``search``: semantic, keyword (FTS5) and hybrid (RRF) search with an in-memory matrix.
- ``live``: live transcription consumer for ``reeldb.capture.live.LiveHub``.
- ``scenes``: a video cut into scenes where its screen changes (or every N s), the frames worth reading kept.
- ``ocr``: a frame's text (libtesseract via tesserocr), lines in reading order, cleaned.
- ``screen_text``: both, per scene (a scene index's descriptions), and their vectors.
- ``scene_store``: scene collections and scene indexes in the server's SQLite database.
"""
