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


#: Python's whitespace (``str.isspace``, what ``str.strip()`` removes) as a character class body.
#: (Not ``\\s``: JSON Schema's regexes are ECMA's, whose ``\\s`` is another set than Python's.)
WHITESPACE = "\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
#: At least one character that Python's ``str.strip()`` keeps, for text the server strips that way
#: (event prompts and labels: ``index/event_match.py``).
WORDS_PATTERN = f"[^{WHITESPACE}]"
_URL_HOST = f"https?://[^/?#{WHITESPACE}]"  # a scheme, then the first character of a host
#: An http(s) URL with a host, and no whitespace in the part the pattern reads (webhook targets).
HTTP_URL_PATTERN = f"^{_URL_HOST}"
#: An http(s) URL with no whitespace, or "" (an alert's ``callback_url``: "" for the websocket only).
HTTP_URL_OR_EMPTY_PATTERN = f"^({_URL_HOST}[^{WHITESPACE}]*)?$"


def strip(text: str) -> str:
    return text.strip(BLANK)


#: Names (videos, collections, uploads): one line, no control characters (a NUL reaches file names,
#: logs and terminals), at least one character that is not blank, at most ``MAX_NAME`` characters.
MAX_NAME = 1024
#: (Spaces, then one character that is neither a space nor a control one, then any that is not a
#: control one: no two parts can take the same character, so a long refused name costs linear
#: time, never a backtracking blow-up. Not a lookahead: schema-driven generators such as
#: schemathesis cannot bound its length and search for a 1,024-character name by rejection, which
#: took minutes of the test suite.)
NAME_PATTERN = "^ *[^ \\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
#: Descriptions: tabs and line breaks allowed, no other control character, at most ``MAX_DESCRIPTION``.
MAX_DESCRIPTION = 10_000
DESCRIPTION_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=MAX_NAME)]
Description = Annotated[str, msgspec.Meta(pattern=DESCRIPTION_PATTERN, max_length=MAX_DESCRIPTION)]


def recording_title(started_at: float) -> str:
    """A recording's title, as a person says it: "Recording, 6 Dec 2026 21:40" (the server's local time)."""
    when = time.localtime(started_at)
    return f"Recording, {when.tm_mday} {time.strftime('%b %Y %H:%M', when)}"
