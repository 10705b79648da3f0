"""Context from other files, seen through ``fimls/prompt`` of a real server.

A workspace folder is indexed with tree-sitter in the background; definitions of the
names used near the cursor (signatures and docstrings, not bodies) and recently edited
snippets of other files go into the prompt, each part switchable by a setting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.lsp_client import FimlsClient
from tests.conftest import MODEL_TIMEOUT, Launch

GEOMETRY = '''\
import math


def circle_area(radius_in_meters):
    """Area of a circle, in square meters."""
    secret_body_marker = math.pi
    return secret_body_marker * radius_in_meters ** 2


class Polygon:
    """A closed shape made of straight sides."""

    def perimeter(self, scale_factor=1.0):
        return sum(self.sides) * scale_factor
'''

MAIN = "from geometry import circle_area, Polygon\n\n\ndef report(r):\n    a = \n"
CURSOR = (4, 8)


def text_of(prompt: dict[str, Any]) -> str:
    return "".join(segment["text"] for segment in prompt["segments"])


def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "geometry.py").write_text(GEOMETRY)
    (root / "main.py").write_text(MAIN)
    return root


async def start(launch: Launch, root: Path, settings: dict[str, Any] | None = None) -> FimlsClient:
    client = await launch(root_uri=root.as_uri(), initialization_options=settings)
    assert (await client.wait_model(MODEL_TIMEOUT))["state"] == "ready"
    assert (await client.wait_index())["done"]
    return client


async def prompt_at_cursor(client: FimlsClient, root: Path, text: str = MAIN) -> str:
    uri = (root / "main.py").as_uri()
    client.open(uri, text)
    return text_of(await client.prompt(uri, *CURSOR))


async def test_definitions_from_the_workspace_are_in_the_prompt(
    launch: Launch, tmp_path: Path
) -> None:
    root = workspace(tmp_path)
    client = await start(launch, root)
    index = (await client.stats())["index"]
    assert index["files"] >= 2 and index["definitions"] >= 3
    text = await prompt_at_cursor(client, root)
    assert "geometry.py" in text
    assert "def circle_area(radius_in_meters):" in text
    assert "Area of a circle, in square meters." in text
    assert "class Polygon:" in text
    assert "secret_body_marker" not in text  # signatures and docstrings, not bodies
    # the context comes first, the file being edited last
    assert text.index("circle_area(radius_in_meters)") < text.index("def report(r):")
    result = await client.inline((root / "main.py").as_uri(), *CURSOR)
    assert result.items and str(result.items[0].insert_text).strip()


async def test_cross_file_context_can_be_switched_off(launch: Launch, tmp_path: Path) -> None:
    root = workspace(tmp_path)
    client = await start(launch, root, {"context": {"crossFile": False}})
    text = await prompt_at_cursor(client, root)
    assert "radius_in_meters" not in text
    assert "def report(r):" in text


async def test_repository_format_uses_the_models_file_separators(
    launch: Launch, tmp_path: Path
) -> None:
    root = workspace(tmp_path)
    client = await start(launch, root, {"context": {"format": "repo"}})
    uri = (root / "main.py").as_uri()
    client.open(uri, MAIN)
    segments = (await client.prompt(uri, *CURSOR))["segments"]
    specials = [s["text"] for s in segments if s["special"]]
    assert specials[0] == "<|repo_name|>"
    assert "<|file_sep|>" in specials
    plain_text = [s["text"] for s in segments if not s["special"]]
    assert plain_text[0] == "project\n"
    assert any(t.startswith("geometry.py\n") and "circle_area" in t for t in plain_text)
    assert any(t == "main.py\n" for t in plain_text)


async def test_open_documents_are_indexed_as_they_change(launch: Launch, tmp_path: Path) -> None:
    root = workspace(tmp_path)
    client = await start(launch, root, {"context": {"recent": False}})  # definitions only
    lib = (root / "geometry.py").as_uri()
    client.open(lib, GEOMETRY)
    start_col = len("def circle_area(")
    client.change(lib, 2, "diameter_cm", (3, start_col), (3, start_col + len("radius_in_meters")))
    # a request in another document has the edited one re-indexed in the background
    await prompt_at_cursor(client, root)
    assert (await client.wait_index())["done"]
    text = text_of(await client.prompt((root / "main.py").as_uri(), *CURSOR))
    assert "def circle_area(diameter_cm):" in text
    assert "radius_in_meters" not in text


async def test_recent_edits_in_other_files_are_shown(launch: Launch, tmp_path: Path) -> None:
    root = workspace(tmp_path)
    client = await start(launch, root, {"context": {"crossFile": False}})
    notes = (root / "notes.py").as_uri()
    client.open(notes, "UNIQUE_RECENT_CONSTANT = 42\n")
    client.change(notes, 2, "43", (0, 25), (0, 27))
    assert "UNIQUE_RECENT_CONSTANT = 43" in await prompt_at_cursor(client, root)
    off = await start(launch, root, {"context": {"crossFile": False, "recent": False}})
    off.open(notes, "UNIQUE_RECENT_CONSTANT = 42\n")
    off.change(notes, 2, "43", (0, 25), (0, 27))
    assert "UNIQUE_RECENT_CONSTANT" not in await prompt_at_cursor(off, root)


async def test_ignored_and_binary_files_are_not_indexed(launch: Launch, tmp_path: Path) -> None:
    root = workspace(tmp_path)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "generated.py").write_text("def ignored_helper(zzz_param):\n    pass\n")
    (root / "blob.py").write_bytes(b"def binary_helper(q):\x00\x01\x02\n")
    client = await start(launch, root)
    text = await prompt_at_cursor(
        client, root, "from x import ignored_helper, binary_helper\n\n\ndef report(r):\n    a = \n"
    )
    assert "zzz_param" not in text
    assert "binary_helper(q)" not in text
    assert "def circle_area" not in text  # not referenced here


async def test_prompt_for_an_unknown_document_is_invalid_params(server: FimlsClient) -> None:
    with pytest.raises(JsonRpcInvalidParams):
        await server.prompt("file:///nowhere/missing.py", 0, 0)
    assert (await server.stats())["state"] == "ready"


async def test_prompt_says_where_no_automatic_completion_is_made(
    server: FimlsClient, tmp_path: Path
) -> None:
    uri = (tmp_path / "strings.py").as_uri()
    server.open(uri, 'x = "hello world"  # a note\ny = \n')
    in_string = await server.prompt(uri, 0, 8)
    assert in_string["mode"] == "none" and in_string["skipped"] == "string"
    in_comment = await server.prompt(uri, 0, 24)
    assert in_comment["mode"] == "none" and in_comment["skipped"] == "comment"
    code = await server.prompt(uri, 1, 4)
    assert code["mode"] == "single-line" and code["skipped"] is None
    assert not (await server.inline(uri, 0, 8)).items


async def test_added_and_removed_workspace_folders_are_indexed_and_forgotten(
    launch: Launch, tmp_path: Path
) -> None:
    root = workspace(tmp_path)
    client = await launch()  # no workspace folder yet
    assert (await client.wait_model(MODEL_TIMEOUT))["state"] == "ready"
    folder = types.WorkspaceFolder(uri=root.as_uri(), name="project")

    def folders_changed(added: list[Any], removed: list[Any]) -> None:
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(added=added, removed=removed)
            )
        )

    folders_changed([folder], [])
    assert (await client.wait_index())["definitions"] >= 3
    assert "def circle_area(radius_in_meters):" in await prompt_at_cursor(client, root)
    folders_changed([], [folder])
    assert (await client.wait_index())["files"] <= 1  # main.py, open
    assert "radius_in_meters" not in await prompt_at_cursor(client, root)


async def test_switching_cross_file_context_on_indexes_the_workspace(
    launch: Launch, tmp_path: Path
) -> None:
    root = workspace(tmp_path)
    client = await start(launch, root, {"context": {"crossFile": False}})
    assert (await client.stats())["index"]["definitions"] == 0
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"fimls": {"context": {"crossFile": True}}})
    )
    assert (await client.wait_index())["definitions"] >= 3
    assert "def circle_area(radius_in_meters):" in await prompt_at_cursor(client, root)
