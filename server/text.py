"""What counts as blank text, the same in the OpenAPI document (ECMA regex) and in Python.

Python's ``str.strip()`` and ``\\s`` also strip control characters such as U+001E, which JSON
Schema's ``\\s`` does not: a name the schema allows would then be refused as empty. Both sides
use this one explicit set instead.
"""

from __future__ import annotations

BLANK = " \t\n\r\x0b\x0c"
#: A JSON Schema / msgspec pattern: at least one character that is not blank.
NON_BLANK_PATTERN = "[^ \\t\\n\\r\\x0b\\x0c]"


def strip(text: str) -> str:
    return text.strip(BLANK)
