#!/usr/bin/env bash
# A distributed perfgate run over SSH: the master here, one worker on each host named, every host in a checkout
# of the same commit (the same locustfile and perfgate; a worker with another one is refused).
#   examples/distributed/ssh.sh http://10.0.0.5:8080 10.0.0.2 load1 load2 load3
# The workers stop when the master ends the run (and, by Locust's own limits, a minute after losing it).
# Each worker's output goes to worker-HOST.log in this folder; the script exits with the master's exit code.
set -euo pipefail
target=$1 master_address=$2
shift 2
hosts=("$@")
checkout=${PERFGATE_CHECKOUT:-perfgate-load}   # the checkout's folder on each host
workers=()
for host in "${hosts[@]}"; do
    # -tt: the remote worker ends when this SSH session does.
    ssh -tt "$host" "cd $(printf %q "$checkout") && uv run perfgate worker --master-host $(printf %q "$master_address") --master-port 5557" \
        </dev/null >"worker-$host.log" 2>&1 &
    workers+=("$!")
done
trap 'kill "${workers[@]}" 2>/dev/null || true' EXIT
uv run perfgate run --master --expect-workers "${#hosts[@]}" --expect-workers-max-wait 2m \
    --master-bind-host "$master_address" --master-bind-port 5557 -H "$target"
