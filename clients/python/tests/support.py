"""Helpers of the client's tests: the package on the path, real PNG bytes, and a tiny local HTTP
server whose answers a test scripts."""
from __future__ import annotations

import http.server
import json
import os
import struct
import sys
import threading
import zlib
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def png(seed: int, size: int = 24) -> bytes:
    """A valid RGB PNG whose pixels depend on ``seed`` (so each seed has its own SHA-256)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes(((x * 7 + y * 3 + seed * 31) % 256, (seed * 13 + x) % 256, (y * 5 + seed) % 256)) for x in range(size))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


Reply = Tuple[int, Dict[str, str], bytes]


class ScriptedServer:
    """Answers each request with the next scripted reply (the last one repeats) and records what
    it received: method, path, headers and body."""

    def __init__(self, replies: List[Reply]) -> None:
        self.replies = list(replies)
        self.requests: List[Dict[str, object]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
                status, headers, payload = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(status: int, body: object, headers: Optional[Dict[str, str]] = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def env(name: str) -> Optional[str]:
    return os.environ.get(name) or None


Sleeper = Callable[[float], None]
