#!/usr/bin/env bash
# End-to-end check of the configmap-propagation example against `metacontroller dev`.
#
# Environment:
#   METACONTROLLER_BIN  the metacontroller binary (default: built from this
#                       repository with `cargo build --release`)
#   KUBECTL             the kubectl to use (default: kubectl)
#   EXAMPLE_TIMEOUT     seconds allowed for each wait (default: 60)
# Exits 0 when every check passes, non-zero with a message otherwise.
set -euo pipefail

example_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$example_dir/../.." && pwd)
example=configmap-propagation
limit=${EXAMPLE_TIMEOUT:-60}
kubectl=${KUBECTL:-kubectl}
t0=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/$example.XXXXXX")
children=()

shutdown() {
  local pid
  for pid in ${children[@]+"${children[@]}"}; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap shutdown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "FAIL [$example]: $*" >&2
  for log in metacontroller.err hook.err; do
    if [ -s "$work/$log" ]; then
      echo "----- tail of $log -----" >&2
      tail -n 30 "$work/$log" >&2
    fi
  done
  exit 1
}

# eventually WHAT CMD...: retry CMD every 0.5 s until it succeeds, at most
# $limit seconds.
eventually() {
  local what=$1 until=$((SECONDS + limit))
  shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$until" ] || die "gave up after ${limit}s waiting for: $what"
    sleep 0.5
  done
  echo "  ok  $what"
}

kc() { "$kubectl" --kubeconfig "$KUBECONFIG" --cache-dir "$work/cache" "$@"; }
absent() { [ -z "$(kc get "$@" --ignore-not-found -o name)" ]; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v "$kubectl" >/dev/null || die "kubectl not found (set KUBECTL)"
command -v python3 >/dev/null || die "python3 not found"

# --- metacontroller dev ------------------------------------------------------

if [ -n "${METACONTROLLER_BIN:-}" ]; then
  mc_bin=$METACONTROLLER_BIN
else
  echo "building metacontroller (release)"
  (cd "$repo_root" && cargo build --release --quiet -p metacontroller) || die "cargo build failed"
  target=$(cd "$repo_root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  mc_bin=$target/release/metacontroller
fi
[ -x "$mc_bin" ] || die "metacontroller binary not found at $mc_bin"

"$mc_bin" dev --port 0 --kubeconfig-out "$work/kubeconfig" \
  --metrics-address 0 --health-probe-bind-address 0 \
  >"$work/metacontroller.out" 2>"$work/metacontroller.err" &
mc_pid=$!
children+=("$mc_pid")
KUBECONFIG=
until=$((SECONDS + limit))
while [ -z "$KUBECONFIG" ]; do
  kill -0 "$mc_pid" 2>/dev/null || die "metacontroller dev exited early"
  [ "$SECONDS" -lt "$until" ] || die "metacontroller dev printed no 'export KUBECONFIG=' line"
  sleep 0.2
  KUBECONFIG=$(sed -n 's/^export KUBECONFIG=//p' "$work/metacontroller.out" | head -n 1)
done
export KUBECONFIG
echo "  ok  metacontroller dev is up"

# --- the hooks -------------------------------------------------------------------

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$example_dir/hook.py" "$port" >"$work/hook.out" 2>"$work/hook.err" &
children+=("$!")
eventually "hooks listening on port $port" listening "$port"

# --- the example -------------------------------------------------------------------

check() { local what=$1; shift; "$@" >/dev/null 2>&1 || die "check failed: $what"; echo "  ok  $what"; }
# is OBJECT JSONPATH VALUE [kubectl flags...]
is() { local obj=$1 path=$2 want=$3; shift 3; [ "$(kc get "$obj" "$@" -o "jsonpath=$path" 2>/dev/null)" = "$want" ]; }
copy_is() { is configmap/settings '{.data.log-level}' "$2" -n "$1"; }   # copy_is NAMESPACE LOG_LEVEL
no_copy() { absent -n "$1" configmap/settings; }
cmp=configmappropagation/settings

kc apply -f "$example_dir/crd.yaml"
kc wait --for condition=Established --timeout "${limit}s" crd/configmappropagations.propagation.example.com
sed "s/\${HOOK_PORT}/$port/g" "$example_dir/controller.yaml" | kc apply -f -
kc apply -f "$example_dir/propagation.yaml"

for ns in team-a team-b; do
  eventually "copy in $ns" copy_is "$ns" info
done
eventually "status: 2 copies in team-a and team-b" is "$cmp" '{.status.copies} {.status.namespaces}' '2 ["team-a","team-b"]'
check "no copy in the unlabelled namespace team-c" no_copy team-c
check "no copy over the source" is configmap/settings '{.metadata.ownerReferences}' '' -n platform
parent_uid=$(kc get "$cmp" -o 'jsonpath={.metadata.uid}')
check "the copy in team-a is owned by the propagation" \
  is configmap/settings '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}' \
  "ConfigMapPropagation/$parent_uid" -n team-a

# Labelling a namespace (a related object changes) brings a copy.
kc label namespace team-c propagation.example.com/settings=copy
eventually "copy in team-c once labelled" copy_is team-c info

# A new labelled namespace gets one too.
kc create namespace team-d
kc label namespace team-d propagation.example.com/settings=copy
eventually "copy in the new namespace team-d" copy_is team-d info

# Editing the source updates every copy in place.
kc -n platform patch configmap settings --type merge -p '{"data":{"log-level":"debug"}}'
for ns in team-a team-b team-c team-d; do
  eventually "copy in $ns follows the source" copy_is "$ns" debug
done

# Unlabelling a namespace removes its copy.
kc label namespace team-a propagation.example.com/settings-
eventually "copy removed from team-a once unlabelled" no_copy team-a
eventually "status: 3 copies" is "$cmp" '{.status.copies}' 3

# Deleting the propagation garbage-collects the copies; the source stays.
kc delete "$cmp" --wait=false
for ns in team-b team-c team-d; do
  eventually "copy in $ns removed with the propagation" no_copy "$ns"
done
check "the source is untouched" is configmap/settings '{.data.log-level}' debug -n platform

echo "PASS [$example] in $((SECONDS - t0))s"
