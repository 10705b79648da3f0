"""textDocument/completion for clients without inline completion."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from tests.conftest import Launch, doc_uri


async def test_fallback_completion_carries_the_whole_suggestion(
    launch: Launch, tmp_path: Path
) -> None:
    client = await launch(handshake=False)
    result = await client.handshake(inline=False)
    assert result.capabilities.completion_provider is not None
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "fallback.py")
    client.open(uri, "def add(a, b):\n    return ")
    position = types.Position(line=1, character=11)
    completions = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position
        )
    )
    assert isinstance(completions, types.CompletionList)
    assert len(completions.items) == 1
    item = completions.items[0]
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.range == types.Range(start=position, end=position)
    assert "a + b" in item.text_edit.new_text
    assert item.label.strip() and "\n" not in item.label


async def test_fallback_can_be_turned_off(launch: Launch) -> None:
    client = await launch(handshake=False)
    result = await client.handshake(
        inline=False, initialization_options={"completion": {"fallback": "never"}}
    )
    assert result.capabilities.completion_provider is None
    assert result.capabilities.inline_completion_provider is not None
