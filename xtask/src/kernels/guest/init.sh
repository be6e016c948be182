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

load_modules() {
    for m in $(cat /etc/kernel-matrix-modules); do
        insmod "/lib/modules/$(uname -r)/$m.ko" || return 1
    done
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
step e2e /bin/kmx-e2e
echo "@@kmx done uptime_ms=$(now_ms)"
sync
poweroff -f
