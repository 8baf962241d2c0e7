"""A local fake OpenAI-compatible chat server for the LLM tests (127.0.0.1 only, bounded lifetime).

Each POST is answered by a handler function given the request (path, headers, JSON body); the server stops
itself after `lifetime` seconds even if a test forgets to, and never serves more than `max_requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any], BaseHTTPRequestHandler], None]


def send_json(handler: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
    """Write a complete JSON response."""
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def chat_reply(content: str) -> dict[str, Any]:
    """An OpenAI chat-completions payload whose assistant message is `content`."""
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


class FakeServer:
    """Serves POSTs with `reply(request, handler)`; records every request (headers included)."""

    def __init__(self, reply: Reply, lifetime: float = 120.0, max_requests: int = 200) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.max_requests = max_requests
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = {"path": self.path, "headers": dict(self.headers.items()),
                           "body": json.loads(self.rfile.read(length) or b"{}")}
                server.requests.append(request)
                if len(server.requests) > server.max_requests:
                    send_json(self, {"error": "too many requests"}, 429)
                    return
                try:
                    server.reply(request, self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (deadline, size cap): that is what some tests want

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True

    def __enter__(self) -> FakeServer:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving (idempotent); trickling handlers see `stopping` and end."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def trickle(server: FakeServer, seconds_per_byte: float, limit: float = 30.0, headers_too: bool = False) -> Reply:
    """A reply that sends its answer one byte at a time, forever (bounded by `limit` and server stop)."""

    def reply(request: dict[str, Any], handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        if headers_too:
            stream = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 10_000
        else:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            handler.wfile.flush()
            stream = b'{"choices": [{"message": {"content": "' + b" " * 10_000_000
        for byte in stream:
            if server.stopping.is_set() or time.monotonic() - started > limit:
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(seconds_per_byte)

    return reply
