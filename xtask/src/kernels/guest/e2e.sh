#!/bin/sh
# /bin/kmx-e2e: the kernel matrix's end-to-end check, in the guest (see
# init.sh). The daemon attached with --netns to the namespace end of a veth
# pair; three pings each way of v4 and v6 and one HTTP request into the
# namespace; prints the API's JSON (@@kmx json NAME ...) for the host to
# check (report.rs: check_e2e). Everything stays on this veth pair: the
# guest has no other network device.
IP=/usr/sbin/ip
API=http://127.0.0.1:9090

json() { # json NAME PATH: one line "@@kmx json NAME {...}"
    echo "@@kmx json $1 $(wget -q -O - "$API$2")"
}

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
    $IP netns exec kmx httpd -p 198.18.0.2:8080 -h /www || exit 1
monitor --netns kmx --iface kmxn --listen 127.0.0.1:9090 --syslog-udp none \
    --http-ports 8080 --events-per-source 0 --no-history --log info >/tmp/monitor.log 2>&1 &
daemon=$!
up=0
for _ in $(seq 1 1200); do
    if wget -q -O /dev/null "$API/healthz" 2>/dev/null; then up=1; break; fi
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.5
done
if [ "$up" != 1 ]; then
    echo "the daemon did not answer /healthz:"
    cat /tmp/monitor.log
    exit 1
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
exit $rc
