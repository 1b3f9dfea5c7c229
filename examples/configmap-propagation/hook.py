#!/usr/bin/env python3
"""Hooks of the configmap-propagation example (Python 3, standard library only).

  POST /customize   which objects the sync hook needs: the source ConfigMap
                    and the Namespaces matching spec.namespaceSelector
  POST /sync        one copy of the source per selected namespace

Usage: hook.py [PORT]   (default: $HOOK_PORT, else 8000; listens on 127.0.0.1)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FROM_LABEL = "propagation.example.com/from"


def customize(request):
    spec = request["parent"].get("spec") or {}
    source = spec.get("source") or {}
    return {
        "relatedResources": [
            {
                "apiVersion": "v1",
                "resource": "configmaps",
                "namespace": source.get("namespace", ""),
                "names": [source.get("name", "")],
            },
            {
                "apiVersion": "v1",
                "resource": "namespaces",
                # A missing selector would select every namespace.
                "labelSelector": spec.get("namespaceSelector") or {},
            },
        ]
    }


def sync(request):
    parent = request["parent"]
    spec = parent.get("spec") or {}
    source_ref = spec.get("source") or {}
    source_ns = source_ref.get("namespace", "")
    source_name = source_ref.get("name", "")
    related = request["related"]
    # The parent is cluster-scoped: namespaced objects are keyed
    # "<namespace>/<name>", cluster-scoped ones by name.
    source = (related.get("ConfigMap.v1") or {}).get("%s/%s" % (source_ns, source_name))
    if source is None:
        # No source (yet): no copies.
        return {"status": {"copies": 0, "namespaces": [], "source": "missing"}, "children": []}

    namespaces = sorted(
        name
        for name, ns in (related.get("Namespace.v1") or {}).items()
        if name != source_ns and (ns.get("status") or {}).get("phase") != "Terminating"
    )
    copies = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": source_name,
                "namespace": namespace,
                "labels": {FROM_LABEL: "%s.%s" % (source_ns, source_name)},
            },
            "data": source.get("data") or {},
        }
        for namespace in namespaces
    ]
    status = {"copies": len(copies), "namespaces": namespaces, "source": "found"}
    return {"status": status, "children": copies}


ROUTES = {"/customize": customize, "/sync": sync}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        hook = ROUTES.get(self.path)
        if hook is None:
            self.reply(404, {"error": "unknown path " + self.path})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            response = hook(json.loads(self.rfile.read(length)))
        except Exception as err:  # a non-200 answer makes the controller retry
            print("%s failed: %r" % (self.path, err), file=sys.stderr, flush=True)
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
        pass


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HOOK_PORT", "8000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("configmap-propagation hooks on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
