// SPDX-License-Identifier: Apache-2.0
/*
 * lp-gateway traffic collector: a tc/tcx classifier that only counts.
 *
 * It never drops, redirects or modifies a packet: the only exit returns TC_ACT_UNSPEC (-1, = TCX_NEXT) so
 * that later tc/tcx programs on the same hook still run (TC_ACT_OK would end the chain). Packet bytes are
 * read only through bpf_skb_load_bytes{,_relative}() (copies onto the stack); the program never loads
 * skb->data, so it holds no pointer through which it could write a packet. The loader's static safety check
 * (src/collector/safety-check.ts) enforces all of this on the compiled object before every load.
 *
 * What is counted, and at which layer (see docs/COLLECTOR.md):
 *  - l3_bytes:      the IP datagram length as stated in the IP header (IPv4 tot_len; IPv6 40 + payload_len),
 *                   i.e. IP header + transport header + payload, no link-layer header. A GSO/GRO super-packet
 *                   counts as one packet with its full length (what tcpdump shows on lo/veth).
 *  - payload_bytes: the transport payload (l3_bytes - IP header - UDP header (8) / TCP header (doff*4)),
 *                   i.e. exactly the bytes an application wrote (LP frames for TCP, LP packets for UDP).
 *  - packets:       IP packets as seen at the hook.
 * A packet is counted when its destination port (inbound = request) or, failing that, its source port
 * (outbound = response) is in lpgw_ports. Every packet is counted in exactly one entry of lpgw_flows, keyed by
 * its connection (gateway ("local") side first, so both directions share it) and its receiver index: one entry per
 * (connection, receiver index) counts both directions separately, and user space sums a connection's entries into
 * its flow and each index's entries into that index. A watched UDP datagram is one lookup (one insert when its
 * entry is new, made with this packet's counts already in it) where one entry per connection and one per index
 * took two.
 *
 * LP receiver_index: UDP: the first 4 bytes of every datagram (u32 LE); TCP: bytes 4..8 of the first inbound
 * payload segment of a connection (after the u32 BE frame length), remembered in the connection's ENTRY_CONN
 * entry; every later payload-carrying segment of the connection, in both directions, is counted in its
 * (connection, index) entry, every other segment in ENTRY_CONN. Per-index counters count only packets that carry
 * payload and whose index is known. LRU eviction of a TCP connection's ENTRY_CONN entry forgets its index.
 *
 * Not parsed (counted in lpgw_stats[STAT_UNPARSED] only when the packet is IPv4/IPv6): IPv4 non-first
 * fragments, IPv6 extension headers, truncated headers. VLAN tags are not followed.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define LPGW_PASS TC_ACT_UNSPEC /* -1 = TCX_NEXT: observe, let the chain continue */

#define DIR_IN 0  /* request: destination port watched */
#define DIR_OUT 1 /* response: source port watched */

#define FLOW_F_INDEX_KNOWN 1u /* receiver_index holds a value */
#define FLOW_F_INDEX_DONE 2u  /* TCP: first inbound payload segment already inspected */

#define ENTRY_CONN 0  /* a connection's packets that carry no (known) receiver index; TCP: remembers the index */
#define ENTRY_INDEX 1 /* a connection's packets that carry the receiver index in the key */

#define STAT_MATCHED 0        /* packets counted into lpgw_flows */
#define STAT_FLOW_FAIL 1      /* packets lost: their entry could not be created */
#define STAT_INDEX_FAIL 2     /* TCP packets counted without their index: its entry could not be created */
#define STAT_UNPARSED 3       /* IP packets whose ports could not be read */
#define STAT_SLOTS 4

/* 44 bytes; layout mirrored in src/collector/layout.ts. Addresses are IPv6 or IPv4-mapped (::ffff:a.b.c.d).
 * One entry per (connection, receiver index): both directions share it, and user space sums a connection's
 * entries into its flow and every connection's entries of one index into that index. */
struct flow_key {
	__u8 local_addr[16];  /* gateway side: the side whose port is watched */
	__u8 remote_addr[16]; /* peer side */
	__u16 local_port;     /* host byte order */
	__u16 remote_port;    /* host byte order */
	__u8 proto;           /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 kind;            /* ENTRY_CONN / ENTRY_INDEX */
	__u8 family;          /* 4 or 6 */
	__u8 pad;
	__u32 receiver_index; /* ENTRY_INDEX: the index (as on the wire, u32 LE); ENTRY_CONN: 0 */
};

/* 24 bytes. Counters only grow; user space computes per-window deltas. */
struct counters {
	__u64 packets;
	__u64 l3_bytes;
	__u64 payload_bytes;
};

/* 64 bytes */
struct flow_val {
	struct counters in;   /* requests: to the watched port */
	struct counters out;  /* responses: from the watched port */
	__u64 created_ns;     /* bpf_ktime_get_ns() when the entry was created: orders a connection's indexes */
	__u32 receiver_index; /* TCP ENTRY_CONN: from the first inbound payload segment */
	__u32 flags;          /* TCP ENTRY_CONN: FLOW_F_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* the loader overrides this with --max-flows */
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} lpgw_flows SEC(".maps");

/* Watched ports as a 65,536-bit bitmap: word port >> 5, bit port & 31. An ARRAY lookup is inlined by the
 * verifier (no helper call), so packets of unwatched ports cost almost nothing. */
#define PORT_WORDS 2048
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORT_WORDS);
	__type(key, __u32);
	__type(value, __u32);
} lpgw_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lpgw_stats SEC(".maps");

/* Configuration written by the loader. CFG_L2_LEN: bytes between skb->data and the IP header at tc
 * (14 on Ethernet-like devices incl. lo and veth, 0 on L3 devices such as WireGuard). Headers are read
 * relative to the network header, but bpf_skb_load_bytes_relative() only reads the linear part of the skb
 * and TCP payload usually sits in page fragments, so payload bytes are read with bpf_skb_load_bytes(),
 * which needs an offset from skb->data. */
#define CFG_L2_LEN 0
#define CFG_SLOTS 1
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CFG_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} lpgw_config SEC(".maps");

struct pkt_info {
	__u32 l3_len;
	__u32 payload_len;
	__u32 payload_off; /* from the network header */
};

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&lpgw_stats, &slot);
	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/* Reads the u32 at `off` bytes after the network header from anywhere in the skb (linear or paged). */
static __always_inline int load_u32_net(struct __sk_buff *skb, __u32 off, __u32 *out)
{
	__u32 k = CFG_L2_LEN;
	__u32 *l2 = bpf_map_lookup_elem(&lpgw_config, &k);
	if (!l2 || *l2 > 64)
		return -1;
	return bpf_skb_load_bytes(skb, *l2 + off, out, 4);
}

static __always_inline int port_watched(__u16 port)
{
	__u32 word = port >> 5;
	__u32 *bits = bpf_map_lookup_elem(&lpgw_ports, &word);
	return bits && (*bits & (1u << (port & 31)));
}

static __always_inline void counters_add(struct counters *c, const struct pkt_info *pi)
{
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->l3_bytes, pi->l3_len);
	__sync_fetch_and_add(&c->payload_bytes, pi->payload_len);
}

static __always_inline void counters_set(struct counters *c, const struct pkt_info *pi)
{
	c->packets = 1;
	c->l3_bytes = pi->l3_len;
	c->payload_bytes = pi->payload_len;
}

/* Adds this packet to the entry of `k`, creating it (one insert that already holds this packet; if another CPU
 * inserted it first, adds to that one). Returns -1 if the entry could not be created. */
static __always_inline int entry_add(const struct flow_key *k, __u8 dir, const struct pkt_info *pi)
{
	struct flow_val *v = bpf_map_lookup_elem(&lpgw_flows, k);
	if (!v) {
		struct flow_val first = {};
		if (dir == DIR_IN)
			counters_set(&first.in, pi);
		else
			counters_set(&first.out, pi);
		first.created_ns = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&lpgw_flows, k, &first, BPF_NOEXIST) == 0)
			return 0;
		v = bpf_map_lookup_elem(&lpgw_flows, k);
		if (!v)
			return -1;
	}
	counters_add(dir == DIR_IN ? &v->in : &v->out, pi);
	return 0;
}

/* Counts one packet of a watched connection: `k` is its ENTRY_CONN key (gateway side first), `dir` its direction;
 * for UDP `has_index`/`rx_index` carry the datagram's receiver index when the header read already brought it. */
static __always_inline void account(struct __sk_buff *skb, struct flow_key *k, __u8 dir, const struct pkt_info *pi,
				    int has_index, __u32 rx_index)
{
	struct flow_val *fv;

	stat_inc(STAT_MATCHED);

	if (k->proto == IPPROTO_UDP) {
		/* Every datagram starts with the LP header, receiver_index u32 LE at payload offset 0 (read here only
		 * when the header read could not bring it). A datagram is one lookup: its (connection, index) entry. */
		if (!has_index && pi->payload_len >= 4 && load_u32_net(skb, pi->payload_off, &rx_index) == 0)
			has_index = 1;
		if (has_index) {
			k->kind = ENTRY_INDEX;
			k->receiver_index = rx_index;
		}
		if (entry_add(k, dir, pi))
			stat_inc(STAT_FLOW_FAIL);
		return;
	}

	/* TCP: the connection's ENTRY_CONN entry remembers the index of its first inbound payload segment (u32 BE
	 * length, then receiver_index LE); payload-carrying segments after it, both directions, go to the
	 * (connection, index) entry, all others to ENTRY_CONN. */
	fv = bpf_map_lookup_elem(&lpgw_flows, k);
	if (!fv) {
		/* A new connection (or its entry was evicted): one insert that already holds this packet, or, from an
		 * inbound payload segment that brings the index, that index's entry holds it. */
		struct flow_val first = {};
		if (dir == DIR_IN && pi->payload_len > 0) {
			first.flags = FLOW_F_INDEX_DONE;
			if (pi->payload_len >= 8 && load_u32_net(skb, pi->payload_off + 4, &rx_index) == 0) {
				first.receiver_index = rx_index;
				first.flags |= FLOW_F_INDEX_KNOWN;
				has_index = 1;
			}
		}
		if (!has_index) {
			if (dir == DIR_IN)
				counters_set(&first.in, pi);
			else
				counters_set(&first.out, pi);
		}
		first.created_ns = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&lpgw_flows, k, &first, BPF_NOEXIST) == 0) {
			if (has_index)
				goto index;
			return;
		}
		fv = bpf_map_lookup_elem(&lpgw_flows, k);
		if (!fv) {
			stat_inc(STAT_FLOW_FAIL);
			return;
		}
		/* the entry another CPU made decides, below */
	}
	if (pi->payload_len > 0) {
		if (dir == DIR_IN && !(fv->flags & FLOW_F_INDEX_DONE)) {
			if (pi->payload_len >= 8 && load_u32_net(skb, pi->payload_off + 4, &rx_index) == 0) {
				fv->receiver_index = rx_index;
				fv->flags |= FLOW_F_INDEX_KNOWN | FLOW_F_INDEX_DONE;
			} else {
				fv->flags |= FLOW_F_INDEX_DONE;
			}
		}
		if (fv->flags & FLOW_F_INDEX_KNOWN) {
			rx_index = fv->receiver_index;
			goto index;
		}
	}
	counters_add(dir == DIR_IN ? &fv->in : &fv->out, pi);
	return;

index:
	k->kind = ENTRY_INDEX;
	k->receiver_index = rx_index;
	if (entry_add(k, dir, pi) == 0)
		return;
	/* No entry for the index: count the packet for the connection alone. */
	stat_inc(STAT_INDEX_FAIL);
	k->kind = ENTRY_CONN;
	k->receiver_index = 0;
	fv = bpf_map_lookup_elem(&lpgw_flows, k);
	if (fv)
		counters_add(dir == DIR_IN ? &fv->in : &fv->out, pi);
	else
		stat_inc(STAT_FLOW_FAIL);
}

/* IP header and the first 16 transport bytes in one read: the ports, the whole UDP header and an LP
 * datagram's receiver index, or the TCP header up to its data offset. Most packets on a busy interface are not
 * on a watched port and cost this one helper call; a watched UDP datagram or TCP segment usually needs no
 * other read. Shorter packets are read again with 8 transport bytes. */
struct v4_head {
	struct iphdr ip;
	__u8 l4[16];
};

struct v6_head {
	struct ipv6hdr ip6;
	__u8 l4[16];
};

#define L4_SHORT 8 /* bytes of the fallback read: ports (and the UDP header) */

/* Direction of a packet from its ports: DIR_IN if the destination port is watched, else DIR_OUT if the
 * source port is, else -1. */
static __always_inline int direction(__u16 sport, __u16 dport)
{
	if (port_watched(dport))
		return DIR_IN;
	if (port_watched(sport))
		return DIR_OUT;
	return -1;
}

union l3_head {
	struct v4_head v4;
	struct v6_head v6;
};

/* The transport part, the same after an IPv4 and an IPv6 header: the payload's offset (TCP data offset, or the
 * 8-byte UDP header) and length, and a UDP datagram's receiver index when the header read brought it. `l4` holds
 * `l4_read` transport bytes read with the IP header (0 if they could not be). Returns -1 if the packet cannot be
 * parsed. */
static __always_inline int parse_l4(struct __sk_buff *skb, __u8 l4proto, __u32 l4_off, const __u8 *l4, __u32 l4_read,
				    struct pkt_info *pi, int *has_index, __u32 *rx_index)
{
	if (l4proto == IPPROTO_TCP) {
		__u8 doff = 0;
		__u32 thl;
		if (l4_read > 12)
			doff = l4[12];
		else if (bpf_skb_load_bytes_relative(skb, l4_off + 12, &doff, 1, BPF_HDR_START_NET))
			return -1;
		thl = (__u32)(doff >> 4) * 4;
		if (thl < 20)
			return -1;
		pi->payload_off = l4_off + thl;
	} else {
		pi->payload_off = l4_off + 8;
	}
	pi->payload_len = pi->l3_len > pi->payload_off ? pi->l3_len - pi->payload_off : 0;
	if (l4proto == IPPROTO_UDP && l4_read >= 12 && pi->payload_len >= 4) {
		__builtin_memcpy(rx_index, &l4[8], 4); /* receiver_index, u32 LE */
		*has_index = 1;
	}
	return 0;
}

static __always_inline void count(struct __sk_buff *skb)
{
	struct flow_key k = {};
	struct pkt_info pi = {};
	union l3_head h;
	__u8 l4proto;
	__u32 l4_off;
	__u8 *l4;       /* the transport bytes read with the IP header */
	__u32 l4_read;  /* how many: 16, L4_SHORT, or 0 (only the ports, read apart) */
	__u16 sport, dport;
	int dir;
	int has_index = 0;
	__u32 rx_index = 0;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u32 ihl;
		l4_read = sizeof(h.v4.l4);
		if (bpf_skb_load_bytes_relative(skb, 0, &h.v4, sizeof(h.v4), BPF_HDR_START_NET)) {
			l4_read = L4_SHORT;
			if (bpf_skb_load_bytes_relative(skb, 0, &h.v4, sizeof(h.v4.ip) + L4_SHORT, BPF_HDR_START_NET)) {
				/* shorter than IP + 8 bytes: only a concern if it claims to be TCP/UDP */
				if (bpf_skb_load_bytes_relative(skb, 0, &h.v4.ip, sizeof(h.v4.ip), BPF_HDR_START_NET) == 0 &&
				    h.v4.ip.protocol != IPPROTO_TCP && h.v4.ip.protocol != IPPROTO_UDP)
					return;
				goto unparsed;
			}
		}
		if (h.v4.ip.protocol != IPPROTO_TCP && h.v4.ip.protocol != IPPROTO_UDP)
			return;
		if (h.v4.ip.frag_off & bpf_htons(0x1fff)) /* non-first fragment: no ports */
			goto unparsed;
		ihl = (__u32)h.v4.ip.ihl * 4;
		if (ihl < 20)
			goto unparsed;
		if (ihl > 20) {
			/* IP options: the transport bytes read are not the transport header; read the ports alone */
			l4_read = 0;
			if (bpf_skb_load_bytes_relative(skb, ihl, h.v4.l4, 4, BPF_HDR_START_NET))
				goto unparsed;
		}
		l4 = h.v4.l4;
		sport = ((__u16)l4[0] << 8) | l4[1];
		dport = ((__u16)l4[2] << 8) | l4[3];
		dir = direction(sport, dport);
		if (dir < 0)
			return;
		pi.l3_len = bpf_ntohs(h.v4.ip.tot_len);
		if (pi.l3_len == 0) /* BIG TCP super-packet without a length: fall back to the skb */
			pi.l3_len = skb->len;
		l4proto = h.v4.ip.protocol;
		l4_off = ihl;
		k.family = 4;
		/* IPv4-mapped addresses, gateway side first */
		k.local_addr[10] = 0xff;
		k.local_addr[11] = 0xff;
		k.remote_addr[10] = 0xff;
		k.remote_addr[11] = 0xff;
		if (dir == DIR_IN) {
			__builtin_memcpy(&k.local_addr[12], &h.v4.ip.daddr, 4);
			__builtin_memcpy(&k.remote_addr[12], &h.v4.ip.saddr, 4);
		} else {
			__builtin_memcpy(&k.local_addr[12], &h.v4.ip.saddr, 4);
			__builtin_memcpy(&k.remote_addr[12], &h.v4.ip.daddr, 4);
		}
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		l4_read = sizeof(h.v6.l4);
		if (bpf_skb_load_bytes_relative(skb, 0, &h.v6, sizeof(h.v6), BPF_HDR_START_NET)) {
			l4_read = L4_SHORT;
			if (bpf_skb_load_bytes_relative(skb, 0, &h.v6, sizeof(h.v6.ip6) + L4_SHORT, BPF_HDR_START_NET)) {
				if (bpf_skb_load_bytes_relative(skb, 0, &h.v6.ip6, sizeof(h.v6.ip6), BPF_HDR_START_NET) == 0 &&
				    h.v6.ip6.nexthdr != IPPROTO_TCP && h.v6.ip6.nexthdr != IPPROTO_UDP)
					return;
				goto unparsed;
			}
		}
		if (h.v6.ip6.nexthdr != IPPROTO_TCP && h.v6.ip6.nexthdr != IPPROTO_UDP)
			return; /* extension headers are not followed */
		l4 = h.v6.l4;
		sport = ((__u16)l4[0] << 8) | l4[1];
		dport = ((__u16)l4[2] << 8) | l4[3];
		dir = direction(sport, dport);
		if (dir < 0)
			return;
		pi.l3_len = 40 + (__u32)bpf_ntohs(h.v6.ip6.payload_len);
		if (pi.l3_len == 40) /* jumbogram / BIG TCP */
			pi.l3_len = skb->len;
		l4proto = h.v6.ip6.nexthdr;
		l4_off = 40;
		k.family = 6;
		if (dir == DIR_IN) {
			__builtin_memcpy(k.local_addr, &h.v6.ip6.daddr, 16);
			__builtin_memcpy(k.remote_addr, &h.v6.ip6.saddr, 16);
		} else {
			__builtin_memcpy(k.local_addr, &h.v6.ip6.saddr, 16);
			__builtin_memcpy(k.remote_addr, &h.v6.ip6.daddr, 16);
		}
	} else {
		return;
	}
	if (parse_l4(skb, l4proto, l4_off, l4, l4_read, &pi, &has_index, &rx_index))
		goto unparsed;

	k.local_port = dir == DIR_IN ? dport : sport;
	k.remote_port = dir == DIR_IN ? sport : dport;
	k.proto = l4proto;
	account(skb, &k, dir, &pi, has_index, rx_index);
	return;
unparsed:
	stat_inc(STAT_UNPARSED);
}

SEC("tc")
int lpgw_collector(struct __sk_buff *skb)
{
	count(skb);
	return LPGW_PASS;
}

char _license[] SEC("license") = "Apache-2.0";
