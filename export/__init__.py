"""The export stage: turns a capture session folder into assets and HLS renditions."""
