"""The editor: VideoDB's Timeline JSON rendered from library assets (see README, "The editor").

Pure core: :mod:`.model` (parse and validate into frozen dataclasses) and :mod:`.plan` (copy or
render). I/O edges: :mod:`.render` (PyAV decode/composite/encode, numpy audio mix) and
:mod:`.text` (Pillow). The export stage never imports the server: the server resolves asset ids
to :class:`SourceInfo` and transcripts to :class:`Caption` lines and calls these functions on a
worker thread.
"""

from .model import Caption, Timeline, TimelineError, canonical_key, parse_timeline
from .plan import CopyPlan, SourceInfo, check_sources, map_captions, needs_captions, plan_copy
from .render import copy_timeline, mix_audio, render, write_copy

__all__ = ["Caption", "CopyPlan", "SourceInfo", "Timeline", "TimelineError", "canonical_key", "check_sources",
           "copy_timeline", "map_captions", "mix_audio", "needs_captions", "parse_timeline", "plan_copy", "render", "write_copy"]
