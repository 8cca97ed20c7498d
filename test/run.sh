#!/bin/sh
# `npm test`: typecheck, knip (unused files, exports, dependencies), then every test with vitest.
# Arguments go to vitest (`npm test -- test/server` runs one folder).
#
# Run as root, the tests start parts of Upkeep as the unprivileged user nobody, from this
# checkout. A clone in /root or in a `mktemp -d` folder is closed to nobody (a folder above it is
# 0700). Then the suite runs from a view of the checkout nobody can reach instead: a bind mount
# at ALIAS, made in a mount namespace of the suite's own, so it goes away with the suite and no
# folder's mode on the machine changes.
set -eu
ALIAS=/var/lib/upkeep-tests/checkout

reachable() {
  setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$1/package.json"
}

if [ "$(id -u)" = 0 ] && [ -z "${UPKEEP_TEST_VIEW:-}" ] && ! reachable "$PWD"; then
  # Root's folders only: /var/lib is root's, and so is what is made below it.
  install -d -m 0755 /var/lib/upkeep-tests "$ALIAS"
  echo "npm test: nobody cannot reach $PWD; running from a view of it at $ALIAS (a bind mount only this run sees)" >&2
  # shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
  exec unshare --mount --propagation private -- env UPKEEP_TEST_VIEW="$PWD" sh -c '
    mount --bind "$1" "$2" && cd "$2" && shift 2 && exec sh test/run.sh "$@"' view "$PWD" "$ALIAS" "$@"
fi

node_modules/.bin/tsc --noEmit
node_modules/.bin/knip --no-progress
exec node_modules/.bin/vitest run "$@"
