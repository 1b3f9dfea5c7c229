#!/usr/bin/env python3
"""Null sync/finalize hook of the controller benchmark (Python standard library).

For a Bench parent asking for spec.replicas children it answers ConfigMaps
<parent>-0 .. <parent>-<replicas-1> and status {ready: replicas}; /finalize
answers no children and finalized. GET /stats returns the calls and bytes
served so far as JSON.

Usage: null_hook.py PORT   (listens on 127.0.0.1)
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL = "bench.example.com/parent"
STATS = {"sync_calls": 0, "finalize_calls": 0, "bytes_in": 0, "bytes_out": 0}
LOCK = threading.Lock()


def sync(request):
    parent = request["parent"]
    name = parent["metadata"]["name"]
    replicas = int(parent.get("spec", {}).get("replicas", 0))
    children = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "%s-%d" % (name, i), "labels": {LABEL: name}},
            "data": {"index": str(i)},
        }
        for i in range(replicas)
    ]
    return {"status": {"ready": replicas}, "children": children}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        with LOCK:
            body = dict(STATS)
        self.reply(200, json.dumps(body).encode())

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        finalize = self.path == "/finalize"
        try:
            if finalize:
                answer = {"children": [], "finalized": True}
            else:
                answer = sync(json.loads(raw))
            code, data = 200, json.dumps(answer, separators=(",", ":")).encode()
        except Exception as err:  # any non-200 answer makes the controller retry
            code, data = 500, str(err).encode()
        with LOCK:
            STATS["finalize_calls" if finalize else "sync_calls"] += 1
            STATS["bytes_in"] += len(raw)
            STATS["bytes_out"] += len(data)
        self.reply(code, data)

    def reply(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
