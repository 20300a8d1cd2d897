// SPDX-License-Identifier: GPL-2.0
/* pping data path: passive RTT from packet identifiers seen on the way out and back.
 *
 * Each packet with an identifier (TCP TSval or end sequence, ICMP echo sequence, DNS
 * query id) is timestamped on the flow it was sent on; a packet in the other
 * direction carrying the echo of that identifier (TSecr, ACK, echo reply, response)
 * closes the loop and gives one RTT. QUIC flows give RTTs from spin-bit edges. The
 * same logic runs on tc egress, tc ingress and XDP ingress; every program passes the
 * packet on unchanged.
 *
 * Nothing is lost silently: ring-buffer reservations that fail and map insertions
 * that find no room are counted in pping_counters. Expiry of timestamps and flows
 * runs in the kernel from a BPF timer, so a pinned instance needs no daemon.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pping.h"

#define AF_INET 2
#define AF_INET6 10
#define CLOCK_MONOTONIC 1
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 3
#define MAX_TCP_OPTIONS 10
#define IP_FRAG_OFFSET_MASK 0x1FFF
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#define NEXTHDR_MOBILITY 135
#define EEXIST_ 17
#define ICMP_ECHOREPLY_ 0
#define ICMP_ECHO_ 8
#define ICMPV6_ECHO_REQUEST_ 128
#define ICMPV6_ECHO_REPLY_ 129

char LICENSE[] SEC("license") = "GPL";

/* ---- configuration, written into .rodata before load (datapath.rodata_for) ---- */
const volatile __u32 cfg_track_tcp = 1;
const volatile __u32 cfg_track_icmp = 0;
const volatile __u32 cfg_track_tcp_seq = 0;   /* seq/ACK for TCP flows without timestamps */
const volatile __u32 cfg_track_dns = 0;
const volatile __u32 cfg_track_quic = 0;
const volatile __u32 cfg_dns_port = 53;
const volatile __u32 cfg_quic_port = 443;
const volatile __u64 cfg_rate_limit_ns = 100000000ULL;
const volatile __u64 cfg_rtt_rate_fp = 0;     /* gap = rtt * cfg_rtt_rate_fp >> 16, 0 = off */
const volatile __u32 cfg_use_srtt = 0;
const volatile __u32 cfg_local_filter = 1;
const volatile __u32 cfg_skip_syn = 1;
const volatile __u32 cfg_push_events = 1;
const volatile __u32 cfg_aggregate = 0;
const volatile __u32 cfg_agg_by_dst = 0;
const volatile __u32 cfg_agg_v4_mask = 0x00ffffff;        /* raw (network order) /24 */
const volatile __u64 cfg_agg_v6_mask = 0x0000ffffffffffffULL; /* raw (network order) /48 */
const volatile __u64 cfg_agg_bin_ns = 4000000ULL;
const volatile __u64 cfg_ts_lifetime_ns = 10000000000ULL;
const volatile __u64 cfg_ts_rtt_lifetime = 8;          /* or this many srtt */
const volatile __u64 cfg_flow_lifetime_ns = 300000000000ULL;
const volatile __u64 cfg_icmp_flow_lifetime_ns = 30000000000ULL; /* ICMP and UDP */
const volatile __u64 cfg_unopened_flow_lifetime_ns = 30000000000ULL;
const volatile __u64 cfg_gc_interval_ns = 1000000000ULL;
const volatile __u32 cfg_l3_iface = 0;                 /* no link-layer header (PPP, tun) */

/* ---- maps; sizes are defaults, datapath sets them from the config before load ---- */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pp_ident);
	__type(value, __u64);
	__uint(max_entries, 1 << 17);
} pping_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pp_flow);
	__type(value, struct pp_flow_state);
	__uint(max_entries, 1 << 17);
} pping_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} pping_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PP_NR_COUNTERS);
} pping_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct pp_agg_key_v4);
	__type(value, struct pp_agg_stats);
	__uint(max_entries, 2 << 14);
} pping_agg_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct pp_agg_key_v6);
	__type(value, struct pp_agg_stats);
	__uint(max_entries, 2 << 14);
} pping_agg_v6 SEC(".maps");

/* The generation aggregation currently writes to; user space flips it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} pping_agg_gen SEC(".maps");

#define PP_GC_HISTORY 64

/* The clean-up timer, and when the last PP_GC_HISTORY passes ran (run_ns[n % size] for
 * pass n: its clock, and when its walk over the maps ended), so that a reference can
 * run its passes at the data path's times. */
struct pp_gc {
	struct bpf_timer timer;
	__u64 runs;
	__u64 run_ns[PP_GC_HISTORY][2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pp_gc);
	__uint(max_entries, 1);
} pping_gc SEC(".maps");

/* Templates for new entries: too big for the stack (a flow state took 224 of its 512
 * bytes, which the option walk's buffer needs). */
static struct pp_agg_stats agg_zero;
static struct pp_flow_state flow_zero;

/* What the parser found in one packet. `id` is the identifier this packet can be
 * timestamped with, on its own flow; `reply` the identifier it echoes, on the
 * reverse flow (the key a stored timestamp has). */
struct pkt {
	__u64 now;         /* 0 until pkt_now() reads the clock */
	struct pp_ident id;
	struct pp_ident reply;
	__u32 wire_len;
	__u32 payload;
	__u32 ifindex;
	__be32 flowinfo;
	__u16 ip_len;
	__u8 tos;
	__u8 ingress;
	__u8 id_valid;
	__u8 reply_valid;
	__u8 flow_event;
	__u8 reason;
	__u8 wait_edge;
	__u8 fwd;          /* index of this packet's direction in pp_flow_state.dir */
	__u8 spin;         /* QUIC short header: spin bit value */
	__u8 tcp_flags;    /* TCP: the header's flags byte */
};

struct cursor {
	void *pos;
	void *end;
	void *start; /* the packet's first byte (offsets for the load helpers) */
	void *ctx;
	int xdp;     /* ctx is an xdp_md (else an __sk_buff); a constant where inlined */
};

/* The packet's time, read from the clock on first use only: a clock read (~30 ns on a
 * VM) was a fifth of a tracked packet's cost, and most packets need none (a pure ACK
 * that matches nothing, a data packet of a direction not yet open). Every use of one
 * packet sees the same value. */
static __always_inline __u64 pkt_now(struct pkt *p)
{
	if (!p->now)
		p->now = bpf_ktime_get_ns();
	return p->now;
}

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&pping_counters, &idx);

	if (c)
		*c += 1;
}

/* RFC 1982 / RFC 7323 serial-number comparison: a comes after b. */
static __always_inline int serial_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

static __always_inline void map_v4(__u8 *dst, __be32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline void copy_flow(struct pp_flow *dst, const struct pp_flow *src)
{
	__builtin_memcpy(dst, src, sizeof(*dst));
}

static __always_inline void reverse_flow(struct pp_flow *dst, const struct pp_flow *src)
{
	__builtin_memcpy(dst->saddr, src->daddr, 16);
	__builtin_memcpy(dst->daddr, src->saddr, 16);
	dst->sport = src->dport;
	dst->dport = src->sport;
	dst->proto = src->proto;
	dst->ipv = src->ipv;
	dst->app = src->app;
	dst->pad = 0;
}

/* One flow-state entry serves both directions; its key is the direction whose
 * (address, port) pair sorts first. */
static __always_inline int flow_is_canonical(const struct pp_flow *f)
{
	const __u32 *s = (const __u32 *)f->saddr;
	const __u32 *d = (const __u32 *)f->daddr;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (s[i] != d[i])
			return bpf_ntohl(s[i]) < bpf_ntohl(d[i]);
	}
	return bpf_ntohs(f->sport) <= bpf_ntohs(f->dport);
}

/* ---------------------------------------------------------------- parsing ---- */

/* The timestamp option wanted from the options at `off` (from the packet's start),
 * `len` bytes of them (within the header and the linear packet). */
struct tcp_ts_req {
	__u32 off;
	__u32 len;
	__u32 tsval;
	__u32 tsecr;
};

/* The TCP options of one header, copied out of the packet for tcp_ts_option. */
#define TCP_OPTIONS_MAX 40
#define TCP_OPTS_MASK 63 /* b's size - 1: an index masked with it is in bounds */
struct tcp_opts {
	__u8 b[TCP_OPTS_MASK + 1];
	__u32 len;    /* bytes of b that hold options */
	__u32 off;    /* the walk's position, kept in memory (see tcp_ts_option) */
	__u32 tsval;
	__u32 tsecr;
};

static __always_inline __u32 opt_be32(const struct tcp_opts *o, __u32 off)
{
	return (__u32)o->b[off & TCP_OPTS_MASK] << 24 | (__u32)o->b[(off + 1) & TCP_OPTS_MASK] << 16 |
	       (__u32)o->b[(off + 2) & TCP_OPTS_MASK] << 8 | o->b[(off + 3) & TCP_OPTS_MASK];
}

/* Finds the timestamp option among the first MAX_TCP_OPTIONS options of o, as the walk
 * over the packet did. A global function, and o is memory the verifier does not track,
 * so the position, which goes through o between options, is the same state to it on
 * every way into the next option; walked over packet pointers, it had the verifier
 * follow every mix of option lengths, on every path the parser took into it (nine
 * tenths of its work on these programs). */
__attribute__((noinline)) int tcp_ts_option(struct tcp_opts *o)
{
	volatile __u32 *pos;
	__u32 off, size, len;
	__u8 kind;

	if (!o)
		return -1;
	pos = &o->off;
	len = o->len;
	*pos = 0;
#pragma unroll
	for (int i = 0; i < MAX_TCP_OPTIONS; i++) {
		off = *pos;
		if (off + 1 > len)
			return -1;
		kind = o->b[off & TCP_OPTS_MASK];
		if (kind == 0)
			return -1;
		if (kind == 1) {
			*pos = off + 1;
			continue;
		}
		if (off + 2 > len)
			return -1;
		size = o->b[(off + 1) & TCP_OPTS_MASK];
		if (size < 2)
			return -1;
		if (kind == 8 && size == 10) {
			if (off + 10 > len)
				return -1;
			o->tsval = opt_be32(o, off + 2);
			o->tsecr = opt_be32(o, off + 6);
			return 0;
		}
		*pos = off + size;
	}
	return -1;
}

/* The options copied out of the packet, then walked. Global functions (one per
 * context type), so the verifier checks each once, whatever path reaches it. */
static __always_inline int tcp_ts_found(struct tcp_opts *o, struct tcp_ts_req *r)
{
	if (tcp_ts_option(o))
		return -1;
	r->tsval = o->tsval;
	r->tsecr = o->tsecr;
	return 0;
}

/* n (1 to 64) in a form older verifiers (6.1) bound from below as well: they do not
 * learn n >= 1 from a test against 0, and refuse a size that may be zero. */
static __always_inline __u32 len_1_64(__u32 n)
{
	return ((n - 1) & TCP_OPTS_MASK) + 1;
}

__attribute__((noinline)) int tcp_ts_tc(struct __sk_buff *skb, struct tcp_ts_req *r)
{
	struct tcp_opts o = {};

	if (!r)
		return -1;
	o.len = r->len;
	if (o.len < 1 || o.len > TCP_OPTIONS_MAX || bpf_skb_load_bytes(skb, r->off, o.b, len_1_64(o.len)))
		return -1;
	return tcp_ts_found(&o, r);
}

/* XDP copies by hand: bpf_xdp_load_bytes would need Linux 5.18. */
__attribute__((noinline)) int tcp_ts_xdp(struct xdp_md *ctx, struct tcp_ts_req *r)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct tcp_opts o = {};
	__u8 *src;

	if (!r)
		return -1;
	o.len = r->len;
	if (o.len < 1 || o.len > TCP_OPTIONS_MAX || r->off > 0x3fff) /* headers: near the start */
		return -1;
	src = data + r->off;
	if ((void *)(src + TCP_OPTIONS_MAX) <= data_end) {
		__builtin_memcpy(o.b, src, TCP_OPTIONS_MAX);
	} else {
#pragma unroll
		for (int i = 0; i < TCP_OPTIONS_MAX; i++) {
			if ((void *)(src + i + 1) > data_end)
				break; /* the walk reads only o.len bytes */
			o.b[i] = src[i];
		}
	}
	return tcp_ts_found(&o, r);
}

/* The timestamp option: first where Linux and most stacks put it (NOP, NOP, TS), else
 * by walking the options (as far as both the header and the packet go). */
static __always_inline int parse_tcp_ts(struct cursor *c, struct tcphdr *th, __u32 hdr_len, __u32 *tsval,
					__u32 *tsecr)
{
	void *end = c->end;
	__u8 *opt = (__u8 *)(th + 1);
	__u32 optlen = hdr_len - sizeof(*th); /* a multiple of 4, at most 40 */

	if (optlen >= 12 && (void *)(opt + 12) <= end && *(__u32 *)opt == bpf_htonl(0x0101080a)) {
		*tsval = bpf_ntohl(*(__u32 *)(opt + 4));
		*tsecr = bpf_ntohl(*(__u32 *)(opt + 8));
		return 0;
	}
	if (!optlen)
		return -1;

	struct tcp_ts_req r;
	__u32 avail = (long)end - (long)opt;

	r.len = optlen < avail ? optlen : avail;
	r.off = (long)opt - (long)c->start;
	r.tsval = r.tsecr = 0;
	if (c->xdp ? tcp_ts_xdp(c->ctx, &r) : tcp_ts_tc(c->ctx, &r))
		return -1;
	*tsval = r.tsval;
	*tsecr = r.tsecr;
	return 0;
}

static __always_inline int parse_tcp(struct cursor *c, __u32 l4_len, struct pkt *p)
{
	struct tcphdr *th = c->pos;
	__u32 tsval, tsecr, hdr_len;

	if ((void *)(th + 1) > c->end)
		return -1;
	if (cfg_skip_syn && th->syn)
		return -1;
	hdr_len = th->doff * 4;
	if (hdr_len < sizeof(*th))
		return -1;
	p->payload = l4_len > hdr_len ? l4_len - hdr_len : 0;

	if (parse_tcp_ts(c, th, hdr_len, &tsval, &tsecr) == 0) {
		p->id.kind = PP_KIND_TSVAL;
		p->id.id = tsval;
		p->reply.id = tsecr;
	} else if (cfg_track_tcp_seq) {
		/* the identifier is the end sequence, which the covering ACK reaches */
		p->id.kind = PP_KIND_SEQ;
		p->id.id = bpf_ntohl(th->seq) + p->payload + th->syn;
		p->reply.id = bpf_ntohl(th->ack_seq);
	} else {
		return -1;
	}
	p->reply.kind = p->id.kind;
	p->tcp_flags = ((__u8 *)th)[13]; /* read by tcp_events */
	p->id.flow.sport = th->source;
	p->id.flow.dport = th->dest;
	return 0;
}

struct echohdr {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 id;
	__be16 sequence;
};

/* ICMP and ICMPv6 echo: the echo identifier is both ports, the sequence number the
 * identifier; requests are timestamped, replies matched. */
static __always_inline int parse_echo(struct cursor *c, __u32 l4_len, __u8 request, __u8 reply,
				      struct pkt *p)
{
	struct echohdr *eh = c->pos; /* ICMP and ICMPv6 echo share this layout */

	if ((void *)(eh + 1) > c->end || eh->code != 0)
		return -1;
	if (eh->type == request) {
		p->id.id = eh->sequence;
		p->id_valid = 1;
	} else if (eh->type == reply) {
		p->reply.id = eh->sequence;
		p->reply_valid = 1;
	} else {
		return -1;
	}
	p->id.kind = p->reply.kind = PP_KIND_ICMP;
	p->id.flow.sport = p->id.flow.dport = eh->id;
	p->payload = l4_len > sizeof(*eh) ? l4_len - sizeof(*eh) : 0;
	return 0;
}

/* DNS over UDP: the query id is the identifier, keyed on the query's flow; the
 * response (QR set, from the DNS port) echoes it on the reverse flow. Other packets
 * of the flow only count. QUIC short-header packets carry the spin bit. */
static __always_inline int parse_udp(struct cursor *c, __u32 l4_len, struct pkt *p)
{
	struct udphdr *uh = c->pos;
	__u8 *body = (void *)(uh + 1);

	if ((void *)(uh + 1) > c->end)
		return -1;
	p->payload = l4_len > sizeof(*uh) ? l4_len - sizeof(*uh) : 0;
	p->id.flow.sport = uh->source;
	p->id.flow.dport = uh->dest;

	if (uh->dest == bpf_htons(cfg_dns_port) || uh->source == bpf_htons(cfg_dns_port)) {
		if (!cfg_track_dns || (void *)(body + 4) > c->end)
			return -1;
		__u16 qid = *(__u16 *)body;
		int response = body[2] & 0x80;
		if (response && uh->source == bpf_htons(cfg_dns_port)) {
			p->reply.id = qid;
			p->reply_valid = 1;
		} else if (!response && uh->dest == bpf_htons(cfg_dns_port)) {
			p->id.id = qid;
			p->id_valid = 1;
		}
		p->id.kind = p->reply.kind = PP_KIND_DNS;
		return 0;
	}
	if (cfg_track_quic &&
	    (uh->dest == bpf_htons(cfg_quic_port) || uh->source == bpf_htons(cfg_quic_port))) {
		if ((void *)(body + 1) > c->end)
			return -1;
		/* short header: form bit clear, fixed bit set */
		if ((*body & 0xc0) != 0x40)
			return -1;
		p->spin = (*body >> 5) & 1;
		p->id.kind = p->reply.kind = PP_KIND_SPIN;
		p->id.flow.app = PP_APP_QUIC;
		p->id_valid = 1; /* lets the flow exist; only edges are timestamped */
		return 0;
	}
	return -1;
}

static __always_inline int is_ipv6_ext(__u8 nh)
{
	return nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_DEST ||
	       nh == NEXTHDR_FRAGMENT || nh == NEXTHDR_AUTH || nh == NEXTHDR_MOBILITY;
}

/* Skips up to MAX_IPV6_EXT extension headers; -1 for a later fragment (no
 * transport header) or a header that does not fit. */
static __always_inline int skip_ipv6_ext(struct cursor *c, __u8 *nexthdr)
{
#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT; i++) {
		__u8 nh = *nexthdr;
		__u8 *h = c->pos;
		__u32 len;

		if (!is_ipv6_ext(nh))
			return 0;
		if ((void *)(h + 8) > c->end)
			return -1;
		if (nh == NEXTHDR_FRAGMENT) {
			if (bpf_ntohs(*(__be16 *)(h + 2)) & 0xfff8)
				return -1;
			len = 8;
		} else if (nh == NEXTHDR_AUTH) {
			len = (h[1] + 2) * 4;
		} else {
			len = (h[1] + 1) * 8;
		}
		*nexthdr = h[0];
		c->pos += len;
	}
	return 0;
}

/* Whether parse_transport can take this transport at all (a constant test after load). */
static __always_inline int may_track(__u8 l4proto, __u8 ipv)
{
	if (l4proto == IPPROTO_TCP)
		return cfg_track_tcp;
	if (l4proto == IPPROTO_ICMP)
		return ipv == 4 && cfg_track_icmp;
	if (l4proto == IPPROTO_ICMPV6)
		return ipv == 6 && cfg_track_icmp;
	if (l4proto == IPPROTO_UDP)
		return cfg_track_dns || cfg_track_quic;
	return 0;
}

/* Link and network layer: fills the addresses and leaves the cursor at the
 * transport header. Returns the transport protocol, or -1 for what is not IP and,
 * unless aggregating (which counts every packet), for what pping does not track:
 * such packets leave before their addresses are copied. */
static __always_inline int parse_ip(struct cursor *c, struct pkt *p, __u32 *l4_len)
{
	__u16 proto;
	__u8 l4proto;

	if (cfg_l3_iface) {
		if (c->pos + 1 > c->end)
			return -1;
		__u8 version = *(__u8 *)c->pos >> 4;
		proto = version == 4 ? ETH_P_IP : version == 6 ? ETH_P_IPV6 : 0;
	} else {
		struct ethhdr *eth = c->pos;
		if ((void *)(eth + 1) > c->end)
			return -1;
		proto = bpf_ntohs(eth->h_proto);
		c->pos = eth + 1;
#pragma unroll
		for (int i = 0; i < MAX_VLAN_TAGS; i++) {
			if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
				break;
			__be16 *tag = c->pos; /* TCI, then the encapsulated protocol */
			if ((void *)(tag + 2) > c->end)
				return -1;
			proto = bpf_ntohs(tag[1]);
			c->pos = tag + 2;
		}
	}

	if (proto == ETH_P_IP) {
		struct iphdr *iph = c->pos;
		__u32 hl;
		if ((void *)(iph + 1) > c->end || iph->version != 4)
			return -1;
		hl = iph->ihl * 4;
		if (hl < sizeof(*iph))
			return -1;
		if (!cfg_aggregate && !may_track(iph->protocol, 4))
			return -1;
		p->id.flow.ipv = 4;
		map_v4(p->id.flow.saddr, iph->saddr);
		map_v4(p->id.flow.daddr, iph->daddr);
		p->tos = iph->tos;
		p->ip_len = bpf_ntohs(iph->tot_len);
		*l4_len = p->ip_len > hl ? p->ip_len - hl : 0;
		c->pos += hl;
		/* a later fragment has no transport header */
		if (bpf_ntohs(iph->frag_off) & IP_FRAG_OFFSET_MASK)
			return 255;
		l4proto = iph->protocol;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6h = c->pos;
		if ((void *)(ip6h + 1) > c->end || ip6h->version != 6)
			return -1;
		if (!cfg_aggregate && !is_ipv6_ext(ip6h->nexthdr) && !may_track(ip6h->nexthdr, 6))
			return -1;
		p->id.flow.ipv = 6;
		__builtin_memcpy(p->id.flow.saddr, &ip6h->saddr, 16);
		__builtin_memcpy(p->id.flow.daddr, &ip6h->daddr, 16);
		p->flowinfo = *(__be32 *)ip6h & bpf_htonl(0x0fffffff);
		p->ip_len = bpf_ntohs(ip6h->payload_len);
		l4proto = ip6h->nexthdr;
		c->pos = ip6h + 1;
		if (skip_ipv6_ext(c, &l4proto) < 0)
			return 255;
		/* the transport payload is what the IP length leaves after the headers */
		__u32 ext = (__u32)((long)c->pos - (long)(ip6h + 1));
		*l4_len = p->ip_len > ext ? p->ip_len - ext : 0;
	} else {
		return -1;
	}
	p->id.flow.proto = l4proto;
	return l4proto;
}

/* Transport layer: 0 if the packet carries an identifier pping tracks. */
static __always_inline int parse_transport(struct cursor *c, int l4proto, __u32 l4_len, struct pkt *p)
{
	int err;

	if (l4proto == IPPROTO_TCP && cfg_track_tcp)
		err = parse_tcp(c, l4_len, p);
	else if (l4proto == IPPROTO_ICMP && p->id.flow.ipv == 4 && cfg_track_icmp)
		err = parse_echo(c, l4_len, ICMP_ECHO_, ICMP_ECHOREPLY_, p);
	else if (l4proto == IPPROTO_ICMPV6 && p->id.flow.ipv == 6 && cfg_track_icmp)
		err = parse_echo(c, l4_len, ICMPV6_ECHO_REQUEST_, ICMPV6_ECHO_REPLY_, p);
	else if (l4proto == IPPROTO_UDP && (cfg_track_dns || cfg_track_quic))
		err = parse_udp(c, l4_len, p);
	else
		err = -1;
	return err;
}

/* ------------------------------------------------------------ flow state ---- */

static __always_inline int dir_active(const struct pp_dir *d)
{
	return d->conn == PP_CONN_WAITOPEN || d->conn == PP_CONN_OPEN;
}

static __always_inline void dir_init(struct pp_dir *d, struct pkt *p)
{
	d->conn = PP_CONN_WAITOPEN;
	d->last_ts = pkt_now(p);
	d->last_seen = p->now;
	d->last_id = p->id.id;
	d->opening_reason = p->flow_event == PP_FLOW_OPENING ? p->reason : PP_REASON_FIRST_PACKET;
	d->timestamped = 0;
}

/* A segment that repeats its direction's last TSval (the state before this packet)
 * leaves last_seen alone: it was sent within one tick of the sender's TS clock (1 ms
 * on Linux, at most 1 s by RFC 7323) of the segment that first carried that TSval,
 * which set last_seen (every packet that sets last_id does). An idle direction so
 * expires at most one sender tick earlier, never later, and most segments of a bulk
 * sender skip the clock read (~30 of ~110 ns in PROG_TEST_RUN). reference.Reference
 * applies the same rule. */
static __always_inline int repeats_last_tsval(const struct pkt *p, const struct pp_dir *d)
{
	return p->id.kind == PP_KIND_TSVAL && p->id_valid && p->id.id == d->last_id;
}

static __always_inline struct pp_flow_state *flow_state_get(struct pkt *p)
{
	struct pp_flow *key = p->fwd == 0 ? &p->id.flow : &p->reply.flow;
	struct pp_flow_state *st = bpf_map_lookup_elem(&pping_flows, key);
	long err;

	if (st)
		return st;
	/* Only a packet that can be timestamped opens state, and never a closing one. */
	if (!p->id_valid || p->flow_event == PP_FLOW_CLOSING || p->flow_event == PP_FLOW_CLOSING_BOTH)
		return NULL;
	err = bpf_map_update_elem(&pping_flows, key, &flow_zero, BPF_NOEXIST);
	if (err && err != -EEXIST_) {
		count(PP_CNT_FLOW_MAP_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&pping_flows, key);
}

/* ----------------------------------------------------------------- events ---- */

/* Batched wake-ups: the reader is woken only once a sixteenth of the ring is waiting;
 * below that it reads what is there when its poll times out (every 100 ms in
 * api.pump). A wake-up per record (the kernel's default when the reader has caught
 * up) cost user space more than decoding and writing the record did. A sixteenth of
 * the 4 MiB ring holds ~2,500 RTT records, with fifteen sixteenths left to absorb a
 * slow reader. */
static __always_inline __u64 wakeup_flags(void)
{
	__u64 waiting = bpf_ringbuf_query(&pping_events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&pping_events, BPF_RB_RING_SIZE);

	return waiting >= size >> 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void emit_rtt(const struct pkt *p, __u64 rtt, const struct pp_dir *d)
{
	struct pp_rtt_record *r;

	if (!cfg_push_events)
		return;
	count(PP_CNT_RTT_EVENTS);
	r = bpf_ringbuf_reserve(&pping_events, sizeof(*r), 0);
	if (!r) {
		count(PP_CNT_DROPPED_EVENTS);
		return;
	}
	__builtin_memset(r, 0, 8);
	r->type = PP_REC_RTT;
	r->kind = p->id.kind;
	r->match_on_egress = !p->ingress;
	r->timestamp = p->now;
	copy_flow(&r->flow, &p->id.flow);
	r->rtt = rtt;
	r->min_rtt = d->min_rtt;
	r->sent_pkts = d->sent_pkts;
	r->sent_bytes = d->sent_bytes;
	r->rec_pkts = d->rec_pkts;
	r->rec_bytes = d->rec_bytes;
	bpf_ringbuf_submit(r, wakeup_flags());
}

static __always_inline void emit_flow(__u64 ts, const struct pp_flow *flow, __u8 event, __u8 reason,
				      __u8 by)
{
	struct pp_flow_record *r;

	if (!cfg_push_events)
		return;
	count(PP_CNT_FLOW_EVENTS);
	r = bpf_ringbuf_reserve(&pping_events, sizeof(*r), 0);
	if (!r) {
		count(PP_CNT_DROPPED_EVENTS);
		return;
	}
	__builtin_memset(r, 0, 8);
	r->type = PP_REC_FLOW;
	r->event = event;
	r->reason = reason;
	r->triggered_by = by;
	r->timestamp = ts;
	copy_flow(&r->flow, flow);
	bpf_ringbuf_submit(r, wakeup_flags());
}

/* ------------------------------------------------------------ aggregation ---- */

/* The prefix entry of one address. Only packets pping tracks create entries; others
 * count in an existing one or in the catch-all, which also takes what finds the map
 * full. */
static __always_inline struct pp_agg_stats *agg_get(const struct pkt *p, int use_src, int create)
{
	const __u8 *addr = use_src ? p->id.flow.saddr : p->id.flow.daddr;
	struct pp_agg_stats *s;
	__u32 zero = 0, *gen;
	void *map;
	long err;
	union {
		struct pp_agg_key_v4 v4;
		struct pp_agg_key_v6 v6;
	} key = {}, backup = {};

	gen = bpf_map_lookup_elem(&pping_agg_gen, &zero);
	if (!gen)
		return NULL;
	if (p->id.flow.ipv == 4) {
		__u32 a;
		__builtin_memcpy(&a, addr + 12, 4);
		key.v4.prefix = a & cfg_agg_v4_mask;
		key.v4.gen = *gen & 1;
		backup.v4.gen = key.v4.gen | PP_AGG_BACKUP;
		map = &pping_agg_v4;
	} else {
		__u64 a;
		__builtin_memcpy(&a, addr, 8);
		key.v6.prefix = a & cfg_agg_v6_mask;
		key.v6.gen = *gen & 1;
		backup.v6.gen = key.v6.gen | PP_AGG_BACKUP;
		map = &pping_agg_v6;
	}
	s = bpf_map_lookup_elem(map, &key);
	if (s)
		return s;
	if (create) {
		err = bpf_map_update_elem(map, &key, &agg_zero, BPF_NOEXIST);
		if (!err || err == -EEXIST_)
			return bpf_map_lookup_elem(map, &key);
		count(PP_CNT_AGG_MAP_FULL);
	}
	s = bpf_map_lookup_elem(map, &backup);
	if (s)
		return s;
	bpf_map_update_elem(map, &backup, &agg_zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &backup);
}

static __always_inline void agg_rtt(struct pp_agg_stats *s, __u64 rtt)
{
	__u64 bin;

	if (!s)
		return;
	if (!s->min_rtt || rtt < s->min_rtt)
		s->min_rtt = rtt;
	if (rtt > s->max_rtt)
		s->max_rtt = rtt;
	bin = cfg_agg_bin_ns ? rtt / cfg_agg_bin_ns : 0;
	if (bin >= PP_AGG_BINS)
		bin = PP_AGG_BINS - 1;
	s->bins[bin & 0xff] += 1;
}

/* ------------------------------------------------------------ the rules ---- */

static __always_inline int is_local_destination(void *ctx, const struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	long ret;

	fib.ifindex = p->ifindex;
	fib.l4_protocol = p->id.flow.proto;
	fib.tot_len = p->ip_len;
	if (p->id.flow.ipv == 4) {
		fib.family = AF_INET;
		fib.tos = p->tos;
		__builtin_memcpy(&fib.ipv4_src, p->id.flow.saddr + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, p->id.flow.daddr + 12, 4);
	} else {
		fib.family = AF_INET6;
		fib.flowinfo = p->flowinfo;
		__builtin_memcpy(fib.ipv6_src, p->id.flow.saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, p->id.flow.daddr, 16);
	}
	ret = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	return ret == BPF_FIB_LKUP_RET_NOT_FWDED || ret == BPF_FIB_LKUP_RET_FWD_DISABLED;
}

static __always_inline int rate_limited(__u64 now, const struct pp_dir *d)
{
	__u64 rtt = cfg_use_srtt ? d->srtt : d->min_rtt;

	if (now < d->last_ts)
		return 1;
	if (cfg_rtt_rate_fp && rtt)
		return now - d->last_ts < ((rtt * cfg_rtt_rate_fp) >> 16);
	return now - d->last_ts < cfg_rate_limit_ns;
}

/* First instance of an identifier only: a TSval must move forward in serial
 * arithmetic, other identifiers must differ from the last one. */
static __always_inline int is_new_identifier(const struct pkt *p, const struct pp_dir *d)
{
	if (p->id.kind == PP_KIND_TSVAL)
		return serial_after(p->id.id, d->last_id);
	return p->id.id != d->last_id;
}

/* seq/ACK, before sampling (flows without timestamps). Karn's rule: a segment that
 * does not end beyond the highest end sent is a retransmission; it cancels the
 * outstanding sample and nothing is sampled until an ACK reaches the highest end
 * sent at that moment. Returns 1 if this segment may be sampled. */
static __always_inline int seq_may_sample(const struct pkt *p, struct pp_dir *d)
{
	int first = !d->seq_valid;

	if (!first && !serial_after(p->id.id, d->seq_high)) {
		if (d->seq_sent_at)
			count(PP_CNT_KARN_SKIPPED);
		d->seq_sent_at = 0;
		d->karn_mark = d->seq_high;
		d->in_recovery = 1;
		return 0;
	}
	d->seq_high = p->id.id;
	d->seq_valid = 1;
	return !((first && p->wait_edge) || d->seq_sent_at || d->in_recovery);
}

static __always_inline void timestamp_packet(void *ctx, struct pkt *p, struct pp_dir *d)
{
	long err;

	if (!dir_active(d) || !p->id_valid)
		return;
	if (cfg_local_filter && p->ingress && is_local_destination(ctx, p))
		return;
	if (p->id.kind == PP_KIND_SEQ) {
		if (!seq_may_sample(p, d))
			return;
	} else if (p->id.kind == PP_KIND_SPIN) {
		d->spin_sent_at = 0; /* an unmatched older edge is stale once a new one is seen */
	} else {
		if ((d->timestamped || p->wait_edge) && !is_new_identifier(p, d))
			return;
		d->last_id = p->id.id;
	}
	if (d->timestamped && rate_limited(pkt_now(p), d))
		return;
	/* The attempt counts even when the map is full, so heavy flows do not starve
	 * sparse ones of the next free slot. */
	d->timestamped = 1;
	d->last_ts = pkt_now(p);
	if (p->id.kind == PP_KIND_SEQ) {
		d->seq_expect = p->id.id;
		d->seq_sent_at = p->now;
	} else if (p->id.kind == PP_KIND_SPIN) {
		d->spin_sent_at = p->now;
	} else {
		err = bpf_map_update_elem(&pping_ts, &p->id, &p->now, BPF_NOEXIST);
		if (!err)
			__sync_fetch_and_add(&d->outstanding, 1);
		else if (err != -EEXIST_)
			count(PP_CNT_TS_MAP_FULL);
	}
}

/* When this packet was sent back for d's identifier, or 0 if it matches nothing;
 * the match is consumed. */
static __always_inline __u64 take_match(struct pkt *p, struct pp_dir *d)
{
	__u64 *stored, sent;

	if (p->id.kind == PP_KIND_SEQ) {
		if (d->in_recovery && !serial_after(d->karn_mark, p->reply.id))
			d->in_recovery = 0;
		sent = d->seq_sent_at;
		if (!sent || pkt_now(p) < sent || serial_after(d->seq_expect, p->reply.id))
			return 0;
		d->seq_sent_at = 0;
		return sent;
	}
	if (p->id.kind == PP_KIND_SPIN) {
		sent = d->spin_sent_at;
		if (!sent || pkt_now(p) < sent)
			return 0;
		d->spin_sent_at = 0;
		return sent;
	}
	if (!d->outstanding)
		return 0;
	stored = bpf_map_lookup_elem(&pping_ts, &p->reply);
	if (!stored)
		return 0;
	sent = *stored;
	if (pkt_now(p) < sent)
		return 0;
	if (bpf_map_delete_elem(&pping_ts, &p->reply) == 0)
		__sync_fetch_and_add(&d->outstanding, -1);
	return sent;
}

static __always_inline void match_packet(struct pkt *p, struct pp_dir *d, struct pp_agg_stats *agg)
{
	__u64 sent, rtt;

	if (!dir_active(d) || !p->reply_valid)
		return;
	sent = take_match(p, d);
	if (!sent)
		return;
	rtt = pkt_now(p) - sent;
	if (!d->min_rtt || rtt < d->min_rtt)
		d->min_rtt = rtt;
	/* srtt = 7/8 srtt + 1/8 rtt, as TCP does */
	d->srtt = d->srtt ? d->srtt - (d->srtt >> 3) + (rtt >> 3) : rtt;
	agg_rtt(agg, rtt);
	emit_rtt(p, rtt, d);
}

#define TCP_FIN_ 0x01
#define TCP_SYN_ 0x02
#define TCP_RST_ 0x04
#define TCP_ACK_ 0x10

/* What a TCP packet's flags mean to pping. Not in parse_tcp: each way through these
 * branches was a separate state to the verifier on every path the parser took. */
static __always_inline void tcp_events(struct pkt *p)
{
	__u8 f = p->tcp_flags;

	/* Pure ACKs are never timestamped: the other end need not answer them. */
	p->id_valid = p->payload > 0 || (f & TCP_SYN_);
	/* Without ACK the TSecr (or ack number) means nothing. */
	p->reply_valid = !!(f & TCP_ACK_);
	if (f & TCP_RST_) {
		p->flow_event = PP_FLOW_CLOSING_BOTH;
		p->reason = PP_REASON_RST;
	} else if (f & TCP_FIN_) {
		p->flow_event = PP_FLOW_CLOSING;
		p->reason = PP_REASON_FIN;
	} else if (f & TCP_SYN_) {
		p->flow_event = PP_FLOW_OPENING;
		p->reason = f & TCP_ACK_ ? PP_REASON_SYN_ACK : PP_REASON_SYN;
	} else {
		/* seen mid-stream: wait for the identifier to change */
		p->wait_edge = 1;
	}
}

static __always_inline void pping(void *ctx, struct pkt *p, struct pp_agg_stats *agg)
{
	struct pp_flow *key;
	struct pp_flow_state *st;
	struct pp_dir *fw, *rev;

	if (p->id.flow.proto == IPPROTO_TCP)
		tcp_events(p);
	reverse_flow(&p->reply.flow, &p->id.flow);
	p->fwd = flow_is_canonical(&p->id.flow) ? 0 : 1;
	key = p->fwd == 0 ? &p->id.flow : &p->reply.flow;
	count(PP_CNT_PARSED);
	st = flow_state_get(p);
	if (!st)
		return;
	fw = &st->dir[p->fwd & 1];
	rev = &st->dir[(p->fwd & 1) ^ 1];

	/* this packet's own direction: start it, count it, maybe timestamp it */
	if (fw->conn == PP_CONN_EMPTY && p->id_valid)
		dir_init(fw, p);
	if (dir_active(fw)) {
		if (!repeats_last_tsval(p, fw))
			fw->last_seen = pkt_now(p);
		fw->sent_pkts += 1;
		fw->sent_bytes += p->payload;
	}
	if (p->id.kind == PP_KIND_SPIN) {
		/* only an edge (the value changed in this direction) is an identifier */
		__u8 edge = (fw->spin & 2) && (fw->spin & 1) != p->spin;
		fw->spin = 2 | p->spin;
		p->id_valid = p->reply_valid = edge;
	}
	timestamp_packet(ctx, p, fw);

	/* the reverse direction: this packet answers it */
	if (dir_active(rev)) {
		if (rev->conn == PP_CONN_WAITOPEN && p->flow_event != PP_FLOW_CLOSING_BOTH) {
			rev->conn = PP_CONN_OPEN;
			emit_flow(rev->last_ts, &p->reply.flow, PP_FLOW_OPENING, rev->opening_reason,
				  PP_BY_DEST);
		}
		rev->rec_pkts += 1;
		rev->rec_bytes += p->payload;
	}
	match_packet(p, rev, agg);

	/* FIN closes this packet's direction, RST both */
	if (p->flow_event == PP_FLOW_CLOSING || p->flow_event == PP_FLOW_CLOSING_BOTH) {
		if (fw->conn == PP_CONN_OPEN)
			emit_flow(pkt_now(p), &p->reply.flow, PP_FLOW_CLOSING, p->reason, PP_BY_DEST);
		fw->conn = PP_CONN_CLOSED;
	}
	if (p->flow_event == PP_FLOW_CLOSING_BOTH) {
		if (rev->conn == PP_CONN_OPEN)
			emit_flow(pkt_now(p), &p->id.flow, PP_FLOW_CLOSING, p->reason, PP_BY_SRC);
		rev->conn = PP_CONN_CLOSED;
	}
	if (!dir_active(fw) && !dir_active(rev))
		bpf_map_delete_elem(&pping_flows, key);
}

/* Common to all hooks: parse, aggregate, apply the rules. `xdp`: ctx is an xdp_md. */
static __always_inline void handle(void *ctx, int xdp, struct pkt *p, void *data, void *data_end)
{
	struct cursor c = { .pos = data, .end = data_end, .start = data, .ctx = ctx, .xdp = xdp };
	struct pp_agg_stats *src = NULL, *dst = NULL;
	__u32 l4_len = 0;
	int l4proto, tracked;

	count(PP_CNT_PACKETS);
	l4proto = parse_ip(&c, p, &l4_len);
	if (l4proto < 0)
		return;
	tracked = parse_transport(&c, l4proto, l4_len, p) == 0;
	if (!tracked && !cfg_aggregate)
		return;
	if (cfg_aggregate) {
		pkt_now(p);
		/* the sender's prefix received from us, the destination's was sent to */
		src = agg_get(p, 1, tracked);
		if (src) {
			src->rx_pkts += 1;
			src->rx_bytes += p->wire_len;
			src->last_updated = p->now;
		}
		dst = agg_get(p, 0, tracked);
		if (dst) {
			dst->tx_pkts += 1;
			dst->tx_bytes += p->wire_len;
			dst->last_updated = p->now;
		}
	}
	if (tracked)
		pping(ctx, p, cfg_agg_by_dst ? dst : src);
}

/* --------------------------------------------------------------- programs ---- */

SEC("tc")
int pping_tc_egress(struct __sk_buff *skb)
{
	struct pkt p = {};

	p.wire_len = skb->len;
	handle(skb, 0, &p, (void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int pping_tc_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};

	p.wire_len = skb->len;
	p.ingress = 1;
	p.ifindex = skb->ingress_ifindex;
	handle(skb, 0, &p, (void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int pping_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};

	p.wire_len = data_end - data;
	p.ingress = 1;
	p.ifindex = ctx->ingress_ifindex;
	handle(ctx, 1, &p, data, data_end);
	return XDP_PASS;
}

/* -------------------------------------------------------------- clean-up ---- */

struct gc_ctx {
	__u64 now;
};

static __always_inline int dir_expired(const struct pp_dir *d, const struct pp_flow *f, __u64 now)
{
	__u64 age;

	if (!dir_active(d) || d->last_seen > now)
		return 0;
	age = now - d->last_seen;
	if (d->conn == PP_CONN_WAITOPEN && age > cfg_unopened_flow_lifetime_ns)
		return 1;
	/* ICMP echo and DNS flows are short-lived by nature */
	if (f->proto != IPPROTO_TCP && f->app != PP_APP_QUIC && age > cfg_icmp_flow_lifetime_ns)
		return 1;
	return age > cfg_flow_lifetime_ns;
}

static __always_inline int stale(__u64 sent, __u64 srtt, __u64 now)
{
	__u64 age;

	if (now <= sent)
		return 0;
	age = now - sent;
	return (srtt && age > srtt * cfg_ts_rtt_lifetime) || age > cfg_ts_lifetime_ns;
}

static long gc_timestamp(void *map, struct pp_ident *key, __u64 *sent, struct gc_ctx *g)
{
	struct pp_flow canon;
	struct pp_flow_state *st;
	struct pp_dir *d = NULL;
	int fwd = flow_is_canonical(&key->flow) ? 0 : 1;

	if (fwd)
		reverse_flow(&canon, &key->flow);
	else
		copy_flow(&canon, &key->flow);
	st = bpf_map_lookup_elem(&pping_flows, &canon);
	if (st)
		d = &st->dir[fwd];
	if (!stale(*sent, d ? d->srtt : 0, g->now))
		return 0;
	if (bpf_map_delete_elem(map, key) == 0) {
		count(PP_CNT_TS_EXPIRED);
		if (d && d->outstanding)
			__sync_fetch_and_add(&d->outstanding, -1);
	}
	return 0;
}

/* Outstanding seq/ACK and spin-edge samples age like stored timestamps. */
static __always_inline void expire_samples(struct pp_dir *d, __u64 now)
{
	if (d->seq_sent_at && stale(d->seq_sent_at, d->srtt, now))
		d->seq_sent_at = 0;
	if (d->spin_sent_at && stale(d->spin_sent_at, d->srtt, now))
		d->spin_sent_at = 0;
}

static long gc_flow(void *map, struct pp_flow *key, struct pp_flow_state *st, struct gc_ctx *g)
{
	struct pp_dir *d0 = &st->dir[0], *d1 = &st->dir[1];
	int old0, old1, notify0, notify1;
	struct pp_flow rev;

	expire_samples(d0, g->now);
	expire_samples(d1, g->now);
	old0 = dir_expired(d0, key, g->now);
	old1 = dir_expired(d1, key, g->now);
	if ((dir_active(d0) && !old0) || (dir_active(d1) && !old1))
		return 0;
	notify0 = old0 && d0->conn == PP_CONN_OPEN;
	notify1 = old1 && d1->conn == PP_CONN_OPEN;
	reverse_flow(&rev, key);
	if (bpf_map_delete_elem(map, key) == 0) {
		count(PP_CNT_FLOWS_EXPIRED);
		/* a timeout names the reverse of the expired direction, like an RTT */
		if (notify0)
			emit_flow(g->now, &rev, PP_FLOW_CLOSING, PP_REASON_TIMEOUT, PP_BY_GC);
		if (notify1)
			emit_flow(g->now, key, PP_FLOW_CLOSING, PP_REASON_TIMEOUT, PP_BY_GC);
	}
	return 0;
}

static __always_inline void run_gc(struct pp_gc *gc)
{
	struct gc_ctx g = { .now = bpf_ktime_get_ns() };
	__u64 slot;

	bpf_for_each_map_elem(&pping_ts, gc_timestamp, &g, 0);
	bpf_for_each_map_elem(&pping_flows, gc_flow, &g, 0);
	count(PP_CNT_GC_RUNS);
	slot = gc->runs % PP_GC_HISTORY;
	gc->run_ns[slot][0] = g.now;
	gc->run_ns[slot][1] = bpf_ktime_get_ns();
	gc->runs += 1;
}

static int gc_fire(void *map, __u32 *key, struct pp_gc *gc)
{
	run_gc(gc);
	if (cfg_gc_interval_ns)
		bpf_timer_start(&gc->timer, cfg_gc_interval_ns, 0);
	return 0;
}

/* Run once from user space (PROG_TEST_RUN) to arm the clean-up timer. */
SEC("tc")
int pping_gc_start(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct pp_gc *gc = bpf_map_lookup_elem(&pping_gc, &zero);

	if (!gc)
		return 1;
	bpf_timer_init(&gc->timer, &pping_gc, CLOCK_MONOTONIC);
	if (bpf_timer_set_callback(&gc->timer, gc_fire))
		return 2;
	if (cfg_gc_interval_ns && bpf_timer_start(&gc->timer, cfg_gc_interval_ns, 0))
		return 3;
	return 0;
}

/* Run from user space (PROG_TEST_RUN) for one clean-up pass now. */
SEC("tc")
int pping_gc_now(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct pp_gc *gc = bpf_map_lookup_elem(&pping_gc, &zero);

	if (gc)
		run_gc(gc);
	return 0;
}
