"""The capture stage: receives channels over WebRTC and writes the stored ones to a session folder."""
