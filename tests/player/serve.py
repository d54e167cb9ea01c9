"""Serve a folder on 127.0.0.1 with byte ranges (RFC 9110 14), as a store or a CDN does: the
single-file form is read by range. Python's http.server serves whole files only.

    python3 tests/player/serve.py <folder>     prints the port, then serves until killed
"""
import functools
import http.server as h
import os
import re
import sys


class Ranged(h.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = m.group(1), m.group(2)
        if first == "":
            first, last = max(size - int(last), 0), size - 1
        else:
            first, last = int(first), min(int(last), size - 1) if last else size - 1
        if first > last:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")
        f.seek(first)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Slice(f, last - first + 1)

    def end_headers(self):
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()


class _Slice:
    """The part of a file a range names, as copyfile reads it."""

    def __init__(self, f, n):
        self.f, self.n = f, n

    def read(self, size=-1):
        size = self.n if size < 0 else min(size, self.n)
        data = self.f.read(size)
        self.n -= len(data)
        return data

    def close(self):
        self.f.close()


server = h.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Ranged, directory=sys.argv[1]))
print(server.server_address[1], flush=True)
server.serve_forever()
