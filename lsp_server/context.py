"""Pure: decide what kind of completion to make and what text the prompt shows.

Nothing here knows about LSP or llama.cpp. :func:`plan_completion` looks at the document
around the cursor; :func:`fit_windows` cuts the prefix and suffix to token budgets with a
tokenizer passed in, at line boundaries where it can.
"""

from __future__ import annotations

import enum
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsp_server.documents import content

#: Characters of document text gathered per budgeted token before exact token counting.
CHARS_PER_TOKEN_BOUND = 8

#: Line endings after which the next lines form a block (a cheap, language-agnostic test).
BLOCK_OPENERS = ("{", "(", "[", ":", "=>", "->")
BLOCK_OPENER_WORDS = ("do", "then", "else", "begin", "in", "of", "where")
#: A block's parameters after its opener: Ruby's ``do |item|`` and ``{ |a, b|``.
_BLOCK_PARAMETERS = re.compile(r"(\bdo|\{)\s*\|[^|]*\|$")


@dataclass(frozen=True)
class ContextPiece:
    """Text from another file for the prompt: a definition's signature or a snippet."""

    kind: str  # definition | recent
    path: str  # as shown to the model
    line: int
    text: str


class Mode(enum.Enum):
    """How much to complete."""

    SINGLE_LINE = "single-line"
    MULTI_LINE = "multi-line"


@dataclass(frozen=True)
class CompletionPlan:
    """Everything the prompt and the stop rules need, taken from the document."""

    mode: Mode
    line: int  # the cursor's line in the document
    line_before: str  # text of the cursor line before the cursor
    line_after: str  # text of the cursor line after the cursor, without the line break
    lines_before: tuple[str, ...]  # whole lines before the cursor line (a bounded window)
    lines_after: tuple[str, ...]  # whole lines after the cursor line (a bounded window)
    language_id: str
    eol: str = "\n"  # the document's line break; the prompt always uses "\n"
    path: str = ""  # the document's path, relative to its workspace folder when inside one
    repo: str = ""  # the name of that workspace folder
    headers: tuple[tuple[int, str], ...] = ()  # enclosing scopes' header lines (index, text)
    pieces: tuple[ContextPiece, ...] = ()  # context from other files, most relevant first

    @property
    def healed(self) -> str:
        """Spaces or tabs ending the text before the cursor, left out of the prompt.

        A prompt that ends in a space asks the model for a token without its usual
        leading space, which small models answer badly (they restart the line). The
        prompt stops before the spaces and :func:`lsp_server.postprocess.finish` removes
        them from the start of the completion again ("token healing").
        """
        if not self.line_before.strip():
            return ""
        return self.line_before[len(self.line_before.rstrip(" \t")) :]

    @property
    def previous_code_line(self) -> str | None:
        """The last non-blank line before the cursor line, or None."""
        for line in reversed(self.lines_before):
            if line.strip():
                return line.rstrip("\n")
        return None

    @property
    def indent_unit(self) -> int:
        """The document's indentation step in columns (tabs count 4), from the lines above."""
        widths = [indent_width(line) for line in self.lines_before if line.strip()]
        steps = Counter(b - a for a, b in zip(widths, widths[1:], strict=False) if b > a)
        return steps.most_common(1)[0][0] if steps else 4

    @property
    def next_code_indent(self) -> int | None:
        """The indentation width of the first non-blank line after the cursor line."""
        for line in self.lines_after:
            if line.strip():
                return indent_width(line)
        return None

    @property
    def next_code_line(self) -> str | None:
        """The first non-blank text after the cursor, stripped, or None."""
        if self.line_after.strip():
            return self.line_after.strip()
        for line in self.lines_after:
            if line.strip():
                return line.strip()
        return None


def indent_width(line: str, tab: int = 4) -> int:
    """Width of a line's leading whitespace, a tab counting as ``tab`` columns."""
    width = 0
    for ch in line:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += tab
        else:
            break
    return width


def ends_with_block_opener(text: str) -> bool:
    """Whether a line ends where a block body should follow (``:``, ``{``, ``do``, ...)."""
    stripped = text.rstrip()
    if stripped.endswith(BLOCK_OPENERS) or _BLOCK_PARAMETERS.search(stripped):
        return True
    words = stripped.split()
    return bool(words) and words[-1] in BLOCK_OPENER_WORDS


def choose_mode(
    line_before: str, line_after: str, multiline: str, next_indent: int | None = None
) -> Mode:
    """Choose single or multi-line completion from the cursor line and the next code line.

    Multi-line where a block is to be written: on an empty line that ends its block (the
    next code line is less indented, or there is none), or at the end of a line that
    opens a block whose body is still empty. Everywhere else one line: with text after
    the cursor, in the middle of a line, or on an empty line with code below it at the
    same depth (a block written there would collide with that code).
    """
    if line_after.strip() or multiline == "never":
        return Mode.SINGLE_LINE
    if not line_before.strip():
        depth = indent_width(line_before)
        ends_block = next_indent is None or next_indent < depth
        return Mode.MULTI_LINE if ends_block else Mode.SINGLE_LINE
    if ends_with_block_opener(line_before):
        empty_body = next_indent is None or next_indent <= indent_width(line_before)
        return Mode.MULTI_LINE if empty_body else Mode.SINGLE_LINE
    return Mode.SINGLE_LINE


def plan_completion(
    lines: Sequence[str],
    line: int,
    index: int,
    *,
    prefix_tokens: int,
    suffix_tokens: int,
    multiline: str,
    language_id: str,
    path: str = "",
    repo: str = "",
    scope_headers: bool = True,
    pieces: Sequence[ContextPiece] = (),
    suffix_scope: str = "file",
) -> CompletionPlan:
    """Take the cursor's surroundings from the document, bounded in characters.

    ``suffix_scope`` ``definition``: the lines after the cursor stop where the
    definition around it ends (:func:`definition_end`).
    """
    current = content(lines[line])
    line_before, line_after = current[:index], current[index:]
    eol = lines[0][len(content(lines[0])) :] or "\n"
    before = _take(lines, range(line - 1, -1, -1), prefix_tokens * CHARS_PER_TOKEN_BOUND)
    end = definition_end(lines, line, index) if suffix_scope == "definition" else None
    after = _take(lines, range(line + 1, end or len(lines)), suffix_tokens * CHARS_PER_TOKEN_BOUND)
    next_code = next((text for text in lines[line + 1 : line + 200] if text.strip()), None)
    return CompletionPlan(
        line=line,
        mode=choose_mode(
            line_before,
            line_after,
            multiline,
            None if next_code is None else indent_width(next_code),
        ),
        line_before=line_before,
        line_after=line_after,
        lines_before=tuple(reversed(before)),
        lines_after=tuple(after),
        language_id=language_id,
        eol=eol,
        path=path,
        repo=repo,
        headers=tuple(enclosing_headers(lines, line)) if scope_headers else (),
        pieces=tuple(pieces),
    )


_HEADER_WORDS = re.compile(
    r"^\s*(export\s+|pub(\(\w+\))?\s+|async\s+|static\s+|public\s+|private\s+|"
    r"protected\s+)*(def|class|function|func|fn|impl|trait|struct|interface|module|"
    r"namespace|object|enum)\b"
)


def enclosing_headers(lines: Sequence[str], line: int, limit: int = 2000) -> list[tuple[int, str]]:
    """Header lines of the scopes enclosing a line (``def``, ``class``, ``fn``...), outer first.

    Found by indentation: going up, each less indented line that starts a definition or
    opens a block encloses the ones below it.
    """
    depth: int | None = None
    for i in range(line, max(-1, line - limit), -1):
        text = content(lines[i])
        if text.strip():
            depth = indent_width(text)
            break
    headers: list[tuple[int, str]] = []
    if depth is None:
        return headers
    for i in range(line - 1, max(-1, line - limit), -1):
        text = content(lines[i])
        if not text.strip():
            continue
        width = indent_width(text)
        if width >= depth:
            continue
        if _HEADER_WORDS.match(text) or ends_with_block_opener(text):
            headers.append((i, text))
        depth = width
        if depth == 0:
            break
    headers.reverse()
    return headers


CLOSERS = ("}", ")", "]", "end")


def definition_end(lines: Sequence[str], line: int, index: int, limit: int = 2000) -> int | None:
    """The line after the innermost definition around the cursor (None at top level).

    A definition starts with ``def``, ``class``, ``fn``, ``function``... The cursor's
    depth is its own indentation on a line that is blank before it (a new line in a
    body), else its line's. The definition is the nearest header above that is less
    indented; it ends before the next line below indented no deeper than the header (a
    closing ``}``/``end`` there is part of it).
    """
    current = content(lines[line])
    before = current[:index]
    depth = indent_width(before) if not before.strip() else indent_width(current)
    header: int | None = None
    for i in range(line - 1, max(-1, line - limit), -1):
        text = content(lines[i])
        if not text.strip() or indent_width(text) >= depth:
            continue
        depth = indent_width(text)
        if _HEADER_WORDS.match(text):
            header = depth
            break
        if depth == 0:
            break
    return None if header is None else _block_end(lines, line, header, limit)


def _block_end(lines: Sequence[str], line: int, width: int, limit: int) -> int:
    """The line where the block that ``line`` is in ends (at most ``limit`` lines on).

    That is the first line below indented no deeper than ``width``; a closing
    ``}``/``end`` there belongs to the block, and then it is the line after it.
    """
    end = line + 1
    while end < len(lines) and end - line < limit:
        text = content(lines[end])
        if text.strip() and indent_width(text) <= width:
            return end + 1 if text.lstrip().startswith(CLOSERS) else end
        end += 1
    return end


def enclosing_span(lines: Sequence[str], line: int, limit: int = 2000) -> tuple[int, int]:
    """The lines [start, end) of the top-level construct around a line (see below)."""
    start = line
    while start > 0 and line - start < limit:
        text = content(lines[start])
        if text.strip() and indent_width(text) == 0 and start != line:
            break
        start -= 1
    return start, _block_end(lines, line, 0, limit)


def enclosing_definition(
    lines: Sequence[str],
    line: int,
    index: int,
    limit: int = 2000,
    span: tuple[int, int] | None = None,
) -> tuple[str, str]:
    """The text of the top-level construct around the cursor, split at the cursor.

    It runs from the nearest line above with no indentation to the line before the next
    one below (a closing ``}``/``end`` there is included), at most ``limit`` lines each
    way. Parsing this instead of an arbitrary window keeps the syntax check free of
    errors that only the cut would cause. ``span``: :func:`enclosing_span`'s answer, when
    the caller has it already.
    """
    start, end = span or enclosing_span(lines, line, limit)
    current = content(lines[line])
    before = "".join(content(x) + "\n" for x in lines[start:line]) + current[:index]
    after = current[index:] + "".join("\n" + content(x) for x in lines[line + 1 : end])
    return before, after + "\n"


def _take(lines: Sequence[str], order: range, char_budget: int) -> list[str]:
    """Whole lines in ``order``, line breaks normalized to LF, up to a character budget."""
    taken: list[str] = []
    used = 0
    for i in order:
        if used >= char_budget:
            break
        text = content(lines[i])
        line = text + "\n" if len(text) < len(lines[i]) else text  # the last line has no break
        taken.append(line)
        used += len(line)
    return taken


class TokenCounter:
    """Count tokens of lines, with a cache: most lines repeat from one keystroke to the next."""

    def __init__(self, tokenize: Callable[[str], list[int]], size: int = 8192) -> None:
        self._tokenize = tokenize
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._size = size

    def __call__(self, text: str) -> int:
        """Return the number of tokens of ``text``."""
        n = self._cache.get(text)
        if n is not None:
            self._cache.move_to_end(text)
            return n
        n = len(self._tokenize(text))
        self._cache[text] = n
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return n


#: Tokens of the prefix budget set aside for the cursor line, however long it is so far.
CURSOR_LINE_TOKENS = 48


@dataclass(frozen=True)
class Windows:
    """The prefix and suffix text the prompt shows, within their budgets.

    ``prefix[middle_at:]`` is the text from the start of document line ``middle_line``
    to the cursor: the part that may follow the FIM middle token.
    """

    prefix: str
    suffix: str
    middle_at: int = 0
    middle_line: int = 0


def fit_windows(
    plan: CompletionPlan,
    count: Callable[[str], int],
    prefix_budget: int,
    suffix_budget: int,
    anchor: int = 1,
    middle_from: int | None = None,
    middle_tokens: int = 0,
) -> Windows:
    """Cut prefix and suffix to their token budgets at line boundaries.

    The prefix keeps the whole cursor line before the cursor and as many whole lines
    above it as fit, starting at a document line that is a multiple of ``anchor`` (so
    that the window start stays put while lines are added below it, and the KV cache
    keeps it); the suffix keeps the rest of the cursor line and whole lines below. A
    single line longer than its budget is cut by characters (from its start for the
    prefix, from its end for the suffix).

    With ``middle_tokens``, the text from line ``middle_from`` to the cursor (the
    middle region) gets that much room of the budget, and the lines above it fill the
    rest, so that the window does not move while lines are typed below ``middle_from``.
    When the region does not fit (or ``middle_from`` is not at or above the cursor
    line), it starts at the cursor line.
    """
    headers: list[tuple[int, str]] = []
    reserve = 0
    for index, text in plan.headers:  # outermost first, within a quarter of the budget
        n = count(text + "\n")
        if reserve + n > prefix_budget // 4:
            break
        headers.append((index, text))
        reserve += n
    budget = prefix_budget - reserve
    above = plan.lines_before[::-1]
    middle: list[str] = []
    if budget <= 0:
        prefix = ""
    elif plan.line_before and count(plan.line_before) > budget:
        prefix = _cut_chars(plan.line_before, count, budget, keep_end=True)
    else:
        # the lines above get the same budget whatever the cursor line (or the middle
        # region) holds, up to its allowance, so that typing there does not move the
        # window's start
        allowance = min(CURSOR_LINE_TOKENS, budget // 8)
        line_cost = count(plan.line_before) if plan.line_before else 0
        if middle_tokens > 0:
            allowance = max(allowance, min(middle_tokens, budget // 4))
            middle = _middle_lines(above, plan.line, middle_from, count, allowance - line_cost)
        rest = above[len(middle) :]
        used = line_cost + sum(count(line) for line in middle)
        kept = _fitting("", rest, count, budget - max(used, allowance))
        first = plan.line - len(middle) - kept
        anchored = -(-first // anchor) * anchor
        if anchor > 1 and anchored - first <= kept // 2:  # never drop most of the window
            kept -= anchored - first
        prefix = "".join(reversed(rest[:kept])) + "".join(reversed(middle)) + plan.line_before
    first_kept = plan.line - prefix.count("\n")  # the first document line in the window
    missing = [text for index, text in headers if index < first_kept]
    if missing:
        prefix = "".join(h + "\n" for h in missing) + prefix
    after_first = plan.line_after + ("\n" if plan.lines_after else "")
    if suffix_budget <= 0:
        suffix = ""
    elif after_first and count(after_first) > suffix_budget:
        suffix = _cut_chars(after_first, count, suffix_budget, keep_end=False)
    else:
        kept = _fitting(after_first, plan.lines_after, count, suffix_budget)
        suffix = after_first + "".join(plan.lines_after[:kept])
    region = sum(map(len, middle)) + len(plan.line_before)
    return Windows(
        prefix=prefix,
        suffix=suffix,
        middle_at=max(0, len(prefix) - region),
        middle_line=plan.line - len(middle),
    )


def _middle_lines(
    above: Sequence[str],
    line: int,
    start: int | None,
    count: Callable[[str], int],
    room: int,
) -> list[str]:
    """Lines ``start`` to the cursor line's, nearest first, if they fit ``room`` tokens."""
    if start is None or not 0 <= line - start <= len(above):
        return []
    lines = list(above[: line - start])
    return lines if sum(count(text) for text in lines) <= room else []


def _fitting(first: str, others: Sequence[str], count: Callable[[str], int], budget: int) -> int:
    """How many of ``others`` fit in ``budget`` tokens after ``first``."""
    used = count(first) if first else 0
    kept = 0
    for line in others:
        used += count(line)
        if used > budget:
            break
        kept += 1
    return kept


def _cut_chars(text: str, count: Callable[[str], int], budget: int, *, keep_end: bool) -> str:
    """The longest end (or start) of ``text`` within ``budget`` tokens, by bisection."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        piece = text[len(text) - mid :] if keep_end else text[:mid]
        if count(piece) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[len(text) - lo :] if keep_end else text[:lo]
