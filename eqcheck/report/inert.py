"""Text from a model or a config (paths, node, input and output names, error messages quoting them) made
inert for every place it is shown: the terminal, GitHub workflow commands, Markdown, HTML and XML.

Nothing a model carries may act: no terminal escape, no new line that starts a workflow command (``::``),
no rich markup, no Markdown or HTML structure. Control characters are shown as Python writes them
(``\\n``, ``\\x1b``), so a reader still sees what the name holds.
"""
from __future__ import annotations

import html
import re

#: C0 controls (tab included: it moves the cursor), DEL, C1 controls, the Unicode format characters that
#: terminals and browsers act on or hide (soft hyphen, zero-width and direction marks, bidi embeddings,
#: overrides and isolates, line and paragraph separators, the byte-order mark, annotation marks), and lone
#: surrogates (which no encoder writes)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064"
                      "\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """One line with every control character escaped: safe for a terminal and a CI log."""
    return _CONTROL.sub(_escape, str(text))


def terminal_text(text: object, style: str | None = None):
    """A rich ``Text`` (never parsed as markup) of ``printable(text)``."""
    from rich.text import Text

    return Text(printable(text), style=style or "")


#: characters that make Markdown structure inside a line (emphasis, code, links and images, table cells,
#: strike-through); HTML's ``<`` and ``&`` are escaped as entities. Lines our reporters write never start
#: with data, so line-start marks (``#``, ``-``, ``>``) need no escape.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def markdown_text(text: object) -> str:
    """Plain text inside a Markdown line or table cell: HTML escaped, Markdown punctuation backslashed."""
    return _MARKDOWN.sub(r"\\\1", html.escape(printable(text), quote=False))


def markdown_code(text: object) -> str:
    """A name shown as code in Markdown: ``<code>`` with HTML entities, which no backtick in the name ends."""
    escaped = html.escape(printable(text), quote=True).replace("|", "&#124;")
    return f"<code>{escaped}</code>"


def html_text(text: object) -> str:
    """Text inside HTML (element content or a quoted attribute)."""
    return html.escape(printable(text), quote=True)
