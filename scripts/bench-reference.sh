#!/usr/bin/env bash
# The reference chat server against the Node implementation, side by side,
# under the same load (issue 12's benchmark command).
#
# For each load level and each server: start the server pinned to CPU 0 on
# 127.0.0.1 (a free port), run `chatspec load` pinned to CPU 1 against it over
# WebSocket, read the server's CPU time over the load run (utime+stime from
# /proc/PID/stat, sampled just before and just after the run) and its memory
# (VmRSS before the run, VmHWM after it), stop the server. Then print one table
# and, per level, reference/node in deliveries per server CPU-second and
# whether the reference's fan-out p99 is the lower.
#
# "node" is spec/testdata/nodeserver/server.js with the same history cap as
# the reference (--history-limit, 200 by default). The seed's own server
# (seed.js) has no cap: its history, and so every broadcast, grows without
# bound, which would measure the missing cap rather than the server.
#
#   bash scripts/bench-reference.sh                       # 100 and 200 users, 1 msg/s each, 20 s
#   LEVELS="50 100 200" DURATION=30s bash scripts/bench-reference.sh
#   LEVELS=20 DURATION=5s OUT_DIR=/tmp/bench bash scripts/bench-reference.sh   # keep the reports
#
# Settings (environment):
#   LEVELS            users per level, space-separated                  ("100 200")
#   DURATION          how long each user sends (Ns, Nm or NmNs)          (20s)
#   MESSAGE_INTERVAL  mean time between one user's messages              (1s)
#   RAMP              users arrive evenly over this time                 (5s)
#   HISTORY_LIMIT     history cap of both servers                        (200)
#   SEED              load generator seed, the same for every run        (1)
#   BIN               a built chatspec (default: built from this tree into a temp dir)
#   OUT_DIR           keep summary.json, load output and server logs here (default: a temp dir, removed)
#   REFERENCE_ARGS    more `chatspec serve` flags for the reference, e.g. "--cpu-profile /tmp/ref.pprof"
#
# Exit codes: 0 every run measured (this is a measurement, not a gate: slow
# or lossy servers still exit 0); 1 a load run wrote no summary.json; 2 a
# missing tool (node, taskset, jq or python3), a bad setting, fewer than two
# CPUs, or a server that did not start.
set -euo pipefail
cd "$(dirname "$0")/.."

LEVELS=${LEVELS:-"100 200"}
DURATION=${DURATION:-20s}
MESSAGE_INTERVAL=${MESSAGE_INTERVAL:-1s}
RAMP=${RAMP:-5s}
HISTORY_LIMIT=${HISTORY_LIMIT:-200}
SEED=${SEED:-1}
REFERENCE_ARGS=${REFERENCE_ARGS:-}
NODE_DIR=spec/testdata/nodeserver
START_TIMEOUT=20 # seconds a server has to print its listening line
STOP_TIMEOUT=15  # seconds a server has to exit after SIGTERM

die() { # die CODE MESSAGE
  echo "bench-reference: $2" >&2
  exit "$1"
}
note() { echo "bench-reference: $*" >&2; }

# seconds DURATION: whole seconds of 20s, 2m or 1m30s; empty when malformed.
seconds() {
  if [[ $1 =~ ^([0-9]+)m([0-9]+)s$ ]]; then
    echo $((BASH_REMATCH[1] * 60 + BASH_REMATCH[2]))
  elif [[ $1 =~ ^([0-9]+)m$ ]]; then
    echo $((BASH_REMATCH[1] * 60))
  elif [[ $1 =~ ^([0-9]+)s$ ]]; then
    echo $((BASH_REMATCH[1]))
  fi
}

# --- tools and settings -------------------------------------------------------
command -v node >/dev/null 2>&1 || die 2 "node is not installed (the Node server needs it; Node 18.3+)"
command -v taskset >/dev/null 2>&1 || die 2 "taskset is not installed (Debian: apt-get install util-linux)"
command -v timeout >/dev/null 2>&1 || die 2 "timeout is not installed (Debian: coreutils)"
command -v getconf >/dev/null 2>&1 || die 2 "getconf is not installed (Debian: libc-bin)"
if command -v jq >/dev/null 2>&1; then
  JSON=jq
elif command -v python3 >/dev/null 2>&1; then
  JSON=python3
else
  die 2 "neither jq nor python3 is installed: one of them is needed to read summary.json"
fi
if ! taskset -c 0 true 2>/dev/null || ! taskset -c 1 true 2>/dev/null; then
  die 2 "cannot pin to CPUs 0 and 1 (taskset -c 0 / -c 1 failed): the benchmark needs two CPUs, one for the server, one for the generator"
fi
[ -d "$NODE_DIR/node_modules/socket.io" ] ||
  die 2 "the Node server's packages are missing: run npm ci --prefix $NODE_DIR"
CLK_TCK=$(getconf CLK_TCK)

for n in $LEVELS; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die 2 "LEVELS must be positive whole numbers of users, got '$n'"
done
[ -n "$LEVELS" ] || die 2 "LEVELS is empty"
[[ $HISTORY_LIMIT =~ ^[0-9]+$ ]] || die 2 "HISTORY_LIMIT must be a whole number, got '$HISTORY_LIMIT'"
[[ $SEED =~ ^[0-9]+$ ]] || die 2 "SEED must be a whole number, got '$SEED'"
dur_s=$(seconds "$DURATION")
ramp_s=$(seconds "$RAMP")
[ -n "$dur_s" ] || die 2 "DURATION must look like 20s, 2m or 1m30s, got '$DURATION'"
[ -n "$ramp_s" ] || die 2 "RAMP must look like 5s, 1m or 1m30s, got '$RAMP'"
[[ $MESSAGE_INTERVAL =~ ^[0-9]+(\.[0-9]+)?(ms|s|m)$ ]] ||
  die 2 "MESSAGE_INTERVAL must be a duration such as 1s or 500ms, got '$MESSAGE_INTERVAL'"
# The whole load run: ramp, sending, chatspec's 5 s delivery window and 5 s
# stop timeout, and slack for a loaded machine. Past it the run is killed.
LOAD_TIMEOUT=$((ramp_s + dur_s + 10 + 60))

# --- work directory, cleanup ----------------------------------------------------
if [ -n "${OUT_DIR:-}" ]; then
  mkdir -p "$OUT_DIR"
  work=$(cd "$OUT_DIR" && pwd)
  keep_work=1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/bench-reference.XXXXXX")
  keep_work=0
fi
server_pid=""
load_pid=""

# stop_server: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      note "server $server_pid did not stop within ${STOP_TIMEOUT}s of SIGTERM: killing it"
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$load_pid" ] && kill -0 "$load_pid" 2>/dev/null; then
    kill -TERM "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
  fi
  stop_server
  if [ "$keep_work" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- chatspec ---------------------------------------------------------------------
if [ -n "${BIN:-}" ]; then
  [ -x "$BIN" ] || die 2 "BIN=$BIN is not an executable"
else
  command -v go >/dev/null 2>&1 || die 2 "go is not installed: install Go, or set BIN to a built chatspec"
  BIN=$work/chatspec
  note "building chatspec into $BIN"
  go build -o "$BIN" ./cmd/chatspec || die 2 "go build ./cmd/chatspec failed"
fi

# --- helpers ------------------------------------------------------------------------
# cpu_ticks PID: utime+stime of the whole process (every thread), in clock ticks.
cpu_ticks() {
  local stat f
  stat=$(cat "/proc/$1/stat") || return 1
  # The command name (field 2) may hold spaces and parentheses: skip past its
  # last ')'. Then f[0] is field 3 (state), so utime (14) is f[11], stime f[12].
  read -r -a f <<<"${stat##*) }"
  echo $((f[11] + f[12]))
}
# status_kb PID FIELD: a kB figure of /proc/PID/status (VmRSS, VmHWM).
status_kb() {
  awk -v k="$2:" '$1 == k { print $2; found = 1 } END { if (!found) exit 1 }' "/proc/$1/status"
}

# start_server NAME LOGPREFIX: starts it on CPU 0, sets server_pid and
# server_url, or exits 2 when it does not print its listening line.
start_server() {
  local name=$1 log=$2
  case "$name" in
    reference)
      # shellcheck disable=SC2086 # REFERENCE_ARGS is a list of words
      taskset -c 0 "$BIN" serve --addr 127.0.0.1:0 --history-limit "$HISTORY_LIMIT" $REFERENCE_ARGS \
        >"$log.stdout" 2>"$log.stderr" &
      ;;
    node)
      taskset -c 0 node "$NODE_DIR/server.js" --port 0 --history-limit "$HISTORY_LIMIT" \
        >"$log.stdout" 2>"$log.stderr" &
      ;;
  esac
  server_pid=$!
  server_url=""
  local i
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    # reference: "chatspec serve: listening on URL"; node: "listening URL".
    server_url=$(awk '/listening/ { print $NF; exit }' "$log.stdout" 2>/dev/null) || true
    [ -n "$server_url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" 2>/dev/null || true
      server_pid=""
      die 2 "the $name server exited before listening; its stderr:
$(tail -n 20 "$log.stderr")"
    fi
    sleep 0.1
  done
  if [ -z "$server_url" ]; then
    die 2 "the $name server did not print its listening line within ${START_TIMEOUT}s; its stderr:
$(tail -n 20 "$log.stderr")"
  fi
  case "$server_url" in
    http://127.0.0.1:*) ;;
    *) die 2 "the $name server listens on $server_url, not on 127.0.0.1" ;;
  esac
}

# summary_fields FILE: "delivered lost fanout_p50_ms fanout_p99_ms saturated ended".
summary_fields() {
  if [ "$JSON" = jq ]; then
    jq -r '[.messages.delivered, .messages.lost, .latency_ms.fanout.p50,
            .latency_ms.fanout.p99, .generator.saturated, .ended] | map(tostring) | join(" ")' "$1"
  else
    python3 - "$1" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
f = s["latency_ms"]["fanout"]
vals = [s["messages"]["delivered"], s["messages"]["lost"], f["p50"], f["p99"],
        "true" if s["generator"]["saturated"] else "false", s["ended"]]
print(" ".join(str(v) for v in vals))
EOF
  fi
}

# --- the runs -------------------------------------------------------------------------
SERVERS="reference node"
declare -A R # R[level,server,field]
notes=()
missing=0
runs=$(($(wc -w <<<"$LEVELS") * 2))
run=0
for level in $LEVELS; do
  for srv in $SERVERS; do
    run=$((run + 1))
    dir=$work/$level-$srv
    mkdir -p "$dir"
    start_server "$srv" "$dir/server"
    rss_idle=$(status_kb "$server_pid" VmRSS)
    note "[$run/$runs] $level users, $srv ($server_url, pid $server_pid): load for about $((ramp_s + dur_s + 5)) s"

    t0=$(cpu_ticks "$server_pid")
    set +e
    timeout -k 10 "$LOAD_TIMEOUT" taskset -c 1 "$BIN" load --target "$server_url" \
      --users "$level" --ramp "$RAMP" --duration "$DURATION" --message-interval "$MESSAGE_INTERVAL" \
      --transport websocket --seed "$SEED" --progress off --report-dir "$dir" \
      >"$dir/load.out" 2>&1 &
    load_pid=$!
    wait "$load_pid"
    load_rc=$?
    load_pid=""
    set -e
    alive=1
    if t1=$(cpu_ticks "$server_pid" 2>/dev/null) && rss_peak=$(status_kb "$server_pid" VmHWM 2>/dev/null); then
      :
    else
      alive=0
    fi
    stop_server

    if [ "$alive" = 0 ]; then
      notes+=("$level users, $srv: the server died during the load run (its stderr: $dir/server.stderr); no CPU or memory figures")
      R[$level,$srv,cpu]=-
      R[$level,$srv,rss]=-
    else
      R[$level,$srv,cpu]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
      R[$level,$srv,rss]=$(awk -v a="$rss_idle" -v b="$rss_peak" 'BEGIN { printf "%.0f/%.0f", a / 1024, b / 1024 }')
    fi
    case "$load_rc" in
      0 | 1) ;; # 1: chatspec's correctness gate saw losses or errors: still a measurement
      3) notes+=("$level users, $srv: the load run ended early (chatspec load exit 3; $dir/load.out)") ;;
      124 | 137) notes+=("$level users, $srv: the load run exceeded ${LOAD_TIMEOUT}s and was killed") ;;
      *) notes+=("$level users, $srv: chatspec load exited $load_rc ($dir/load.out)") ;;
    esac
    fields=""
    if [ -s "$dir/summary.json" ]; then
      fields=$(summary_fields "$dir/summary.json") || fields=""
    fi
    if [ -n "$fields" ]; then
      read -r delivered lost p50 p99 saturated ended <<<"$fields"
      R[$level,$srv,delivered]=$delivered
      R[$level,$srv,lost]=$lost
      R[$level,$srv,p50]=$p50
      R[$level,$srv,p99]=$p99
      if [ "$saturated" = true ]; then
        notes+=("$level users, $srv: the generator reports itself saturated: latencies are the generator's as much as the server's")
      fi
      if [ "$ended" != completed ]; then
        notes+=("$level users, $srv: the run ended '$ended', not 'completed'")
      fi
    else
      missing=1
      notes+=("$level users, $srv: no readable summary.json (tail of the load output: $(tail -n 3 "$dir/load.out" | tr '\n' ' '))")
      for k in delivered lost p50 p99; do R[$level,$srv,$k]=-; done
    fi
    # deliveries per server CPU-second
    R[$level,$srv,dpc]=$(awk -v d="${R[$level,$srv,delivered]}" -v c="${R[$level,$srv,cpu]}" \
      'BEGIN { if (d == "-" || c == "-" || c + 0 == 0) print "-"; else printf "%.0f", d / c }')
  done
done

# --- the table ---------------------------------------------------------------------------
echo
echo "chatspec load: each user one message every $MESSAGE_INTERVAL on average (Poisson) for $DURATION after a $RAMP ramp, WebSocket;"
echo "server on CPU 0, generator on CPU 1; history limit $HISTORY_LIMIT on both; node = $NODE_DIR/server.js"
echo
fmt="%-6s %-10s %10s %8s %10s %10s %8s %11s %14s\n"
# shellcheck disable=SC2059 # fmt is the table's one format, on purpose
printf "$fmt" users server delivered lost "p50 ms" "p99 ms" "cpu s" "deliv/cpu-s" "RSS MiB idle/peak"
for level in $LEVELS; do
  for srv in $SERVERS; do
    # shellcheck disable=SC2059
    printf "$fmt" "$level" "$srv" "${R[$level,$srv,delivered]}" "${R[$level,$srv,lost]}" \
      "${R[$level,$srv,p50]}" "${R[$level,$srv,p99]}" "${R[$level,$srv,cpu]}" \
      "${R[$level,$srv,dpc]}" "${R[$level,$srv,rss]}"
  done
done
echo
for level in $LEVELS; do
  ratio=$(awk -v a="${R[$level,reference,dpc]}" -v b="${R[$level,node,dpc]}" \
    'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }')
  lower=$(awk -v a="${R[$level,reference,p99]}" -v b="${R[$level,node,p99]}" \
    'BEGIN { if (a == "-" || b == "-") print "unknown"; else if (a + 0 < b + 0) print "yes"; else print "no" }')
  echo "$level users: deliveries per server CPU-second, reference/node = $ratio; reference fan-out p99 < node's: $lower (${R[$level,reference,p99]} ms vs ${R[$level,node,p99]} ms)"
done
if [ ${#notes[@]} -gt 0 ]; then
  echo
  for n in "${notes[@]}"; do echo "note: $n"; done
fi
if [ "$keep_work" = 1 ]; then
  echo
  echo "reports, load output and server logs: $work"
fi
[ "$missing" = 0 ] || exit 1
exit 0
