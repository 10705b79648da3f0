"""Security and privacy, end to end: what the server may touch, run, send and log.

Two audited sessions (tests/privacy/session.py) do everything a user does, against a
workspace full of traps: one at ``-v`` inside a new network namespace, one at ``-vv`` in
the machine's own. Python's audit hook (tests/privacy/hook) records what the server's
interpreter does, ``strace`` (where it works) what its native code does, and snapshots of
the folders what changed. Each test below judges one guarantee on both sessions:

- no network: the only transport is stdio (pipes), nothing connects, binds, sends or
  looks a name up (the audit hook refuses it all, so the session must work without);
- writes go only to the model cache and the log file the user named; HOME, the XDG
  cache, TMPDIR, the working directory and the workspace are left exactly as they were;
- nothing from the documents or the workspace ever runs (marker files, ``exec`` of code
  holding the document's strings, processes other than ``git ls-files``);
- the workspace cannot choose the model (no settings file in it is read);
- logs at ``-v`` and ``-vv`` hold no document text (a secret token).

And on their own: ``--tcp`` listens on 127.0.0.1 only; a damaged cached model is not
loaded even when it cannot be assembled again; a failed code action's log lines carry no
names from the document; and, as the log checks' positive control, ``-vvv`` does show
document text.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_server.lsp_client import FimlsClient
from lsp_server.model_store import QWEN_05B
from tests.conftest import Launch
from tests.privacy import syscalls
from tests.privacy.audit import (
    DEVICES,
    differences,
    inside,
    is_bytecode,
    listening_sockets,
    netns_prefix,
    non_loopback_addresses,
    own_netns,
)
from tests.privacy.session import (
    EVIL_MODEL,
    SETTINGS_FILES,
    Layout,
    SessionResult,
    fimls_command,
    run_session,
)

NETNS = netns_prefix()


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One empty model cache for both sessions: the first assembles the model into it."""
    cache = tmp_path_factory.mktemp("fimls-cache")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)  # ~470 MiB


@pytest.fixture(
    scope="module",
    params=[pytest.param(("-v", True), id="info-netns"), pytest.param(("-vv", False), id="debug")],
)
async def session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> SessionResult:
    verbosity, isolated = request.param
    layout = Layout(root=tmp_path_factory.mktemp("privacy"), cache=model_cache)
    return await run_session(layout, verbosity, NETNS if isolated else None)


def edited_uris(edit: types.WorkspaceEdit | None) -> list[str]:
    if edit is None:
        return []
    uris = list(edit.changes or {})
    for change in edit.document_changes or []:
        if isinstance(change, types.TextDocumentEdit):
            uris.append(change.text_document.uri)
        elif isinstance(change, types.CreateFile):
            uris.append(change.uri)
    return uris


def resolved_edit(session: SessionResult, name: str) -> types.WorkspaceEdit | None:
    outcome = session.actions[name]
    assert outcome.error is None, f"{name}: {outcome.code} {outcome.error}"
    assert isinstance(outcome.result, types.CodeAction), outcome.result
    return outcome.result.edit


@contextlib.asynccontextmanager
async def fimls_stdio(
    *args: str, cache: Path, stderr: IO[Any] | int = subprocess.DEVNULL
) -> AsyncIterator[FimlsClient]:
    """``fimls --stdio ARGS`` with this model cache, initialized; killed if still running."""
    client = FimlsClient()
    await client.start(
        fimls_command("--stdio", *args), env={"FIMLS_CACHE_DIR": str(cache)}, stderr=stderr
    )
    try:
        await client.handshake()
        assert (await client.wait_model(600))["state"] == "ready"
        yield client
    finally:
        if client.process.returncode is None:
            client.process.kill()
            await client.process.wait()


def show(events: list[dict[str, Any]], limit: int = 20) -> str:
    return "\n".join(str(e)[:400] for e in events[:limit])


async def test_the_session_worked(session: SessionResult) -> None:
    layout = session.layout
    assert session.status.get("state") == "ready", session.status
    assert session.completions["scratch"].strip(), session.completions
    assert layout.uri("geo.py") in edited_uris(resolved_edit(session, "docstring"))
    # the tests are returned as an edit of the existing test file, not written
    assert layout.uri("tests/test_geo.py") in edited_uris(resolved_edit(session, "tests"))
    assert layout.uri("geo.py") in edited_uris(resolved_edit(session, "explain"))
    assert session.actions["rewrite"].result == {"applied": True}, session.actions["rewrite"]
    assert session.actions["stale"].code == -32801, session.actions["stale"]  # ContentModified
    assert any(layout.uri("geo.py") in edited_uris(e) for e in session.applied_edits)
    assert session.index.get("done") and session.index.get("workspaceFilesRead", 0) >= 2
    assert session.alive_after_bad_input, "fimls/stats after the invalid params"
    assert session.stats["actions"]["ok"] >= 3, session.stats["actions"]
    assert session.exit_code == 0


async def test_no_network(session: SessionResult) -> None:
    audit = session.audit
    starts = audit.of("start")
    assert starts, "the audit hook did not run in the server"
    assert all(s["pid"] == starts[0]["pid"] for s in starts), "no other Python process"
    network = audit.of("network")
    assert network == [], f"network use (refused by the hook):\n{show(network)}"
    # asyncio's self-pipe is a socketpair (AF_UNIX); nothing else may open a socket
    sockets = [e for e in audit.of("socket") if not e["unix"]]
    assert sockets == [], show(sockets)
    if session.netns:
        assert starts[0]["netns"] != own_netns(), "the server was not in a new namespace"
    if session.syscalls is not None:  # native code too: sockets, connects, sends
        calls = syscalls.network(session.syscalls)
        assert calls == [], "\n".join(c.line[:300] for c in calls[:20])


async def test_the_native_checks_ran(session: SessionResult) -> None:
    """strace and the network namespace add checks of native code; say when they cannot."""
    if session.syscalls is None:
        pytest.skip("strace is missing or not permitted: only the Python audit hook checked")
    if session.verbosity == "-v" and not session.netns:
        pytest.skip("unshare -n is not permitted here: no network namespace")
    assert session.syscalls, "strace recorded no system calls"


async def test_writes_only_in_the_cache_and_the_log_file(session: SessionResult) -> None:
    layout = session.layout

    def allowed(path: object) -> bool:
        if isinstance(path, int) or path in DEVICES or path == str(layout.log_file):
            return True
        if path == str(layout.audit_log):  # the audit hook's own record (the test's)
            return True
        if inside(path, layout.cache):
            return True
        # Python's own bytecode cache of an installed module, never in a watched folder
        return is_bytecode(path) and not any(inside(path, p) for p in layout.watched.values())

    written = session.audit.of("write")
    outside = [w for w in written if not all(allowed(p) for p in w["paths"])]
    assert outside == [], f"writes outside the cache and the log file:\n{show(outside)}"
    assert any(str(layout.log_file) in w["paths"] for w in written), "the log file was written"
    if session.syscalls is not None:  # native code too (llama.cpp, tree-sitter, git)
        calls = syscalls.writes(session.syscalls)
        native = [c for c in calls if not all(allowed(p) for p in c.paths)]
        assert native == [], "\n".join(c.line[:300] for c in native[:20])


async def test_home_tmp_cwd_and_workspace_are_unchanged(session: SessionResult) -> None:
    changed = {
        name: differences(session.before[name], session.after[name])
        for name in session.layout.watched
    }
    assert all(not lines for lines in changed.values()), changed
    assert list(session.layout.markers.iterdir()) == []


async def test_document_text_never_runs(session: SessionResult) -> None:
    layout = session.layout
    assert list(layout.markers.iterdir()) == [], "a payload ran"
    # code holding the documents' strings, or code from a file in a watched folder
    executed = [
        e
        for e in session.audit.of("exec")
        if e.get("markers")
        or (e.get("real_file") and any(inside(e["filename"], p) for p in layout.watched.values()))
    ]
    assert executed == [], f"document code executed:\n{show(executed)}"
    # the only process is the workspace indexer's `git ls-files`, with fixed arguments
    processes = session.audit.of("process")
    git = [p for p in processes if _is_git_ls_files(p, layout)]
    assert [p for p in processes if p not in git] == [], show(processes)
    assert git, "the workspace indexer ran `git ls-files`"
    if session.syscalls is not None:  # every program executed, native code's too
        programs = {fimls_command()[0], shutil.which("unshare")}
        others = [
            call.line[:300]
            for call, argv in syscalls.executions(session.syscalls)
            if not call.paths or call.paths[0] not in programs
            if not _is_git_ls_files({"event": "subprocess.Popen", "argv": argv}, layout)
        ]
        assert others == [], "\n".join(others)


def _is_git_ls_files(event: dict[str, Any], layout: Layout) -> bool:
    argv = event.get("argv") or []
    if event["event"] != "subprocess.Popen" or not argv or os.path.basename(argv[0]) != "git":
        return False
    if "ls-files" not in argv:
        return False
    workspace = str(layout.workspace)
    return all(a == "ls-files" or a == workspace or a.startswith("-") for a in argv[1:])


async def test_the_workspace_cannot_choose_the_model(session: SessionResult) -> None:
    layout = session.layout
    model = session.status.get("model") or {}
    assert model.get("path") == str(layout.model_path), session.status
    assert model.get("embedded") is True
    # no settings file of the workspace (nor its GGUF) was opened
    traps = {str(layout.workspace / name) for name in (*SETTINGS_FILES, EVIL_MODEL)}
    touched = [e for e in session.audit.of("read", "write") if any(p in traps for p in e["paths"])]
    assert touched == [], show(touched)
    # the embedded model was verified before use: assembled (hashed while written and
    # renamed into place) in this session, or read (hashed) before it was loaded
    target = str(layout.model_path)
    assembled = any(
        e["event"] == "os.rename" and e["paths"][-1] == target for e in session.audit.of("write")
    )
    hashed = any(target in e["paths"] for e in session.audit.of("read"))
    assert assembled or hashed


async def test_logs_hold_no_document_text(session: SessionResult) -> None:
    secret = session.layout.secret
    assert "model ready" in session.log, "the log file is where the logs went"
    if session.verbosity == "-v":
        assert "completion id=" in session.log
    # the guarantee is for every level above DEBUG; at -vv fimls's own debug lines may
    # quote code (why an action's answer was rejected), so those are left out there
    lines = [line for line in session.log.splitlines() if " DEBUG " not in line]
    leaks = [line for line in lines if secret in line]
    assert leaks == [], f"document text in the {session.verbosity} log:\n" + "\n".join(leaks)
    leaks = [line for line in session.stderr.splitlines() if secret in line]
    assert leaks == [], "document text on stderr:\n" + "\n".join(leaks)
    assert session.layout.tag not in session.log + session.stderr


def test_a_new_network_namespace_reaches_nothing() -> None:
    """What the sessions' ``unshare -n`` buys: even native code cannot connect."""
    if NETNS is None:
        pytest.skip("unshare -n (and -rn) does not work here")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
            "except OSError:\n"
            "    sys.exit(3)\n"
        )
        done = subprocess.run([*NETNS, sys.executable, "-c", probe], timeout=60)
    assert done.returncode == 3, "a connection left the new network namespace"


async def test_tcp_listens_on_loopback_only(model_cache: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        *fimls_command("--tcp", "--port", str(port)),
        env={**os.environ, "FIMLS_CACHE_DIR": str(model_cache)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        listening: list[tuple[str, int]] = []
        for _ in range(600):
            assert proc.returncode is None, "the server ended"
            listening = listening_sockets(proc.pid)
            if listening:
                break
            await asyncio.sleep(0.1)
        assert listening == [("127.0.0.1", port)]
        for address in non_loopback_addresses():
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family) as probe, pytest.raises(OSError):
                probe.settimeout(5)
                probe.connect((address, port))
        # the one client it serves still gets in over loopback, and it ends cleanly
        client = FimlsClient()
        await client.start_tcp("127.0.0.1", port)
        await client.handshake()
        assert (await client.wait_model(600))["state"] == "ready"
        await client.shutdown_async(None)
        client.exit(None)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_damaged_cached_model_is_not_loaded_when_it_cannot_be_rebuilt(
    launch: Launch, tmp_path: Path, isolated_cache: dict[str, str]
) -> None:
    # the cached file has the right name, size and header but not the right bytes, and
    # one part is missing, so it cannot be assembled again: it must not be loaded anyway
    cached = Path(isolated_cache["FIMLS_CACHE_DIR"]) / "models" / QWEN_05B.filename
    cached.parent.mkdir(parents=True)
    first = QWEN_05B.parts[0]  # the model's first bytes: its GGUF header
    header = Path(str(importlib.metadata.distribution(first.distribution).locate_file(first.file)))
    with header.open("rb") as src, cached.open("wb") as dst:
        dst.write(src.read(1 << 20))
        dst.truncate(QWEN_05B.size)  # sparse: no disk used
    part = QWEN_05B.parts[4]
    fake = tmp_path / "fake-parts"
    info = fake / f"{part.distribution.replace('-', '_')}-{part.version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: {part.version}\n"
    )
    paths = [str(fake), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    client = await launch(env={**isolated_cache, "PYTHONPATH": os.pathsep.join(paths)})
    status = await client.wait_model(600)
    assert status["state"] == "error", status
    assert status["model"] is None
    assert part.distribution in status["message"]
    uri = (tmp_path / "nothing.py").as_uri()
    client.open(uri, "def add(a, b):\n    return ")
    assert not (await client.inline(uri, 1, 11)).items
    assert await client.stop() == 0


async def test_library_debug_output_does_show_document_text(
    tmp_path: Path, model_cache: Path
) -> None:
    """The log checks' positive control: at ``-vvv`` pygls logs the messages it sends
    (documented), and ``fimls/prompt``'s answer holds the document's text, so the secret
    reaches a log that lets it through: its absence at ``-v`` and ``-vv`` means something.
    """
    secret = "zq" + os.urandom(7).hex()
    log = tmp_path / "vvv.log"
    async with fimls_stdio("-vvv", "--log-file", str(log), cache=model_cache) as client:
        uri = (tmp_path / "doc.py").as_uri()
        client.open(uri, f"# {secret}\ndef add(a, b):\n    return \n")
        prompt = await client.prompt(uri, 2, 11)
        assert secret in str(prompt["segments"])
        assert await client.stop() == 0
    assert secret in log.read_text(errors="replace")


async def test_a_failed_action_logs_no_identifiers(tmp_path: Path, model_cache: Path) -> None:
    """A code action that fails says why in the log without the document's names.

    Provoked without depending on the model: the client changes the document without
    bumping its version (the server takes the change), so the function is no longer where
    the action was listed, and both attempts are refused. Any refused docstring or tests
    action takes the same path (its message names the function).
    """
    secret = "zq" + os.urandom(7).hex()
    log = tmp_path / "fimls.log"
    source = f"import math\n\n\ndef area_{secret}(radius):\n    return math.pi * radius**2\n"
    async with fimls_stdio("-v", "--log-file", str(log), cache=model_cache) as client:
        uri = (tmp_path / "moved.py").as_uri()
        client.open(uri, source)
        where = types.Position(line=4, character=4)
        listed = await client.protocol.send_request_async(
            types.TEXT_DOCUMENT_CODE_ACTION,
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(start=where, end=where),
                context=types.CodeActionContext(diagnostics=[]),
            ),
        )
        action = next(a for a in listed if a.title.startswith("Add docstring"))
        client.change(uri, 1, "\n\n\n", (2, 0), (2, 0))  # same version: the action is not stale
        with pytest.raises(JsonRpcException) as failure:
            await asyncio.wait_for(
                client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, action), 240
            )
        assert getattr(failure.value, "code", None) == -32803  # RequestFailed, after the model
        assert await client.stop() == 0
    leaks = [line for line in log.read_text().splitlines() if secret in line]
    assert leaks == [], "the function's name in the -v log:\n" + "\n".join(leaks)


def test_python_m_does_not_import_the_projects_modules(tmp_path: Path, model_cache: Path) -> None:
    """``python -m`` puts the working directory (the editor's project) first on sys.path:
    a project's numpy.py or jinja2.py must not be imported in place of the library."""
    project = tmp_path / "project"
    project.mkdir()
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("numpy", "jinja2", "attrs", "cattrs", "platformdirs", "tree_sitter"):
        (project / f"{name}.py").write_text(payload)
    env = {**os.environ, "FIMLS_CACHE_DIR": str(model_cache)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server", "check"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not marker.exists(), marker.read_text()
