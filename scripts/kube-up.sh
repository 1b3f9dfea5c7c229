#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback — etcd, kube-apiserver
# (RBAC on) and kube-controller-manager (garbage collector, namespaces,
# service accounts) — and prints `export KUBECONFIG=...` for an admin
# kubeconfig. Ctrl-C stops every component. The first start builds the
# binaries with Go (about 10 minutes on 2 cores); later starts take seconds.
#
#   scripts/kube-up.sh [--dir DIR] [--kubeconfig-out PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --locked -p metacontroller-testbed -- up "$@"
