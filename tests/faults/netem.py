#!/usr/bin/env python3
"""Delay packets by D ms +- J ms (uniform) through an iptables NFQUEUE: netem without sch_netem.

This machine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off), but it has NFQUEUE and
the `statistic` match. scripts/faults.sh runs this inside a container's network namespace
(`nsenter -t PID -n python3 netem.py`) with a rule such as

    iptables -A OUTPUT -p tcp -m multiport --ports 26656 -j NFQUEUE --queue-num 0 --queue-bypass

and takes 1% loss from `-m statistic --mode random --probability 0.01 -j DROP`. Each queued
packet gets its own delay, so jitter reorders packets the way netem's jitter does.

Speaks the nfnetlink_queue protocol directly (no libnetfilter_queue binding needed): bind the
queue, ask for metadata only, and send an ACCEPT verdict for each packet id when its time comes.
Runs until SIGTERM/SIGINT and then prints what it did.
"""

import argparse
import heapq
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NF_ACCEPT = 1
NLA_TYPE_MASK = 0x3FFF


def nla(kind, payload):
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * ((4 - size % 4) % 4)


def nfq_msg(kind, flags, seq, queue, attrs):
    # nfgenmsg: family AF_UNSPEC, version 0, resource id = queue number in network order.
    body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack(">H", queue) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def messages(buf):
    off = 0
    while off + 16 <= len(buf):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if length < 16:
            return
        yield kind, buf[off + 16 : off + length]
        off += (length + 3) & ~3


def attrs(payload):
    off = 0
    while off + 4 <= len(payload):
        size, kind = struct.unpack_from("=HH", payload, off)
        if size < 4:
            return
        yield kind & NLA_TYPE_MASK, payload[off + 4 : off + size]
        off += (size + 3) & ~3


def configure(sock, queue):
    seq = 1
    requests = [
        [nla(NFQA_CFG_CMD, struct.pack(">BBH", NFQNL_CFG_CMD_BIND, 0, 0))],
        [
            nla(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)),
            nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 16384)),
            # A full queue lets packets through rather than adding loss we did not ask for.
            nla(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN)),
            nla(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN)),
        ],
    ]
    for a in requests:
        sock.send(nfq_msg(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, queue, a))
        seq += 1
        for kind, payload in messages(sock.recv(65536)):
            if kind == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", payload, 0)
                if err != 0:
                    sys.exit(f"netem: queue {queue} configuration failed: errno {-err}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queue", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=100.0)
    ap.add_argument("--jitter-ms", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    configure(sock, args.queue)

    running = [True]

    def stop(*_):
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"netem: queue {args.queue} delaying {args.delay_ms}±{args.jitter_ms} ms", flush=True)

    due = []  # heap of (release time, packet id)
    count, total_delay, seq = 0, 0.0, 100
    lo = max(0.0, args.delay_ms - args.jitter_ms) / 1000.0
    hi = (args.delay_ms + args.jitter_ms) / 1000.0
    while running[0]:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, pid = heapq.heappop(due)
            seq += 1
            verdict = nla(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))
            sock.send(nfq_msg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, seq, args.queue, [verdict]))
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 0.2
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        buf = sock.recv(1 << 20)
        arrived = time.monotonic()
        for kind, payload in messages(buf):
            if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                continue
            for akind, value in attrs(payload[4:]):
                if akind == NFQA_PACKET_HDR:
                    (pid,) = struct.unpack_from(">I", value, 0)
                    d = rng.uniform(lo, hi)
                    heapq.heappush(due, (arrived + d, pid))
                    count += 1
                    total_delay += d
    # Release what is still held so nothing is lost on exit.
    for _, pid in due:
        seq += 1
        sock.send(nfq_msg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, seq, args.queue,
                          [nla(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))]))
    mean = (total_delay / count * 1000.0) if count else 0.0
    print(f"netem: {count} packets delayed, mean {mean:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
