"""A tiny HTTP service: GET / answers with a greeting, GET /health with "ok"."""

from http.server import BaseHTTPRequestHandler, HTTPServer

GREETING = "Hello from the demo app"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (b"ok" if self.path == "/health" else GREETING.encode()) + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
