"""Pure: where a completion stops while it is generated, and what is shown of it.

:func:`stop_rule` returns the function the engine calls after every token: it ends a
single-line completion at its first line break, and a multi-line one when a line leaves
the block being written, closes the bracket the cursor line left open, repeats the code
that follows the cursor, or exceeds the line limit. :func:`finish` then trims what was
generated into the text the editor shows, or None when there is nothing worth showing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from lsp_server.context import CompletionPlan, Mode, ends_with_block_opener, indent_width

#: Languages in which a line starting with a Markdown fence can be real content.
MARKDOWN_LIKE = frozenset({"markdown", "mdx", "rmd", "quarto", "plaintext", "text"})


def stop_rule(plan: CompletionPlan, max_lines: int) -> Callable[[str], int | None]:
    """Return stop(text) -> None to continue, or how many characters of text to keep."""
    if plan.mode is Mode.SINGLE_LINE:

        def single(text: str) -> int | None:
            nl = text.find("\n")
            return nl if nl >= 0 else None

        return single

    next_code = plan.next_code_line
    fences_end = plan.language_id not in MARKDOWN_LIKE
    # A bracket left open at the cursor (`call(`, `x = {`) that the code below does not
    # close (at the cursor line's depth): the statement ends with the line that closes
    # it, even one less indented than the lines before it, unless that line opens a
    # block (`if f(` ... `):`, whose body the block rules then end) or leaves the
    # expression unfinished (`f(a) +`). The line before the cursor is not blank here, so
    # no indentation is dropped from the first line.
    open_before = bracket_depth(plan.line_before)
    cursor_indent = indent_width(plan.line_before)
    if next_code is not None and next_code[:1] in ")]}" and plan.next_code_indent == cursor_indent:
        open_before = 0

    def multi(text: str) -> int | None:
        lines = text.split("\n")
        complete = len(lines) - 1  # the last piece may still grow
        block_indent: int | None = None
        offset = 0
        depth = open_before
        drop = extra_indent(lines[0], plan)
        shift = indent_width(lines[0][:drop])
        for i in range(complete + 1):
            line = lines[i]
            whole = plan.line_before + line[drop:] if i == 0 else dedent(line, shift)
            finished = i < complete
            closes = (
                depth > 0 and whole.lstrip()[:1] in ")]}" and indent_width(whole) >= cursor_indent
            )
            if i > 0 and _ends_block(
                whole, i, finished, block_indent, next_code, fences_end, lines, max_lines, closes
            ):
                return max(offset - 1, 0)
            if block_indent is None and whole.strip() and (i > 0 or not plan.line_before.strip()):
                block_indent = indent_width(whole)
            if depth > 0 and finished:
                depth += bracket_depth(line)
                if depth <= 0:
                    ending = whole.rstrip()
                    if not ends_with_block_opener(ending) and not ending.endswith(_OPERATORS):
                        return offset + len(line)
                    depth = 0  # a block or an unfinished expression: the usual rules
            offset += len(line) + 1
        return None

    return multi


_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def bracket_depth(text: str) -> int:
    """Opening minus closing brackets in a line, string literals left out."""
    code = _LITERAL.sub("", text)
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def extra_indent(first: str, plan: CompletionPlan) -> int:
    """How many leading whitespace characters of a completion's first line to drop.

    When the cursor sits after indentation (the editor indented the new line), extra
    indentation the model writes first is almost always wrong: it would put the line one
    level too deep (an IndentationError in Python). It is kept only up to one level
    below a block opener on the line above, for editors that do not indent after one.
    """
    if not plan.line_before or plan.line_before.strip() or not first.strip():
        return 0
    lead = first[: len(first) - len(first.lstrip(" \t"))]
    width = indent_width(plan.line_before)
    allowed = width
    previous = plan.previous_code_line
    if previous is not None and ends_with_block_opener(previous):
        if width <= indent_width(previous):
            allowed = indent_width(previous) + plan.indent_unit
    kept = 0
    for ch in lead:
        step = indent_width(ch)
        if width + step > allowed:
            break
        width += step
        kept += 1
    return len(lead) - kept


def dedent(line: str, width: int) -> str:
    """Remove up to ``width`` columns of leading whitespace from a line."""
    removed = 0
    i = 0
    while i < len(line) and line[i] in " \t" and removed + indent_width(line[i]) <= width:
        removed += indent_width(line[i])
        i += 1
    return line[i:]


def _ends_block(
    line: str,
    i: int,
    finished: bool,
    block_indent: int | None,
    next_code: str | None,
    fences_end: bool,
    lines: list[str],
    max_lines: int,
    closes: bool = False,
) -> bool:
    """Whether generation must stop before line ``i`` of the completion.

    ``closes``: the line starts by closing the bracket left open at the cursor (which the
    code below does not close), so it belongs to the statement however little it is
    indented, and does not repeat the code below even when that starts the same.
    """
    if i >= max_lines:
        return True
    stripped = line.strip()
    if not stripped:
        # At top level (no indentation), a blank line ends the statement being written.
        return block_indent == 0 and finished and bool(lines[i - 1].strip())
    if fences_end and stripped.startswith("```"):
        return True
    if closes:
        return False
    if block_indent is not None and indent_width(line) < block_indent:
        return True
    # The line repeats the code right after the cursor: the model is copying the suffix.
    return finished and next_code is not None and stripped == next_code


def finish(text: str, plan: CompletionPlan) -> str | None:
    """Turn generated text into the suggestion shown, or None if it is not worth showing."""
    return finish_why(text, plan)[0]


def finish_why(text: str, plan: CompletionPlan) -> tuple[str | None, str]:
    """:func:`finish`, and why nothing is shown.

    The reason is ``repeat`` (the text repeats the code after the cursor), ``empty``, or
    an empty string when there is text to show.
    """
    text = text[len(os.path.commonprefix([text, plan.healed])) :]
    first, newline, rest = text.partition("\n")
    drop = extra_indent(first, plan)
    if drop:
        shift = indent_width(first[:drop])
        later = [dedent(line, shift) for line in rest.split("\n")] if newline else []
        text = "\n".join([first[drop:], *later])
    if plan.mode is Mode.SINGLE_LINE:
        text = text.split("\n", 1)[0].rstrip()
        text = text[_echo_length(text, plan.line_before) :]
        following = plan.next_code_line
        if following is not None and following.startswith(text.strip()):
            return None, "repeat" if text.strip() else "empty"
        after = plan.line_after.strip()
        if after and text.endswith(after):
            text = text[: len(text) - len(after)].rstrip()
    else:
        text = "\n".join(line.rstrip() for line in text.split("\n")).rstrip()
        if _repeats_following_lines(text, plan):
            return None, "repeat"
    if not text.strip():
        return None, "empty"
    if plan.eol != "\n":
        text = text.replace("\n", plan.eol)
    return text, ""


#: Shortest restart of the cursor line that :func:`_echo_length` removes.
MIN_ECHO = 4


def _echo_length(text: str, line_before: str) -> int:
    """Length of the longest start of ``text`` that repeats the end of ``line_before``.

    Small models sometimes restart the line they complete (``for i in range(`` completed
    with ``i in range(len(xs))``); inserted as is, the line would hold the text twice.
    """
    before = line_before.rstrip()
    for n in range(min(len(text), len(before)), MIN_ECHO - 1, -1):
        if before.endswith(text[:n]) and text[:n].strip():
            return n
    return 0


def _repeats_following_lines(text: str, plan: CompletionPlan) -> bool:
    produced = [line.strip() for line in text.split("\n") if line.strip()]
    if not produced:
        return False
    following = [line.strip() for line in plan.lines_after if line.strip()]
    return produced == following[: len(produced)]


#: Statements after which nothing in the same block runs.
_JUMPS = frozenset({"return", "raise", "throw", "break", "continue"})
#: Lines that may follow a jump at the same indentation without being dead code.
_BLOCK_CONTINUATIONS = (
    "}",
    ")",
    "]",
    "else",
    "elif",
    "except",
    "finally",
    "case",
    "default",
    "end",
    "catch",
    "rescue",
    "when",
)


def makes_dead_code(text: str, plan: CompletionPlan) -> bool:
    """Whether a single-line completion jumps out (``return``...) with code after it.

    When the next code line sits at the cursor's depth in the same block, a ``return``,
    ``raise``, ``break`` or ``continue`` before it makes it unreachable: small models
    often write the function's last line first.
    """
    words = text.strip().split(maxsplit=1)
    if plan.mode is not Mode.SINGLE_LINE or not words or plan.line_before.strip():
        return False  # after `if (err) ` a jump is the point
    if words[0].rstrip(";:") not in _JUMPS:
        return False
    following = plan.next_code_line
    if following is None or plan.line_after.strip():
        return False
    if following.startswith(_BLOCK_CONTINUATIONS):
        return False
    return plan.next_code_indent == indent_width(plan.line_before)


#: Operators that continue an expression on the next line when they end one.
_OPERATORS = tuple("=+-*/%<>&|^.?\\")
#: Characters that leave an expression or statement unfinished when they end a line.
_OPEN_ENDINGS = tuple("([{,=:+-*/%<>&|!^~.?")

#: Words after which code must follow (in the languages fimls knows; a space follows them).
_LEADING_WORDS = frozenset(
    "return yield await if elif while for in not and or case new throw raise import from is "
    "let const var val def fn func function class match when unless until assert print echo "
    "local do then go defer typeof instanceof delete void using namespace struct enum".split()
)


def expects_code(plan: CompletionPlan) -> bool:
    """Whether an empty completion fails the user: code must follow the cursor here.

    That is at the end of a line (only closing brackets after the cursor) whose text
    before the cursor is blank (a new line in a block), ends with an opening bracket,
    an operator or a comma, or ends with a space after a keyword such as ``return``.
    """
    if plan.line_after.strip(" \t)]};"):
        return False
    before = plan.line_before
    if not before.strip():
        return True
    stripped = before.rstrip()
    if stripped.endswith(_OPEN_ENDINGS):
        return True
    words = stripped.split()
    return stripped != before and bool(words) and words[-1] in _LEADING_WORDS


#: Line comment markers by LSP language id ("//" when not listed).
LINE_COMMENTS = {
    **dict.fromkeys(
        [
            "python",
            "ruby",
            "shellscript",
            "sh",
            "bash",
            "perl",
            "r",
            "yaml",
            "toml",
            "elixir",
            "julia",
            "nim",
            "powershell",
            "makefile",
            "dockerfile",
            "cmake",
            "coffeescript",
        ],
        "#",
    ),
    **dict.fromkeys(["lua", "haskell", "sql", "elm", "ada", "purescript"], "--"),
    **dict.fromkeys(["lisp", "clojure", "scheme", "racket", "fennel"], ";"),
}


def comment_only(text: str, language_id: str) -> bool:
    """Whether every non-blank line of a completion is a comment."""
    marks = (LINE_COMMENTS.get(language_id, "//"), "/*", "*/", "* ")
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return bool(lines) and all(line.startswith(marks) or line == "*" for line in lines)
