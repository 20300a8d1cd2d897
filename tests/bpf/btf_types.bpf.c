// SPDX-License-Identifier: GPL-2.0
/* Rich BTF for the key/value codec: a HASH keyed by a struct holding an enum, a nested
 * struct, a byte array and a union, with a struct value holding an array of structs, a
 * signed field and a char array; an ARRAY of a struct with a nested array. btf_socket
 * (SEC("socket")) writes one known entry; the test decodes it by field name. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED = 0, GREEN = 1, BLUE = 7 };

struct point {
	__u16 x;
	__u16 y;
};

union addr {
	__u32 v4;
	__u8 v6[16];
};

struct flow_key {		/* 36 bytes, no implicit padding */
	__u32 ifindex;
	enum color color;
	struct point pt;
	__u8 mac[6];
	__u8 pad[2];
	union addr addr;
};

struct flow_stats {		/* 40 bytes */
	__u64 packets;
	__u64 bytes;
	struct point last[2];
	__s32 delta;
	char name[8];
};

struct matrix {
	__u32 rows[2][3];
	struct point origin;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct matrix);
} matrices SEC(".maps");

SEC("socket")
int btf_socket(struct __sk_buff *skb)
{
	struct flow_key key;
	struct flow_stats fresh, *st;
	struct matrix *m;
	__u32 one = 1;

	__builtin_memset(&key, 0, sizeof(key));
	key.ifindex = 1;
	key.color = BLUE;
	key.pt.x = 3;
	key.pt.y = 4;
	key.mac[0] = 0x02;
	key.mac[5] = 0x5e;
	key.addr.v4 = 0x0a000001;

	st = bpf_map_lookup_elem(&flows, &key);
	if (st) {
		st->packets += 1;
		st->bytes += skb->len;
	} else {
		__builtin_memset(&fresh, 0, sizeof(fresh));
		fresh.packets = 1;
		fresh.bytes = skb->len;
		fresh.last[0].x = 1;
		fresh.last[0].y = 2;
		fresh.last[1].x = 5;
		fresh.last[1].y = 6;
		fresh.delta = -5;
		__builtin_memcpy(fresh.name, "xnf\0\0\0\0\0", sizeof(fresh.name));
		bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
	}

	m = bpf_map_lookup_elem(&matrices, &one);
	if (m) {
		m->rows[1][2] = 9;
		m->origin.x = 7;
	}
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
