"""Steady HTTPS load through the edge, as clients would send it: a fixed request rate
over keep-alive connections, every answer and failure recorded with its time. Used by
the update tests (tests/sandbox/test_app_rollout.py) and bench/deploy."""

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

# Closed before any answer came back: what a client sees when the server closes an idle
# keep-alive connection just as a request goes out (RFC 9112, 9.3.1: retry is safe for
# idempotent requests, and browsers and HTTP libraries do so).
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


@dataclass
class Sample:
    at: float  # monotonic seconds when the request was sent
    seconds: float  # latency
    status: int  # HTTP status, 0 when the request failed without one
    body: str


@dataclass
class Load:
    address: str  # the edge's IP address
    name: str  # virtual host (SNI and Host)
    path: str = "/version"
    rate: float = 200.0  # requests per second, all workers together
    workers: int = 8
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self):
        self.retried = 0  # requests resent on a fresh connection (stale keep-alive)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _connection(self) -> http.client.HTTPSConnection:
        ctx = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection(self.address, 443, timeout=10, context=ctx)
        sock = socket.create_connection((self.address, 443), timeout=10)
        conn.sock = ctx.wrap_socket(sock, server_hostname=self.name)
        return conn

    def _request(self, conn, start: float):
        conn = conn or self._connection()
        conn.request("GET", self.path, headers={"Host": self.name})
        response = conn.getresponse()
        body = response.read().decode(errors="replace").strip()
        sample = Sample(start, time.monotonic() - start, response.status, body)
        if response.getheader("connection", "").lower() == "close":
            conn.close()
            conn = None
        return sample, conn

    def _worker(self, offset: float):
        interval = self.workers / self.rate
        next_at = time.monotonic() + offset
        conn = None
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += interval
            start = time.monotonic()
            reused = conn is not None
            try:
                sample, conn = self._request(conn, start)
            except STALE_CONNECTION as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if not reused:
                    sample = Sample(start, time.monotonic() - start, 0, type(exc).__name__)
                else:
                    # A keep-alive connection the server closed as we sent (nginx does at
                    # every reload): clients retry those idempotent requests at once.
                    with self._lock:
                        self.retried += 1
                    try:
                        sample, conn = self._request(None, start)
                    except (OSError, http.client.HTTPException) as again:
                        sample = Sample(start, time.monotonic() - start, 0, type(again).__name__)
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                sample = Sample(start, time.monotonic() - start, 0, type(exc).__name__)
            with self._lock:
                self.samples.append(sample)
        if conn:
            conn.close()

    def start(self) -> "Load":
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, args=(i / self.rate,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> "Load":
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        return self

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- what happened -------------------------------------------------------------------

    def failed(self) -> list[Sample]:
        """Requests a client would see fail: no answer, or a 5xx."""
        return [s for s in self.samples if s.status == 0 or s.status >= 500]

    def rate_achieved(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        span = self.samples[-1].at - self.samples[0].at
        return len(self.samples) / span if span else 0.0

    def p99_ms(self, start: float | None = None, end: float | None = None) -> float:
        chosen = sorted(
            s.seconds
            for s in self.samples
            if (start is None or s.at >= start) and (end is None or s.at <= end)
        )
        if not chosen:
            return 0.0
        return 1000 * chosen[min(len(chosen) - 1, int(len(chosen) * 0.99))]

    def versions(self) -> list[str]:
        """The version each successful answer came from, in order ("version v2" bodies)."""
        return [s.body.split()[-1] for s in self.samples if s.status == 200]
