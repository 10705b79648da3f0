"""One audited fimls session: a workspace full of traps, every feature, all recorded.

The server runs as ``fimls --stdio`` with the audit hook (``hook/sitecustomize.py``) first
on its PYTHONPATH, with HOME, XDG_*, TMPDIR, its working directory and its model cache in
fresh folders, optionally in a new network namespace (``unshare -n``), and under
``strace`` where it works (``syscalls.py``: what native code does). The workspace
is a git repository whose files would leave marker files if any of their code ran, holds a
secret token in code, comments and strings, and has settings files and a GGUF that try to
choose the model. The session initializes, waits for the model and the workspace index,
completes, lists and resolves every code action kind (and an explanation cancelled while
it is written, a fix the model cannot make, an action gone stale), rewrites through
``workspace/executeCommand``, sends invalid params that carry the document's text, reads
``fimls/stats`` and shuts down. Everything is kept in a
:class:`SessionResult` for the tests to judge.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_server.lsp_client import FimlsClient, server_command
from lsp_server.model_store import QWEN_05B
from tests.privacy.audit import HOOK_DIR, AuditLog, Snapshot, snapshot
from tests.privacy.syscalls import Syscall, read_syscalls, strace_prefix

MODEL_TIMEOUT = 600.0
REQUEST_TIMEOUT = 240.0

#: Files in the workspace that a server reading settings from the workspace could take
#: for its configuration; each names the workspace's own GGUF as the model.
SETTINGS_FILES = (
    ".fimls.json",
    "fimls.json",
    ".fimls.toml",
    "fimls.toml",
    ".fimlsrc",
    ".fimls/settings.json",
    ".vscode/settings.json",
    ".zed/settings.json",
    ".env",
    "pyproject.toml",
)
EVIL_MODEL = "models/evil.gguf"


@dataclass
class Layout:
    """The fresh folders of one session."""

    root: Path
    cache: Path  # FIMLS_CACHE_DIR: the only folder the server may write in (and the log)
    secret: str = field(default_factory=lambda: "zq" + uuid.uuid4().hex[:14])
    tag: str = field(default_factory=lambda: "PAYLOAD" + uuid.uuid4().hex[:12])

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def xdg_cache(self) -> Path:
        return self.root / "xdg-cache"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    @property
    def out(self) -> Path:
        """The test's own files: the audit log, the server's stderr (not the server's)."""
        return self.root / "out"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "fimls.log"

    @property
    def audit_log(self) -> Path:
        return self.out / "audit.jsonl"

    @property
    def stderr_file(self) -> Path:
        return self.out / "stderr.log"

    @property
    def watched(self) -> dict[str, Path]:
        """The folders that must be left exactly as they were."""
        return {
            "HOME": self.home,
            "XDG_CACHE_HOME": self.xdg_cache,
            "TMPDIR": self.tmp,
            "cwd": self.cwd,
            "workspace": self.workspace,
            "markers": self.markers,
        }

    @property
    def model_path(self) -> Path:
        return self.cache / "models" / QWEN_05B.filename

    def uri(self, relative: str) -> str:
        return (self.workspace / relative).as_uri()


def payload(layout: Layout, name: str) -> str:
    """Python that leaves marker files (and holds the tag) if it is ever run."""
    m = layout.markers
    return (
        f'open("{m}/{name}-module", "w").write("{layout.tag}")\n'
        f"__import__('os').system('touch {m}/{name}-system')\n"
        f'exec(compile("open(\'{m}/{name}-exec\', \'w\')", "{layout.tag}", "exec"))\n'
    )


def main_block(layout: Layout, name: str) -> str:
    m = layout.markers
    return (
        'if __name__ == "__main__":\n'
        f'    open("{m}/{name}-main", "w").write("{layout.tag}")\n'
        f'    __import__("subprocess").run(["touch", "{m}/{name}-main-subprocess"])\n'
    )


def geo_source(layout: Layout) -> str:
    s = layout.secret
    return (
        f'"""Geometry helpers of project {s}-docstring."""\n'
        "import math\n\n"
        "from helpers import clamp\n\n"
        f"{payload(layout, 'geo')}\n"
        f'LABEL = "{s}-string"\n\n\n'
        f"def scale_{s}(values, factor):\n"
        f"    # ticket {s}-comment: factor is clamped\n"
        f"    limit_{s} = clamp(factor, 0, 100)\n"
        f"    return [v * limit_{s} for v in values]\n\n\n"
        "def total_price(prices, tax):\n"
        "    subtotal = sum(prices)\n"
        "    return subtotal * (1 + tx)\n\n\n"
        f"def double_{s}(x):\n"
        "    return 2 * x\n\n\n"
        "def run(values):\n"
        "    total = sum(values)\n"
        f"    return qz_{s}(total)\n\n\n"
        "def circle_area(radius):\n"
        "    if radius < 0:\n"
        f'        raise ValueError("negative radius {s}-error")\n'
        "    return math.pi * radius ** 2\n\n\n"
        f"{main_block(layout, 'geo')}"
    )


def scratch_source(layout: Layout) -> str:
    s = layout.secret
    return (
        f"# scratch buffer {s}-scratch, never saved\n"
        f"{payload(layout, 'scratch')}\n\n"
        "def add(a, b):\n"
        "    return "
    )


def ts_source(layout: Layout) -> str:
    s = layout.secret
    m = layout.markers
    return (
        f"// {s}-ts-comment\n"
        f"require('child_process').execSync('touch {m}/ts-exec');\n"
        f'const label = "{s}-ts-string";\n\n'
        "export function add(a: number, b: number): number {\n"
        "  return "
    )


def build_workspace(layout: Layout) -> dict[str, str]:
    """Create the folders and the workspace (a git repository); return the documents."""
    for folder in (*layout.watched.values(), layout.out, layout.logs, layout.cache):
        folder.mkdir(parents=True, exist_ok=True)
    (layout.cwd / "notes.txt").write_text("the server's working directory\n")
    (layout.home / ".profile").write_text("# a fresh home\n")
    ws = layout.workspace
    geo = geo_source(layout)
    files = {
        "geo.py": geo,
        "helpers.py": (
            "def clamp(value, low, high):\n"
            '    """Limit value to the range [low, high]."""\n'
            "    return max(low, min(value, high))\n\n\n"
            f"{payload(layout, 'helpers')}\n{main_block(layout, 'helpers')}"
        ),
        # the test file "Generate unit tests" extends: it exists, with a payload
        "tests/test_geo.py": (
            f"{payload(layout, 'test_geo')}\n"
            "from geo import circle_area\n\n\n"
            "def test_circle_area_zero():\n"
            "    assert circle_area(0) == 0\n\n\n"
            f"{main_block(layout, 'test_geo')}"
        ),
        "conftest.py": payload(layout, "conftest"),
        "setup.py": payload(layout, "setup") + main_block(layout, "setup"),
        "sitecustomize.py": payload(layout, "sitecustomize"),
        "numpy.py": payload(layout, "numpy"),  # a module name the server's libraries import
        "jinja2.py": payload(layout, "jinja2"),
        "lsp_server/__init__.py": payload(layout, "lsp_server"),
        "web/app.ts": ts_source(layout) + "a + b;\n}\n",
        "Makefile": f"all:\n\ttouch {layout.markers}/make\n",
    }
    evil = str(ws / EVIL_MODEL)
    settings = {"fimls": {"model": {"path": evil}, "logLevel": "debug"}}
    flat = {"fimls.model.path": evil, "fimls.logLevel": "debug"}
    for name in SETTINGS_FILES:
        if name == "pyproject.toml":
            text = f'[project]\nname = "geo"\n\n[tool.fimls.model]\npath = "{evil}"\n'
        elif name.endswith(".json"):
            text = json.dumps({**settings, **flat}, indent=2)
        elif name.endswith(".toml"):
            text = f'[model]\npath = "{evil}"\n'
        else:
            text = f"FIMLS_MODEL={evil}\nFIMLS_CACHE_DIR={ws}/evil-cache\n"
        files[name] = text
    for name, text in files.items():
        path = ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # a file that starts like a GGUF: loading it would fail, so the status would say
    (ws / EVIL_MODEL).parent.mkdir(parents=True, exist_ok=True)
    (ws / EVIL_MODEL).write_bytes(b"GGUF" + b"\0" * 60)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    git_env = {**os.environ, "HOME": str(layout.out), "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (
        ["init", "-q"],
        ["add", "geo.py", "tests/test_geo.py", "conftest.py", "setup.py", "web/app.ts"],
        ["commit", "-q", "-m", "initial"],
    ):
        subprocess.run([*git, *args], cwd=ws, env=git_env, check=True, capture_output=True)
    # helpers.py and the rest stay untracked: `git ls-files --others` lists them
    return {"geo": geo, "scratch": scratch_source(layout), "ts": ts_source(layout)}


def server_env(layout: Layout) -> dict[str, str]:
    """The server's whole environment: inherited, but every place to write is fresh."""
    dropped = ("XDG_", "FIMLS_", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(dropped) and k not in ("HOME", "TMPDIR", "TMP", "TEMP")
    }
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        HOME=str(layout.home),
        XDG_CACHE_HOME=str(layout.xdg_cache),
        XDG_CONFIG_HOME=str(layout.home / ".config"),
        XDG_DATA_HOME=str(layout.home / ".local" / "share"),
        XDG_STATE_HOME=str(layout.home / ".local" / "state"),
        TMPDIR=str(layout.tmp),
        TMP=str(layout.tmp),
        TEMP=str(layout.tmp),
        FIMLS_CACHE_DIR=str(layout.cache),
        PYTHONPATH=os.pathsep.join([str(HOOK_DIR), *inherited]),
        FIMLS_AUDIT_LOG=str(layout.audit_log),
        FIMLS_AUDIT_WATCH=os.pathsep.join(
            str(p) for p in [*layout.watched.values(), layout.cache, layout.logs]
        ),
        FIMLS_AUDIT_MARKERS=os.pathsep.join([layout.secret, layout.tag]),
    )
    return env


def fimls_command(*args: str) -> list[str]:
    """``fimls ARGS``: the console script of this installation, else ``python -m``."""
    script = Path(sys.executable).with_name("fimls")
    if script.exists():
        return [str(script), *args]
    return server_command(*args)


class AuditedClient(FimlsClient):
    """A FimlsClient that can also write frames no typed client would send."""

    def send_raw(self, message: dict[str, Any] | bytes) -> None:
        """Write a frame by hand (params no typed client would send)."""
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


@dataclass
class Outcome:
    """How one request ended: its result, or the error's code and message."""

    result: Any = None
    code: int | None = None
    error: str | None = None


@dataclass
class SessionResult:
    """Everything one session produced."""

    layout: Layout
    verbosity: str
    netns: bool
    before: dict[str, Snapshot]
    after: dict[str, Snapshot] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    completions: dict[str, str] = field(default_factory=dict)
    actions: dict[str, Outcome] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    applied_edits: list[types.WorkspaceEdit] = field(default_factory=list)
    alive_after_bad_input: bool = False
    command: list[str] = field(default_factory=list)
    syscalls: list[Syscall] | None = None  # None: strace does not work here
    exit_code: int | None = None
    stderr: str = ""
    log: str = ""
    audit: AuditLog = field(default_factory=lambda: AuditLog([]))


def _range(line: int, character: int, end_line: int | None = None, end: int = 0) -> types.Range:
    start = types.Position(line=line, character=character)
    stop = start if end_line is None else types.Position(line=end_line, character=end)
    return types.Range(start=start, end=stop)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n")) if needle in line)


async def _list_actions(
    client: FimlsClient,
    uri: str,
    where: types.Range,
    diagnostics: list[types.Diagnostic] | None = None,
) -> list[types.CodeAction]:
    result = await asyncio.wait_for(
        client.protocol.send_request_async(
            types.TEXT_DOCUMENT_CODE_ACTION,
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=where,
                context=types.CodeActionContext(diagnostics=diagnostics or []),
            ),
        ),
        REQUEST_TIMEOUT,
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


def _titled(found: list[types.CodeAction], start: str) -> types.CodeAction:
    matches = [a for a in found if a.title.startswith(start)]
    assert matches, [a.title for a in found]
    return matches[0]


async def _outcome(request: Any) -> Outcome:
    try:
        return Outcome(result=await asyncio.wait_for(request, REQUEST_TIMEOUT))
    except JsonRpcException as exc:
        return Outcome(code=getattr(exc, "code", None), error=str(exc))


async def _completion(client: FimlsClient, uri: str, line: int, character: int) -> str:
    result = await asyncio.wait_for(client.inline(uri, line, character), REQUEST_TIMEOUT)
    return "".join(str(item.insert_text) for item in result.items)


async def run_session(layout: Layout, verbosity: str, netns: Sequence[str] | None) -> SessionResult:
    """Run the whole session (in a new network namespace with the ``netns`` prefix)."""
    docs = build_workspace(layout)
    before = {name: snapshot(path) for name, path in layout.watched.items()}
    session = SessionResult(
        layout=layout, verbosity=verbosity, netns=netns is not None, before=before
    )
    command = fimls_command("--stdio", verbosity, "--log-file", str(layout.log_file))
    if netns is not None:
        command = [*netns, "--", *command]
    strace = strace_prefix(layout.out)
    if strace is not None:
        command = [*strace, "--", *command]
    session.command = command
    client = AuditedClient()
    with open(layout.stderr_file, "wb") as stderr:
        await client.start(
            command, env=server_env(layout), stderr=stderr, cwd=layout.cwd, inherit_env=False
        )
    try:
        await _drive(client, layout, docs, session)
    finally:
        session.exit_code = await client.stop(timeout=30)
        session.applied_edits = list(client.applied_edits)
    session.after = {name: snapshot(path) for name, path in layout.watched.items()}
    session.stderr = layout.stderr_file.read_text(errors="replace")
    session.log = layout.log_file.read_text(errors="replace") if layout.log_file.exists() else ""
    session.audit = AuditLog.read(layout.audit_log)
    if strace is not None:
        session.syscalls = read_syscalls(layout.out)
    return session


async def _drive(
    client: AuditedClient, layout: Layout, docs: dict[str, str], session: SessionResult
) -> None:
    await asyncio.wait_for(
        client.handshake(root_uri=layout.workspace.as_uri(), progress=True), REQUEST_TIMEOUT
    )
    session.status = await client.wait_model(MODEL_TIMEOUT)
    if session.status.get("state") != "ready":
        return
    session.index = await client.wait_index(REQUEST_TIMEOUT)

    geo_uri, geo = layout.uri("geo.py"), docs["geo"]
    scratch_uri = layout.uri("scratch.py")  # only in the editor, never on disk
    ts_uri = layout.uri("web/app.ts")
    client.open(geo_uri, geo)
    client.open(scratch_uri, docs["scratch"])
    client.open(ts_uri, docs["ts"], "typescript")

    # completions
    scratch_lines = docs["scratch"].split("\n")
    session.completions["scratch"] = await _completion(
        client, scratch_uri, len(scratch_lines) - 1, len(scratch_lines[-1])
    )
    ts_lines = docs["ts"].split("\n")
    session.completions["ts"] = await _completion(
        client, ts_uri, len(ts_lines) - 1, len(ts_lines[-1])
    )
    await asyncio.wait_for(client.prompt(scratch_uri, len(scratch_lines) - 1, 4), REQUEST_TIMEOUT)

    # code actions, each kind
    resolve = types.CODE_ACTION_RESOLVE
    s = layout.secret
    for name, line, title in (
        ("docstring", _line_of(geo, f"def scale_{s}("), "Add docstring"),
        ("tests", _line_of(geo, f"def double_{s}("), "Generate unit tests"),
        ("explain", _line_of(geo, f"def double_{s}("), "Explain"),
    ):
        found = await _list_actions(client, geo_uri, _range(line + 1, 4))
        session.titles += [a.title for a in found]
        action = _titled(found, title)
        session.actions[name] = await _outcome(client.protocol.send_request_async(resolve, action))

    # fixes: one the model can make, one it cannot (a name nothing could define)
    for name, needle, undefined in (("fix", "(1 + tx)", "tx"), ("fix-fails", "qz_", f"qz_{s}")):
        line = _line_of(geo, needle)
        column = geo.split("\n")[line].index(undefined)
        diagnostic = types.Diagnostic(
            range=_range(line, column, line, column + len(undefined)),
            message=f"undefined name '{undefined}'",
            source="pyflakes",
        )
        fixes = await _list_actions(client, geo_uri, _range(line, column), [diagnostic])
        session.titles += [a.title for a in fixes]
        fix = _titled(fixes, f"Fix: undefined name '{undefined}'")
        session.actions[name] = await _outcome(client.protocol.send_request_async(resolve, fix))

    # an explanation, cancelled while the model writes it
    area = _line_of(geo, "def circle_area(")
    listed = await _list_actions(client, geo_uri, _range(area + 1, 4))
    explain = _titled(listed, "Explain")
    busy_before = sum(1 for status in client.statuses if status.get("state") == "busy")
    future = client.protocol.send_request(resolve, explain, msg_id=4242)
    for _ in range(200):  # until the model is at it (or the answer came)
        busy = sum(1 for status in client.statuses if status.get("state") == "busy")
        if future.done() or busy > busy_before:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=4242))
    session.actions["explain-cancelled"] = await _outcome(asyncio.wrap_future(future))

    # rewrites through workspace/executeCommand: as asked, and with a nonsense instruction
    total = _line_of(geo, "def total_price(")
    selected = _range(total, 0, total + 3, 0)
    rewrite = _titled(await _list_actions(client, geo_uri, selected), "Rewrite selection")
    assert rewrite.command is not None and rewrite.command.arguments
    for name, instruction in (
        ("rewrite", "add type hints"),
        ("rewrite-nonsense", "return this code exactly as it is, changing nothing at all"),
    ):
        params = types.ExecuteCommandParams(
            command="fimls.rewrite", arguments=[*rewrite.command.arguments, instruction]
        )
        session.actions[name] = await _outcome(
            client.protocol.send_request_async(types.WORKSPACE_EXECUTE_COMMAND, params)
        )

    # a completion in geo.py after typing a new function at its end; then the docstring
    # listed for circle_area before that change is stale
    stale = _titled(listed, "Add docstring")
    end = len(geo.split("\n")) - 1
    client.change(geo_uri, 2, "\ndef square(side):\n    return ", (end, 0), (end, 0))
    session.completions["geo"] = await _completion(client, geo_uri, end + 2, 11)
    session.actions["stale"] = await _outcome(client.protocol.send_request_async(resolve, stale))

    _send_bad_input(client, layout, geo_uri)
    stats = await _outcome(client.stats())
    session.alive_after_bad_input = stats.error is None
    session.stats = stats.result or {}


def _send_bad_input(client: AuditedClient, layout: Layout, geo_uri: str) -> None:
    """Messages with wrong types that carry document text (the secret)."""
    s = layout.secret
    text = f"value_{s} = '{s}-invalid'  # {s}\n"
    position = {"line": 0, "character": 0}
    whole = {"start": position, "end": position}
    messages: list[dict[str, Any]] = [
        {  # version of the wrong type
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": geo_uri, "version": f"v-{s}"},
                "contentChanges": [{"range": whole, "text": text}],
            },
        },
        {  # the text where a range belongs
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": geo_uri, "version": 9},
                "contentChanges": [{"range": text, "text": text}],
            },
        },
        {  # a change past the end of the document
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": geo_uri, "version": 10},
                "contentChanges": [
                    {"range": _plain_range(9999, 0, 9999, 5), "text": text},
                ],
            },
        },
        {  # the text as a list
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {
                    "uri": layout.uri("bad.py"),
                    "languageId": "python",
                    "version": 1,
                    "text": [text, text],
                }
            },
        },
        {  # a line of text where a position belongs
            "jsonrpc": "2.0",
            "id": 90001,
            "method": "textDocument/inlineCompletion",
            "params": {
                "textDocument": {"uri": geo_uri},
                "position": {"line": text, "character": 0},
                "context": {"triggerKind": 1},
            },
        },
        {  # a diagnostic whose range is the text
            "jsonrpc": "2.0",
            "id": 90002,
            "method": "textDocument/codeAction",
            "params": {
                "textDocument": {"uri": geo_uri},
                "range": whole,
                "context": {"diagnostics": [{"range": text, "message": text}]},
            },
        },
        {  # code action data that is not fimls'
            "jsonrpc": "2.0",
            "id": 90003,
            "method": "codeAction/resolve",
            "params": {"title": text, "data": {"fimls": 1, "kind": "docstring", "code": text}},
        },
        {  # a rewrite whose data is text
            "jsonrpc": "2.0",
            "id": 90004,
            "method": "workspace/executeCommand",
            "params": {"command": "fimls.rewrite", "arguments": [text, text]},
        },
    ]
    for message in messages:
        client.send_raw(message)
    # a frame that is not JSON at all
    client.send_raw(('{"jsonrpc": "2.0", "id": 90005, "method": "x", "params": "' + text).encode())


def _plain_range(line: int, character: int, end_line: int, end: int) -> dict[str, Any]:
    return {
        "start": {"line": line, "character": character},
        "end": {"line": end_line, "character": end},
    }
