"""The one rule for class names: a name is accepted only if it works everywhere it goes.

A class name becomes a folder name (published images, IO-manager files through URL
quoting), part of file names (``<class>_00000.png.md5``), a Dagster dynamic partition key
(typed in the UI's partition selection, where ``,``, ``[``, ``]`` and ``...`` are syntax)
and catalog text. Spaces and non-ASCII letters are fine in all of them.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

# UTF-8 bytes; URL quoting triples it in staging and IO-manager file names, which stay
# within the 255-byte name limit of common file systems (3 * 64 + a 33-byte suffix).
MAX_CLASS_NAME_BYTES = 64
_FORBIDDEN_CHARACTERS = {"/": "a path separator", "\\": "a path separator on Windows", ",": "partition syntax"}
_FORBIDDEN_CHARACTERS |= {"[": "partition syntax", "]": "partition syntax", "|": "partition syntax"}
# Control and format characters (bidi overrides, zero-width), surrogates from undecodable
# file-name bytes, line and paragraph separators: invisible or unencodable.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return "it names a folder itself"
    if name.startswith("."):
        return "it starts with '.' (a hidden folder)"
    if name != name.strip():
        return "it starts or ends with white space"
    if "..." in name:
        return "it holds '...', Dagster's partition-range syntax"
    for character in name:
        if character in _FORBIDDEN_CHARACTERS:
            return f"it holds {character!r}, {_FORBIDDEN_CHARACTERS[character]}"
        if unicodedata.category(character) in _FORBIDDEN_CATEGORIES:
            return f"it holds the invisible or control character U+{ord(character):04X}"
    size = len(name.encode("utf-8"))
    if size > MAX_CLASS_NAME_BYTES:
        return f"it is {size} bytes long in UTF-8, above the limit of {MAX_CLASS_NAME_BYTES}"
    return None


def check_class_name(name: str) -> str:
    """``name`` itself, or ``ValueError`` saying why it cannot be a class name and what is allowed."""
    problem = class_name_problem(name)
    if problem is not None:
        raise ValueError(
            f"class name {name!r} is not allowed: {problem}. A class name may hold letters of any script, digits, "
            f"spaces and punctuation other than / \\ , [ ] | and '...', must not start with '.', and is at most "
            f"{MAX_CLASS_NAME_BYTES} bytes long"
        )
    return name


def quoted(name: str) -> str:
    """The class name as one safe file-name component (URL quoting: no '/', no leading '.')."""
    return quote(check_class_name(name), safe="")
