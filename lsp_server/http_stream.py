"""HTTP/1.1 to an inference server: JSON requests, streamed answers, cancellation.

Standard library only (``http.client``, ``ssl``). One keep-alive connection is reused
while answers are read to their end; a cancelled request closes its connection, which is
how servers learn to stop generating (llama-server, vLLM and llama-cpp-python's server
all abort a request whose client went away). Every failure becomes an :class:`HttpError`
with a kind (``connect``, ``timeout``, ``status``, ``garbage``, ``closed``) and a message
that names the server and never the API key.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

#: Longest line read from a server (an SSE event's data) and longest JSON body.
MAX_LINE = 4 << 20
MAX_BODY = 16 << 20
#: How often a running request looks at its cancel flag (it then closes the connection).
CANCEL_POLL_S = 0.005


class HttpError(Exception):
    """A request that got no usable answer; ``kind`` says what went wrong."""

    def __init__(self, kind: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.kind = kind  # connect | timeout | status | garbage | closed
        self.status = status


class Cancelled(Exception):
    """The caller's cancel flag was set while the request ran; the connection is closed."""


@dataclass(frozen=True)
class Endpoint:
    """Where a server is and how to reach it (the API key is read from the environment)."""

    scheme: str
    host: str
    port: int
    base_path: str  # without a trailing slash
    connect_timeout: float
    read_timeout: float
    api_key_env: str
    tls_verify: bool = True
    ca_file: str | None = None

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        api_key_env: str,
        tls_verify: bool = True,
        ca_file: str | None = None,
    ) -> Endpoint:
        """An endpoint from a base URL; ValueError for one that is not http(s)://host[:port]."""
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"engine URL {url!r} is not http://host[:port] or https://...")
        if parts.username or parts.password:
            raise ValueError(
                "the engine URL must not carry credentials: put the API key in the "
                f"environment variable {api_key_env}"
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"engine URL {url!r}: {exc}") from None
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            base_path=parts.path.rstrip("/"),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            api_key_env=api_key_env,
            tls_verify=tls_verify,
            ca_file=ca_file,
        )

    @property
    def url(self) -> str:
        """The base URL, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"

    def headers(self) -> dict[str, str]:
        """Request headers; the API key comes from the environment at each request."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, */*"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for https (None for http)."""
        if self.scheme != "https":
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class Connection:
    """One keep-alive HTTP connection to a server, used by one thread at a time."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._conn: http.client.HTTPConnection | None = None
        self._context = endpoint.ssl_context()
        self.connects = 0  # new connections opened (each costs a handshake)

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def get_json(self, path: str, cancel: threading.Event | None = None) -> Any:
        """GET a JSON document."""
        return self._json("GET", path, None, cancel)

    def post_json(
        self, path: str, body: dict[str, Any], cancel: threading.Event | None = None
    ) -> Any:
        """POST JSON and read a JSON answer."""
        return self._json("POST", path, body, cancel)

    def _json(
        self, method: str, path: str, body: dict[str, Any] | None, cancel: threading.Event | None
    ) -> Any:
        with _Watch(self, cancel):
            response = self._send(method, path, body, cancel)
            data = self._read_body(response, cancel)
        return _parse_json(data, self.endpoint.url + path)

    def stream(
        self, path: str, body: dict[str, Any], cancel: threading.Event | None = None
    ) -> Generator[Any, None, None]:
        """POST JSON and yield the answer's server-sent events as JSON values.

        An answer that is plain JSON (a server that does not stream) is yielded whole.
        Raises Cancelled when ``cancel`` is set, HttpError for anything unusable.
        """
        with _Watch(self, cancel):
            response = self._send("POST", path, body, cancel)
            kind = response.getheader("Content-Type", "") or ""
            if "text/event-stream" not in kind:
                yield _parse_json(self._read_body(response, cancel), self.endpoint.url + path)
                return
            where = self.endpoint.url + path
            finished = False
            try:
                for data in _events(response, where):
                    if data == "[DONE]":
                        finished = True
                        break
                    yield _parse_json(data.encode("utf-8"), where)
                else:
                    finished = True
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if cancel is not None and cancel.is_set():
                    raise Cancelled() from None
                raise HttpError("closed", f"{where}: the answer broke off ({exc})") from None
            finally:
                if not finished:
                    self.close()  # a stream left unread: the server stops on disconnect
            if cancel is not None and cancel.is_set():
                self.close()
                raise Cancelled()
            _drain(response, self)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        cancel: threading.Event | None,
    ) -> http.client.HTTPResponse:
        """Send a request on the kept connection (opening one if needed); return its response."""
        endpoint = self.endpoint
        where = endpoint.url + path
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._connect(where)
            try:
                conn.request(method, endpoint.base_path + path, payload, endpoint.headers())
                response = conn.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected, BrokenPipeError) as exc:
                self.close()
                if cancel is not None and cancel.is_set():
                    raise Cancelled() from None
                if reused and attempt == 0:
                    continue  # the server closed the idle kept connection: open a new one
                raise HttpError("connect", f"{where}: {_reason(exc)}") from None
            except TimeoutError:
                self.close()
                if cancel is not None and cancel.is_set():
                    raise Cancelled() from None
                raise HttpError(
                    "timeout", f"{where}: no answer within {endpoint.read_timeout:g} s"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if cancel is not None and cancel.is_set():
                    raise Cancelled() from None
                raise HttpError("connect", f"{where}: {_reason(exc)}") from None
            if response.status >= 400:
                text = self._read_body(response, cancel, limit=4096)
                raise HttpError(
                    "status",
                    f"{where} answered {response.status} {response.reason}: {_snippet(text)}",
                    response.status,
                )
            return response
        raise AssertionError("unreachable")

    def _connect(self, where: str) -> http.client.HTTPConnection:
        if self._conn is not None:
            return self._conn
        endpoint = self.endpoint
        conn: http.client.HTTPConnection
        if self._context is not None:
            conn = http.client.HTTPSConnection(
                endpoint.host,
                endpoint.port,
                timeout=endpoint.connect_timeout,
                context=self._context,
            )
        else:
            conn = http.client.HTTPConnection(
                endpoint.host, endpoint.port, timeout=endpoint.connect_timeout
            )
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise HttpError(
                "connect", f"{where}: no connection within {endpoint.connect_timeout:g} s"
            ) from None
        except ssl.SSLError as exc:
            conn.close()
            raise HttpError("connect", f"{where}: TLS failed: {exc.reason or exc}") from None
        except OSError as exc:
            conn.close()
            raise HttpError("connect", f"{where}: {_reason(exc)}") from None
        assert conn.sock is not None
        conn.sock.settimeout(endpoint.read_timeout)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        self.connects += 1
        return conn

    def _read_body(
        self,
        response: http.client.HTTPResponse,
        cancel: threading.Event | None,
        limit: int = MAX_BODY,
    ) -> bytes:
        where = self.endpoint.url
        try:
            data = response.read(limit + 1)
        except TimeoutError:
            self.close()
            raise HttpError("timeout", f"{where}: the answer stalled") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if cancel is not None and cancel.is_set():
                raise Cancelled() from None
            raise HttpError("closed", f"{where}: the answer broke off ({exc})") from None
        if not response.isclosed() or response.getheader("Connection", "").lower() == "close":
            self.close()  # more than we read, or the server's wish: no reuse
        return data[:limit]

    def socket(self) -> socket.socket | None:
        """The live socket, for cancellation."""
        return self._conn.sock if self._conn is not None else None


class _Watch:
    """While a request runs, close its connection as soon as the cancel flag is set."""

    def __init__(self, owner: Connection, cancel: threading.Event | None) -> None:
        self._owner = owner
        self._cancel = cancel
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Watch:
        if self._cancel is not None:
            if self._cancel.is_set():
                raise Cancelled()
            self._thread = threading.Thread(target=self._run, name="fimls-http-cancel", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _run(self) -> None:
        cancel = self._cancel
        assert cancel is not None
        while not self._done.is_set():
            if cancel.wait(CANCEL_POLL_S):
                sock = self._owner.socket()
                if sock is not None and not self._done.is_set():
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return


def _events(response: http.client.HTTPResponse, where: str) -> Iterator[str]:
    """The data of each server-sent event (``data:`` lines joined; other fields ignored)."""
    data: list[str] = []
    while True:
        raw = response.readline(MAX_LINE + 1)
        if len(raw) > MAX_LINE:
            raise HttpError("garbage", f"{where}: an event line longer than {MAX_LINE} bytes")
        if not raw:
            if data:
                yield "\n".join(data)
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive ping)
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif field == "error":  # llama-server reports a failed stream this way
            raise HttpError("status", f"{where}: error in the answer: {_snippet(value.encode())}")


def _drain(response: http.client.HTTPResponse, owner: Connection) -> None:
    """Read what is left of a finished stream so that the connection can be reused."""
    try:
        for _ in range(64):
            if not response.readline(MAX_LINE):
                return
    except (OSError, http.client.HTTPException):
        pass
    owner.close()


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise HttpError("garbage", f"{where}: the answer is not JSON: {_snippet(data)}") from None


def _snippet(data: bytes, size: int = 160) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    closed = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
    if isinstance(exc, (*closed, http.client.RemoteDisconnected)):
        return "the server closed the connection"
    return str(exc) or type(exc).__name__
