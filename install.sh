#!/bin/sh
# Upkeep installer: installs Upkeep on a Linux server as systemd units, run as root.
#
#   sudo sh install.sh [--repo URL] [--ref vX.Y.Z] [--dir DIR] [--port PORT] [options]
#
# It checks the system, creates the service user "upkeep", clones the repository (or uses the
# checkout this script sits in), builds the release as that user into DIR/.upkeep/releases/<tag>,
# points DIR/current at it, renders the units in deploy/ into /etc/systemd/system, starts them and
# waits until /api/health answers. Every step is announced and idempotent: running it again
# changes nothing that is already right, and says so. `--help` lists the options.
#
# Environment overrides (a command-line option wins):
#   UPKEEP_DIR, UPKEEP_REPO, UPKEEP_REF, UPKEEP_PORT, UPKEEP_HOST, UPKEEP_UPDATE_REPO, UPKEEP_NODE
#                            the same as --dir, --repo, --ref, --port, --host, --update-repo, --node
#   UPKEEP_ADMIN_PASSWORD    initial admin password, stored in /etc/upkeep/upkeep.env (mode 0600)
#   UPKEEP_HEALTH_TIMEOUT    seconds to wait for /api/health (default 60)
#
# Everything happens inside main(), called on the last line: a truncated download runs nothing.
set -eu

USAGE='Usage: sudo sh install.sh [options]

Installs Upkeep as systemd units (upkeep.socket, upkeep.service, upkeep-updater.path,
upkeep-updater.service, upkeep-recover.service) and starts it. Safe to run again: it changes
only what is not already right. Run as root on a system whose service manager is systemd.

Options:
  --repo URL           git repository to clone (default: the origin of the checkout this
                       script sits in)
  --ref vX.Y.Z         release tag to install (default: the latest vX.Y.Z tag; when Upkeep is
                       already installed, the installed one)
  --dir DIR            where Upkeep lives (default: the checkout this script sits in when it is
                       outside home and temp directories, else /opt/upkeep; when installed, the
                       installed one)
  --port PORT          TCP port to serve on (default 8080; when installed, the installed one)
  --host ADDR          IP address to listen on (default 127.0.0.1; 0.0.0.0 for all IPv4)
  --update-repo OWNER/NAME
                       GitHub repository to check for releases, pinned in
                       /etc/systemd/system/upkeep.service.d/update-repo.conf ("" removes it;
                       default: keep what is there, else the server uses the checkout origin)
  --node PATH          node binary the units run (default: node on PATH; needs >= 20.19)
  --release-key FILE   pin FILE, the OpenSSH public key (.pub) that Upkeep releases are signed
                       with, in /etc/upkeep/apps/upkeep.allowed_signers: updates then install
                       the signed release artifacts (when none is pinned yet; later changes:
                       upkeep app trust upkeep)
  --dry-run            print what would change; change nothing
  --uninstall          stop and remove the units and the code; keep data/ and backups/
  --purge              with --uninstall: also delete data/, backups/, /etc/upkeep and the user
  -h, --help           show this help

Environment: UPKEEP_DIR, UPKEEP_REPO, UPKEEP_REF, UPKEEP_PORT, UPKEEP_HOST, UPKEEP_UPDATE_REPO,
UPKEEP_NODE (as the options), UPKEEP_ADMIN_PASSWORD (initial admin password, kept in
/etc/upkeep/upkeep.env), UPKEEP_HEALTH_TIMEOUT (seconds, default 60).

Examples:
  sudo sh install.sh --repo https://github.com/OWNER/upkeep.git
  sudo sh install.sh --port 9090 --update-repo OWNER/upkeep   # change settings of an install
  sudo sh install.sh --uninstall'

SVC_USER=upkeep
UNIT_DIR=/etc/systemd/system
ENV_DIR=/etc/upkeep
STATE_ROOT=/var/lib/upkeep-apps
MIN_FREE_MB=1024
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

STEP=0
STEPS=8
STEP_TITLE=
CHANGES=0
REPORTED=
RESTART_SERVER=
INSTALLED_TAG=
HAS_UPDATER=yes
HAS_RECOVER=yes
KEPT_DATA=

# ---------------------------------------------------------------------------------- output

say() { printf '%s\n' "$*"; }
step() {
    STEP=$((STEP + 1))
    STEP_TITLE=$1
    printf '\nStep %d/%d: %s\n' "$STEP" "$STEPS" "$1"
}
ok() { printf '  ok: %s\n' "$*"; }
info() { printf '  %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
# err MESSAGE [HINT...]: says what went wrong and what to do, then stops.
err() {
    printf 'install.sh: error: %s\n' "$1" >&2
    shift
    for hint in "$@"; do printf '  %s\n' "$hint" >&2; done
    REPORTED=1
    exit 1
}
need_cmd() { # need_cmd CMD HINT
    command -v "$1" >/dev/null 2>&1 || err "'$1' is needed but not found" "$2"
}
# act DESCRIPTION: counts a change; in a dry run prints it and returns 1 so the caller skips it.
act() {
    CHANGES=$((CHANGES + 1))
    if [ -n "$DRY_RUN" ]; then
        printf '  would: %s\n' "$1"
        return 1
    fi
    printf '  + %s\n' "$1"
}

on_exit() {
    status=$?
    if [ "$status" -ne 0 ] && [ -z "$REPORTED" ]; then
        printf '\ninstall.sh: failed during step %d/%d (%s), exit status %d; see the output above.\n' \
            "$STEP" "$STEPS" "$STEP_TITLE" "$status" >&2
        printf '  Fix the problem and run install.sh again: steps already done are kept.\n' >&2
    fi
}

# ---------------------------------------------------------------------------------- helpers

# as_user DIR CMD...: runs CMD as the service user in DIR (git and npm never run as root).
as_user() {
    (cd "$1" && shift && runuser -u "$SVC_USER" -- "$@")
}

valid_path() { # absolute, and only characters a unit file takes without quoting
    case $1 in
        /*) ;;
        *) return 1 ;;
    esac
    case $1 in
        *[!A-Za-z0-9._/-]* | */../* | */.. | */./* | */.) return 1 ;;
    esac
    return 0
}

# Directories the units' sandbox hides or empties (ProtectHome=, PrivateTmp=): code run by the
# units cannot live there.
hidden_by_sandbox() {
    case $1/ in
        /home/* | /root/* | /run/user/* | /tmp/* | /var/tmp/*) return 0 ;;
    esac
    return 1
}

is_ip() {
    printf '%s' "$1" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$' && return 0
    case $1 in
        *:*) printf '%s' "$1" | grep -Eq '^[0-9A-Fa-f:.]+$' && return 0 ;;
    esac
    return 1
}

is_release_tag() {
    printf '%s' "$1" | grep -Eq '^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
}

is_repo_name() { # GitHub owner/name
    printf '%s' "$1" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$' || return 1
    case ${1#*/} in . | ..) return 1 ;; esac
    return 0
}

# The newest vMAJOR.MINOR.PATCH tag (no prereleases) among the tag names on stdin.
latest_release_tag() {
    grep -E '^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$' | sort -t. -k1.2,1n -k2,2n -k3,3n | tail -n 1
}

json_field() { # json_field FILE NAME: a top-level string field of a small JSON file
    sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$1" | head -n 1
}

unit_value() { # unit_value FILE KEY: the last KEY= value in a unit file
    sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n 1
}

listen_address() { # host port -> ListenStream= value
    case $1 in
        *:*) printf '[%s]:%s' "$1" "$2" ;;
        *) printf '%s:%s' "$1" "$2" ;;
    esac
}

health_url() { # where to reach the server from here
    h=$HOST
    case $h in
        0.0.0.0) h=127.0.0.1 ;;
        ::) h='[::1]' ;;
        *:*) h="[$h]" ;;
    esac
    printf 'http://%s:%s' "$h" "$PORT"
}

# ---------------------------------------------------------------------------------- options

parse_args() {
    OPT_DIR=${UPKEEP_DIR:-}
    OPT_REPO=${UPKEEP_REPO:-}
    OPT_REF=${UPKEEP_REF:-}
    OPT_PORT=${UPKEEP_PORT:-}
    OPT_HOST=${UPKEEP_HOST:-}
    OPT_NODE=${UPKEEP_NODE:-}
    OPT_RELEASE_KEY=
    OPT_UPDATE_REPO_SET=
    OPT_UPDATE_REPO=
    if [ -n "${UPKEEP_UPDATE_REPO+set}" ]; then OPT_UPDATE_REPO_SET=1 OPT_UPDATE_REPO=$UPKEEP_UPDATE_REPO; fi
    DRY_RUN=
    UNINSTALL=
    PURGE=
    while [ $# -gt 0 ]; do
        opt=$1
        case $opt in
            --*=*)
                shift
                set -- "${opt%%=*}" "${opt#*=}" "$@"
                continue
                ;;
            --repo | --ref | --dir | --port | --host | --update-repo | --node | --release-key)
                [ $# -ge 2 ] || err "$opt needs a value" "See: sh install.sh --help"
                case $opt in
                    --repo) OPT_REPO=$2 ;;
                    --ref) OPT_REF=$2 ;;
                    --dir) OPT_DIR=$2 ;;
                    --port) OPT_PORT=$2 ;;
                    --host) OPT_HOST=$2 ;;
                    --node) OPT_NODE=$2 ;;
                    --release-key) OPT_RELEASE_KEY=$2 ;;
                    --update-repo) OPT_UPDATE_REPO_SET=1 OPT_UPDATE_REPO=$2 ;;
                esac
                shift 2
                continue
                ;;
            --dry-run) DRY_RUN=1 ;;
            --uninstall) UNINSTALL=1 ;;
            --purge) PURGE=1 ;;
            -h | --help)
                say "$USAGE"
                return 1
                ;;
            *) err "unknown option: $opt" "See: sh install.sh --help" ;;
        esac
        shift
    done
    if [ -n "$PURGE" ] && [ -z "$UNINSTALL" ]; then err "--purge only goes with --uninstall" "To remove everything: sh install.sh --uninstall --purge"; fi
    if [ -n "$OPT_REF" ] && ! is_release_tag "$OPT_REF"; then
        err "--ref '$OPT_REF' is not a release tag" "Release tags look like v1.4.0 (or v1.4.0-rc.1)."
    fi
    if [ -n "$OPT_PORT" ]; then
        case $OPT_PORT in '' | *[!0-9]*) err "--port '$OPT_PORT' is not a port number" "Use a number from 1 to 65535, e.g. --port 8080." ;; esac
        if [ "$OPT_PORT" -lt 1 ] || [ "$OPT_PORT" -gt 65535 ]; then err "--port $OPT_PORT is out of range" "Use a number from 1 to 65535, e.g. --port 8080."; fi
    fi
    if [ -n "$OPT_HOST" ] && ! is_ip "$OPT_HOST"; then
        err "--host '$OPT_HOST' is not an IP address" "Use an address such as 127.0.0.1 (local only, the default), 0.0.0.0 (all IPv4) or ::."
    fi
    if [ -n "$OPT_UPDATE_REPO" ] && ! is_repo_name "$OPT_UPDATE_REPO"; then
        err "--update-repo '$OPT_UPDATE_REPO' is not a GitHub repository name" "Use OWNER/NAME, e.g. --update-repo acme/upkeep (\"\" removes the setting)."
    fi
    if [ -n "$OPT_RELEASE_KEY" ]; then read_release_key "$OPT_RELEASE_KEY"; fi
    if [ -n "$OPT_DIR" ] && ! valid_path "$OPT_DIR"; then
        err "--dir '$OPT_DIR' is not a plain absolute path" "Use an absolute path of letters, digits and . _ - /, e.g. --dir /opt/upkeep."
    fi
    return 0
}

# read_release_key FILE: KEY_TYPE and KEY_BLOB of an OpenSSH public key (.pub), or stops.
read_release_key() {
    KEY_TYPE=
    KEY_BLOB=
    if [ ! -f "$1" ] || [ ! -r "$1" ]; then err "--release-key $1 cannot be read" "Pass the public half of Upkeep's release key, e.g. --release-key upkeep-release.pub"; fi
    read -r KEY_TYPE KEY_BLOB _ <"$1" || true
    case $KEY_TYPE in
        ssh-ed25519 | ssh-rsa | ecdsa-sha2-nistp256 | ecdsa-sha2-nistp384 | ecdsa-sha2-nistp521 | sk-ssh-ed25519@openssh.com | sk-ecdsa-sha2-nistp256@openssh.com) ;;
        *) err "--release-key $1 is not an OpenSSH public key" "Pass the .pub file: one line like 'ssh-ed25519 AAAA… comment' (never the private key)." ;;
    esac
    case $KEY_BLOB in '' | *[!A-Za-z0-9+/=]*) err "--release-key $1 is not an OpenSSH public key" "Pass the .pub file: one line like 'ssh-ed25519 AAAA… comment'." ;; esac
}

# pin_release_key FILE: the key Upkeep's signed releases are verified with, root's beside the apps'
# definitions. Pinned once: a key pinned already (maybe rotated since) is kept.
pin_release_key() {
    need_cmd ssh-keygen "Signed releases are verified with ssh-keygen: $PKG openssh-client"
    signers=$ENV_DIR/apps/upkeep.allowed_signers
    want=$(mktemp)
    printf '%s %s\n' "$KEY_TYPE" "$KEY_BLOB" >"$want"
    ssh-keygen -l -f "$want" >/dev/null 2>&1 || { rm -f "$want"; err "--release-key $1 is not a valid public key" "Check it: ssh-keygen -l -f $1"; }
    printf '# Keys pinned for this app (ssh-keygen allowed-signers format). Change with: upkeep app trust\nupkeep-release namespaces="upkeep-release,git" %s %s\n' "$KEY_TYPE" "$KEY_BLOB" >"$want"
    if cmp -s "$want" "$signers"; then
        ok "$signers pins the release key"
    elif grep -q '^[^#]' "$signers" 2>/dev/null; then
        warn "$signers already pins a release key; kept (change it with: upkeep app trust upkeep --key NEW.pub --signature NEW.pub.sig)"
    elif act "pin the release key in $signers (root's, mode 0644)"; then
        install -d -m 0755 "$ENV_DIR" "$ENV_DIR/apps"
        install -m 0644 "$want" "$signers"
    fi
    rm -f "$want"
}

# The checkout this script sits in, if it is run from one (not when piped from curl).
script_checkout() {
    case $0 in */*) ;; *) return 0 ;; esac
    [ -f "$0" ] || return 0
    d=$(cd "$(dirname "$0")" && pwd -P) || return 0
    if [ -d "$d/.git" ] && [ -f "$d/deploy/upkeep.service" ]; then printf '%s' "$d"; fi
}

# The origin URL of a checkout, read from its config file: root never runs git inside a
# checkout another user can write (its hooks and config could run code as root).
origin_of() {
    git config --file "$1/.git/config" --get remote.origin.url 2>/dev/null || true
}

# Settings of an existing install, used as defaults: a re-run keeps them.
read_installed() {
    INSTALLED_DIR=$(unit_value "$UNIT_DIR/upkeep.service" WorkingDirectory)
    listen=$(unit_value "$UNIT_DIR/upkeep.socket" ListenStream)
    INSTALLED_PORT=${listen##*:}
    INSTALLED_HOST=${listen%:*}
    INSTALLED_HOST=${INSTALLED_HOST#[}
    INSTALLED_HOST=${INSTALLED_HOST%]}
}

# What --uninstall leaves of an install, and a later install picks up: data/ and backups/ only
# (and EXTRA, another name allowed). True for an empty DIR too.
only_kept_data() { # only_kept_data DIR [EXTRA]
    [ -d "$1" ] && [ -z "$(find "$1" -mindepth 1 -maxdepth 1 ! -name data ! -name backups ! -name "${2:-data}" | head -n 1)" ]
}

in_checkout() { # in_checkout DIR FIND-ACTION...: find over DIR, but not into data/ and backups/
    ic_dir=$1
    shift
    find "$ic_dir" -xdev \( -path "$ic_dir/data/*" -o -path "$ic_dir/backups/*" \) -prune -o "$@"
}

# ---------------------------------------------------------------------------------- install

check_system() {
    step "Checking this system"
    [ "$(id -u)" = 0 ] || err "install.sh must run as root (it creates a user and systemd units)" "Run: sudo sh $0 $*"
    os="unknown Linux"
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        os=$(. /etc/os-release && printf '%s' "${PRETTY_NAME:-${NAME:-Linux} ${VERSION_ID:-}}")
        # shellcheck disable=SC1091
        OS_ID=$(. /etc/os-release && printf '%s %s' "${ID:-}" "${ID_LIKE:-}")
    else
        OS_ID=
    fi
    case " $OS_ID " in
        *" debian "* | *" ubuntu "*) PKG="apt-get install -y" ;;
        *" fedora "* | *" rhel "* | *" centos "*) PKG="dnf install -y" ;;
        *" suse "* | *" opensuse "*) PKG="zypper install -y" ;;
        *" arch "*) PKG="pacman -S" ;;
        *) PKG="your package manager: install" ;;
    esac
    ok "$os"
    [ -d /run/systemd/system ] || err "systemd is not this system's service manager (no /run/systemd/system)" \
        "Upkeep installs as systemd units. Without systemd, run it by hand: npm ci && npm run build && node build/server.mjs"
    need_cmd systemctl "Upkeep needs systemd's systemctl."
    need_cmd git "Install git: $PKG git"
    need_cmd runuser "runuser comes with util-linux: $PKG util-linux"
    need_cmd useradd "useradd comes with the shadow tools: $PKG passwd"
    need_cmd df "df comes with coreutils."

    NODE=${OPT_NODE:-$(command -v node 2>/dev/null || true)}
    [ -n "$NODE" ] || err "node is not installed (Upkeep needs Node.js 20.19 or newer)" \
        "Install it system-wide, e.g. from https://nodejs.org or NodeSource's packages, or pass --node /path/to/node."
    [ -x "$NODE" ] || err "--node $NODE is not an executable" "Pass the full path of the node binary, e.g. --node /usr/bin/node."
    valid_path "$NODE" || err "node's path '$NODE' has characters a unit file cannot take" "Install node in a plain path such as /usr/bin/node."
    if hidden_by_sandbox "$(readlink -f "$NODE")"; then
        err "node ($NODE) lives in a home or temp directory, which the units cannot see (ProtectHome=, PrivateTmp=)" \
            "Install Node.js system-wide (e.g. /usr/bin/node or /usr/local/bin/node) and pass it with --node."
    fi
    node_version=$("$NODE" -p 'process.versions.node' 2>/dev/null) || err "$NODE does not run" "Check the node install: $NODE --version"
    "$NODE" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
        err "node $node_version is too old; Upkeep needs 20.19 or newer" "Install a current Node.js LTS (https://nodejs.org), then run install.sh again."
    NODE_DIR=$(dirname "$NODE")
    # The units and the build find npm and node next to the node they run.
    case ":$DEFAULT_PATH:" in
        *":$NODE_DIR:"*) UNIT_PATH=$DEFAULT_PATH ;;
        *) UNIT_PATH=$NODE_DIR:$DEFAULT_PATH ;;
    esac
    PATH=$NODE_DIR:$PATH
    export PATH
    need_cmd npm "npm comes with Node.js; install it next to $NODE ($PKG npm)."
    ok "node $node_version ($NODE), npm $(npm --version 2>/dev/null), $(git --version)"

    if systemctl is-active --quiet upkeep-updater.service 2>/dev/null; then
        err "an update is running right now (upkeep-updater.service)" \
            "Wait until it is done (journalctl -u upkeep-updater.service -f), then run install.sh again."
    fi

    # Where: --dir, else the installed one, else this checkout (if the units could run it), else /opt/upkeep.
    SELF=$(script_checkout)
    if [ -n "$OPT_DIR" ]; then
        DIR=$OPT_DIR
    elif [ -n "$INSTALLED_DIR" ]; then
        DIR=$INSTALLED_DIR
    elif [ -n "$SELF" ] && [ -z "$OPT_REPO" ] && valid_path "$SELF" && ! hidden_by_sandbox "$SELF"; then
        DIR=$SELF
    else
        DIR=/opt/upkeep
    fi
    DIR=${DIR%/}
    valid_path "$DIR" || err "install directory '$DIR' is not a plain absolute path" "Pass --dir /opt/upkeep."
    case $DIR in / | /usr | /usr/* | /etc | /etc/* | /var | /bin | /sbin | /lib | /lib64 | /boot | /boot/* | /proc/* | /sys/* | /dev/*)
        err "refusing to install into $DIR" "Pass a directory of its own, e.g. --dir /opt/upkeep." ;;
    esac
    if hidden_by_sandbox "$DIR"; then
        err "$DIR is in a home or temp directory, which the units cannot see (ProtectHome=, PrivateTmp=)" \
            "Install elsewhere, e.g. --dir /opt/upkeep (install.sh clones a copy there)."
    fi
    DATA_DIR=$DIR/data
    BACKUP_DIR=$DIR/backups
    PORT=${OPT_PORT:-${INSTALLED_PORT:-8080}}
    HOST=${OPT_HOST:-${INSTALLED_HOST:-127.0.0.1}}

    probe=$DIR
    while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
    free_mb=$(df -Pk "$probe" | awk 'NR == 2 { print int($4 / 1024) }')
    if [ ! -d "$DIR/.upkeep/releases" ] && [ "${free_mb:-0}" -lt "$MIN_FREE_MB" ]; then
        err "only ${free_mb} MiB free on the disk of $probe; installing needs about $MIN_FREE_MB MiB (dependencies, build, npm cache)" \
            "Free some space (df -h $probe) or install elsewhere with --dir."
    fi
    ok "installing into $DIR (${free_mb} MiB free), serving on $(listen_address "$HOST" "$PORT")"
}

ensure_user() {
    step "Creating the service user"
    if id -u "$SVC_USER" >/dev/null 2>&1; then
        SVC_HOME=$(getent passwd "$SVC_USER" | cut -d: -f6)
        ok "user $SVC_USER exists (home $SVC_HOME)"
    else
        SVC_HOME=/var/lib/$SVC_USER
        if act "create system user $SVC_USER (home $SVC_HOME, no login shell)"; then
            nologin=$(command -v nologin 2>/dev/null || echo /usr/sbin/nologin)
            useradd --system --user-group --home-dir "$SVC_HOME" --create-home --shell "$nologin" \
                --comment "Upkeep service" "$SVC_USER" || err "useradd $SVC_USER failed" "Create the user by hand (useradd --system $SVC_USER) and run install.sh again."
        fi
    fi
    valid_path "$SVC_HOME" || err "home of user $SVC_USER ('$SVC_HOME') is not a plain absolute path" "Set a home such as /var/lib/$SVC_USER: usermod -d /var/lib/$SVC_USER $SVC_USER"
    if hidden_by_sandbox "$SVC_HOME"; then
        err "home of user $SVC_USER is $SVC_HOME, which the updater cannot see (ProtectHome=)" "Move it: usermod -d /var/lib/$SVC_USER -m $SVC_USER"
    fi
    if [ -z "$DRY_RUN" ] || id -u "$SVC_USER" >/dev/null 2>&1; then
        if [ ! -d "$SVC_HOME" ]; then
            if act "create $SVC_HOME"; then install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$SVC_HOME"; fi
        fi
    fi
}

# Resolves TAG (and says why), fetching when needed. Runs in DIR, an existing checkout.
choose_tag_in_checkout() {
    if [ -n "$OPT_REF" ]; then
        TAG=$OPT_REF
    elif [ -n "$INSTALLED_TAG" ] && is_release_tag "$INSTALLED_TAG"; then
        TAG=$INSTALLED_TAG
        ok "keeping the installed $TAG (--ref vX.Y.Z installs another)"
    else
        TAG=$(as_user "$DIR" git tag --list 'v*' | latest_release_tag)
        if [ -z "$TAG" ] && act "fetch tags from origin"; then
            as_user "$DIR" git fetch --quiet --tags origin || err "git fetch from origin failed" "Check the network and the remote: git -C $DIR remote -v"
            TAG=$(as_user "$DIR" git tag --list 'v*' | latest_release_tag)
        fi
        [ -n "$TAG" ] || err "the repository has no release tags (vX.Y.Z)" "Pass one with --ref, or tag a release: git tag -a v1.0.0 -m v1.0.0"
        info "latest release: $TAG"
    fi
    if ! as_user "$DIR" git rev-parse --quiet --verify "refs/tags/$TAG" >/dev/null; then
        if act "fetch tags from origin ($TAG is not here yet)"; then
            as_user "$DIR" git fetch --quiet --tags origin || err "git fetch from origin failed" "Check the network and the remote: git -C $DIR remote -v"
            as_user "$DIR" git rev-parse --quiet --verify "refs/tags/$TAG" >/dev/null ||
                err "tag $TAG does not exist in $(as_user "$DIR" git remote get-url origin)" \
                    "Release tags there: $(as_user "$DIR" git tag --list 'v*' | sort -V | tail -n 5 | tr '\n' ' ')"
        fi
    fi
}

get_source() {
    step "Getting the source"
    if [ -L "$DIR/current" ]; then INSTALLED_TAG=$(basename "$(readlink "$DIR/current")"); fi
    if [ -d "$DIR/.git" ]; then
        origin=$(origin_of "$DIR")
        if [ -n "$OPT_REPO" ] && [ "$OPT_REPO" != "$origin" ]; then
            err "$DIR is a checkout of ${origin:-a repository without origin}, not of $OPT_REPO" \
                "Leave out --repo to keep using it, or choose another --dir."
        fi
        if [ "$DIR" = "$SELF" ]; then ok "using the checkout install.sh sits in: $DIR"; else ok "$DIR is a checkout of ${origin:-(no origin)}"; fi
        # git refuses to work in a checkout owned by someone else ("dubious ownership"). What is in
        # data/ and backups/ is not the checkout's: the root updater's files there (journal,
        # history, 0600 backups) stay root's.
        foreign=$DIR
        if id -u "$SVC_USER" >/dev/null 2>&1; then foreign=$(in_checkout "$DIR" ! -user "$SVC_USER" -print 2>/dev/null | head -n 1); fi
        if [ -n "$foreign" ] && act "hand $DIR to user $SVC_USER (e.g. $foreign is owned by $(stat -c %U "$foreign"))"; then
            # -h: a symbolic link is chowned itself, never what it points to.
            in_checkout "$DIR" -exec chown -h "$SVC_USER:$SVC_USER" {} +
            foreign=
        fi
        if [ -n "$foreign" ]; then # a dry run: git cannot be asked as $SVC_USER yet
            TAG=${OPT_REF:-${INSTALLED_TAG:-}}
            info "would then check out ${TAG:-the latest release tag}"
            TAG=${TAG:-latest}
            return 0
        fi
        choose_tag_in_checkout
        commit=$(as_user "$DIR" git rev-parse --quiet --verify "refs/tags/$TAG^{commit}" 2>/dev/null || true)
        head=$(as_user "$DIR" git rev-parse HEAD 2>/dev/null || true)
        if [ -n "$commit" ] && [ "$commit" = "$head" ]; then
            ok "checked out $TAG ($(printf '%.12s' "$commit"))"
        else
            dirty=$(as_user "$DIR" git status --porcelain --untracked-files=normal | head -n 5)
            if [ -n "$dirty" ]; then
                err "$DIR has local changes; checking out $TAG would mix them in or lose them:" "$dirty" \
                    "Commit or stash them first (git -C $DIR stash), then run install.sh again."
            fi
            if act "check out $TAG"; then
                as_user "$DIR" git -c advice.detachedHead=false checkout --quiet --detach "refs/tags/$TAG" ||
                    err "git checkout $TAG failed" "See the message above; the checkout is unchanged."
            fi
        fi
        return 0
    fi

    # What an earlier install kept is used; a clone an interrupted run left (see below) is redone.
    clone=$DIR/.upkeep-clone
    if [ -e "$DIR" ] && ! only_kept_data "$DIR" .upkeep-clone; then
        err "$DIR exists and is not a git checkout of Upkeep" "Choose another --dir, or move $DIR away."
    fi
    if [ -d "$DIR/data" ] || [ -d "$DIR/backups" ]; then
        KEPT_DATA=1
        ok "$DIR holds the data/ and backups/ of an earlier install: they are kept and used"
    fi
    REPO=$OPT_REPO
    if [ -z "$REPO" ] && [ -n "$SELF" ]; then REPO=$(origin_of "$SELF"); fi
    [ -n "$REPO" ] || err "no repository to install from" \
        "Pass --repo URL (e.g. --repo https://github.com/OWNER/upkeep.git), or run install.sh from a checkout with an origin."
    if [ -d "$REPO" ] && [ "$(stat -c %U "$REPO")" != "$SVC_USER" ]; then
        err "git refuses to let user $SVC_USER read $REPO, owned by $(stat -c %U "$REPO") (\"dubious ownership\")" \
            "Use the repository's URL (https://…, ssh://…) instead, or chown -R $SVC_USER $REPO."
    fi
    tags=$(git ls-remote --tags --refs "$REPO" 'v*' 2>/dev/null) ||
        err "cannot read $REPO" "Check the URL and the network: git ls-remote $REPO"
    names=$(printf '%s\n' "$tags" | sed -n 's|.*refs/tags/||p')
    if [ -n "$OPT_REF" ]; then
        TAG=$OPT_REF
        printf '%s\n' "$names" | grep -qxF "$TAG" ||
            err "tag $TAG does not exist in $REPO" "Release tags there: $(printf '%s\n' "$names" | latest_release_tag)$(printf '%s\n' "$names" | sort -V | tail -n 5 | tr '\n' ' ' | sed 's/^/ (latest: /; s/ $/)/')"
    else
        TAG=$(printf '%s\n' "$names" | latest_release_tag)
        [ -n "$TAG" ] || err "$REPO has no release tags (vX.Y.Z)" "Pass --ref, or tag a release there."
        info "latest release: $TAG"
    fi
    if act "clone $REPO into $DIR"; then
        install -d -m 0755 -o "$SVC_USER" -g "$SVC_USER" "$DIR"
        # git clones only into an empty directory, and DIR may hold kept data: clone beside it,
        # then move the repository in (a checkout ignores data/ and backups/).
        as_user "$DIR" rm -rf "$clone"
        as_user "$DIR" git clone --quiet --no-checkout "$REPO" "$clone" ||
            err "git clone $REPO failed" "See the message above, then run install.sh again."
        as_user "$DIR" mv "$clone/.git" "$DIR/.git"
        as_user "$DIR" rmdir "$clone"
    fi
    if act "check out $TAG"; then
        as_user "$DIR" git -c advice.detachedHead=false checkout --quiet --detach "refs/tags/$TAG" ||
            err "git checkout $TAG failed" "See the message above."
    fi
}

build_release() {
    step "Building $TAG"
    RELEASE=$DIR/.upkeep/releases/$TAG
    want_commit=
    if [ -d "$DIR/.git" ]; then want_commit=$(as_user "$DIR" git rev-parse --quiet --verify "refs/tags/$TAG^{commit}" 2>/dev/null || true); fi
    built_commit=
    if [ -f "$RELEASE/build-info.json" ]; then built_commit=$(json_field "$RELEASE/build-info.json" commit); fi
    if [ -n "$built_commit" ] && [ "$built_commit" = "$want_commit" ]; then
        ok "$TAG is built (.upkeep/releases/$TAG, version $(json_field "$RELEASE/build-info.json" version))"
    elif act "build $TAG as $SVC_USER: npm ci, npm run build (a minute or two)"; then
        staging=$DIR/.upkeep/staging/$TAG
        as_user "$DIR" mkdir -p "$DIR/.upkeep/releases" "$DIR/.upkeep/staging"
        log=$DIR/.upkeep/install.log
        # shellcheck disable=SC2016 # $1 is expanded by the inner sh
        as_user "$DIR" sh -c ': > "$1"' sh "$log"
        info "npm ci (log: $log)"
        as_user "$DIR" npm ci --no-audit --no-fund --loglevel=error >>"$log" 2>&1 ||
            { tail -n 25 "$log" >&2; err "npm ci failed for $TAG (output above, full log: $log)" \
                "Check the network and the npm registry (npm ping), then run install.sh again."; }
        info "npm run build"
        as_user "$DIR" npm run build --silent -- --out "$staging" >>"$log" 2>&1 ||
            { tail -n 25 "$log" >&2; err "the build of $TAG failed (output above, full log: $log)" \
                "Install another release with --ref, or report the failure to the project."; }
        [ -f "$staging/upkeep.mjs" ] || err "the build of $TAG has no upkeep.mjs" "Is $TAG a release of Upkeep? Install another with --ref."
        [ -f "$staging/build-info.json" ] ||
            err "the build of $TAG has no build-info.json" "Is $TAG a release of Upkeep? Install another with --ref."
        # The finished build replaces any half-built one in one rename.
        as_user "$DIR" rm -rf "$RELEASE"
        as_user "$DIR" mv "$staging" "$RELEASE"
        info "built version $(json_field "$RELEASE/build-info.json" version)"
    fi
    # current -> .upkeep/releases/<tag>, relative, the layout the updater switches (one rename).
    link=.upkeep/releases/$TAG
    if [ "$(readlink "$DIR/current" 2>/dev/null || true)" = "$link" ]; then
        ok "current -> $link"
    elif act "point current at $link${INSTALLED_TAG:+ (was $INSTALLED_TAG)}"; then
        as_user "$DIR" ln -sfn "$link" "$DIR/current.new"
        as_user "$DIR" mv -T "$DIR/current.new" "$DIR/current"
        RESTART_SERVER=1
    fi
    # Units that run commands this build lacks would fail: older releases predate the updater.
    # (`upkeep COMMAND --help` exits 0 for a command it has, 2 for one it does not.)
    if [ -f "$DIR/current/upkeep.mjs" ]; then
        as_user "$DIR" "$NODE" "$DIR/current/upkeep.mjs" apply-request --help >/dev/null 2>&1 || HAS_UPDATER=no
        as_user "$DIR" "$NODE" "$DIR/current/upkeep.mjs" recover --help >/dev/null 2>&1 || HAS_RECOVER=no
        if [ "$HAS_UPDATER" = no ]; then warn "$TAG has no 'upkeep apply-request' command: in-app updates are unavailable; its updater units are not installed"; fi
        if [ "$HAS_RECOVER" = no ]; then warn "$TAG has no 'upkeep recover' command: upkeep-recover.service is not installed"; fi
    fi
}

prepare_dirs() {
    step "Preparing data and configuration"
    for d in "$DATA_DIR" "$BACKUP_DIR"; do
        if [ -d "$d" ]; then
            ok "$d"
        elif act "create $d (owned by $SVC_USER, mode 0750)"; then
            install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$d"
        fi
    done
    # Root's: the apps' state directories live here, and root's copies of the updater.
    if [ -d "$STATE_ROOT" ]; then
        ok "$STATE_ROOT"
    elif act "create $STATE_ROOT (root's, mode 0755: the apps' update state)"; then
        install -d -m 0755 -o root -g root "$STATE_ROOT"
    fi
    if [ -n "${UPKEEP_ADMIN_PASSWORD:-}" ]; then
        case $UPKEEP_ADMIN_PASSWORD in *"
"*) err "UPKEEP_ADMIN_PASSWORD must be one line" ;; esac
        env_file=$ENV_DIR/upkeep.env
        want=$(mktemp)
        { grep -v '^UPKEEP_ADMIN_PASSWORD=' "$env_file" 2>/dev/null || true; printf 'UPKEEP_ADMIN_PASSWORD=%s\n' "$UPKEEP_ADMIN_PASSWORD"; } >"$want"
        if cmp -s "$want" "$env_file"; then
            ok "$env_file holds UPKEEP_ADMIN_PASSWORD"
        elif act "store UPKEEP_ADMIN_PASSWORD in $env_file (mode 0600)"; then
            install -d -m 0755 "$ENV_DIR"
            install -m 0600 "$want" "$env_file"
            RESTART_SERVER=1
        fi
        rm -f "$want"
    fi
    if [ -n "$OPT_RELEASE_KEY" ]; then pin_release_key "$OPT_RELEASE_KEY"; fi
}

render_unit() { # render_unit TEMPLATE > unit
    sed -e "s|{{NODE}}|$NODE|g" -e "s|{{APP_DIR}}|$DIR|g" -e "s|{{DATA_DIR}}|$DATA_DIR|g" \
        -e "s|{{BACKUP_DIR}}|$BACKUP_DIR|g" -e "s|{{USER}}|$SVC_USER|g" -e "s|{{GROUP}}|$SVC_USER|g" \
        -e "s|{{HOME}}|$SVC_HOME|g" -e "s|{{HOST}}|$HOST|g" -e "s|{{PORT}}|$PORT|g" \
        -e "s|{{LISTEN}}|$(listen_address "$HOST" "$PORT")|g" -e "s|{{PATH}}|$UNIT_PATH|g" "$1"
}

# install_file SOURCE DEST MODE LABEL: installs when different; returns 0 when it changed it.
install_file() {
    if cmp -s "$1" "$2"; then
        ok "$4"
        return 1
    fi
    verb=install
    [ -e "$2" ] && verb=update
    if [ -n "$DRY_RUN" ] && [ -e "$2" ]; then diff -u "$2" "$1" | sed -n '3,$p' | grep '^[-+]' | sed 's/^/      /' || true; fi
    act "$verb $4" || return 1
    install -m "$3" "$1" "$2"
    return 0
}

install_units() {
    step "Installing systemd units"
    UNITS="upkeep.socket upkeep.service"
    if [ "$HAS_UPDATER" = yes ]; then UNITS="$UNITS upkeep-updater.path upkeep-updater.service"; fi
    if [ "$HAS_RECOVER" = yes ]; then UNITS="$UNITS upkeep-recover.service"; fi
    UNITS_CHANGED=
    SOCKET_CHANGED=
    if [ ! -f "$DIR/deploy/upkeep.service" ]; then
        if [ -n "$DRY_RUN" ] && [ ! -d "$DIR/.git" ]; then
            act "install $UNITS from $TAG's deploy/" || true
            UNITS_CHANGED=1
            return 0
        fi
        err "$TAG has no systemd units in deploy/ (it predates install.sh)" "Install a newer release with --ref."
    fi
    tmp=$(mktemp)
    for unit in $UNITS; do
        render_unit "$DIR/deploy/$unit" >"$tmp"
        unknown=$(grep -o '{{[A-Z_]*}}' "$tmp" | head -n 1)
        if [ -n "$unknown" ]; then
            rm -f "$tmp"
            err "deploy/$unit has a placeholder install.sh does not know: $unknown" "Use the install.sh of the same release: sh $DIR/install.sh"
        fi
        if install_file "$tmp" "$UNIT_DIR/$unit" 0644 "$UNIT_DIR/$unit"; then
            UNITS_CHANGED=1
            case $unit in
                upkeep.socket) SOCKET_CHANGED=1 ;;
                upkeep.service) RESTART_SERVER=1 ;;
            esac
        fi
    done
    # Units of the updater that this release cannot run any more (an older --ref).
    for unit in upkeep-updater.path upkeep-updater.service upkeep-recover.service; do
        case " $UNITS " in *" $unit "*) continue ;; esac
        if [ -e "$UNIT_DIR/$unit" ] && act "remove $UNIT_DIR/$unit ($TAG cannot run it)"; then
            systemctl disable --now --quiet "$unit" 2>/dev/null || true
            rm -f "$UNIT_DIR/$unit"
            UNITS_CHANGED=1
        fi
    done

    dropin_dir=$UNIT_DIR/upkeep.service.d
    dropin=$dropin_dir/update-repo.conf
    if [ -n "$OPT_UPDATE_REPO_SET" ] && [ -n "$OPT_UPDATE_REPO" ]; then
        printf '%s\n' "# Written by install.sh --update-repo. Change it with install.sh, or with" \
            "# \`systemctl edit upkeep.service\` (a drop-in of your own wins over this one)." \
            "[Service]" "Environment=UPDATE_REPO=$OPT_UPDATE_REPO" >"$tmp"
        [ -n "$DRY_RUN" ] || install -d -m 0755 "$dropin_dir"
        if install_file "$tmp" "$dropin" 0644 "$dropin (UPDATE_REPO=$OPT_UPDATE_REPO)"; then UNITS_CHANGED=1 RESTART_SERVER=1; fi
    elif [ -n "$OPT_UPDATE_REPO_SET" ]; then
        if [ -e "$dropin" ]; then
            if act "remove $dropin (UPDATE_REPO unset)"; then
                rm -f "$dropin"
                rmdir "$dropin_dir" 2>/dev/null || true
                UNITS_CHANGED=1 RESTART_SERVER=1
            fi
        else
            ok "no UPDATE_REPO drop-in"
        fi
    elif [ -e "$dropin" ]; then
        ok "$dropin ($(sed -n 's/^Environment=//p' "$dropin"))"
    fi
    rm -f "$tmp"
}

start_units() {
    step "Starting services"
    if [ -n "$UNITS_CHANGED" ] && act "systemctl daemon-reload"; then
        systemctl daemon-reload || err "systemctl daemon-reload failed" "Check the units: systemd-analyze verify $UNIT_DIR/upkeep*.service"
    fi
    for unit in upkeep.socket upkeep.service upkeep-updater.path upkeep-recover.service; do
        case " $UNITS " in *" $unit "*) ;; *) continue ;; esac
        state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
        if [ "$state" = enabled ]; then
            ok "$unit is enabled"
        elif act "enable $unit (starts at boot)"; then
            systemctl enable --quiet "$unit" || err "systemctl enable $unit failed" "See: systemctl status $unit"
        fi
    done
    # A release that crash-looped leaves the server (and its socket) failed at their start limit:
    # systemd refuses to start them again until that is reset.
    for unit in upkeep.service upkeep.socket upkeep-recover.service upkeep-updater.path; do
        case " $UNITS " in *" $unit "*) ;; *) continue ;; esac
        if systemctl is-failed --quiet "$unit" && act "reset the failed state of $unit"; then systemctl reset-failed "$unit"; fi
    done
    # Recovery first (it settles files the server reads), then the socket, the server, the path.
    if [ "$HAS_RECOVER" = yes ]; then start_or_restart upkeep-recover.service ""; fi
    if [ -n "$SOCKET_CHANGED" ] && systemctl is-active --quiet upkeep.socket; then
        # A new address: the socket is re-created, the server must take the new one.
        if act "restart upkeep.socket and upkeep.service (new address $(listen_address "$HOST" "$PORT"))"; then
            systemctl stop upkeep.service upkeep.socket
            systemctl start upkeep.socket upkeep.service || failed_unit upkeep.service
        fi
    else
        start_or_restart upkeep.socket ""
        start_or_restart upkeep.service "$RESTART_SERVER"
    fi
    if [ "$HAS_UPDATER" = yes ]; then start_or_restart upkeep-updater.path "$UNITS_CHANGED"; fi
}

start_or_restart() { # start_or_restart UNIT RESTART?
    if systemctl is-active --quiet "$1"; then
        if [ -n "$2" ]; then
            if act "restart $1 (its unit or build changed)"; then systemctl restart "$1" || failed_unit "$1"; fi
        else
            ok "$1 is active"
        fi
    elif act "start $1"; then
        systemctl start "$1" || failed_unit "$1"
    fi
}

failed_unit() {
    systemctl status --no-pager --lines=15 "$1" >&2 || true
    err "$1 did not start (status above)" "Its log: journalctl -u $1 -e" "Fix the cause and run install.sh again, or install another release with --ref."
}

check_health() {
    step "Checking health"
    url=$(health_url)
    if [ -n "$DRY_RUN" ]; then
        info "skipped in a dry run ($url/api/health)"
        return 0
    fi
    want=$(json_field "$DIR/current/build-info.json" version)
    timeout=${UPKEEP_HEALTH_TIMEOUT:-60}
    deadline=$(($(date +%s) + timeout))
    got=
    while :; do
        # shellcheck disable=SC2016 # JavaScript, not shell
        got=$("$NODE" -e '
            fetch(process.argv[1], { signal: AbortSignal.timeout(3000) })
              .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
              .then((b) => console.log(b.version), () => process.exit(1))' "$url/api/health" 2>/dev/null || true)
        [ "$got" = "$want" ] && break
        if systemctl is-failed --quiet upkeep.service || [ "$(date +%s)" -ge "$deadline" ]; then
            journalctl -u upkeep.service -n 20 --no-pager >&2 2>/dev/null || true
            err "Upkeep did not answer $url/api/health with version $want${got:+ (it answered $got)}" \
                "Its log is above; more: journalctl -u upkeep.service -e; state: systemctl status upkeep.service" \
                "Is the port taken by another program? ss -ltnp 'sport = :$PORT' (change it with --port)." \
                "A release that does not start: install another with --ref vX.Y.Z."
        fi
        sleep 0.5
    done
    pid=$(systemctl show -p MainPID --value upkeep.service)
    ok "Upkeep $got answers on $url (pid $pid, user $(stat -c %U "/proc/$pid" 2>/dev/null || echo '?'))"
}

summary() {
    url=$(health_url)
    say ""
    if [ -n "$DRY_RUN" ]; then
        if [ "$CHANGES" -eq 0 ]; then say "Dry run: nothing to change."; else say "Dry run: $CHANGES change(s) above would be made; nothing was changed."; fi
        return 0
    fi
    if [ "$CHANGES" -eq 0 ]; then
        say "Nothing to change: Upkeep $TAG is installed, running and healthy."
    else
        say "Upkeep $TAG is installed and running ($CHANGES change(s) made)."
    fi
    say ""
    say "  Web UI:    $url"
    case $HOST in
        127.* | ::1) say "             (this machine only: put a reverse proxy in front, or reinstall with --host 0.0.0.0)" ;;
    esac
    if [ -n "$KEPT_DATA" ]; then
        say "  Password:  unchanged: the data of the earlier install is used (upkeep set-password changes it)"
    else
        say "  Password:  the server prints the initial admin password once, at its first start:"
        say "               journalctl -u upkeep.service | grep -i password"
        say "             (or set UPKEEP_ADMIN_PASSWORD when running install.sh)"
    fi
    say "  Status:    systemctl status upkeep.service"
    say "  Logs:      journalctl -u upkeep.service -f"
    say "  Settings:  systemctl edit upkeep.service   (or run install.sh again with other options)"
    say "  Remove:    sh $DIR/install.sh --uninstall"
}

install_upkeep() {
    read_installed
    check_system "$@"
    ensure_user
    get_source
    build_release
    prepare_dirs
    install_units
    start_units
    check_health
    summary
}

# ---------------------------------------------------------------------------------- uninstall

looks_installed() { # only a directory install.sh made is ever deleted
    valid_path "$1" || return 1
    [ -d "$1/.upkeep" ] || [ -L "$1/current" ]
}

uninstall_upkeep() {
    STEPS=3
    read_installed
    step "Stopping and disabling units"
    [ "$(id -u)" = 0 ] || err "install.sh --uninstall must run as root" "Run: sudo sh $0 --uninstall"
    if systemctl is-active --quiet upkeep-updater.service 2>/dev/null; then
        err "an update is running right now (upkeep-updater.service)" "Wait until it is done (journalctl -u upkeep-updater.service -f), then uninstall."
    fi
    DIR=${OPT_DIR:-$INSTALLED_DIR}
    # Units already removed (an earlier --uninstall): the default directory, if it is there.
    if [ -z "$DIR" ] && { only_kept_data /opt/upkeep || looks_installed /opt/upkeep; }; then DIR=/opt/upkeep; fi
    found=
    for unit in upkeep-updater.path upkeep-updater.service upkeep.service upkeep.socket upkeep-recover.service; do
        [ -e "$UNIT_DIR/$unit" ] || continue
        found=1
        if systemctl is-active --quiet "$unit" || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
            if act "stop and disable $unit"; then systemctl disable --now --quiet "$unit" 2>/dev/null || systemctl stop "$unit" || true; fi
        else
            ok "$unit is stopped and disabled"
        fi
    done
    [ -n "$found" ] || ok "no Upkeep units installed"

    step "Removing units"
    for f in "$UNIT_DIR"/upkeep.socket "$UNIT_DIR"/upkeep.service "$UNIT_DIR"/upkeep-updater.path \
        "$UNIT_DIR"/upkeep-updater.service "$UNIT_DIR"/upkeep-recover.service "$UNIT_DIR"/upkeep.service.d \
        "$UNIT_DIR"/upkeep.socket.d "$UNIT_DIR"/upkeep-updater.service.d "$UNIT_DIR"/upkeep-updater.path.d \
        "$UNIT_DIR"/upkeep-recover.service.d; do
        if [ -e "$f" ] && act "remove $f"; then rm -rf "$f"; fi
    done
    if [ "$CHANGES" -gt 0 ] && [ -z "$DRY_RUN" ]; then
        systemctl daemon-reload
        systemctl reset-failed 'upkeep*' 2>/dev/null || true
    fi

    step "Removing the code${PURGE:+, data and user}"
    origin=
    if [ -n "$DIR" ] && [ -d "$DIR/.git" ]; then origin=$(origin_of "$DIR"); fi
    if [ -z "$DIR" ]; then
        ok "no install directory known (pass --dir to remove one)"
    elif [ ! -d "$DIR" ]; then
        ok "$DIR is gone"
    elif [ -z "$PURGE" ] && only_kept_data "$DIR"; then
        ok "only data/ and backups/ are left in $DIR"
    elif [ -n "$PURGE" ] && only_kept_data "$DIR"; then
        if act "delete $DIR with its data/ and backups/"; then rm -rf "$DIR"; fi
    elif ! looks_installed "$DIR"; then
        err "$DIR does not look like an Upkeep install (no .upkeep/ or current); not deleting anything in it" "Remove it by hand if you are sure."
    elif [ -n "$PURGE" ]; then
        if act "delete $DIR with its data/ and backups/"; then rm -rf "$DIR"; fi
    elif act "delete the code in $DIR (keeping $DIR/data and $DIR/backups)"; then
        find "$DIR" -mindepth 1 -maxdepth 1 ! -name data ! -name backups -exec rm -rf {} +
    fi
    if [ -n "$PURGE" ]; then
        if [ -d "$ENV_DIR" ] && act "delete $ENV_DIR (settings, app definitions, release keys)"; then rm -rf "$ENV_DIR"; fi
        # The apps' update state (journals, history, backups by default) and root's updater copies.
        if [ -d "$STATE_ROOT" ] && act "delete $STATE_ROOT (the apps' update state and backups)"; then rm -rf "$STATE_ROOT"; fi
        if id -u "$SVC_USER" >/dev/null 2>&1; then
            home=$(getent passwd "$SVC_USER" | cut -d: -f6)
            if act "delete user $SVC_USER and its home $home"; then
                userdel "$SVC_USER" || warn "userdel $SVC_USER failed; remove the user by hand"
                case $home in /var/lib/*) rm -rf "$home" ;; esac
            fi
        fi
        # userdel deletes the user's own group only where login.defs says so (USERGROUPS_ENAB).
        if getent group "$SVC_USER" >/dev/null 2>&1 && ! id -u "$SVC_USER" >/dev/null 2>&1 && act "delete group $SVC_USER"; then
            groupdel "$SVC_USER" || warn "groupdel $SVC_USER failed; remove the group by hand"
        fi
    fi

    say ""
    if [ -n "$DRY_RUN" ]; then
        say "Dry run: $CHANGES change(s) above would be made; nothing was changed."
    elif [ "$CHANGES" -eq 0 ]; then
        say "Nothing to remove: Upkeep is not installed."
    elif [ -n "$PURGE" ] && [ -z "$DIR" ]; then
        say "Upkeep's units and user are removed; no install directory was known, so no data was deleted (pass --dir DIR)."
    elif [ -n "$PURGE" ]; then
        say "Upkeep is removed, with its data, backups and user."
    else
        say "Upkeep is removed. Kept: ${DIR:+$DIR/data, $DIR/backups, }${ENV_DIR} (if any) and user $SVC_USER."
        say "Installing again (install.sh --repo ${origin:-URL} --dir ${DIR:-DIR}) picks the data up; --uninstall --purge deletes it."
    fi
}

main() {
    trap on_exit EXIT
    parse_args "$@" || return 0
    if [ -n "$UNINSTALL" ]; then
        uninstall_upkeep
    else
        install_upkeep "$@"
    fi
}

main "$@"
