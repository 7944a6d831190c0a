"""The sandbox's app image: every service of the sandbox runs this (sandbox/app_image.py
packs it with a Python interpreter into a `docker save` archive; no registry needed).

GET /health      200 "ok", or 500 when FAIL_HEALTH=1 or FAIL_AFTER has passed
GET /version     200 APP_VERSION (never cached)
GET /missing...  404, and so is any *.php path (as the real apps answer scanners)
GET /metrics     Prometheus text: galion_testapp_requests_total{version}
GET anything     200 "ok <version> <path>" (500 once FAIL_AFTER seconds have passed)
Upgrade: websocket -> 101, then echoes raw bytes (nginx tunnels them untouched).

python3 app.py --health   exit 0 if /health answers 200 (Docker's HEALTHCHECK)
python3 app.py --migrate  prints what a schema migration would say
"""

import base64
import hashlib
import os
import signal
import socket
import socketserver
import sys
import threading
import time

STARTED = time.monotonic()
VERSION = os.environ.get("APP_VERSION", "dev")
PORT = int(os.environ.get("PORT", "8000"))
FAIL_AFTER = float(os.environ.get("FAIL_AFTER") or 0)
REQUESTS = [0]  # requests answered (a list: the handler threads add to it)


def failing() -> bool:
    if os.environ.get("FAIL_HEALTH") == "1":
        return True
    return bool(FAIL_AFTER) and time.monotonic() - STARTED > FAIL_AFTER


class Handler(socketserver.StreamRequestHandler):
    def reply(self, code: int, reason: str, body: str):
        data = body.encode()
        self.wfile.write(
            (
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
                f"X-App-Version: {VERSION}\r\nContent-Length: {len(data)}\r\n"
                + ("Cache-Control: no-store\r\n" if code != 200 or "version" in body else "")
                + "\r\n"
            ).encode()
            + data
        )
        self.wfile.flush()

    def handle(self):
        while True:
            request = self.rfile.readline()
            if not request:
                return
            headers = {}
            while True:
                line = self.rfile.readline().decode().strip()
                if not line:
                    break
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            parts = request.split()
            path = parts[1].decode() if len(parts) > 1 else "/"
            if headers.get("upgrade", "").lower() == "websocket":
                key = headers.get("sec-websocket-key", "") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
                self.wfile.write(
                    (
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                    ).encode()
                )
                self.wfile.flush()
                while True:
                    data = self.request.recv(4096)
                    if not data:
                        return
                    self.request.sendall(data)
            REQUESTS[0] += 1
            if failing():
                self.reply(500, "Internal Server Error", f"failing {VERSION}\n")
            elif path == "/health":
                self.reply(200, "OK", "ok\n")
            elif path == "/metrics":
                self.reply(
                    200,
                    "OK",
                    "# TYPE galion_testapp_requests_total counter\n"
                    f'galion_testapp_requests_total{{version="{VERSION}"}} {REQUESTS[0]}\n',
                )
            elif path.startswith("/version"):
                self.reply(200, "OK", f"version {VERSION}\n")
            elif path.startswith("/missing") or path.split("?")[0].endswith(".php"):
                self.reply(404, "Not Found", f"missing {path}\n")
            else:
                self.reply(200, "OK", f"ok {VERSION} {path}\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # The listen backlog of a real server (uvicorn's default is 2048, Node's 511), not
    # socketserver's 5: with 5, the burst of connections an nginx reload opens overflowed
    # it, and each dropped SYN stalled a request for the 1 s of TCP's retransmission.
    request_queue_size = 2048


def health() -> int:
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=3) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return 0 if s.recv(64).startswith(b"HTTP/1.1 200") else 1
    except OSError:
        return 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--health"]:
        sys.exit(health())
    if sys.argv[1:] == ["--migrate"]:
        print(f"migrated the schema to {VERSION}")
        sys.exit(0)
    # PID 1 in its container: without a handler SIGTERM is ignored and `docker stop`
    # waits its whole timeout. Real apps (uvicorn, node) exit on it too.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = Server(("0.0.0.0", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()
