#!/usr/bin/env bash
# Soak benchmark ('make soak'): a broker with a short retention on a small file system takes a
# steady rate of 1 KiB messages for SOAK_DURATION while a consumer group reads along; the
# report shows whether disk use stays bounded, throughput stays flat and the broker's memory
# stays flat. Not part of 'make test'.
#
# As root the data directory is a loop-mounted ext4 file system of SOAK_DISK_MIB (a tmpfs if
# that fails), so the broker's disk guard sees a small disk; otherwise a plain directory on the
# host's file system, which is logged.
#
# Settings (environment):
#   SOAK_DURATION   how long messages are sent (10m)
#   SOAK_RATE       messages a second (1500: about 1 GB in 10 minutes, four times the disk)
#   SOAK_SIZE       message body bytes (1024)
#   SOAK_RETENTION  the broker's --file-reserved-time (1m; deletion is allowed at every hour;
#                   0: nothing is deleted by age)
#   SOAK_DISK_MIB   size of the file system for the data directory (256; 0: no file system of
#                   its own, the data directory is on the host's)
#   SOAK_FLUSH      sync or async (sync)
#   SOAK_EVERY      report interval (10s)
#   SOAK_PORT       the name server's port; the broker's is 1035 above it (29876)
#   SOAK_GCTRACE    1: run the broker with GODEBUG=gctrace=1 (its GC lines go to its log)
#   SOAK_WORK       directory for the logs (a new one under /tmp)
#   BIN             the sluice binary (bin/sluice)
set -euo pipefail

duration=${SOAK_DURATION:-10m}
rate=${SOAK_RATE:-1500}
size=${SOAK_SIZE:-1024}
retention=${SOAK_RETENTION:-1m}
disk_mib=${SOAK_DISK_MIB:-256}
flush=${SOAK_FLUSH:-sync}
every=${SOAK_EVERY:-10s}
ns_port=${SOAK_PORT:-29876}
br_port=$((ns_port + 1035))
bin=${BIN:-bin/sluice}
work=${SOAK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-soak.XXXXXX")}
mkdir -p "$work"
mnt=$work/mnt
data=$mnt/sluice
mkdir -p "$mnt"

[ -x "$bin" ] || { echo "soak: $bin not found; run 'make build' first" >&2; exit 1; }

mounted=""
broker=""
cleanup() {
	if [ -n "$broker" ] && kill -0 "$broker" 2>/dev/null; then
		kill -INT "$broker" 2>/dev/null || true
		wait "$broker" 2>/dev/null || true
	fi
	if [ -n "$mounted" ]; then
		umount "$mnt" 2>/dev/null || umount -l "$mnt" || echo "soak: could not unmount $mnt" >&2
	fi
	rm -f "$work/disk.img"
	rm -rf "$mnt"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$disk_mib" = 0 ]; then
	echo "soak: SOAK_DISK_MIB=0: data directory $data on the host's file system"
elif [ "$(id -u)" = 0 ]; then
	if truncate -s "${disk_mib}M" "$work/disk.img" && mkfs.ext4 -q -F "$work/disk.img" &&
		mount -o loop "$work/disk.img" "$mnt"; then
		mounted="ext4 (loop)"
	elif rm -f "$work/disk.img" && mount -t tmpfs -o "size=${disk_mib}m" tmpfs "$mnt"; then
		mounted="tmpfs"
	fi
fi
if [ -n "$mounted" ]; then
	echo "soak: data directory $data on a $disk_mib MiB $mounted file system"
elif [ "$disk_mib" != 0 ]; then
	echo "soak: note: cannot mount a small file system (not root, or mount failed): data directory $data is on the host's file system, so the disk-pressure rule (75% full) sees the host disk, not $disk_mib MiB"
fi

all_hours=$(seq -s';' 0 23)
echo "soak: broker: sluice dev --flush $flush --file-reserved-time $retention --delete-when <every hour>; log $work/broker.log"
env ${SOAK_GCTRACE:+GODEBUG=gctrace=$SOAK_GCTRACE} "$bin" dev --data "$data" \
	--namesrv-addr "127.0.0.1:$ns_port" --broker-addr "127.0.0.1:$br_port" --vip-addr off \
	--flush "$flush" --file-reserved-time "$retention" --delete-when "$all_hours" \
	--log-level info >"$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do
	grep -q "press Ctrl-C" "$work/broker.log" && break
	kill -0 "$broker" 2>/dev/null || { echo "soak: the broker exited:" >&2; cat "$work/broker.log" >&2; exit 1; }
	sleep 0.1
done

status=0
"$bin" bench --namesrv "127.0.0.1:$ns_port" --rate "$rate" --duration "$duration" --report-every "$every" \
	--size "$size" --broker-pid "$broker" --data-dir "$data" | tee "$work/bench.log" || status=$?

hwm=$(awk '/^VmHWM:/ {printf "%.1fMiB", $2/1024}' "/proc/$broker/status" 2>/dev/null || true)
kill -INT "$broker"
wait "$broker" || { echo "soak: the broker exited with status $?" >&2; status=1; }
broker=""

log=$work/broker.log
runs=$(grep -c 'msg="retention removed old messages"' "$log" || true)
forced=$(grep 'msg="retention removed old messages"' "$log" | grep -c 'forced=true' || true)
refusals=$(grep -ci 'disk.*full\|no space' "$log" || true)
errors=$(grep -c 'level=ERROR' "$log" || true)
echo "broker: peak RSS (VmHWM) ${hwm:-unknown}; retention ran $runs times ($forced forced by disk pressure); $refusals log lines about a full disk; $errors ERROR lines"
echo "soak: logs in $work (broker.log, bench.log)"
exit $status
