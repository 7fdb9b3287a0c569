"""Splitting a shell command line into words as Zephyr's ``z_shell_make_argv`` does."""

from __future__ import annotations

SPACE = " \t\n\v\f\r"
"""C ``isspace`` in the C locale."""


def split_args(line: str) -> tuple[list[str], str]:
    """``z_shell_make_argv``: words split at white space, quotes and escapes resolved.

    Returns the words and the quote character left open at the end of the line (``""`` if
    none). Outside quotes a backslash keeps the next character; inside quotes ``\\<quote>``,
    ``\\0ooo`` (octal) and ``\\xhh`` (hex) are escapes.
    """
    words: list[str] = []
    i, n = 0, len(line)
    quote = ""
    while i < n:
        if line[i] in SPACE:
            i += 1
            continue
        word: list[str] = []
        quote = ""
        while i < n:
            c = line[i]
            if not quote and c == "\\":
                if i + 1 < n:
                    word.append(line[i + 1])
                i += 2
                continue
            if not quote and c in "'\"":
                quote = c
                i += 1
                continue
            if quote and c == quote:
                quote = ""
                i += 1
                continue
            if quote and c == "\\" and i + 1 < n:
                escaped = _quoted_escape(line, i, quote)
                if escaped is not None:
                    word.append(escaped[0])
                    i = escaped[1]
                    continue
            if not quote and c in SPACE:
                break
            word.append(c)
            i += 1
        words.append("".join(word))
    return words, quote


def _quoted_escape(line: str, i: int, quote: str) -> tuple[str, int] | None:
    """An escape at ``line[i]`` (a backslash inside quotes): (character, next index)."""
    t = line[i + 1]
    if t == quote:
        return quote, i + 2
    digits, base, width = ("01234567", 8, 3) if t == "0" else ("0123456789abcdefABCDEF", 16, 2)
    if t not in "0x":
        return None
    j = i + 2
    while j < len(line) and j < i + 2 + width and line[j] in digits:
        j += 1
    if j == i + 2:
        return None
    return chr(int(line[i + 2:j], base) & 0xFF), j
