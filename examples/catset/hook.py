#!/usr/bin/env python3
"""Sync and finalize hook of the catset example (Python 3, standard library only).

A CatSet behaves like a StatefulSet with the OrderedReady policy:

* Pods are named <catset>-<ordinal> and come up one at a time: a missing Pod
  is asked for only when every lower ordinal is Running and Ready;
* scaling down removes the highest ordinal, one at a time, once all wanted
  Pods are ready;
* every Pod gets one PersistentVolumeClaim per volumeClaimTemplate, named
  <template>-<catset>-<ordinal>; claims outlive a scale-down (they go away
  with the CatSet, through their owner reference);
* Pods are listed highest ordinal first, which is the order in which the
  RollingRecreate update strategy replaces them;
* when the CatSet is deleted (the finalize call) it scales to zero and says
  "finalized" once no Pod is left.

Usage: hook.py [PORT]   (default: $HOOK_PORT, else 8000; listens on 127.0.0.1)
"""

import copy
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def ordinal_of(base, name):
    """The ordinal of <base>-<n>, or None."""
    match = re.fullmatch(re.escape(base) + r"-(\d+)", name)
    return int(match.group(1)) if match else None


def is_running_and_ready(pod):
    if pod is None or pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return status.get("phase") == "Running" and ready


def new_pod(catset, ordinal):
    name = "%s-%d" % (catset["metadata"]["name"], ordinal)
    template = catset["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": copy.deepcopy(template.get("metadata") or {}),
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
    pod["metadata"]["name"] = name
    pod["spec"]["hostname"] = name
    if catset["spec"].get("serviceName"):
        pod["spec"]["subdomain"] = catset["spec"]["serviceName"]
    for claim in catset["spec"].get("volumeClaimTemplates") or []:
        claim_name = claim["metadata"]["name"]
        pod["spec"].setdefault("volumes", []).append(
            {
                "name": claim_name,
                "persistentVolumeClaim": {"claimName": "%s-%s" % (claim_name, name)},
            }
        )
    return pod


def new_claim(template, name):
    claim = copy.deepcopy(template)
    claim["apiVersion"] = "v1"
    claim["kind"] = "PersistentVolumeClaim"
    claim["metadata"]["name"] = name
    return claim


def sync(request):
    catset = request["parent"]
    name = catset["metadata"]["name"]
    replicas = catset["spec"].get("replicas", 0)
    children = request["children"]
    response = {}

    observed = {}
    for pod in children.get("Pod.v1", {}).values():
        ordinal = ordinal_of(name, pod["metadata"]["name"])
        if ordinal is not None:
            observed[ordinal] = pod

    if request.get("finalizing"):
        # Being deleted: scale to zero, then let the deletion finish.
        replicas = 0
        response["finalized"] = not observed

    ready = 0
    while ready < replicas and is_running_and_ready(observed.get(ready)):
        ready += 1
    response["status"] = {"replicas": len(observed), "readyReplicas": ready}

    wanted = set(observed)
    if ready < replicas:
        wanted.add(ready)  # the next Pod, once all lower ones are ready
    if ready == replicas and wanted and max(wanted) >= replicas:
        wanted.remove(max(wanted))  # scale down from the top, one at a time
    desired = [new_pod(catset, i) for i in sorted(wanted, reverse=True)]

    for template in catset["spec"].get("volumeClaimTemplates") or []:
        base = "%s-%s" % (template["metadata"]["name"], name)
        ordinals = set(range(replicas))
        for claim in children.get("PersistentVolumeClaim.v1", {}).values():
            ordinal = ordinal_of(base, claim["metadata"]["name"])
            if ordinal is not None:
                ordinals.add(ordinal)  # keep claims beyond the current size
        desired += [new_claim(template, "%s-%d" % (base, i)) for i in sorted(ordinals)]

    response["children"] = desired
    return response


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
    print("catset hook listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
