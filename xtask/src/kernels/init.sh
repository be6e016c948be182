#!/bin/sh
# PID 1 of the kernel matrix's guest (cargo xtask kernels; built into the
# initramfs by xtask/src/kernels/initramfs.rs). Runs every step, prints
#   @@kmx begin STEP
#   @@kmx end STEP rc=N ms=N
# around each step's output on the serial console, then powers off. The host
# parses those lines (xtask/src/kernels/report.rs) and checks the JSON the
# end-to-end step prints.
#
# Network: the guest has no network device; the end-to-end traffic stays on
# a veth pair between the guest's root namespace and a namespace of its own.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin NO_COLOR=1 TERM=dumb
# iproute2's (busybox's has no netns, and busybox sh prefers its applets).
IP=/usr/sbin/ip
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
ulimit -l unlimited
ip link set lo up

arg() { # arg NAME DEFAULT: kmx.NAME=VALUE from the kernel command line
    for word in $(cat /proc/cmdline); do
        case $word in kmx.$1=*) echo "${word#*=}"; return ;; esac
    done
    echo "$2"
}
STEP_TIMEOUT=$(arg step_timeout 300)

now_ms() {
    read -r up _ </proc/uptime
    echo $((${up%.*} * 1000 + 10 * $(echo "${up#*.}" | sed 's/^0//')))
}

step() { # step NAME PROGRAM ARGS... (a program, not a function: timeout runs it)
    name=$1
    shift
    echo "@@kmx begin $name"
    t0=$(now_ms)
    timeout -s KILL "$STEP_TIMEOUT" "$@" 2>&1
    rc=$?
    echo "@@kmx end $name rc=$rc ms=$(($(now_ms) - t0))"
}

# A test suite, its first test alone first: when that fails (typically the
# kernel rejects the program), every other test would fail the same way,
# each after another slow verification under TCG, so they are skipped.
cat >/bin/kmx-suite <<'SUITE'
#!/bin/sh
first=$("$1" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | head -n 1)
if [ -n "$first" ]; then
    echo "first test alone: $first"
    if ! "$1" --exact "$first" --color never; then
        echo "the first test failed: the remaining tests of $(basename "$1") are skipped"
        exit 1
    fi
    exec "$1" --color never --exact --skip "$first"
fi
exec "$1" --color never
SUITE
chmod +x /bin/kmx-suite

load_modules() {
    for m in $(cat /etc/kernel-matrix-modules); do
        insmod "/lib/modules/$(uname -r)/$m.ko" || return 1
    done
}

API=http://127.0.0.1:9090

json() { # json NAME PATH: one line "@@kmx json NAME {...}"
    echo "@@kmx json $1 $(wget -q -O - "$API$2")"
}

e2e() {
    $IP netns add kmx &&
        $IP link add kmxh type veth peer name kmxn &&
        $IP link set kmxn netns kmx &&
        $IP addr add 198.18.0.1/24 dev kmxh &&
        $IP -6 addr add fd6d:6f6e::1/64 dev kmxh nodad &&
        $IP link set kmxh up &&
        $IP -n kmx addr add 198.18.0.2/24 dev kmxn &&
        $IP -n kmx -6 addr add fd6d:6f6e::2/64 dev kmxn nodad &&
        $IP -n kmx link set kmxn up &&
        $IP -n kmx link set lo up &&
        # busybox httpd daemonizes; it answers with HTTP/1.1 200 OK.
        $IP netns exec kmx httpd -p 198.18.0.2:8080 -h /www || return 1
    monitor --netns kmx --iface kmxn --listen 127.0.0.1:9090 --syslog-udp none \
        --http-ports 8080 --events-per-source 0 --log info >/tmp/monitor.log 2>&1 &
    daemon=$!
    up=0
    for _ in $(seq 1 240); do
        if wget -q -O /dev/null "$API/healthz" 2>/dev/null; then up=1; break; fi
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.5
    done
    if [ "$up" != 1 ]; then
        echo "the daemon did not answer /healthz:"
        cat /tmp/monitor.log
        return 1
    fi
    rc=0
    # Into the namespace, so the echo requests arrive on kmxn (XDP ingress).
    ping -c 3 -W 2 198.18.0.2 || rc=1
    ping6 -c 3 -W 2 fd6d:6f6e::2 || rc=1
    # The response leaves kmxn: the TC egress program times it.
    body=$(wget -q -O - http://198.18.0.2:8080/hello.txt) || rc=1
    echo "HTTP body: $body"
    # Counters refresh every second; wait for the response to be matched.
    for _ in $(seq 1 30); do
        wget -q -O - "$API/api/http" | grep -q '"responses_matched":[1-9]' && break
        sleep 1
    done
    sleep 2
    json stats /api/stats
    json http /api/http
    json events "/api/events?limit=2000"
    kill "$daemon"
    wait "$daemon"
    echo "daemon exit status: $?"
    echo "--- daemon log"
    tail -n 40 /tmp/monitor.log
    return $rc
}

echo "@@kmx init uptime_ms=$(now_ms) kernel=$(uname -r) cpus=$(nproc)"
echo "@@kmx begin modules"
t0=$(now_ms)
load_modules 2>&1
echo "@@kmx end modules rc=$? ms=$(($(now_ms) - t0))"
for t in /tests/*; do
    step "$(basename "$t")" /bin/kmx-suite "$t"
done
step check_kernel monitor --check-kernel
# A function cannot run under timeout: the step is bounded by the host.
echo "@@kmx begin e2e"
t0=$(now_ms)
e2e 2>&1
rc=$?
echo "@@kmx end e2e rc=$rc ms=$(($(now_ms) - t0))"
echo "@@kmx done uptime_ms=$(now_ms)"
sync
poweroff -f
