#!/usr/bin/env python3
"""Delay and drop packets in user space, because this kernel has no netem.

An iptables NFQUEUE rule (set up by ``testbed.py impair``) hands each matching packet to this program, which drops
it with probability ``--loss`` or gives the kernel its verdict ``--delay-ms`` later, so TCP sees real loss (and
retransmits) and real latency. It talks to the kernel through libnetfilter_queue with ctypes (Debian package
``libnetfilter-queue1``), so nothing needs compiling. Only packet metadata is copied to user space.

Run inside the board's network namespace:  ip netns exec NS python3 impair.py --queue 101 --delay-ms 50 --loss 0.05
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import heapq
import os
import random
import select
import signal
import socket
import sys
import time

NF_DROP, NF_ACCEPT = 0, 1
NFQNL_COPY_META = 1


class _PacketHeader(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("packet_id", ctypes.c_uint32), ("hw_protocol", ctypes.c_uint16), ("hook", ctypes.c_uint8)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def load() -> ctypes.CDLL:
    name = ctypes.util.find_library("netfilter_queue") or "libnetfilter_queue.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.nfq_open.restype = ctypes.c_void_p
    lib.nfq_bind_pf.argtypes = [ctypes.c_void_p, ctypes.c_uint16]
    lib.nfq_unbind_pf.argtypes = [ctypes.c_void_p, ctypes.c_uint16]
    lib.nfq_create_queue.restype = ctypes.c_void_p
    lib.nfq_create_queue.argtypes = [ctypes.c_void_p, ctypes.c_uint16, CALLBACK, ctypes.c_void_p]
    lib.nfq_set_mode.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32]
    lib.nfq_set_queue_maxlen.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.nfq_fd.argtypes = [ctypes.c_void_p]
    lib.nfq_handle_packet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.nfq_get_msg_packet_hdr.restype = ctypes.POINTER(_PacketHeader)
    lib.nfq_get_msg_packet_hdr.argtypes = [ctypes.c_void_p]
    lib.nfq_set_verdict.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
    lib.nfq_destroy_queue.argtypes = [ctypes.c_void_p]
    lib.nfq_close.argtypes = [ctypes.c_void_p]
    return lib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every packet, each direction")
    parser.add_argument("--loss", type=float, default=0.0, help="probability that a packet is dropped")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    lib = load()
    handle = lib.nfq_open()
    if not handle:
        sys.stderr.write("nfq_open failed (needs root and nfnetlink_queue)\n")
        return 1
    lib.nfq_unbind_pf(handle, socket.AF_INET)
    if lib.nfq_bind_pf(handle, socket.AF_INET) < 0:
        sys.stderr.write("nfq_bind_pf failed\n")
        return 1
    held: list[tuple[float, int]] = []
    counts = {"seen": 0, "dropped": 0}
    delay = args.delay_ms / 1000.0

    @CALLBACK
    def on_packet(qh: int, _msg: int, nfad: int, _data: int) -> int:
        header = lib.nfq_get_msg_packet_hdr(nfad)
        packet_id = socket.ntohl(header.contents.packet_id)
        counts["seen"] += 1
        if args.loss and rng.random() < args.loss:
            counts["dropped"] += 1
            return lib.nfq_set_verdict(qh, packet_id, NF_DROP, 0, None)
        if delay <= 0:
            return lib.nfq_set_verdict(qh, packet_id, NF_ACCEPT, 0, None)
        heapq.heappush(held, (time.monotonic() + delay, packet_id))
        return 0

    queue = lib.nfq_create_queue(handle, args.queue, on_packet, None)
    if not queue:
        sys.stderr.write(f"nfq_create_queue({args.queue}) failed\n")
        return 1
    lib.nfq_set_mode(queue, NFQNL_COPY_META, 0)
    lib.nfq_set_queue_maxlen(queue, 20000)
    fd = lib.nfq_fd(handle)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    buffer = ctypes.create_string_buffer(65536)
    print(f"ready: queue {args.queue}, delay {args.delay_ms} ms, loss {args.loss}", flush=True)
    try:
        while running[0]:
            wait = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
            readable, _, _ = select.select([fd], [], [], wait)
            if readable:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # ENOBUFS when the kernel queue overflowed: packets were dropped, carry on
                    data = b""
                if data:
                    ctypes.memmove(buffer, data, len(data))
                    lib.nfq_handle_packet(handle, buffer, len(data))
            now = time.monotonic()
            while held and held[0][0] <= now:
                _, packet_id = heapq.heappop(held)
                lib.nfq_set_verdict(queue, packet_id, NF_ACCEPT, 0, None)
    finally:
        for _, packet_id in held:
            lib.nfq_set_verdict(queue, packet_id, NF_ACCEPT, 0, None)
        lib.nfq_destroy_queue(queue)
        lib.nfq_close(handle)
        print(f"done: {counts['seen']} packets, {counts['dropped']} dropped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
