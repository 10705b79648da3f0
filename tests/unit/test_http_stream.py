"""The HTTP client of the remote engine, against a scripted HTTP server on loopback."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lsp_server.http_stream import Cancelled, Connection, Endpoint, HttpError

SECRET = "sk-test-5ecret-value"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers)))
        self._json(200, {"data": [{"id": "m"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.seen.append(("POST", self.path, dict(self.headers)))
        mode = body.get("mode", "stream")
        if mode == "stream":
            self._events([{"choices": [{"text": t}]} for t in body.get("texts", [])])
        elif mode == "drip":  # a chunk every 20 ms until the client goes away
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(500):
                    self._chunk(b'data: {"choices": [{"text": "x"}]}\n\n')
                    time.sleep(0.02)
            except OSError:
                self.server.disconnected.set()
                self.close_connection = True
        elif mode == "status":
            self._json(body["status"], {"error": {"message": "model is loading"}})
        elif mode == "garbage":
            data = b"<html>502 Bad Gateway</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif mode == "silent":
            time.sleep(body.get("seconds", 2))
            self.close_connection = True

    def _json(self, status: int, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events: list[Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            self._chunk(b": keep-alive\n\ndata: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.disconnected = threading.Event()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def connection(port: int, read_timeout: float = 5.0, path: str = "") -> Connection:
    endpoint = Endpoint.parse(
        f"http://127.0.0.1:{port}{path}",
        connect_timeout=2.0,
        read_timeout=read_timeout,
        api_key_env="FIMLS_TEST_KEY",
    )
    return Connection(endpoint)


def test_events_are_read_and_the_connection_is_kept(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIMLS_TEST_KEY", SECRET)
    conn = connection(scripted.server_port, path="/base/")
    first = list(conn.stream("/v1/completions", {"texts": ["a", "b"]}))
    second = list(conn.stream("/v1/completions", {"texts": ["c"]}))
    assert [e["choices"][0]["text"] for e in first] == ["a", "b"]
    assert [e["choices"][0]["text"] for e in second] == ["c"]
    assert conn.get_json("/v1/models") == {"data": [{"id": "m"}]}
    assert conn.connects == 1  # one keep-alive connection for all three
    assert [(m, p) for m, p, _ in scripted.seen] == [
        ("POST", "/base/v1/completions"),
        ("POST", "/base/v1/completions"),
        ("GET", "/base/v1/models"),
    ]
    # the key goes in the header, from the environment, on every request
    assert all(h["Authorization"] == f"Bearer {SECRET}" for _, _, h in scripted.seen)
    conn.close()


def test_cancel_closes_the_stream_and_the_server_sees_it(scripted: Scripted) -> None:
    conn = connection(scripted.server_port)
    cancel = threading.Event()
    got = 0
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        for _ in conn.stream("/v1/completions", {"mode": "drip"}, cancel):
            got += 1
            if got == 3:
                threading.Timer(0.01, cancel.set).start()
    assert time.perf_counter() - started < 2.0
    assert scripted.disconnected.wait(2.0), "the server kept writing to a live connection"
    # the next request opens a new connection and works
    assert [e["choices"][0]["text"] for e in conn.stream("/v1/completions", {"texts": ["z"]})] == [
        "z"
    ]


def test_a_request_cancelled_before_it_starts_sends_nothing(scripted: Scripted) -> None:
    conn = connection(scripted.server_port)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        list(conn.stream("/v1/completions", {"texts": ["a"]}, cancel))
    assert scripted.seen == []


@pytest.mark.parametrize("status", [401, 500, 503])
def test_an_error_status_names_the_server_and_what_it_said(
    scripted: Scripted, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIMLS_TEST_KEY", SECRET)
    conn = connection(scripted.server_port)
    with pytest.raises(HttpError) as caught:
        list(conn.stream("/v1/completions", {"mode": "status", "status": status}))
    assert caught.value.kind == "status" and caught.value.status == status
    text = str(caught.value)
    assert f"127.0.0.1:{scripted.server_port}/v1/completions answered {status}" in text
    assert "model is loading" in text
    assert SECRET not in text


def test_garbage_is_an_error_not_a_crash(scripted: Scripted) -> None:
    conn = connection(scripted.server_port)
    with pytest.raises(HttpError) as caught:
        list(conn.stream("/v1/completions", {"mode": "garbage"}))
    assert caught.value.kind == "garbage"
    assert "not JSON: <html>502 Bad Gateway</html>" in str(caught.value)


def test_a_silent_server_times_out(scripted: Scripted) -> None:
    conn = connection(scripted.server_port, read_timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(HttpError) as caught:
        list(conn.stream("/v1/completions", {"mode": "silent", "seconds": 3}))
    assert caught.value.kind == "timeout"
    assert time.perf_counter() - started < 2.0
    assert "no answer within 0.3 s" in str(caught.value)


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        conn = connection(port)
        with pytest.raises(HttpError) as caught:
            conn.get_json("/v1/models")
    assert caught.value.kind == "connect"
    assert "connection refused" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gpu-box:8080", "is not http://host"),
        ("ftp://gpu-box", "is not http://host"),
        ("http://user:hunter2@gpu-box:8080", "must not carry credentials"),
        ("http://gpu-box:99999", "out of range"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        Endpoint.parse(url, connect_timeout=1, read_timeout=1, api_key_env="K")
    assert "hunter2" not in str(caught.value)


def test_base_url_and_tls_context() -> None:
    plain = Endpoint.parse(
        "http://gpu-box:8080/", connect_timeout=1, read_timeout=1, api_key_env="K"
    )
    assert plain.url == "http://gpu-box:8080" and plain.ssl_context() is None
    secure = Endpoint.parse(
        "https://[::1]/llm", connect_timeout=1, read_timeout=1, api_key_env="K", tls_verify=False
    )
    assert secure.url == "https://[::1]:443/llm"
    context = secure.ssl_context()
    assert context is not None and context.check_hostname is False
    verified = Endpoint.parse("https://gpu-box", connect_timeout=1, read_timeout=1, api_key_env="K")
    context = verified.ssl_context()
    assert context is not None and context.check_hostname is True


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Scripted, Path]]:
    """The scripted server behind TLS, with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = Scripted()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, cert
    server.shutdown()
    server.server_close()


def https(port: int, **options: Any) -> Connection:
    endpoint = Endpoint.parse(
        f"https://127.0.0.1:{port}",
        connect_timeout=2.0,
        read_timeout=5.0,
        api_key_env="FIMLS_TEST_KEY",
        **options,
    )
    return Connection(endpoint)


def test_tls_verifies_the_certificate(tls_server: tuple[Scripted, Path]) -> None:
    server, cert = tls_server
    with pytest.raises(HttpError) as caught:
        https(server.server_port).get_json("/v1/models")
    assert caught.value.kind == "connect"
    assert "TLS failed: CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    # the team's CA (here the certificate itself) makes it trusted
    trusted = https(server.server_port, ca_file=str(cert))
    assert trusted.get_json("/v1/models") == {"data": [{"id": "m"}]}
    events = list(trusted.stream("/v1/completions", {"texts": ["a", "b"]}))
    assert [e["choices"][0]["text"] for e in events] == ["a", "b"]
    # or verification switched off
    unverified = https(server.server_port, tls_verify=False)
    assert unverified.get_json("/v1/models") == {"data": [{"id": "m"}]}
