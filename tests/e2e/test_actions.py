"""Code actions from the real model over stdio: listing, resolve, commands, cancellation."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled

from lsp_server.lsp_client import FimlsClient
from lsp_server.pynames import undefined_names
from lsp_server.syntax import count_errors, parse
from tests.conftest import Launch, doc_uri

# every test here runs with the local model and with a remote engine (tests/e2e/conftest.py)
pytestmark = pytest.mark.both_engines

GEO = """import math


def circle_area(radius):
    if radius < 0:
        raise ValueError("negative radius")
    return math.pi * radius ** 2


def total_price(prices, tax):
    subtotal = sum(prices)
    return subtotal * (1 + tx)
"""

CLAMP = """export function clamp(value: number, low: number, high: number): number {
  if (value < low) {
    return low;
  }
  return Math.min(value, high);
}
"""


def whole(position: types.Position) -> types.Range:
    return types.Range(start=position, end=position)


async def list_actions(
    client: FimlsClient,
    uri: str,
    where: types.Range,
    diagnostics: list[types.Diagnostic] | None = None,
    only: list[str] | None = None,
) -> list[types.CodeAction]:
    result = await client.protocol.send_request_async(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=where,
            context=types.CodeActionContext(
                diagnostics=diagnostics or [],
                only=[types.CodeActionKind(k) for k in only] if only else None,
            ),
        ),
    )
    assert isinstance(result, (list, tuple))
    assert all(isinstance(a, types.CodeAction) for a in result), result
    return list(result)


def titled(found: list[types.CodeAction], start: str) -> types.CodeAction:
    matches = [a for a in found if a.title.startswith(start)]
    assert matches, [a.title for a in found]
    return matches[0]


async def resolve(client: FimlsClient, action: types.CodeAction) -> types.WorkspaceEdit:
    resolved = await asyncio.wait_for(
        client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, action), 240
    )
    assert resolved.edit is not None
    return resolved.edit


def apply(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits (ASCII text: UTF-16 columns are code points)."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def at(p: types.Position) -> int:
        return min(offsets[p.line] + p.character, len(text))

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))[::-1]:
        text = text[: at(edit.range.start)] + edit.new_text + text[at(edit.range.end) :]
    return text


def document_edit(edit: types.WorkspaceEdit, uri: str) -> types.TextDocumentEdit:
    assert edit.document_changes is not None
    found = [
        c
        for c in edit.document_changes
        if isinstance(c, types.TextDocumentEdit) and c.text_document.uri == uri
    ]
    assert len(found) == 1, edit.document_changes
    return found[0]


def function(source: str, name: str) -> ast.FunctionDef:
    found = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
    return next(f for f in found if f.name == name)


async def test_listing_is_instant_and_filtered(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "geo.py")
    server.open(uri, GEO)
    found = await list_actions(server, uri, whole(types.Position(4, 8)))
    assert [a.title for a in found] == [
        "Add docstring for `circle_area`",
        "Explain `circle_area` (as a comment above it)",
        "Generate unit tests for `circle_area` in test_geo.py",
    ]
    assert all(a.data is not None and a.edit is None for a in found)  # computed on resolve
    quick = await list_actions(server, uri, whole(types.Position(4, 8)), only=["quickfix"])
    assert quick == []
    selected = types.Range(start=types.Position(3, 0), end=types.Position(7, 0))
    found = await list_actions(server, uri, selected)
    rewrite = titled(found, "Rewrite selection")
    assert rewrite.command is not None and rewrite.command.command == "fimls.rewrite"
    assert server.init_result is not None
    provider = server.init_result.capabilities.code_action_provider
    assert isinstance(provider, types.CodeActionOptions) and provider.resolve_provider


async def test_python_docstring(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "geo.py")
    server.open(uri, GEO)
    action = titled(await list_actions(server, uri, whole(types.Position(3, 6))), "Add docstring")
    change = document_edit(await resolve(server, action), uri)
    assert change.text_document.version == 1
    after = apply(GEO, change.edits)
    ast.parse(after)  # it parses
    before_fn, after_fn = function(GEO, "circle_area"), function(after, "circle_area")
    doc = ast.get_docstring(after_fn)
    assert doc and len(doc.split()) >= 3, doc
    # the body is unchanged: the docstring was added in front of it
    assert [ast.dump(s) for s in after_fn.body[1:]] == [ast.dump(s) for s in before_fn.body]
    assert [ast.dump(s) for s in ast.parse(after).body[2:]] == [
        ast.dump(s) for s in ast.parse(GEO).body[2:]
    ]


async def test_typescript_doc_comment(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "clamp.ts")
    server.open(uri, CLAMP, "typescript")
    found = await list_actions(server, uri, whole(types.Position(1, 4)))
    change = document_edit(await resolve(server, titled(found, "Add doc comment")), uri)
    after = apply(CLAMP, change.edits)
    assert count_errors(parse("typescript", after.encode()).root_node) == 0
    comment, code = after.split("export function", 1)
    assert "export function" + code == CLAMP  # the function is untouched
    assert comment.startswith("/**\n") and comment.endswith(" */\n")
    words = [w for w in comment.replace("*", " ").replace("/", " ").split() if w.isalpha()]
    assert len(words) >= 3, comment


async def test_fix_undefined_name(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "price.py")
    server.open(uri, GEO)
    assert "tx" in (undefined_names(GEO) or set())
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(11, 30), end=types.Position(11, 32)),
        message="undefined name 'tx'",
        source="pyflakes",
    )
    found = await list_actions(server, uri, whole(types.Position(11, 31)), [diagnostic])
    fix = titled(found, "Fix: undefined name 'tx'")
    assert fix.kind == types.CodeActionKind.QuickFix and list(fix.diagnostics or []) == [diagnostic]
    change = document_edit(await resolve(server, fix), uri)
    after = apply(GEO, change.edits)
    missing = undefined_names(after)
    assert missing is not None and "tx" not in missing  # it parses and the name resolves
    assert after.split("def total_price")[0] == GEO.split("def total_price")[0]


async def test_generated_tests_parse(server: FimlsClient, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    source = root / "pkg" / "geo.py"
    source.write_text(GEO)
    uri = source.as_uri()
    server.open(uri, GEO)
    found = await list_actions(server, uri, whole(types.Position(4, 0)))
    action = titled(found, "Generate unit tests for `circle_area`")
    edit = await resolve(server, action)
    assert edit.document_changes is not None
    create = edit.document_changes[0]
    test_uri = (tmp_path / "proj" / "pkg" / "tests" / "test_geo.py").as_uri()
    assert isinstance(create, types.CreateFile) and create.uri == test_uri
    written = apply("", document_edit(edit, test_uri).edits)
    module = ast.parse(written)  # the tests parse
    assert any(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in module.body)
    assert "circle_area" in written
    assert not (root / "pkg" / "tests").exists()  # the server writes no file itself


async def test_rewrite_with_an_instruction(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "rewrite.py")
    server.open(uri, GEO)
    selected = types.Range(start=types.Position(8, 0), end=types.Position(12, 0))
    rewrite = titled(await list_actions(server, uri, selected), "Rewrite selection")
    assert rewrite.command is not None and rewrite.command.arguments
    before = len(server.applied_edits)
    result = await asyncio.wait_for(
        server.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command="fimls.rewrite",
                arguments=[*rewrite.command.arguments, "add type hints"],
            ),
        ),
        240,
    )
    assert result == {"applied": True}
    assert len(server.applied_edits) == before + 1
    after = apply(GEO, document_edit(server.applied_edits[-1], uri).edits)
    head = GEO.split("def total_price")[0]
    assert after.startswith(head) and after != GEO  # only the selection changed
    rewritten = function(after, "total_price")  # it parses
    hints = [a.annotation for a in rewritten.args.args] + [rewritten.returns]
    assert any(h is not None for h in hints), after


async def test_rewrite_needs_an_instruction_and_bad_data_is_refused(
    server: FimlsClient, tmp_path: Path
) -> None:
    uri = doc_uri(tmp_path, "bad.py")
    server.open(uri, GEO)
    selected = types.Range(start=types.Position(9, 0), end=types.Position(12, 0))
    rewrite = titled(await list_actions(server, uri, selected), "Rewrite selection")
    assert rewrite.command is not None
    with pytest.raises(JsonRpcInvalidParams, match="needs an instruction"):
        await server.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command="fimls.rewrite", arguments=rewrite.command.arguments
            ),
        )
    bogus = types.CodeAction(title="x", data={"fimls": 1, "kind": "docstring"})
    with pytest.raises(JsonRpcInvalidParams, match="missing 'uri'"):
        await server.protocol.send_request_async(types.CODE_ACTION_RESOLVE, bogus)


async def test_a_stale_action_is_content_modified(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "stale.py")
    server.open(uri, GEO)
    action = titled(await list_actions(server, uri, whole(types.Position(4, 0))), "Add docstring")
    server.change(uri, 2, "\n", (0, 0), (0, 0))
    with pytest.raises(JsonRpcException) as failure:
        await server.protocol.send_request_async(types.CODE_ACTION_RESOLVE, action)
    assert "changed since the action was listed" in str(failure.value)
    assert getattr(failure.value, "code", None) == -32801


async def test_cancel_mid_resolve_then_complete(launch: Launch, tmp_path: Path) -> None:
    client = await launch(initialization_options={"cache": {"warmup": False}}, progress=True)
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "cancel.ts")
    client.open(uri, CLAMP, "typescript")
    found = await list_actions(client, uri, whole(types.Position(1, 4)))
    explain = titled(found, "Explain `clamp`")
    future = client.protocol.send_request(types.CODE_ACTION_RESOLVE, explain, msg_id=777)
    await asyncio.sleep(2.0)  # the prompt is evaluated, the answer is being written
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=777))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future), 60)
    # progress was shown and ended
    kinds = [getattr(v, "kind", None) or _kind(v) for v in client.progress_values]
    assert kinds[0] == "begin" and kinds[-1] == "end", client.progress_values
    # the next completion is still right
    py = doc_uri(tmp_path, "add.py")
    client.open(py, "def add(a, b):\n    return ")
    result = await client.inline(py, 1, 11)
    assert result.items and "a + b" in str(result.items[0].insert_text)


def _kind(value: Any) -> str | None:
    return value.get("kind") if isinstance(value, dict) else None


async def test_clients_without_resolve_get_a_command(launch: Launch, tmp_path: Path) -> None:
    client = await launch(resolve=False)
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "noresolve.py")
    client.open(uri, GEO)
    found = await list_actions(client, uri, whole(types.Position(11, 4)))
    action = titled(found, "Add docstring for `total_price`")
    assert action.data is None and action.command is not None
    assert action.command.command == "fimls.applyAction"
    result = await asyncio.wait_for(
        client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command=action.command.command, arguments=action.command.arguments
            ),
        ),
        240,
    )
    assert result == {"applied": True}
    actions = (await client.stats())["actions"]
    assert actions["ok"] == 1 and actions["byKind"] == {"docstring": 1}
    assert actions["attempts"] >= 1 and actions["secondsP50"] > 0
    (edit,) = client.applied_edits
    after = apply(GEO, document_edit(edit, uri).edits)
    assert ast.get_docstring(function(after, "total_price"))
