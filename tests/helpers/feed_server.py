"""A real threaded HTTP server on 127.0.0.1 for fetch tests: scripted routes, recorded requests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

FEEDS = Path(__file__).resolve().parents[1] / "feeds"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    hang_up: bool = False  # close the connection after replying, without saying so (an idle timeout)


Route = Callable[[dict[str, str]], Reply]  # request headers (lower-case names) -> reply


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    peer: tuple = ()  # the client's (address, port): one value per TCP connection


class FeedServer:
    """Serves `routes[path]`; 404 for anything else. `requests` records what came in."""

    def __init__(self, latency: float = 0.0, host: str = "127.0.0.1"):
        self.routes: dict[str, Route | Reply] = {}
        self.requests: list[Seen] = []
        self.latency = latency
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Seen(self.path, headers, tuple(self.client_address)))
                route = server.routes.get(self.path)
                reply = route(headers) if callable(route) else route or Reply(404, b"not here")
                time.sleep(server.latency + reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if not {"content-length", "transfer-encoding"} & {k.lower() for k in reply.headers}:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if reply.status != 304:
                        self.wfile.write(reply.body)
                    self.close_connection = self.close_connection or reply.hang_up
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeouts, size limits): expected in these tests

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # clients that hang up mid-reply are what these tests provoke

        self.httpd = Server((host, 0), Handler)
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> "FeedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def feed_bytes(name: str) -> bytes:
    return (FEEDS / name).read_bytes()
