#!/usr/bin/env python3
"""Sends UDP datagrams with a forged IPv4 source (raw socket, root only) for the abuse tests.

Usage: spoof-udp.py SRC_IP[/PREFIX] SRC_PORT DST_IP DST_PORT RATE_PPS COUNT < packets
stdin: one datagram payload per line, hex; they are sent in turn (cycled) until COUNT have gone out, paced at
RATE_PPS. SRC_PORT 0 picks a random source port per datagram; SRC_IP/PREFIX (e.g. 127.64.0.0/10) a random source
address in that network per datagram. Prints "ready" before the first datagram, then
the number sent and the bytes of payload.
"""
import ipaddress
import os
import random
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def datagram(src_ip: str, src_port: int, dst_ip: str, dst_port: int, payload: bytes) -> bytes:
    src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", src_port, dst_port, udp_len, 0)
    csum = checksum(pseudo + udp + payload) or 0xFFFF
    udp = struct.pack("!HHHH", src_port, dst_port, udp_len, csum)
    total = 20 + udp_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, random.randrange(65536), 0, 64, socket.IPPROTO_UDP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + udp + payload


def main() -> int:
    src_ip, src_port, dst_ip, dst_port, rate, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    payloads = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
    if not payloads:
        print("no payloads", file=sys.stderr)
        return 2
    net = ipaddress.ip_network(src_ip, strict=False) if "/" in src_ip else None
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    # The caller waits for this line: interpreter start-up on a loaded machine can take a second.
    print("ready", flush=True)
    sent = 0
    nbytes = 0
    start = time.monotonic()
    while sent < count:
        p = payloads[sent % len(payloads)]
        port = src_port or random.randrange(1024, 65536)
        src = str(net[random.randrange(1, net.num_addresses - 1)]) if net else src_ip
        s.sendto(datagram(src, port, dst_ip, dst_port, p), (dst_ip, 0))
        sent += 1
        nbytes += len(p)
        # Pacing against the start time: bursts never exceed the rate by more than one datagram.
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print(f"{sent} {nbytes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
