/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by pping.bpf.c and its Python decoder (bpf_events.py).
 *
 * Every struct here crosses the kernel/user boundary (ring-buffer records, map keys
 * and values), so each one has explicit padding and a fixed size;
 * tests/kernel/pping/test_pping_layout.py checks bpf_events.py against the object.
 */
#ifndef XNF_PPING_H
#define XNF_PPING_H

#include <linux/types.h>

/* Identifier kinds: which packet field produced a timestamp (events.IDENTIFIER_KINDS). */
#define PP_KIND_TSVAL 0
#define PP_KIND_SEQ   1
#define PP_KIND_ICMP  2
#define PP_KIND_DNS   3
#define PP_KIND_SPIN  4

/* Application protocol of a flow, beyond the IP protocol number. */
#define PP_APP_NONE 0
#define PP_APP_QUIC 1

/* Ring-buffer record types. */
#define PP_REC_RTT  1
#define PP_REC_FLOW 2

/* Flow events and their reasons (events.OPENING/CLOSING, events.REASONS). */
#define PP_FLOW_NONE         0
#define PP_FLOW_OPENING      1
#define PP_FLOW_CLOSING      2
#define PP_FLOW_CLOSING_BOTH 3

#define PP_REASON_NONE          0
#define PP_REASON_SYN           1
#define PP_REASON_SYN_ACK       2
#define PP_REASON_FIRST_PACKET  3
#define PP_REASON_FIN           4
#define PP_REASON_RST           5
#define PP_REASON_TIMEOUT       6

/* Which end of the reported flow sent the triggering packet. */
#define PP_BY_SRC  0
#define PP_BY_DEST 1
#define PP_BY_GC   2

/* Per-direction connection state. */
#define PP_CONN_EMPTY    0
#define PP_CONN_WAITOPEN 1
#define PP_CONN_OPEN     2
#define PP_CONN_CLOSED   3

/* Indexes of the per-CPU counter array (datapath.COUNTERS names them). */
#define PP_CNT_DROPPED_EVENTS   0
#define PP_CNT_TS_MAP_FULL      1
#define PP_CNT_FLOW_MAP_FULL    2
#define PP_CNT_AGG_MAP_FULL     3
#define PP_CNT_RTT_EVENTS       4
#define PP_CNT_FLOW_EVENTS      5
#define PP_CNT_PACKETS          6 /* packets seen by any pping program */
#define PP_CNT_PARSED           7 /* packets that carried a usable identifier */
#define PP_CNT_TS_EXPIRED       8 /* timestamps removed by the clean-up */
#define PP_CNT_FLOWS_EXPIRED    9 /* flows removed by the clean-up */
#define PP_CNT_KARN_SKIPPED    10 /* seq/ACK samples refused by Karn's rule */
#define PP_CNT_GC_RUNS         11
#define PP_NR_COUNTERS         12

/* Aggregation histogram: fixed bin count, bin width set at load time. */
#define PP_AGG_BINS 250

/* A directed flow. Addresses are 16 bytes, IPv4 mapped to ::ffff:a.b.c.d; ports are in
 * network byte order; for ICMP echo the identifier is both ports. */
struct pp_flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;   /* IPPROTO_* */
	__u8 ipv;     /* 4 or 6 */
	__u8 app;     /* PP_APP_*: tells QUIC from other UDP */
	__u8 pad;
};

/* Key of the timestamp map: the flow the identifier was sent on, plus the identifier. */
struct pp_ident {
	struct pp_flow flow;
	__u32 id;
	__u8 kind;    /* PP_KIND_* */
	__u8 pad[3];
};

/* State of one direction of a flow. */
struct pp_dir {
	__u64 last_ts;        /* when the last identifier was timestamped (rate limit) */
	__u64 last_seen;      /* last packet in this direction, bar one repeating last_id's TSval (idle timeout) */
	__u64 min_rtt;
	__u64 srtt;
	__u64 sent_pkts;
	__u64 sent_bytes;
	__u64 rec_pkts;
	__u64 rec_bytes;
	__u64 seq_sent_at;    /* seq/ACK: send time of the outstanding segment, 0 = none */
	__u64 spin_sent_at;   /* QUIC: time of the outstanding spin edge, 0 = none */
	__u32 last_id;
	__u32 outstanding;    /* timestamps of this direction in pping_ts */
	__u32 seq_expect;     /* seq/ACK: end sequence of the sampled segment */
	__u32 seq_high;       /* seq/ACK: highest sequence end sent so far */
	__u32 karn_mark;      /* seq/ACK: retransmission seen; no sample until ACKed to here */
	__u8 conn;            /* PP_CONN_* */
	__u8 opening_reason;  /* PP_REASON_* */
	__u8 timestamped;     /* an identifier was timestamped at least once */
	__u8 seq_valid;       /* seq_high holds a value */
	__u8 in_recovery;     /* karn_mark holds a value */
	__u8 spin;            /* last spin-bit value sent (bit 0), bit 1 = seen */
	__u8 pad[6];
};

/* Both directions, keyed by the flow in canonical order (dir[0] = canonical direction). */
struct pp_flow_state {
	struct pp_dir dir[2];
};

/* Ring-buffer record: an RTT sample. */
struct pp_rtt_record {
	__u8 type;            /* PP_REC_RTT */
	__u8 kind;            /* PP_KIND_* */
	__u8 match_on_egress;
	__u8 pad[5];
	__u64 timestamp;      /* bpf_ktime_get_ns() of the reply */
	struct pp_flow flow;  /* the reply's tuple */
	__u64 rtt;
	__u64 min_rtt;
	__u64 sent_pkts;
	__u64 sent_bytes;
	__u64 rec_pkts;
	__u64 rec_bytes;
};

/* Ring-buffer record: a flow opened or closed. */
struct pp_flow_record {
	__u8 type;            /* PP_REC_FLOW */
	__u8 event;           /* PP_FLOW_OPENING or PP_FLOW_CLOSING */
	__u8 reason;          /* PP_REASON_* */
	__u8 triggered_by;    /* PP_BY_* */
	__u8 pad[4];
	__u64 timestamp;
	struct pp_flow flow;
};

/* Aggregation keys: a prefix of the address plus the generation it belongs to (user
 * space flips the generation, then reads and clears the previous one). */
#define PP_AGG_BACKUP 2 /* gen bit: the catch-all entry used when the map is full */

struct pp_agg_key_v4 {
	__u32 prefix;
	__u32 gen;
};

struct pp_agg_key_v6 {
	__u64 prefix;
	__u32 gen;
	__u32 pad;
};

struct pp_agg_stats {
	__u64 rx_pkts;
	__u64 rx_bytes;
	__u64 tx_pkts;
	__u64 tx_bytes;
	__u64 last_updated;
	__u64 min_rtt;
	__u64 max_rtt;
	__u32 bins[PP_AGG_BINS];
	__u32 pad;
};

#endif
