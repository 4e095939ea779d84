#!/usr/bin/env bash
# Runs one chatspec load plan as N shards on this machine, then merges them.
#
#   examples/shards/run-local.sh TARGET_URL N [chatspec load flags...]
#   examples/shards/run-local.sh http://127.0.0.1:3000 4 \
#       --users 2000 --ramp 20s --duration 1m --message-interval 30s
#
# The load flags (the plan, --threshold, ...) are the whole run's and go to
# every shard unchanged; shard I runs users I, I+N, I+2N... The merge gates
# on the shards' --threshold flags (default: the correctness gate).
#
# Environment:
#   CHATSPEC             the chatspec binary (default: chatspec on PATH)
#   OUT                  report root (default: ./chatspec-shards-RUN_ID):
#                        OUT/shard-I (and shard-I.log) per shard, OUT/merged
#   START_DELAY          seconds from now to the shared start (default 10):
#                        every shard must be running before it
#   SEED                 the plan's seed (default: random); the same on all shards
#   CHATSPEC_RUN_SECRET  the shared secret (default: a fresh random one)
#
# Exit code: the merge's (0 pass, 1 a threshold crossed, 2 shards not of one
# run or missing, 3 a shard ended early, 4 I/O); if a shard failed before
# writing its results (no shard.json), that shard's exit code, unmerged; 2
# for a usage error of this script.
#
# On N machines instead (one shard each, their clocks synchronised by NTP),
# run the same load command on each host with the same RUN_ID, SEED, START
# and secret, the secret on stdin so that it stays out of process lists:
#
#   for i in $(seq 0 $((N - 1))); do
#     ssh "${HOSTS[i]}" "read -r CHATSPEC_RUN_SECRET && export CHATSPEC_RUN_SECRET &&
#       chatspec load --target $TARGET --shard $i/$N --run-id $RUN_ID --seed $SEED \
#         --start-at $START --report-dir shard-$i $*" <<<"$CHATSPEC_RUN_SECRET" &
#   done; wait
#   for i in ...; do scp -r "${HOSTS[i]}:shard-$i" "$OUT/"; done
#   chatspec merge --report-dir "$OUT/merged" "$OUT"/shard-*
set -euo pipefail

usage() {
	echo "usage: $0 TARGET_URL N [chatspec load flags...]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
target=$1 n=$2
shift 2
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "$0: N must be a positive whole number, not '$n'" >&2; usage; }
for arg in "$@"; do
	case $arg in
	-shard | -shard=* | --shard | --shard=* | -report-dir | -report-dir=* | --report-dir | --report-dir=* | \
		-start-at | -start-at=* | --start-at | --start-at=* | -target | -target=* | --target | --target=*)
		echo "$0: ${arg%%=*} is set by this script (see its header)" >&2
		exit 2
		;;
	esac
done
chatspec=${CHATSPEC:-chatspec}
command -v "$chatspec" >/dev/null || { echo "$0: '$chatspec' not found (set CHATSPEC=path/to/chatspec)" >&2; exit 2; }

random_hex() { # $1 bytes of randomness, as lowercase hex
	openssl rand -hex "$1" 2>/dev/null || od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}
run_id=r$(random_hex 4)
seed=${SEED:-$((16#$(random_hex 4) + 1))}
# --seed 0 means "draw one": each shard would draw its own.
[[ $seed =~ ^[1-9][0-9]*$ ]] || { echo "$0: SEED must be a positive whole number, not '$seed'" >&2; exit 2; }
export CHATSPEC_RUN_SECRET=${CHATSPEC_RUN_SECRET:-$(random_hex 16)}
delay=${START_DELAY:-10}
# RFC 3339 in UTC: GNU date, else BSD/macOS date.
start=$(date -u -d "+$delay sec" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v+"$delay"S +%Y-%m-%dT%H:%M:%SZ)
out=${OUT:-./chatspec-shards-$run_id}
mkdir -p "$out"

echo "run $run_id: $n shards against $target, seed $seed, start $start, reports in $out"

# Each shard in its own process group (job control on), so that a Ctrl-C
# reaches the script only and is passed on once: a second SIGINT would make
# chatspec stop without writing its results.
set -m
pids=()
for ((i = 0; i < n; i++)); do
	"$chatspec" load --target "$target" --shard "$i/$n" --run-id "$run_id" --seed "$seed" \
		--start-at "$start" --report-dir "$out/shard-$i" "$@" >"$out/shard-$i.log" 2>&1 &
	pids+=($!)
done
set +m
stop() {
	echo "$0: stopping the shards (they write what they measured)" >&2
	kill -INT "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM

failed=() # "index:code" of shards that exited non-zero
for ((i = 0; i < n; i++)); do
	while :; do
		if wait "${pids[i]}"; then rc=0; else rc=$?; fi
		# A trapped signal ends wait early (code > 128): wait again.
		if ((rc > 128)) && kill -0 "${pids[i]}" 2>/dev/null; then continue; fi
		break
	done
	if ((rc != 0)); then
		failed+=("$i:$rc")
		echo "$0: shard $i/$n exited with code $rc; the end of $out/shard-$i.log:" >&2
		tail -n 15 "$out/shard-$i.log" | sed 's/^/    /' >&2
	fi
done
trap - INT TERM

# A shard without shard.json left nothing to merge: stop with its code.
for f in ${failed[@]+"${failed[@]}"}; do
	i=${f%%:*} rc=${f#*:}
	if [ ! -f "$out/shard-$i/shard.json" ]; then
		echo "$0: shard $i/$n failed before writing its results: not merging (exit $rc)" >&2
		exit "$rc"
	fi
done

dirs=()
for ((i = 0; i < n; i++)); do dirs+=("$out/shard-$i"); done
if "$chatspec" merge --report-dir "$out/merged" "${dirs[@]}"; then rc=0; else rc=$?; fi
if ((rc == 0 && ${#failed[@]} > 0)); then
	# The merge passed, yet a shard reported a failure: do not pass the run.
	rc=${failed[0]#*:}
	echo "$0: the merge passed but shard ${failed[0]%%:*} exited with code $rc" >&2
fi
exit "$rc"
