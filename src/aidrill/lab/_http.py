"""Small JSON-over-HTTP helpers shared by the lab's servers and clients (stdlib only)."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server on loopback that does not print every request."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-response (killed load users, crashed nodes) are
        # normal during a drill; they are not errors of the server.
        pass


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave as two writes; with Nagle's algorithm the second waits for
    # the client's delayed ACK of the first (40 ms on Linux) on every kept-alive reply.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return json.loads(body) if body else {}

    def relay_stream(
        self, status: int, headers: dict[str, str], pieces: Generator[bytes, None, None]
    ) -> None:
        """An upstream's answer passed on as it arrives, chunked; an upstream that breaks
        off mid-answer leaves the caller's answer broken off too (never completed)."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for piece in pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
        except (OSError, http.client.HTTPException):
            pieces.close()  # the upstream's connection is not reused half-read
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class UpstreamPool:
    """Keep-alive connections to one upstream, one per calling thread."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._local = threading.local()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send one request, retrying once on a stale kept-alive connection."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                payload = response.read()
                return response.status, payload, dict(response.getheaders())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
            except Exception:
                self.close()
                raise
        raise AssertionError("unreachable")

    def stream(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Generator[bytes, None, None]]:
        """Send one request and hand its answer on as it arrives, piece by piece (a
        streamed answer's events pass through one by one, not at its end). The caller
        reads the pieces to the end; a connection broken meanwhile raises from them."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
            except Exception:
                self.close()
                raise

        def pieces() -> Generator[bytes, None, None]:
            ended = False
            try:
                while piece := response.read1(65536):
                    yield piece
                ended = True
            finally:
                if not ended:  # broken off, or its reader gave up: never reuse it
                    self.close()

        return response.status, dict(response.getheaders()), pieces()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def get_json(url_host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def post_json(
    url_host: str, port: int, path: str, payload: Any, timeout: float = 30.0
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
    try:
        body = json.dumps(payload).encode()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def exit_when_orphaned(parent: int) -> None:
    """A lab child process (GPU node, registry) leaves when its supervisor is gone."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)
