"""Oversized requests against a real server (uvicorn with httptools, as deployed): what
the server itself accepts, and what the app refuses. httptools sets no limit on header
size (a 30 MB header is read whole), so the app answers 431 above 16 KiB of headers and
a proxy in front must bound what the server buffers (docs/security.md)."""

from __future__ import annotations

import socket
import time

import pytest

from service.http.security import MAX_HEADER_BYTES
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")


def raw_request(base_url: str, head: bytes, timeout: float = 10.0) -> bytes:
    """Send one request as bytes (Connection: close); the whole answer (b"" if the server
    closed without one)."""
    host, port = base_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(head)
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def get(path: str, *headers: bytes) -> bytes:
    lines = [b"GET " + path.encode() + b" HTTP/1.1", b"Host: test", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_headers_are_bounded_by_the_app_and_the_server_keeps_serving(settings):
    with live_server(settings) as server:
        normal = raw_request(server.base_url, get("/api/cart", b"Cookie: " + b"a=" + b"x" * 8000))
        assert normal.startswith(b"HTTP/1.1 200")

        over = raw_request(server.base_url, get("/api/cart", b"X-Padding: " + b"x" * (MAX_HEADER_BYTES + 1)))
        assert over.startswith(b"HTTP/1.1 431") and b"application/problem+json" in over
        assert b"request-header-fields-too-large" in over

        many = raw_request(server.base_url, get("/api/cart", *(b"X-H%d: %s" % (i, b"y" * 100) for i in range(400))))
        assert many.startswith(b"HTTP/1.1 431")

        started = time.monotonic()
        huge = raw_request(server.base_url, get("/health/live", b"X-Huge: " + b"z" * 5_000_000))
        assert time.monotonic() - started < 10
        assert huge.startswith(b"HTTP/1.1 431"), huge[:200]  # read whole by uvicorn, refused by the app

        assert raw_request(server.base_url, get("/health/live")).startswith(b"HTTP/1.1 200")
        assert "unhandled error on" not in server.log()


def test_a_huge_url_is_refused_without_harm(settings):
    with live_server(settings) as server:
        answer = raw_request(server.base_url, get("/api/cart?" + "q=" + "x" * 200_000))
        # uvicorn itself refuses a 200 KB request line (its own plain-text 400) and closes.
        assert answer.startswith(b"HTTP/1.1 400") and b"Invalid HTTP request" in answer, answer[:300]
        assert raw_request(server.base_url, get("/health/live")).startswith(b"HTTP/1.1 200")
