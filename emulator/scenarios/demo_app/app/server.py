"""A tiny HTTP service: GET / answers with a greeting and the version it was built from, GET /health with "ok".

It listens on HOST:PORT (default 0.0.0.0:8080, the task definition's container port). The
version is the commit the image was built from (the build passes it as SOURCE_COMMIT).
"""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

GREETING = "Hello from the demo app"
VERSION = os.environ.get("APP_VERSION", "unknown")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (b"ok" if self.path == "/health" else f"{GREETING} (version {VERSION})".encode()) + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
