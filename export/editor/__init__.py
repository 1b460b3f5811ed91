"""The editor: VideoDB's Timeline JSON rendered from library assets (see README, "The editor").

Pure core: :mod:`.model` (parse and validate into frozen dataclasses) and :mod:`.plan` (copy or
render). I/O edges: :mod:`.render` (PyAV decode/composite/encode, numpy audio mix), :mod:`.copy` (the
copy path: cut, remux and HLS in one pass) and
:mod:`.text` (Pillow). The export stage never imports the server: the server resolves asset ids
to :class:`SourceInfo` and transcripts to :class:`Caption` lines and calls these functions on a
worker thread.
"""

from .model import Timeline, TimelineError, canonical_key, parse_timeline
from .plan import CopyPlan, SourceInfo, check_sources, map_captions, needs_captions, plan_copy
from .copy import copy_timeline, write_copy
from .render import Caption, mix_audio, render

__all__ = ["Caption", "CopyPlan", "copy_timeline", "SourceInfo", "Timeline", "TimelineError", "canonical_key", "check_sources",
           "map_captions", "mix_audio", "needs_captions", "parse_timeline", "plan_copy", "render", "write_copy"]
