"""What counts as blank text, the same in the OpenAPI document (ECMA regex) and in Python.

Python's ``str.strip()`` and ``\\s`` also strip control characters such as U+001E, which JSON
Schema's ``\\s`` does not: a name the schema allows would then be refused as empty. Both sides
use this one explicit set instead.
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec

BLANK = " \t\n\r\x0b\x0c"
#: A JSON Schema / msgspec pattern: at least one character that is not blank.
NON_BLANK_PATTERN = "[^ \\t\\n\\r\\x0b\\x0c]"


def strip(text: str) -> str:
    return text.strip(BLANK)


#: Names (videos, collections, uploads): one line, no control characters (a NUL reaches file names,
#: logs and terminals), at least one character that is not blank, at most ``MAX_NAME`` characters.
MAX_NAME = 1024
#: (A lookahead, so that a long refused name costs linear time, never a backtracking blow-up.)
NAME_PATTERN = "^(?=[^\\x00-\\x1f\\x7f]*[^ \\x00-\\x1f\\x7f])[^\\x00-\\x1f\\x7f]*$"
#: Descriptions: tabs and line breaks allowed, no other control character, at most ``MAX_DESCRIPTION``.
MAX_DESCRIPTION = 10_000
DESCRIPTION_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=MAX_NAME)]
Description = Annotated[str, msgspec.Meta(pattern=DESCRIPTION_PATTERN, max_length=MAX_DESCRIPTION)]


def recording_title(started_at: float) -> str:
    """A recording's title, as a person says it: "Recording, 6 Dec 2026 21:40" (the server's local time)."""
    when = time.localtime(started_at)
    return f"Recording, {when.tm_mday} {time.strftime('%b %Y %H:%M', when)}"
