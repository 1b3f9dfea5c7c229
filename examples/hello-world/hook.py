#!/usr/bin/env python3
"""Sync hook of the hello-world example (Python 3, standard library only).

For each HelloWorld it asks for one Pod that prints a greeting for
spec.who, and reports how many Pods it currently has in status.pods.

Usage: hook.py [PORT]   (default: $HOOK_PORT, else 8000; listens on 127.0.0.1)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sync(request):
    parent = request["parent"]
    who = parent.get("spec", {}).get("who") or "World"
    # Children observed by the controller, keyed "<Kind>.<apiVersion>".
    pods = request["children"].get("Pod.v1", {})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": parent["metadata"]["name"] + "-greeter"},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [
                {
                    "name": "greeter",
                    "image": "busybox:1.36",
                    "command": ["echo", "Hello, %s!" % who],
                }
            ],
        },
    }
    return {"status": {"pods": len(pods)}, "children": [pod]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        if self.path != "/sync":
            self.reply(404, {"error": "unknown path " + self.path})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            response = sync(json.loads(self.rfile.read(length)))
        except Exception as err:  # any non-200 answer makes the controller retry
            print("sync failed: %r" % err, file=sys.stderr, flush=True)
            self.reply(500, {"error": str(err)})
            return
        self.reply(200, response)

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # quiet: no line per request


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HOOK_PORT", "8000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("hello-world hook listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
