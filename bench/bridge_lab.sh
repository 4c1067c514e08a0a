#!/usr/bin/env bash
# Where a bridged container path loses TCP throughput against a bare veth pair,
# measured in private network namespaces (nothing on the host's own bridges,
# tables or sysctls is touched): a namespace L plays the host, with a bridge
# br0 holding two veth ports (namespaces A and B, the containers) and a bare
# veth pair to namespace C beside it. iperf3 (3 s per run) from L to C, from L
# to B through the bridge, and from A to B across it, first with no netfilter,
# then with an nft nat table like berth's (conntrack), then with bridge
# netfilter on (net.bridge.bridge-nf-call-iptables=1 in L, as br_netfilter
# sets it for every bridge of a namespace), and last with berth's same-network
# shortcut on top (an nft netdev ingress chain on each port: fwd to ether
# daddr map { MAC : port }). See bench/README.md, networking.
#
#   sudo bench/bridge_lab.sh [rounds]
# Needs root, iproute2, nftables, iperf3, python3; br_netfilter loaded for the
# last two rows (without it they repeat the conntrack rows).
set -euo pipefail
rounds=${1:-2}
P=blab$$
SRV=""
cleanup() {
  for p in $SRV; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in L A B C; do ip netns del "${P}$n" 2>/dev/null || true; done
}
trap cleanup EXIT
for n in L A B C; do ip netns add "${P}$n"; done
L="ip netns exec ${P}L"
$L ip link set lo up
$L ip link add br0 type bridge
$L ip addr add 10.99.0.1/24 dev br0
$L ip link set br0 up
for n in A B; do
  $L ip link add "v$n" type veth peer name eth0 netns "${P}$n"
  $L ip link set "v$n" master br0 up
  ip netns exec "${P}$n" ip link set lo up
  ip netns exec "${P}$n" ip link set eth0 up
done
ip netns exec "${P}A" ip addr add 10.99.0.2/24 dev eth0
ip netns exec "${P}B" ip addr add 10.99.0.3/24 dev eth0
ip netns exec "${P}A" ip route add default via 10.99.0.1
ip netns exec "${P}B" ip route add default via 10.99.0.1
$L ip link add vC type veth peer name eth0 netns "${P}C"
$L ip addr add 10.98.0.1/24 dev vC
$L ip link set vC up
ip netns exec "${P}C" ip link set lo up
ip netns exec "${P}C" ip addr add 10.98.0.2/24 dev eth0
ip netns exec "${P}C" ip link set eth0 up
$L sysctl -qw net.ipv4.ip_forward=1
ip netns exec "${P}B" iperf3 -s -p 5201 >/dev/null 2>&1 & SRV="$SRV $!"
ip netns exec "${P}C" iperf3 -s -p 5201 >/dev/null 2>&1 & SRV="$SRV $!"
sleep 0.5

run() { # label, client namespace, server address
  ip netns exec "${P}$2" iperf3 -c "$3" -t 3 -J 2>/dev/null | python3 -c \
    "import json,sys; print('%-44s %6.2f Gbit/s' % ('$1', json.load(sys.stdin)['end']['sum_received']['bits_per_second'] / 1e9))"
}
brnf() { $L sysctl -qw "net.bridge.bridge-nf-call-iptables=$1" 2>/dev/null || true; }

for r in $(seq 1 "$rounds"); do
  echo "round $r"
  brnf 0
  $L nft flush ruleset
  run "bare veth L -> C" L 10.98.0.2
  run "bridge L -> B (routed), no netfilter" L 10.99.0.3
  run "bridge A -> B, no netfilter" A 10.99.0.3
  $L nft -f - <<'NFT'
table ip lab {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.99.0.0/24 oifname != "br0" masquerade
  }
  chain forward_filter {
    type filter hook forward priority filter; policy accept;
    ct status dnat accept
    iifname "br0" oifname != "br0" drop
  }
}
NFT
  run "bare veth L -> C, + conntrack (nft nat)" L 10.98.0.2
  run "bridge L -> B, + conntrack" L 10.99.0.3
  run "bridge A -> B, + conntrack" A 10.99.0.3
  brnf 1
  run "bridge L -> B, + conntrack + bridge netfilter" L 10.99.0.3
  run "bridge A -> B, + conntrack + bridge netfilter" A 10.99.0.3
  macA=$(ip netns exec "${P}A" cat /sys/class/net/eth0/address)
  macB=$(ip netns exec "${P}B" cat /sys/class/net/eth0/address)
  $L nft -f - <<NFT
table netdev lab {
  map l2 { type ether_addr : iface_index; elements = { $macA : "vA", $macB : "vB" } }
  chain vA { type filter hook ingress device "vA" priority 0; policy accept; fwd to ether daddr map @l2; }
  chain vB { type filter hook ingress device "vB" priority 0; policy accept; fwd to ether daddr map @l2; }
}
NFT
  run "bridge A -> B, all of the above + shortcut" A 10.99.0.3
  $L nft delete table netdev lab
done
