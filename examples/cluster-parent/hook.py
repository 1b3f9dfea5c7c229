#!/usr/bin/env python3
"""Sync hook of the cluster-parent example (Python 3, standard library only).

A SharedConfig is cluster-scoped, so its children have no namespace to
inherit: the hook sets metadata.namespace on the ConfigMap explicitly (from
spec.namespace, default "default"). Status reports where the ConfigMap lives
and how many ConfigMaps the controller currently observes for this parent.

Usage: hook.py [PORT]   (default: $HOOK_PORT, else 8000; listens on 127.0.0.1)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sync(request):
    parent = request["parent"]
    name = parent["metadata"]["name"]
    spec = parent.get("spec", {})
    namespace = spec.get("namespace") or "default"
    data = {str(k): str(v) for k, v in (spec.get("data") or {}).items()}
    # For a cluster-scoped parent the observed children are keyed
    # "<namespace>/<name>".
    observed = request["children"].get("ConfigMap.v1", {})
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"demo.example.com/shared-config": name},
        },
        "data": data,
    }
    status = {"configMap": "%s/%s" % (namespace, name), "observed": len(observed)}
    return {"status": status, "children": [config_map]}


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
    print("cluster-parent hook listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
