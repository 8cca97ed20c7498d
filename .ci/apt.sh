# shellcheck shell=bash
# apt-get for the CI scripts (sourced by .ci/install-packages): waits for another apt or dpkg
# instead of failing. A fresh machine often runs apt-daily or unattended-upgrades at boot.
# DPkg::Lock::Timeout (apt >= 1.9.11) makes apt wait for the dpkg lock, but not for the lock of
# the package lists (`apt-get update`) nor of the download cache: apt_get retries those itself.

APT=(apt-get -o DPkg::Lock::Timeout=600)
APT_LOCK_WAIT=600 # seconds, as DPkg::Lock::Timeout

# apt_get ARG...: "${APT[@]}" ARG..., its output shown; retried every 5 s for up to
# APT_LOCK_WAIT seconds while it fails because another process holds one of apt's locks.
apt_get() {
  local deadline=$((SECONDS + APT_LOCK_WAIT)) log rc
  log=$(mktemp)
  while :; do
    rc=0
    LC_ALL=C "${APT[@]}" "$@" 2>&1 | tee "$log" || rc=$?
    if [ "$rc" -eq 0 ] || ! grep -q 'Could not get lock' "$log" || [ "$SECONDS" -ge "$deadline" ]; then
      rm -f "$log"
      return "$rc"
    fi
    printf '  another apt or dpkg holds a lock; waiting (%ss left)\n' "$((deadline - SECONDS))"
    sleep 5
  done
}
