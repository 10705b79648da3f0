"""End-to-end tests of the fimls Vim plugin.

The real Vim in tmux, real keys, the real `fimls --stdio` and model.

Vim runs with the README's `<!-- test:config -->` block as its vimrc (after
defaults.vim, as a user's vimrc would) and the plugin installed as a package
through a symlink, as the README's install section says.  test/helper.vim
only reports Vim's state (a JSON dump every 100 ms, and one on <F12> with
fimls/stats); every action is a key sent with `tmux send-keys`.  What is
checked comes from Vim's own state (buffer lines, cursor, the suggestion's
text properties) and from the screen (`tmux capture-pane`).

Environment: FIMLS (server command, default <repo>/.venv/bin/fimls), VIM_BIN
(default /usr/bin/vim), TMUX_BIN (default tmux), FIMLS_TEST_KEEP=1 keeps the
temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent
REPO = PLUGIN.parent.parent
FIMLS = os.environ.get("FIMLS") or str(REPO / ".venv" / "bin" / "fimls")
VIM = os.environ.get("VIM_BIN") or "/usr/bin/vim"
TMUX = os.environ.get("TMUX_BIN") or "tmux"
SUITE_DEADLINE = time.monotonic() + 300  # a hard stop; the suite takes ~1 minute


class Failure(Exception):
    """A check that did not hold."""

    pass


def check(cond: bool, message: str) -> None:
    """Fail with message unless cond."""
    if not cond:
        raise Failure(message)


def readme_config() -> str:
    """The vim block after <!-- test:config --> in the README, paths substituted."""
    text = (PLUGIN / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- test:config -->\s*```vim\n(.*?)```", text, re.S)
    if not m:
        raise SystemExit("README.md has no <!-- test:config --> vim block")
    block = m.group(1)
    if "~/fimls/.venv/bin/fimls" not in block:
        raise SystemExit("the README config does not name ~/fimls/.venv/bin/fimls")
    return block.replace("~/fimls/.venv/bin/fimls", FIMLS).replace("~/fimls", str(REPO))


def insert_at(lines: list[str], lnum: int, col: int, text: str) -> list[str]:
    """Lines with text inserted at (lnum, col): 1-based line, 1-based byte column."""
    raw = lines[lnum - 1].encode()
    before, after = raw[: col - 1].decode(), raw[col - 1 :].decode()
    return lines[: lnum - 1] + (before + text + after).split("\n") + lines[lnum:]


def next_word(text: str) -> str:
    """The plugin's accept-word rule (word characters for Vim's keyword ones)."""
    m = re.match(r"[ \t\n]*(?:\w+|[^\w\s]+)", text)
    return m.group(0) if m else text


def next_line(text: str) -> str:
    """The plugin's accept-line rule."""
    start = 1 if text.startswith("\n") else 0
    nl = text.find("\n", start)
    return text if nl < 0 else text[:nl]


class Vim:
    """Vim in a tmux session, with a temporary project and the README config."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fimls-vim-test-"))
        self.proj = self.tmp / "proj"
        self.proj.mkdir()
        (self.proj / "pyproject.toml").write_text('[project]\nname = "demo"\n')
        (self.proj / "calc.py").write_text(
            "import math\n\n\n"
            "def area(radius):\n"
            "    return math.pi * radius * radius\n\n\n"
            "def perimeter(radius):\n"
            "    return 2 * math.pi * radius\n"
        )
        # The README's package install: a symlink in a pack/*/start folder.
        start = self.tmp / "vimfiles" / "pack" / "fimls" / "start"
        start.mkdir(parents=True)
        (start / "fimls").symlink_to(PLUGIN)
        vimrc = self.tmp / "vimrc"
        vimrc.write_text(
            "source $VIMRUNTIME/defaults.vim\n"
            + readme_config()
            + f"\nsource {HERE / 'helper.vim'}\n"
        )
        self.vimrc = vimrc
        self.socket = f"fimls-vim-test-{os.getpid()}"
        self.target = "fimls:0.0"
        self.vim_pid = 0

    def start(self) -> None:
        """Start Vim in tmux and wait for its first state dump."""
        cmd = (
            f"cd {self.proj} && exec env TERM=xterm-256color FIMLS_TEST_DIR={self.tmp} "
            f"{VIM} -N -i NONE --cmd 'set packpath^={self.tmp}/vimfiles' -u {self.vimrc} shapes.py"
        )
        subprocess.run(
            [
                TMUX,
                "-L",
                self.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "fimls",
                "-x",
                "120",
                "-y",
                "40",
                cmd,
            ],
            check=True,
        )
        self.wait(lambda s: True, 20, "Vim did not start")
        self.vim_pid = int(
            self.tmux("display-message", "-p", "-t", self.target, "#{pane_pid}").strip()
        )

    # -- driving ---------------------------------------------------------------
    def tmux(self, *args: str) -> str:
        """Run a tmux command on this test's server; returns its output."""
        return subprocess.run(
            [TMUX, "-L", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def keys(self, *names: str) -> None:
        """Key names as tmux knows them: Tab, Escape, Enter, C-Right, M-l, ..."""
        for name in names:
            self.tmux("send-keys", "-t", self.target, name)
            time.sleep(0.05)

    def type(self, text: str, delay: float = 0.03) -> None:
        """Type text character by character, like a person (Enter for newlines)."""
        for ch in text:
            if ch == "\n":
                self.tmux("send-keys", "-t", self.target, "Enter")
            else:
                # A lone ";" would end tmux's command: escape it.
                self.tmux("send-keys", "-t", self.target, "-l", "\\;" if ch == ";" else ch)
            time.sleep(delay)

    def command(self, cmd: str) -> None:
        """Run an Ex command from Normal mode."""
        self.keys("Escape")
        self.tmux("send-keys", "-t", self.target, "-l", ":" + cmd)
        self.keys("Enter")

    def screen(self) -> list[str]:
        """The screen as tmux shows it, one string per row."""
        return self.tmux("capture-pane", "-p", "-t", self.target).split("\n")

    # -- reading ---------------------------------------------------------------
    def state(self, name: str = "state.json") -> dict:
        """The helper's last dump ({} if none could be read)."""
        for _ in range(20):
            try:
                data = json.loads((self.tmp / name).read_text(encoding="utf-8"))
                if "error" in data:
                    raise Failure("helper error: " + data["error"])
                return data
            except (OSError, ValueError):
                time.sleep(0.05)
        return {}

    def wait(self, pred, timeout: float, message: str) -> dict:
        """Wait until pred(state) holds; returns that state."""
        end = min(time.monotonic() + timeout, SUITE_DEADLINE)
        last: dict = {}
        while time.monotonic() < end:
            last = self.state()
            if last and pred(last):
                return last
            time.sleep(0.1)
        raise Failure(f"{message} (waited {timeout:.0f} s; last state: {summary(last)})")

    def mark(self) -> dict:
        """Send <F12>; returns the dump written when Vim handled it.

        All keys sent before are handled by then.  The dump has fimls/stats
        and the plugin log too.
        """
        before = self.state("mark.json").get("mark", 0) if (self.tmp / "mark.json").exists() else 0
        self.keys("F12")
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if (self.tmp / "mark.json").exists():
                data = self.state("mark.json")
                if data.get("mark", 0) > before:
                    return data
            time.sleep(0.05)
        raise Failure("Vim did not handle <F12>")

    def wait_ghost(self) -> dict:
        """Wait for a suggestion at the cursor.

        The model may be slow on a loaded machine; one explicit request
        (<M-n>) if none comes.
        """
        try:
            return self.wait(ghost_shown, 60, "no ghost text appeared")
        except Failure:
            self.keys("M-n")
            return self.wait(ghost_shown, 40, "no ghost text appeared, even after <M-n>")

    def close(self) -> None:
        """Quit Vim, kill what is left (the server too) and the tmux server."""
        try:
            children = (
                subprocess.run(
                    ["pgrep", "-P", str(self.vim_pid)], capture_output=True, text=True
                ).stdout.split()
                if self.vim_pid
                else []
            )
            self.command("qa!")
            end = time.monotonic() + 5
            while self.vim_pid and time.monotonic() < end and pid_alive(self.vim_pid):
                time.sleep(0.1)
            for pid in children + ([str(self.vim_pid)] if self.vim_pid else []):
                if pid_alive(int(pid)):
                    os.kill(int(pid), signal.SIGKILL)
        except Exception:  # noqa: BLE001 - cleanup goes on regardless
            pass
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True)
        if os.environ.get("FIMLS_TEST_KEEP"):
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Tell whether a process exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def ghost_shown(s: dict) -> bool:
    """Tell whether a suggestion is shown at the cursor in Insert mode."""
    g = s.get("ghost", {})
    return (
        bool(g.get("visible")) and g.get("shown", {}).get("text", "") != "" and s.get("mode") == "i"
    )


def summary(s: dict) -> str:
    """A short description of a state for failure messages."""
    if not s:
        return "none"
    keep = {k: s.get(k) for k in ("mode", "cursor", "status", "props", "menu")}
    keep["ghost"] = s.get("ghost", {}).get("shown")
    keep["line"] = s["lines"][s["cursor"][0] - 1] if s.get("lines") else None
    return json.dumps(keep, ensure_ascii=False)[:600]


def ghost_text(s: dict) -> str:
    """The text of the suggestion shown in a state."""
    return s["ghost"]["shown"]["text"]


def check_ghost_display(vim: Vim, s: dict) -> str:
    """Check that the suggestion is drawn at the cursor; returns its text.

    Text properties of the plugin's type on the cursor line (one inline at the
    cursor column for the first line, one 'below' per further line), and the
    screen shows it there.
    """
    text = ghost_text(s)
    lnum, col = s["cursor"]
    parts = text.split("\n")
    props = [p for p in s["props"] if p["lnum"] == lnum]
    inline = [p for p in props if p["col"] == col]
    below = [p for p in props if p["col"] != col]
    check(len(s["props"]) == len(props), f"suggestion properties on other lines: {s['props']}")
    check(len(inline) == (1 if parts[0] else 0), f"no property at the cursor column {col}: {props}")
    check(len(below) == len(parts) - 1, f"{len(parts) - 1} lines below expected, props {props}")
    line = s["lines"][lnum - 1]
    raw = line.encode()
    before, after = raw[: col - 1].decode(), raw[col - 1 :].decode()
    logical = [before + parts[0].expandtabs(8) + after] + [p.expandtabs(8) for p in parts[1:]]
    expected = [r.rstrip() for line in logical for r in wrap(line, s["width"])]
    deadline = time.monotonic() + 3
    while True:
        screen = vim.screen()
        row = s["screenrow"] - 1
        shown = [screen[row + i].rstrip() for i in range(len(expected))]
        if shown == expected:
            return text
        if time.monotonic() > deadline:
            raise Failure(f"screen rows {shown!r} do not show {expected!r}")
        time.sleep(0.2)


def cells(ch: str) -> int:
    """Screen cells a character takes."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def wrap(line: str, width: int) -> list[str]:
    """A line as Vim's 'wrap' shows it in a window {width} cells wide.

    A wide character that does not fit goes to the next row, '>' fills the cell.
    """
    rows, row, used = [], "", 0
    for ch in line:
        w = cells(ch)
        if used + w > width:
            rows.append(row + (">" if used < width else ""))
            row, used = "", 0
        row += ch
        used += w
    rows.append(row)
    return rows


# -- the tests ----------------------------------------------------------------------


def compile_scripts() -> str:
    """Compile the plugin's Vim9 functions and help tags; returns the errors.

    Every script gets a :defcompile in a copy, run by a headless Vim.
    """
    with tempfile.TemporaryDirectory(prefix="fimls-vim-compile-") as tmp:
        copy = Path(tmp) / "vim"
        shutil.copytree(PLUGIN, copy, ignore=shutil.ignore_patterns("test"))
        files = sorted((copy / "autoload" / "fimls").glob("*.vim")) + [
            copy / "plugin" / "fimls.vim"
        ]
        for f in files:
            f.write_text(f.read_text(encoding="utf-8") + "\ndefcompile\n", encoding="utf-8")
        out = Path(tmp) / "out.txt"
        loop = (
            "for f in " + json.dumps([str(f) for f in files]) + " | try | exe 'source' f"
            " | catch | echo f v:exception | endtry | endfor"
        )
        subprocess.run(
            [
                VIM,
                "-Nu",
                "NONE",
                "-i",
                "NONE",
                "-es",
                "--cmd",
                f"set rtp^={copy}",
                "-c",
                f"redir! > {out}",
                "-c",
                loop,
                "-c",
                f"helptags {copy}/doc",
                "-c",
                "redir END",
                "-c",
                "qa!",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        return (
            out.read_text(encoding="utf-8", errors="replace").strip()
            if out.exists()
            else "no output"
        )


def test_scripts_and_help_compile(vim: Vim, ctx: dict) -> None:
    """The Vim9 scripts compile and the help file has valid tags."""
    errors = compile_scripts()
    check(errors == "", "compile errors: " + errors)


def test_positions_and_edits(vim: Vim, ctx: dict) -> None:
    """Run test/unit.vim in a headless Vim.

    Columns in each encoding, text edits (bottom-up, multi-line, UTF-8, end of
    document), a created file.
    """
    with tempfile.TemporaryDirectory(prefix="fimls-vim-unit-") as tmp:
        out = Path(tmp) / "out.txt"
        subprocess.run(
            [
                VIM,
                "-Nu",
                "NONE",
                "-i",
                "NONE",
                "-es",
                "--cmd",
                f"set rtp^={PLUGIN}",
                "-S",
                str(HERE / "unit.vim"),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            cwd=tmp,
            env={**os.environ, "FIMLS_UNIT_OUT": str(out)},
        )
        result = (
            out.read_text(encoding="utf-8").strip() if out.exists() else "unit.vim stopped early"
        )
        check(result == "ok", result.replace("\n", " | "))


def test_status_ready(vim: Vim, ctx: dict) -> None:
    """The statusline reaches "ready" and the columns are UTF-32."""
    s = vim.wait(lambda s: s.get("status") == "fimls: ready", 60, "status never became ready")
    check(s["encoding"] == "utf-32", f"negotiated {s['encoding']}, expected utf-32")


def test_ghost_text_appears(vim: Vim, ctx: dict) -> None:
    """Typing a function header shows a suggestion at the cursor."""
    vim.keys("i")
    vim.type("def fibonacci(n):\n")
    s = vim.wait_ghost()
    check_ghost_display(vim, s)
    ctx["fib"] = s


def test_tab_accepts_exactly_the_ghost_text(vim: Vim, ctx: dict) -> None:
    """Tab inserts exactly the text shown, the cursor after it."""
    s = ctx["fib"]
    text = ghost_text(s)
    lnum, col = s["cursor"]
    # Still the same suggestion at the same place right before the key.
    now = vim.state()
    check(
        ghost_shown(now) and ghost_text(now) == text and now["lines"] == s["lines"],
        "the suggestion changed before <Tab>",
    )
    vim.keys("Tab")
    after = vim.wait(lambda t: t["lines"] != s["lines"], 10, "<Tab> changed nothing")
    expected = insert_at(s["lines"], lnum, col, text)
    check(after["lines"] == expected, f"buffer {after['lines']!r} != before + ghost {expected!r}")
    last = text.split("\n")[-1]
    want_col = len(last.encode()) + (col if "\n" not in text else 1)
    check(
        after["cursor"] == [lnum + text.count("\n"), want_col],
        f"cursor {after['cursor']} not after the inserted text",
    )
    ctx["full_chars"] = len(text)


def test_stats_count_full_acceptance(vim: Vim, ctx: dict) -> None:
    """fimls/stats counts the full acceptance."""
    stats = vim.mark()["stats"]
    acc = stats.get("acceptances")
    check(isinstance(acc, dict), f"fimls/stats has no acceptances: {sorted(stats)}")
    check(acc.get("full", 0) >= 1 and acc.get("total", 0) >= 1, f"acceptances {acc}")
    check(acc.get("chars", 0) >= ctx.get("full_chars", 1), f"acceptances {acc}")
    ctx["acc"] = acc


def test_leaving_insert_mode_clears(vim: Vim, ctx: dict) -> None:
    """<Esc> removes the suggestion."""
    vim.keys("Escape")
    s = vim.wait(lambda s: s["mode"] == "n", 5, "not in Normal mode")
    time.sleep(0.5)
    s = vim.mark()
    check(not s["props"] and not s["ghost"]["shown"], f"suggestion left after <Esc>: {s['props']}")


def test_accept_word(vim: Vim, ctx: dict) -> None:
    """Accept word inserts the next word only; the rest stays shown."""
    vim.command("w | e words.py")
    vim.wait(lambda s: s["bufname"] == "words.py", 5, "words.py not opened")
    vim.keys("i")
    vim.type("def is_even(number):\n")
    s = vim.wait_ghost()
    text = ghost_text(s)
    lnum, col = s["cursor"]
    word = next_word(text)
    vim.keys("C-Right")
    after = vim.wait(lambda t: t["lines"] != s["lines"], 10, "<C-Right> changed nothing")
    check(
        after["lines"] == insert_at(s["lines"], lnum, col, word),
        f"accept word inserted {after['lines']!r}, expected the word {word!r} of {text!r}",
    )
    rest = text[len(word) :]
    if rest:
        t = vim.wait(ghost_shown, 5, "the rest of the suggestion is not shown after accept word")
        check(ghost_text(t) == rest, f"rest shown {ghost_text(t)!r}, expected {rest!r}")
        check_ghost_display(vim, t)
    ctx["partial"] = 1


def test_accept_line(vim: Vim, ctx: dict) -> None:
    """Accept line inserts the rest of the line only."""
    s = vim.state()
    if not ghost_shown(s):
        # The word took the whole suggestion: ask for a new one on a new line.
        vim.keys("Escape", "o")
        s = vim.wait_ghost()
    text = ghost_text(s)
    lnum, col = s["cursor"]
    line = next_line(text)
    vim.keys("M-l")
    after = vim.wait(lambda t: t["lines"] != s["lines"], 10, "<M-l> changed nothing")
    check(
        after["lines"] == insert_at(s["lines"], lnum, col, line),
        f"accept line inserted {after['lines']!r}, expected {line!r} of {text!r}",
    )
    ctx["partial"] = ctx.get("partial", 0) + 1


def test_dismiss_then_tab_indents(vim: Vim, ctx: dict) -> None:
    """<C-]> dismisses; Tab without a suggestion indents."""
    vim.command("w | e greet.py")
    vim.wait(lambda s: s["bufname"] == "greet.py", 5, "greet.py not opened")
    vim.keys("i")
    vim.type("def greet(name):\n")
    s = vim.wait_ghost()
    vim.keys("C-]")
    d = vim.mark()
    check(not d["props"] and not d["ghost"]["shown"], f"<C-]> left the suggestion: {d['props']}")
    check(d["lines"] == s["lines"], "<C-]> changed the buffer")
    lnum, col = d["cursor"]
    vim.keys("Tab")
    t = vim.wait(lambda t: t["lines"] != d["lines"], 10, "<Tab> without a suggestion did nothing")
    old, new = d["lines"][lnum - 1], t["lines"][lnum - 1]
    check(
        t["lines"][: lnum - 1] == d["lines"][: lnum - 1] and len(t["lines"]) == len(d["lines"]),
        f"<Tab> changed other lines: {t['lines']!r}",
    )
    added = new[len(old) :] if new.startswith(old) else None
    check(
        added is not None and added != "" and added.strip(" \t") == "",
        f"<Tab> without a suggestion gave {new!r} from {old!r} (expected indentation)",
    )


def test_stats_count_partial_acceptances(vim: Vim, ctx: dict) -> None:
    """fimls/stats counts the partial acceptances."""
    acc = vim.mark()["stats"].get("acceptances", {})
    check(acc.get("partial", 0) >= ctx.get("partial", 2), f"acceptances {acc}")
    check(
        acc.get("total", 0) >= acc.get("full", 0) + acc.get("partial", 0) >= 3, f"acceptances {acc}"
    )


def test_utf8_before_cursor(vim: Vim, ctx: dict) -> None:
    """UTF-8 text before the cursor: the column sent, the place drawn."""
    vim.command("w | e words_utf8.py")
    vim.wait(lambda s: s["bufname"] == "words_utf8.py", 5, "words_utf8.py not opened")
    vim.keys("i")
    vim.type('names = ["日本", "café", "Ünïcödé"]\n')
    vim.type('label = "日本é"; size = len(lab')
    s = vim.wait_ghost()
    lnum, col = s["cursor"]
    line = s["lines"][lnum - 1]
    prefix = line.encode()[: col - 1].decode()
    check(prefix.endswith("len(lab"), f"cursor not after the typed text: {prefix!r}")
    req = s["ghost"]["last_request"]["params"]["position"]
    check(
        req == {"line": lnum - 1, "character": len(prefix)},
        f"position sent {req}, expected character {len(prefix)} (code points before the cursor)",
    )
    text = check_ghost_display(vim, s)
    vim.keys("Tab")
    after = vim.wait(lambda t: t["lines"] != s["lines"], 10, "<Tab> changed nothing")
    check(
        after["lines"] == insert_at(s["lines"], lnum, col, text),
        f"buffer {after['lines']!r} != before + {text!r}",
    )


def test_code_action_add_docstring(vim: Vim, ctx: dict) -> None:
    """Add docstring, chosen with real keys in the menu, adds one."""
    vim.command("w | e calc.py")
    s = vim.wait(lambda s: s["bufname"] == "calc.py" and s["mode"] == "n", 5, "calc.py not opened")
    before = s["lines"]
    vim.command("4")
    vim.wait(lambda s: s["cursor"][0] == 4, 5, "cursor not on line 4")
    vim.tmux("send-keys", "-t", vim.target, "-l", "\\fa")  # <Leader>fa
    m = vim.wait(lambda s: bool(s.get("menu")), 20, "no code action menu")
    titles = m["menu"]["lines"]
    wanted = [i for i, t in enumerate(titles, 1) if "docstring" in t.lower()]
    check(bool(wanted), f"no docstring action in {titles}")
    for _ in range(wanted[0] - m["menu"]["selected"]):
        vim.keys("j")
    vim.wait(
        lambda s: s.get("menu", {}).get("selected") == wanted[0],
        5,
        f"could not select line {wanted[0]} of the menu",
    )
    vim.keys("Enter")
    after = vim.wait(
        lambda t: t["lines"] != before and t["bufname"] == "calc.py",
        90,
        "the docstring was not applied",
    )
    new = after["lines"]
    added = len(new) - len(before)
    check(added >= 1, f"no line added: {new!r}")
    check(
        new[:4] == before[:4] and new[4 + added :] == before[4:],
        f"lines outside the docstring changed: {new!r}",
    )
    doc = new[4 : 4 + added]
    check(
        doc[0].startswith("    ") and doc[0].strip()[:3] in ('"""', "'''"),
        f"line after the def is not a docstring: {doc!r}",
    )
    check(all(x.startswith("    ") or x == "" for x in doc), f"docstring not indented: {doc!r}")


def test_protocol_clean(vim: Vim, ctx: dict) -> None:
    """The plugin log shows no failed reply or handler, no traceback."""
    log = vim.mark()["log"]
    bad = [
        entry
        for entry in log
        if re.search(
            r"reply failed|handling .* failed|Traceback|"
            r"configuration failed|unhandled notification",
            entry,
        )
    ]
    check(not bad, "problems in the plugin log: " + " | ".join(bad[:5]))


TESTS = [
    test_scripts_and_help_compile,
    test_positions_and_edits,
    test_status_ready,
    test_ghost_text_appears,
    test_tab_accepts_exactly_the_ghost_text,
    test_stats_count_full_acceptance,
    test_leaving_insert_mode_clears,
    test_accept_word,
    test_accept_line,
    test_dismiss_then_tab_indents,
    test_stats_count_partial_acceptances,
    test_utf8_before_cursor,
    test_code_action_add_docstring,
    test_protocol_clean,
]


def main() -> int:
    """Run the tests; returns the exit status."""
    if not shutil.which(TMUX) or not Path(VIM).exists() or not Path(FIMLS).exists():
        print(f"missing tmux ({TMUX}), vim ({VIM}) or fimls ({FIMLS})")
        print("vim: 0 passed, 1 failed")
        return 1
    passed = failed = 0
    started = time.monotonic()
    vim = Vim()

    def on_signal(signum, _frame):
        vim.close()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx: dict = {}
    try:
        try:
            vim.start()
        except Exception as e:  # noqa: BLE001
            print(f"FAIL start_vim: {e}", flush=True)
            failed += 1
            return 1
        for test in TESTS:
            name = test.__name__[5:]
            t0 = time.monotonic()
            try:
                test(vim, ctx)
                passed += 1
                print(f"ok   {name} ({time.monotonic() - t0:.1f} s)", flush=True)
            except Exception as e:  # noqa: BLE001 - report and go on
                failed += 1
                reason = str(e) if isinstance(e, Failure) else traceback.format_exc()
                print(f"FAIL {name} ({time.monotonic() - t0:.1f} s): {reason}", flush=True)
                if os.environ.get("FIMLS_TEST_KEEP"):
                    (vim.tmp / f"screen-{name}.txt").write_text("\n".join(vim.screen()))
                vim.keys("Escape", "Escape")
    finally:
        if os.environ.get("FIMLS_TEST_KEEP"):
            try:
                (vim.tmp / "log.txt").write_text("\n".join(vim.mark().get("log", [])))
            except Exception:  # noqa: BLE001
                pass
        vim.close()
        print(f"total {time.monotonic() - started:.1f} s")
        print(f"vim: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
