#!/usr/bin/env python3
"""Hooks of the service-per-pod example (Python 3, standard library only).

Three hooks on one server:

  POST /service-per-pod/sync       StatefulSet -> one Service per Pod ordinal
  POST /service-per-pod/finalize   StatefulSet opted out or deleted: no Services
  POST /pod-name-label/sync        Pod -> label carrying the Pod's own name

Usage: hook.py [PORT]   (default: $HOOK_PORT, else 8000; listens on 127.0.0.1)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL_KEY = "service-per-pod.example.com/label"
PORTS_KEY = "service-per-pod.example.com/ports"
COUNT_KEY = "service-per-pod.example.com/services"
POD_LABEL_KEY = "pod-name-label.example.com/label"


def parse_ports(text):
    """'80:8080,443:8443' -> Service ports (port -> targetPort)."""
    ports = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        port, _, target = item.partition(":")
        ports.append({
            "name": "port-%s" % port,
            "port": int(port),
            "targetPort": int(target or port),
        })
    return ports


def service_per_pod_sync(request):
    sts = request["object"]
    meta = sts["metadata"]
    annotations = meta.get("annotations") or {}
    name = meta["name"]
    replicas = (sts.get("spec") or {}).get("replicas", 1)
    label = annotations.get(LABEL_KEY) or "pod-name"
    ports = parse_ports(annotations.get(PORTS_KEY))
    services = []
    for ordinal in range(replicas):
        pod = "%s-%d" % (name, ordinal)
        services.append({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": pod, "labels": {"app.kubernetes.io/part-of": name}},
            "spec": {"selector": {label: pod}, "ports": ports},
        })
    return {
        "annotations": {COUNT_KEY: str(len(services))},
        "attachments": services,
    }


def service_per_pod_finalize(request):
    # Attachments are keyed by name (the StatefulSet is namespaced).
    remaining = request["attachments"].get("Service.v1") or {}
    return {
        "annotations": {COUNT_KEY: None},  # null removes the annotation
        "attachments": [],
        # Done once every Service is really gone.
        "finalized": len(remaining) == 0,
    }


def pod_name_label_sync(request):
    pod = request["object"]["metadata"]
    label = (pod.get("annotations") or {}).get(POD_LABEL_KEY) or "pod-name"
    return {"labels": {label: pod["name"]}}


ROUTES = {
    "/service-per-pod/sync": service_per_pod_sync,
    "/service-per-pod/finalize": service_per_pod_finalize,
    "/pod-name-label/sync": pod_name_label_sync,
}


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
    print("service-per-pod hooks on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
