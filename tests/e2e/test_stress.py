"""``fimls bench --stress``: three documents typed at once, with cancellations.

Correctness only (timings are the bench's to print): every request answered exactly
once, the newest request of each document served, the server's queue bounded, the
server still completing afterwards and exiting cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsp_server.cli import build_parser
from lsp_server.documents import TextDocument
from lsp_server.measure.bench import DEFAULT_FILE
from lsp_server.measure.stress import (
    INLINE,
    StressResult,
    Typist,
    documents,
    format_stress,
    run_stress,
    write_report,
)
from lsp_server.measure.stress_sources import GO, TYPESCRIPT

REQUESTS = 400
#: Correctness does not need long prompts; short ones keep the test quick on a busy machine
#: (after the burst, the newest request of each document is evaluated from scratch).
SHORT_PROMPTS = {
    "context": {"prefixTokens": 256, "suffixTokens": 64},
    "completion": {"maxTokens": 32},
}

#: Background jobs that can be live beside the user's: the prefetch and the warm-up of a
#: newly opened document (each latest-wins on its own key; the next user job cancels both;
#: the stress closes no document, so no unkeyed forget job runs).
BACKGROUND_KEYS = 2


async def test_every_request_is_answered_once_under_load(tmp_path: Path) -> None:
    with open(tmp_path / "server.log", "wb") as log:
        result: StressResult = await run_stress(
            REQUESTS,
            4.0,
            settings=SHORT_PROMPTS,
            warmup_seconds=1.0,
            server_args=("-v",),
            stderr=log,
            progress=False,
        )
    report = format_stress(result)
    print(report)
    write_report(result, tmp_path / "stress.json")
    summary = json.loads((tmp_path / "stress.json").read_text())["summary"]
    assert summary["inlineRequests"] == REQUESTS and summary["ok"] == result.ok
    assert result.error is None, report
    inline = result.measured(INLINE)
    assert len(inline) == REQUESTS
    # exactly once: nothing twice, nothing missing, no answer without an id
    assert result.answered_twice == 0, report
    assert result.unanswered == [], report
    assert result.without_id == 0, report
    assert result.results + result.cancelled == len(inline), report
    assert result.errors == {}, report
    # cancellation did happen, both ways, and not to everything
    assert result.cancels_sent > 0 and result.cancelled > 0 and result.results > 0
    # latest wins: the last request of each document is answered with a result
    assert len(result.newest) == len(result.documents) == 3
    assert all(result.newest_served), report
    # bounded queue: superseded and cancelled jobs do not stay live; at most one user job
    # per document (latest wins per document) and the background jobs are live at once
    assert 1 <= result.worker["liveMax"] <= len(result.documents) + BACKGROUND_KEYS, report
    # still completing, and a clean exit
    assert result.final_text, report
    assert result.exit_code == 0, report
    # a loose leak guard (the bench prints the drift; the target there is 5 %)
    assert result.rss_drift is not None and result.rss_drift < 25, report
    assert result.ok, report


def test_the_bench_command_takes_the_stress_options() -> None:
    args = build_parser().parse_args(["bench", "--stress", "--requests", "50", "--seconds", "2"])
    assert (args.stress, args.requests, args.seconds) == (True, 50, 2.0)
    args = build_parser().parse_args(["bench"])
    assert (args.stress, args.requests, args.seconds) == (False, 1000, 10.0)


class ChangeLog:
    """Stands in for the peer: applies every didChange to its own copy, as the server does."""

    def __init__(self) -> None:
        self.docs: dict[str, TextDocument] = {}

    def open(self, uri: str, text: str, language_id: str) -> None:
        self.docs[uri] = TextDocument(uri, text, 1, language_id)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        assert method == "textDocument/didChange"
        doc = self.docs[params["textDocument"]["uri"]]
        for change in params["contentChanges"]:
            r = change.get("range")
            start = (r["start"]["line"], r["start"]["character"]) if r else None
            end = (r["end"]["line"], r["end"]["character"]) if r else None
            doc.apply_change(start, end, change["text"], "utf-16")
        doc.version = params["textDocument"]["version"]


def test_the_typed_changes_rebuild_each_file_and_the_revert_restarts_it() -> None:
    sources = {"python": DEFAULT_FILE.read_text(), "typescript": TYPESCRIPT, "go": GO}
    log = ChangeLog()
    for uri, trace in documents():
        typist = Typist(uri, trace)
        typist.open(log)  # type: ignore[arg-type]
        for key in trace.keys:
            line, character = typist.type_key(log)  # type: ignore[arg-type]
            # the cursor is just after what was typed (these files are ASCII: UTF-16 = index)
            assert log.docs[uri].lines[line][:character].endswith(key.text.split("\n")[-1])
        doc = log.docs[uri]
        assert doc.text == typist.doc.text
        assert doc.text.rstrip("\n") == sources[trace.language_id].rstrip("\n")
        typist.type_key(log)  # type: ignore[arg-type]
        assert typist.reverts == 1
        assert doc.version == typist.doc.version == len(trace.keys) + 3
        assert doc.text == typist.doc.text  # the revert, then the first key again
