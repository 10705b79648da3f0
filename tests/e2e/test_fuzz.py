"""Protocol fuzzing: thousands of malformed and hostile messages over stdio.

Hypothesis builds batches of messages (requests and notifications with wrong types,
missing fields, hostile positions and ranges, unknown methods, broken JSON, invalid
UTF-8, bodies that are not objects, bad Content-Length headers, deep nesting), sends
each batch to one ``fimls --stdio`` with the real model, and checks after every batch:
each request got exactly one answer (a result, or an error with a JSON-RPC code), each
body that was no message got exactly one error with id null, notifications got none, and
the server still answers. At the end a normal completion must still work.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.rawlsp import RawServer

#: Every code an answer may carry: JSON-RPC's and LSP's.
KNOWN_CODES = {-32700, -32600, -32601, -32602, -32603, -32002, -32800, -32801, -32802, -32803}

DOCS = {
    "file:///fuzz/a.py": (
        "python",
        "import os\n\ndef add(a, b):\n    return \n\nclass K:\n    x = 1\n",
    ),
    "file:///fuzz/b.ts": ("typescript", "function twice(n: number) {\n  return \n}\n"),
    "file:///fuzz/emoji.py": ("python", 's = "😀😀 ok"\nprint(s)\n'),
    "file:///fuzz/notes.xyz": ("klingon", "Qapla'\n"),
}
URIS = [*DOCS, "file:///fuzz/never-opened.py", "untitled:Untitled-1", "", "not a uri", "file://"]
METHODS = [
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "textDocument/codeAction",
    "codeAction/resolve",
    "workspace/executeCommand",
    "fimls/stats",
    "fimls/prompt",
    "initialize",
    "textDocument/hover",
    "fimls/unknown",
    "$/unknownRequest",
    "",
]
NOTIFICATIONS = [
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "textDocument/didSave",
    "workspace/didChangeConfiguration",
    "$/cancelRequest",
    "$/setTrace",
    "initialized",
    "fimls/unknownNotification",
    "$/unknownNotification",
]

# -- JSON values, hostile ones included --------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "😀", "\u2028", "é" * 40, "\r\n\r\n"]),
)
hostile_int = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([-1, -(2**31), 2**31 - 1, 2**31, 2**32, 2**63, -(2**63), 10**30]),
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    hostile_int,
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_value = st.recursive(
    leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def position(line: Any, character: Any) -> dict[str, Any]:
    return {"line": line, "character": character}


@st.composite
def positions(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly plausible positions, some negative, past the end or inside a surrogate pair."""
    return position(
        draw(st.one_of(st.integers(0, 8), hostile_int)),
        draw(st.one_of(st.integers(0, 12), st.just(1), st.just(3), hostile_int)),
    )


@st.composite
def valid_params(draw: st.DrawFn, method: str) -> Any:
    uri = draw(st.sampled_from(URIS))
    doc = {"uri": uri}
    if method in ("textDocument/inlineCompletion", "textDocument/completion", "fimls/prompt"):
        params: dict[str, Any] = {"textDocument": doc, "position": draw(positions())}
        if method == "textDocument/inlineCompletion":
            params["context"] = {"triggerKind": draw(st.sampled_from([1, 2, 0, 3]))}
        return params
    if method == "textDocument/codeAction":
        return {
            "textDocument": doc,
            "range": {"start": draw(positions()), "end": draw(positions())},
            "context": {"diagnostics": [], "only": draw(st.sampled_from([None, ["quickfix"]]))},
        }
    if method == "codeAction/resolve":
        return {"title": "Add docstring", "data": draw(json_value)}
    if method == "workspace/executeCommand":
        command = draw(st.sampled_from(["fimls.accepted", "fimls.rewrite", "fimls.applyAction"]))
        return {"command": command, "arguments": draw(st.lists(json_value, max_size=3))}
    if method == "initialize":
        return {"processId": None, "rootUri": None, "capabilities": {}}
    return draw(json_value)


@st.composite
def notification_params(draw: st.DrawFn, method: str) -> Any:
    uri = draw(st.sampled_from(URIS))
    if method == "textDocument/didOpen":
        size = draw(st.sampled_from([0, 10, 1000, 200_000]))
        text = draw(hostile_text) * (size // 10 + 1) if size else ""
        language = draw(st.sampled_from(["python", "typescript", "", "klingon", "rust"]))
        version = draw(hostile_int)
        return {
            "textDocument": {"uri": uri, "languageId": language, "version": version, "text": text}
        }
    if method == "textDocument/didChange":
        changes = draw(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {
                            "range": st.fixed_dictionaries(
                                {"start": positions(), "end": positions()}
                            ),
                            "text": hostile_text,
                        }
                    ),
                    st.fixed_dictionaries({"text": hostile_text}),
                ),
                max_size=3,
            )
        )
        version = draw(hostile_int)
        return {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}
    if method in ("textDocument/didClose", "textDocument/didSave"):
        return {"textDocument": {"uri": uri}}
    if method == "workspace/didChangeConfiguration":
        group = draw(st.sampled_from(["completion", "context", "cache"]))
        key = draw(st.sampled_from(["enable", "maxTokens", "maxLines", "prefixTokens", "x"]))
        return {"settings": {"fimls": {group: {key: draw(json_value)}, "logLevel": "warning"}}}
    if method == "$/cancelRequest":
        return {"id": draw(st.one_of(hostile_int, hostile_text, json_value))}
    return draw(json_value)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one member replaced by a hostile value, dropped, or left alone."""
    if not isinstance(value, dict) or not value:
        return value
    choice = draw(st.integers(0, 3))
    out = dict(value)
    key = draw(st.sampled_from(sorted(out)))
    if choice == 0:
        out[key] = draw(json_value)
    elif choice == 1:
        del out[key]
    elif choice == 2:
        out[key] = draw(mutated(out[key]))
    return out


def deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# -- messages and what each must get --------------------------------------------------


@dataclass
class Send:
    """Bytes to send, and what they must be answered with."""

    data: bytes
    request_id: int | str | None = None  # one answer with this id
    null_errors: int = 0  # answers with id null
    kind: str = ""


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


@st.composite
def request(draw: st.DrawFn, ids: itertools.count[int]) -> Send:
    method = draw(st.sampled_from(METHODS))
    params = draw(mutated(draw(valid_params(method))))
    msg_id = next(ids)
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if draw(st.booleans()) or params is not None:
        message["params"] = params
    if draw(st.integers(0, 9)) == 0:
        message["id"] = str(msg_id)
        return Send(frame(encode(message)), str(msg_id), 0, method)
    return Send(frame(encode(message)), msg_id, 0, method)


@st.composite
def notification(draw: st.DrawFn) -> Send:
    method = draw(st.sampled_from(NOTIFICATIONS))
    params = draw(mutated(draw(notification_params(method))))
    return Send(frame(encode({"jsonrpc": "2.0", "method": method, "params": params})), kind=method)


NOTE = encode({"jsonrpc": "2.0", "method": "fimls/fuzzNote", "params": {"n": 1}})


@st.composite
def broken(draw: st.DrawFn, ids: itertools.count[int]) -> Send:
    """Bodies and frames that are no well-formed message."""
    kind = draw(
        st.sampled_from(
            [
                "not json",
                "truncated json",
                "invalid utf-8",
                "not an object",
                "no jsonrpc",
                "wrong jsonrpc",
                "deep nesting",
                "short length",
                "long length",
                "overrun into a header",
                "swallowing length",
                "bad length header",
                "huge length",
                "zero length",
                "garbage between frames",
            ]
        )
    )
    if kind == "not json":
        body = draw(st.binary(min_size=1, max_size=40).filter(lambda b: b.strip()[:1] not in b"{["))
        try:
            json.loads(body)
            return Send(frame(body), null_errors=1, kind="not an object")
        except ValueError:
            return Send(frame(body), null_errors=1, kind=kind)
    if kind == "truncated json":
        body = encode({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"a": [1, 2]}})
        cut = draw(st.integers(1, len(body) - 1))
        return Send(frame(body[:cut]), null_errors=1, kind=kind)
    if kind == "invalid utf-8":
        msg_id = next(ids)
        text = f'{{"jsonrpc": "2.0", "id": {msg_id}, "method": "fimls/prompt", "params": '
        body = text.encode() + b'{"textDocument": {"uri": "\xff\xfe"}, "position": 7}}'
        return Send(frame(body), msg_id, 0, kind)
    if kind == "not an object":
        value = draw(
            st.one_of(st.lists(json_value, max_size=3), hostile_int, hostile_text, st.none())
        )
        return Send(frame(json.dumps(value).encode()), null_errors=1, kind=kind)
    if kind == "no jsonrpc":
        msg_id = next(ids)
        return Send(frame(encode({"id": msg_id, "method": "fimls/stats"})), msg_id, 0, kind)
    if kind == "wrong jsonrpc":
        msg_id = next(ids)
        version = draw(st.sampled_from(["1.0", "2", 2.0, None]))
        body = encode({"jsonrpc": version, "id": msg_id, "method": "fimls/stats"})
        return Send(frame(body), msg_id, 0, kind)
    if kind == "deep nesting":
        msg_id = next(ids)
        depth = draw(st.sampled_from([50, 500, 5_000, 100_000]))
        body = (
            encode(
                {"jsonrpc": "2.0", "id": msg_id, "method": "fimls/prompt", "params": deep(depth)}
            )
            if depth < 900
            else (
                f'{{"jsonrpc": "2.0", "id": {msg_id}, "method": "fimls/prompt", "params": '
                + "[" * depth
                + "0"
                + "]" * depth
                + "}"
            ).encode()
        )
        return Send(frame(body), msg_id, 0, kind)
    if kind == "short length":
        cut = draw(st.integers(1, len(NOTE) - 1))
        return Send(b"Content-Length: %d\r\n\r\n" % cut + NOTE, null_errors=1, kind=kind)
    if kind == "long length":
        extra = draw(st.binary(min_size=1, max_size=20).filter(lambda b: b.strip() != b""))
        data = b"Content-Length: %d\r\n\r\n" % (len(NOTE) + len(extra)) + NOTE + extra
        # the message is read, the extra bytes are skipped
        return Send(data, kind=kind)
    if kind == "overrun into a header":
        # the declared length runs into the next frame's header: reading goes on there
        msg_id = next(ids)
        following = frame(encode({"jsonrpc": "2.0", "id": msg_id, "method": "fimls/stats"}))
        overrun = draw(st.integers(1, 30))
        data = b"Content-Length: %d\r\n\r\n" % (len(NOTE) + overrun) + NOTE + following
        return Send(data, msg_id, 0, kind)
    if kind == "swallowing length":
        # the declared length covers the next frame too: the server reads on from its header
        msg_id = next(ids)
        following = frame(encode({"jsonrpc": "2.0", "id": msg_id, "method": "fimls/stats"}))
        data = b"Content-Length: %d\r\n\r\n" % (len(NOTE) + len(following)) + NOTE + following
        return Send(data, msg_id, 0, kind)
    if kind == "bad length header":
        header = draw(
            st.sampled_from(
                [b"Content-Length: -5", b"Content-Length: abc", b"Content-Lenght: 12", b"X: 1"]
            )
        )
        return Send(header + b"\r\n\r\n" + NOTE, kind=kind)
    if kind == "huge length":
        return Send(b"Content-Length: 99999999999999999\r\n\r\n" + NOTE, kind=kind)
    if kind == "zero length":
        return Send(b"Content-Length: 0\r\n\r\n", kind=kind)
    garbage = draw(st.binary(max_size=60).filter(lambda b: b"ength" not in b.lower()))
    return Send(garbage + b"\r\n", kind=kind)


def messages(ids: itertools.count[int]) -> st.SearchStrategy[list[Send]]:
    one = st.one_of(request(ids), request(ids), notification(), notification(), broken(ids))
    return st.lists(one, min_size=10, max_size=40)


# -- the server ----------------------------------------------------------------------


@dataclass
class Tally:
    messages: int = 0
    requests: int = 0
    null_errors: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[RawServer, Path]]:
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    server = await RawServer.start("--log-file", str(log))
    await server.initialize(
        {"textDocument": {"inlineCompletion": {}}, "general": {"positionEncodings": ["utf-16"]}}
    )
    await server.wait_ready()
    yield server, log
    assert server.proc.returncode is None, "the server died"
    assert server.answered_twice == [], server.answered_twice[:3]
    assert await server.close() == 0


def open_documents(server: RawServer) -> None:
    for uri, (language, text) in DOCS.items():
        server.open(uri, text, language)


async def still_completes(server: RawServer) -> None:
    server.notify("workspace/didChangeConfiguration", {"settings": {"fimls": {}}})
    open_documents(server)
    reply = await server.call(
        "textDocument/inlineCompletion", server.inline_params("file:///fuzz/a.py", 3, 11), 120
    )
    items = reply["result"]["items"]
    assert items and items[0]["insertText"].strip(), reply


TALLY = Tally()
IDS = itertools.count(1_000_000)


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    # no shrinking: a failing batch is reported as it was (shrinking would wait out the
    # answer timeouts again and again)
    phases=[Phase.explicit, Phase.generate],
)
@given(batch=messages(IDS))
async def test_fuzzed_messages_are_each_answered_once(
    fuzzed: tuple[RawServer, Path], batch: list[Send]
) -> None:
    server, _ = fuzzed
    if TALLY.messages == 0:
        open_documents(server)
    nulls_before = len(server.without_id)
    for send in batch:
        server.send_bytes(send.data)
        TALLY.messages += 1
        TALLY.kinds[send.kind] = TALLY.kinds.get(send.kind, 0) + 1
    sentinel = server.request("fimls/stats")
    answer = await server.response(sentinel, 60)
    assert "result" in answer, answer
    expected = [s.request_id for s in batch if s.request_id is not None]
    for msg_id in expected:
        try:
            reply = await server.response(msg_id, 120)
        except TimeoutError:
            sent = next(s for s in batch if s.request_id == msg_id)
            raise AssertionError(f"no answer to {sent.kind}: {sent.data[:600]!r}") from None
        assert ("result" in reply) != ("error" in reply), reply
        if "error" in reply:
            assert reply["error"]["code"] in KNOWN_CODES, reply
            assert reply["error"]["message"], reply
    TALLY.requests += len(expected)
    nulls = server.without_id[nulls_before:]
    assert len(nulls) == sum(s.null_errors for s in batch), (nulls, [s.kind for s in batch])
    assert all(n["error"]["code"] in (-32700, -32600) for n in nulls), nulls
    TALLY.null_errors += len(nulls)
    assert server.answered_twice == [], server.answered_twice[:3]
    assert server.missing_id == [], server.missing_id[:3]  # JSON-RPC wants "id": null
    assert server.proc.returncode is None, "the server died"


async def test_after_the_fuzzing_a_completion_still_works(fuzzed: tuple[RawServer, Path]) -> None:
    server, log = fuzzed
    if TALLY.messages == 0:
        pytest.skip("the fuzzing test did not run (deselected)")
    assert TALLY.messages >= 3000, TALLY
    await still_completes(server)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.index("Traceback") - 300 :][:4000]
    print(f"fuzz: {TALLY.messages} messages, {TALLY.requests} requests, kinds {TALLY.kinds}")


# -- the large ones, once each ----------------------------------------------------------


async def test_a_10_mb_document(fuzzed: tuple[RawServer, Path]) -> None:
    server, _ = fuzzed
    uri = "file:///fuzz/big.py"
    text = "x = 1\n" * (10 * 1024 * 1024 // 6) + "def add(a, b):\n    return \n"
    server.open(uri, text)
    last = text.count("\n") - 1
    server.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [
                {"range": {"start": position(0, 0), "end": position(0, 0)}, "text": "# top\n"}
            ],
        },
    )
    reply = await server.call(
        "textDocument/inlineCompletion", server.inline_params(uri, last + 1, 11), 120
    )
    assert "result" in reply, reply
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    await still_completes(server)


async def test_invalid_utf8_document(fuzzed: tuple[RawServer, Path]) -> None:
    server, _ = fuzzed
    uri = "file:///fuzz/latin1.py"
    head = b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": '
    doc = b'{"uri": "%s", "languageId": "python", "version": 1, "text": ' % uri.encode()
    text = b"\"s = 'caf\xe9'\\ndef add(a, b):\\n    return \\n\"}}}"
    server.send_bytes(frame(head + doc + text))
    reply = await server.call(
        "textDocument/inlineCompletion", server.inline_params(uri, 2, 11), 120
    )
    assert "result" in reply, reply
    prompt = await server.call("fimls/prompt", server.inline_params(uri, 2, 11))
    shown = "".join(s["text"] for s in prompt["result"]["segments"])
    assert "caf\ufffd" in shown, shown


@pytest.mark.parametrize("msg_id", [True, 1.5, None, {"a": 1}, [1], -7, "", "x" * 1000])
async def test_odd_request_ids(fuzzed: tuple[RawServer, Path], msg_id: Any) -> None:
    server, _ = fuzzed
    before = len(server.without_id)
    seen = set(server.responses)
    server.send({"jsonrpc": "2.0", "id": msg_id, "method": "fimls/stats"})
    sentinel = await server.call("fimls/stats")
    assert "result" in sentinel
    new = [k for k in server.responses if k not in seen and k != sentinel["id"]]
    nulls = server.without_id[before:]
    assert server.missing_id == []
    if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
        assert new == [msg_id] and nulls == []
        assert "result" in server.responses[msg_id]
    else:  # no id LSP allows: Invalid Request, with "id": null
        assert new == [] and len(nulls) == 1, (new, nulls)
        assert nulls[0]["error"]["code"] == -32600
