"""The sandbox over HTTP: a threaded HTTP/1.1 server (keep-alive) in front of `Sandbox.handle`."""

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 10 * 1024 * 1024  # bytes; far above anything Intercom accepts


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Reads one request, lets the sandbox answer it, writes the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Intercom's clients expect
    server_version = "IntercomRelaySandbox/1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and every answer waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _serve(self):
        body = self._read_body()
        if body is None:
            return
        answer = self.server.sandbox.handle(self.command, self.path, self.headers, body)
        if answer.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400, "Bad Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self):
        chunks, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.send_error(413, "Body too large")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write(f"sandbox {self.address_string()} {format % args}\n")


class SandboxHTTPServer(ThreadingHTTPServer):
    """One thread per connection; stop() also closes idle keep-alive connections, so a stopped
    sandbox really is gone for its clients."""

    daemon_threads = True
    request_queue_size = 256  # benchmarks open many connections at once
    allow_reuse_address = True

    def __init__(self, sandbox, host="127.0.0.1", port=0, verbose=False):
        self.sandbox = sandbox
        self.verbose = verbose
        self._connections = set()
        self._connections_lock = threading.Lock()
        self._served = False
        super().__init__((host, port), SandboxRequestHandler)
        sandbox.allow_sleeping()

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self, poll_interval=0.5):
        self._served = True
        super().serve_forever(poll_interval)

    def serve_in_thread(self):
        """Serve from a daemon thread; returns it."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.name = f"intercom-sandbox-{self.server_address[1]}"
        self._served = True  # before start: stop() right after must still wait for the loop
        thread.start()
        return thread

    def handle_error(self, request, client_address):
        # A client hanging up before its answer is written (a timeout, a closed keep-alive) is
        # routine, not a sandbox bug worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def connection_count(self):
        """Connections open right now (keep-alive ones included)."""
        with self._connections_lock:
            return len(self._connections)

    def track(self, connection):
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection):
        with self._connections_lock:
            self._connections.discard(connection)

    def stop(self):
        """Stop serving, end slow answers and close every open connection."""
        self.sandbox.stop_sleeping()
        if self._served:
            self.shutdown()  # waits for serve_forever to return; it never returns if never started
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
