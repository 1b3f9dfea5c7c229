#!/usr/bin/env python3
"""Sync hook of the indexed-job example (Python 3, standard library only).

An IndexedJob runs its Pod template once per index 0..completions-1: Pod
<name>-<index>, with the index in the JOB_COMPLETION_INDEX environment
variable and the label demo.example.com/completion-index. A Pod that failed
is left out of the desired children, so it is deleted and created again on
the next sync. Once every index has succeeded the job is complete for good:
status.completed stays true and no Pod is ever created again.

Usage: hook.py [PORT]   (default: $HOOK_PORT, else 8000; listens on 127.0.0.1)
"""

import copy
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INDEX_LABEL = "demo.example.com/completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def phase(pod):
    return pod.get("status", {}).get("phase", "")


def new_pod(job_name, index, template):
    meta = template.get("metadata", {})
    labels = dict(meta.get("labels", {}))
    labels[INDEX_LABEL] = str(index)
    spec = copy.deepcopy(template.get("spec", {}))
    spec.setdefault("restartPolicy", "Never")
    for container in spec.get("containers", []):
        env = [e for e in container.get("env", []) if e.get("name") != INDEX_ENV]
        env.append({"name": INDEX_ENV, "value": str(index)})
        container["env"] = env
    metadata = {"name": "%s-%d" % (job_name, index), "labels": labels}
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def sync(request):
    job = request["parent"]
    name = job["metadata"]["name"]
    spec = job.get("spec", {})
    completions = int(spec.get("completions", 1))
    template = spec.get("template", {})

    # Observed Pods by index (the controller only sends Pods this job owns).
    by_index = {}
    for pod in request["children"].get("Pod.v1", {}).values():
        index = pod["metadata"].get("labels", {}).get(INDEX_LABEL, "")
        if index.isdigit():
            by_index[int(index)] = pod

    succeeded = sum(1 for i, pod in by_index.items() if i < completions and phase(pod) == "Succeeded")
    active = sum(1 for pod in by_index.values() if phase(pod) not in ("Succeeded", "Failed"))
    completed = bool(job.get("status", {}).get("completed")) or succeeded >= completions

    children = []
    for index in range(completions):
        pod = by_index.get(index)
        if pod is None and completed:
            continue  # complete: never create a Pod again
        if pod is not None and phase(pod) == "Failed" and not completed:
            continue  # deleted now, created again by the next sync
        children.append(new_pod(name, index, template))

    status = {"succeeded": succeeded, "active": active, "completed": completed}
    return {"status": status, "children": children}


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
    print("indexed-job hook listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
