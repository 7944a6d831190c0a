"""A stand-in app backend for edge tests: HTTP on the given ports, WebSocket-style echo.

GET /            200 "ok <port>"
GET /missing     404
GET /anything.js 200 (a static asset)
Upgrade: websocket -> 101, then echoes raw bytes.
"""

import base64
import hashlib
import socketserver
import sys
import threading


class Handler(socketserver.StreamRequestHandler):
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
            path = request.split()[1].decode() if len(request.split()) > 1 else "/"
            if headers.get("upgrade", "").lower() == "websocket":
                accept = base64.b64encode(
                    hashlib.sha1(
                        (
                            headers.get("sec-websocket-key", "")
                            + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
                        ).encode()
                    ).digest()
                ).decode()
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
            status = "404 Not Found" if path.startswith("/missing") else "200 OK"
            body = f"ok {self.server.server_address[1]} {path}\n".encode()
            self.wfile.write(
                (
                    f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


for port in map(int, sys.argv[1:]):
    threading.Thread(target=Server(("127.0.0.1", port), Handler).serve_forever, daemon=True).start()
threading.Event().wait()
