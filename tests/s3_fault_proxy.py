"""A fault-injecting HTTP proxy for S3 tests: it sits on 127.0.0.1 in front of an S3 server (moto's),
forwards path-style requests as they came, and answers a seeded share of them with what object
storage does on a bad night:

- `slowdown`: 503 SlowDown with S3's XML error body (throttling);
- `internal`: 500 InternalError;
- `reset`:    the connection is reset without a response;
- `cut`:      a GET is forwarded and its response cut off halfway through the body (any other
              request gets a `reset`);
- `delay`:    no answer for `delay` seconds (beyond the client's timeout), then the connection closes.

Only a `cut` GET reaches the server: the other faults are decided before forwarding, so at rate 1.0
nothing is ever written. Every request is counted, and its method, path, User-Agent and session
token are kept in `log`, so a test can say which client sent what.
"""
from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

KINDS = ("slowdown", "internal", "reset", "cut", "delay")
DEFAULT_MIX = {"slowdown": 0.3, "internal": 0.2, "reset": 0.2, "cut": 0.15, "delay": 0.15}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "expect"}
ERRORS = {"slowdown": (503, "SlowDown", "Please reduce your request rate."),
          "internal": (500, "InternalError", "We encountered an internal error. Please try again.")}


@dataclass
class Request:
    method: str
    path: str
    user_agent: str
    session_token: str | None
    fault: str | None


@dataclass
class Stats:
    requests: int = 0
    faults: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


class S3FaultProxy:
    """`S3FaultProxy(upstream).start()`; `endpoint` is the URL to give the clients."""

    def __init__(self, upstream: str, rate: float = 0.0, seed: int = 0, delay: float = 2.0):
        self.upstream = upstream.split("://", 1)[-1]
        self.delay = delay
        self.lock = threading.Lock()
        self.reset(rate, seed)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "S3FaultProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, rate: float = 0.0, seed: int = 0) -> None:
        """Fresh counters, a fresh seeded draw, `rate` as the share of requests faulted, DEFAULT_MIX."""
        with self.lock:
            self.rate, self.rng, self.mix = rate, random.Random(seed), dict(DEFAULT_MIX)
            self.stats, self.log = Stats(), []
            self.only: Callable[[str, str], bool] | None = None

    def set_rate(self, rate: float, only: Callable[[str, str], bool] | None = None,
                 mix: dict[str, float] | None = None) -> None:
        """Fault `rate` of the requests from now on; `only(method, path)` limits which are eligible,
        `mix` (kind -> weight) which faults they get."""
        with self.lock:
            self.rate, self.only = rate, only
            self.mix = dict(mix or self.mix)

    def _draw(self, method: str, path: str, headers) -> str | None:
        with self.lock:
            self.stats.requests += 1
            fault = None
            if self.only is None or self.only(method, path):
                # one draw for "faulted?" and one for the kind, whatever the outcome, so the sequence of
                # faults depends on the seed and the request count only
                hit, pick = self.rng.random(), self.rng.random()
                if hit < self.rate:
                    total, acc = sum(self.mix.values()), 0.0
                    for kind, weight in self.mix.items():
                        acc += weight / total
                        if pick < acc:
                            fault = kind
                            break
                    fault = fault or kind
                    if fault == "cut" and method != "GET":
                        fault = "reset"
                    self.stats.faults[fault] += 1
            self.log.append(Request(method, path, headers.get("User-Agent", ""),
                                    headers.get("X-Amz-Security-Token"), fault))
            return fault

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

            def log_message(self, *args):  # quiet: the counters are the record
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reset(self) -> None:
                # SO_LINGER 0: close with a RST, which is what a dropped connection looks like to the client
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

            def _error(self, kind: str) -> None:
                status, code, message = ERRORS[kind]
                body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                        f'</Message><RequestId>fault-proxy</RequestId></Error>').encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                return resp, data

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._draw(self.command, self.path, self.headers)
                if fault in ERRORS:
                    return self._error(fault)
                if fault == "reset":
                    return self._reset()
                if fault == "delay":
                    time.sleep(proxy.delay)
                    return self._reset()
                resp, data = self._forward(body)
                if fault == "cut" and len(data) < 2:
                    return self._reset()
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "cut":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    return self._reset()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        return Handler
