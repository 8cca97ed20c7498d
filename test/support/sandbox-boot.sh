#!/bin/sh
# Boots one systemd sandbox; started by sandbox.ts as
#   unshare --mount --propagation private -- sh sandbox-boot.sh [systemd-nspawn option...]
# so the overlay, its upper layer and /run/systemd mounted here exist only in this mount
# namespace and disappear with it, however it ends (poweroff, SIGKILL, the test process dying).
#
# Environment (set by sandbox.ts):
#   STATE    the instance's directory: seed/ (files for a fresh upper layer), ovl/ and root/
#            (mount points), nspawn.pid (written here)
#   NAME     machine name (the container's hostname)
#   TARGET   unit to boot into
#   PERSIST  a host directory keeping upper/ and work/ across crash + boot, or empty for a tmpfs
#   CGROUPS  cgroup directories (one per mounted hierarchy) this instance's processes live in
#   OWNER    "PID STARTTIME" of the test process; the container is powered off when it is gone
set -eu

# Everything started from here lands in the instance's own cgroups, so teardown finds it all.
for cg in $CGROUPS; do echo $$ > "$cg/cgroup.procs"; done

if [ -n "$PERSIST" ]; then
    mount --bind "$PERSIST" "$STATE/ovl"
else
    mount -t tmpfs -o mode=755 upkeep-sandbox "$STATE/ovl"
fi
mkdir -p "$STATE/ovl/upper" "$STATE/ovl/work"
# A fresh disk gets the seed (machine id, masks); a persisted one keeps what the last boot left.
[ -e "$STATE/ovl/upper/etc/machine-id" ] || cp -a "$STATE/seed/." "$STATE/ovl/upper/"
mount -t overlay upkeep-sandbox -o "lowerdir=/,upperdir=$STATE/ovl/upper,workdir=$STATE/ovl/work" "$STATE/root"
# systemd-nspawn keeps per-container state under /run/systemd/nspawn: keep it in this namespace.
mkdir -p /run/systemd
mount -t tmpfs -o mode=755 upkeep-sandbox-run /run/systemd

# --register=no/--keep-unit: no machined or host systemd is needed (the host's PID 1 may not be systemd).
systemd-nspawn --quiet --boot --directory="$STATE/root" --machine="$NAME" \
    --register=no --keep-unit --link-journal=no --console=passive --timezone=off \
    "$@" -- "systemd.unit=$TARGET" systemd.show_status=0 &
nspawn=$!
echo "$nspawn" > "$STATE/nspawn.pid"

alive() { # alive PID STARTTIME: that very process still runs (not a recycled PID, not a zombie)
    [ "$(awk '{ sub(/^.*\) /, ""); if ($1 != "Z" && $1 != "X") print $20 }' "/proc/$1/stat" 2>/dev/null)" = "$2" ]
}
# A test process that dies without tearing down (SIGKILL, a crash) must not leave a container
# running: power it off (SIGTERM = orderly shutdown for nspawn), then kill it. The watchdog ends
# by itself once nspawn is gone, so nothing of ours is ever orphaned (orphans become zombies
# where the host's PID 1 does not reap them).
(
    set +e
    while kill -0 "$nspawn" 2>/dev/null; do
        if ! alive "${OWNER% *}" "${OWNER#* }"; then
            kill -TERM "$nspawn" 2>/dev/null
            i=0
            while kill -0 "$nspawn" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
            kill -KILL "$nspawn" 2>/dev/null
            exit 0
        fi
        sleep 0.2
    done
) &
watchdog=$!

status=0
wait "$nspawn" || status=$?
wait "$watchdog" || true
exit "$status"
