/* vtrace's guest: a freestanding virtio-net driver for virtio-mmio.
 *
 * The VMM (Sources/KVMHost) loads this ELF, starts it in 64-bit mode at
 * privilege level 3 (the MMIO windows, its memory and port I/O are
 * user-accessible, so the paravirtual KVM runs it natively), with a
 * parameter block at 0x7000 naming the workload. The guest drives each NIC
 * as a virtio-net driver would (probe, feature negotiation, its own rings,
 * RX posts, TX, reaping used rings by polling), checks that what comes back
 * on RX is what it sent, prints its own view on the serial port (0x3f8) and
 * ends by writing a status to port 0xf4 (0 = its checks passed).
 *
 * Built by tools/guest/build.sh: gcc -ffreestanding -nostdlib, no libc. */

#include <stddef.h>
#include <stdint.h>

/* ---- the parameter block (Sources/KVMHost/GuestWorkload.swift writes it) ---- */
#define PARAMS_ADDR 0x7000UL
#define PARAMS_MAGIC 0x50475456u /* "VTGP" */
enum workload { W_BURST = 1, W_MQ = 2, W_HOSTILE = 3, W_SPIN = 4, W_GARBAGE = 5, W_TRIPLE_FAULT = 6 };
/* Hostile cases (W_HOSTILE): each drives one of the spec's counter paths. */
enum hostile {
    H_AVAIL_IDX = 1, H_UNMAPPED = 2, H_TX_WRITE_ONLY = 3, H_RX_READ_ONLY = 4, H_OVERSIZE = 5,
    H_KICK_EARLY = 6, H_NO_VERSION_1 = 7, H_RESET = 8, H_STARVE = 9, H_ALL = 10,
};
struct params {
    uint32_t magic, version, workload, nics;
    uint32_t pairs, frames, len, descs;
    uint64_t mmio_base, heap, heap_size;
    uint32_t seed, hostile;
    uint32_t batch; /* frames per kick (1..256) */
    uint32_t vcpus; /* vCPUs running this program; vCPU k drives NICs k, k + vcpus, ... */
    uint64_t stack_top, stack_size; /* vCPU k's stack ends at stack_top - k × stack_size */
};

/* ---- port I/O and MMIO ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint32_t rd(uint64_t base, uint32_t off) { return *(volatile uint32_t *)(base + off); }
static inline void wr(uint64_t base, uint32_t off, uint32_t v) { *(volatile uint32_t *)(base + off) = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

static void putc_(char c) { outb(0x3f8, (uint8_t)c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putu(uint64_t v) {
    char b[24];
    int n = 0;
    do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) putc_(b[--n]);
}
static void puthex(uint64_t v) {
    puts_("0x");
    for (int s = 60; s >= 0; s -= 4) {
        int d = (int)((v >> s) & 15);
        if (d || s == 0 || v >> s) putc_((char)(d < 10 ? '0' + d : 'a' + d - 10));
    }
}
static __attribute__((noreturn)) void finish(uint32_t status) {
    outl(0xf4, status);
    for (;;) {}
}
static void *memset_(void *d, int c, size_t n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)c; return d; }

/* ---- virtio-mmio registers and constants ---- */
enum {
    R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_DEV_FEATURES = 0x010, R_DEV_FEATURES_SEL = 0x014,
    R_DRV_FEATURES = 0x020, R_DRV_FEATURES_SEL = 0x024, R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050, R_INT_STATUS = 0x060, R_INT_ACK = 0x064, R_STATUS = 0x070,
    R_DESC_LO = 0x080, R_DESC_HI = 0x084, R_AVAIL_LO = 0x090, R_AVAIL_HI = 0x094, R_USED_LO = 0x0a0, R_USED_HI = 0x0a4,
    R_CONFIG_MAX_PAIRS = 0x108, /* config space: mac[6], status, max_virtqueue_pairs */
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40 };
#define F_VERSION_1 (1ull << 32)
#define F_MAC (1ull << 5)
#define F_MQ (1ull << 22)
#define F_CTRL_VQ (1ull << 17)
#define D_NEXT 1
#define D_WRITE 2
#define HDR 12
#define QSIZE 256
#define MAX_PAIRS 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct queue {
    uint16_t index, size, free_head, free_count, avail_idx, last_used;
    struct desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[size] */
    volatile uint8_t *used;   /* flags, idx, {id, len}[size] */
    uint64_t buf[QSIZE];      /* buffer of each head, for reaping */
    uint32_t tag[QSIZE];      /* sequence number the buffer carries */
};
struct nic {
    uint64_t base;
    uint32_t pairs;            /* negotiated queue pairs (1 without MQ) */
    uint64_t features;
    struct queue q[2 * MAX_PAIRS];
    struct queue ctrl;         /* the control queue, at index 2 × max_virtqueue_pairs */
    uint32_t next_rx_seq[MAX_PAIRS];
    uint64_t sent, received, bad, bytes;
};

/* Read-only after the VMM wrote it; shared by every vCPU. */
#define P ((const struct params *)PARAMS_ADDR)
/* Each NIC is driven by one vCPU only; each vCPU has its own slice of the heap. */
static struct nic nics[8];
static uint64_t heap_next[8], heap_end[8];

/* Which vCPU runs this: the stacks are disjoint, so the stack pointer says
 * (there is no per-CPU register to spare at privilege level 3). */
static uint32_t cpu(void) {
    uint64_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    uint64_t k = (P->stack_top - sp) / P->stack_size;
    return k < 8 ? (uint32_t)k : 0;
}

static void *alloc(uint64_t size, uint64_t align) {
    uint32_t c = cpu();
    uint64_t a = (heap_next[c] + align - 1) & ~(align - 1);
    if (a + size > heap_end[c]) { puts_("guest: out of heap\n"); finish(90); }
    heap_next[c] = a + size;
    memset_((void *)a, 0, size);
    return (void *)a;
}

/* ---- queues ---- */
static int queue_setup_at(struct nic *n, struct queue *q, uint16_t index, uint16_t want) {
    wr(n->base, R_QUEUE_SEL, index);
    uint32_t max = rd(n->base, R_QUEUE_NUM_MAX);
    if (max == 0) return -1;
    uint16_t size = want < max ? want : (uint16_t)max;
    q->index = index;
    q->size = size;
    q->desc = alloc(16ull * size, 16);
    q->avail = alloc(6 + 2ull * size, 2);
    q->used = alloc(6 + 8ull * size, 4);
    for (uint16_t i = 0; i < size; i++) q->desc[i].next = (uint16_t)(i + 1);
    q->free_head = 0;
    q->free_count = size;
    q->avail_idx = q->last_used = 0;
    wr(n->base, R_QUEUE_NUM, size);
    wr(n->base, R_DESC_LO, (uint32_t)(uint64_t)q->desc);
    wr(n->base, R_DESC_HI, (uint32_t)((uint64_t)q->desc >> 32));
    wr(n->base, R_AVAIL_LO, (uint32_t)(uint64_t)q->avail);
    wr(n->base, R_AVAIL_HI, (uint32_t)((uint64_t)q->avail >> 32));
    wr(n->base, R_USED_LO, (uint32_t)(uint64_t)q->used);
    wr(n->base, R_USED_HI, (uint32_t)((uint64_t)q->used >> 32));
    wr(n->base, R_QUEUE_READY, 1);
    return 0;
}

static int queue_setup(struct nic *n, uint16_t index, uint16_t want) { return queue_setup_at(n, &n->q[index], index, want); }

/* Puts a chain of `count` descriptors (addr/len/flags given) on the avail ring; returns the head or -1. */
static int queue_add(struct queue *q, const uint64_t *addr, const uint32_t *len, const uint16_t *flags, int count,
                     uint64_t buf, uint32_t tag) {
    if (count <= 0 || q->free_count < count) return -1;
    uint16_t head = q->free_head, i = head, last = head;
    for (int k = 0; k < count; k++) {
        q->desc[i].addr = addr[k];
        q->desc[i].len = len[k];
        q->desc[i].flags = (uint16_t)(flags[k] | (k + 1 < count ? D_NEXT : 0));
        last = i;
        i = q->desc[i].next;
    }
    q->free_head = q->desc[last].next;
    q->free_count = (uint16_t)(q->free_count - count);
    q->buf[head] = buf;
    q->tag[head] = tag;
    q->avail[2 + q->avail_idx % q->size] = head;
    barrier();
    q->avail_idx++;
    q->avail[1] = q->avail_idx;
    return head;
}

/* Takes the next used element: its head and length; 0 when none. */
static int queue_used(struct queue *q, uint16_t *head, uint32_t *len) {
    barrier();
    uint16_t idx = *(volatile uint16_t *)(q->used + 2);
    if (idx == q->last_used) return 0;
    volatile uint8_t *e = q->used + 4 + 8ull * (q->last_used % q->size);
    uint32_t id = *(volatile uint32_t *)e;
    *len = *(volatile uint32_t *)(e + 4);
    q->last_used++;
    *head = (uint16_t)(id % q->size);
    /* Return the chain's descriptors to the free list. */
    uint16_t i = *head, count = 1;
    while ((q->desc[i].flags & D_NEXT) && count < q->size) { i = q->desc[i].next; count++; }
    q->desc[i].next = q->free_head;
    q->free_head = *head;
    q->free_count = (uint16_t)(q->free_count + count);
    return 1;
}

/* ---- the device ---- */
static int probe(struct nic *n) {
    if (rd(n->base, R_MAGIC) != 0x74726976) { puts_("guest: no virtio magic at "); puthex(n->base); putc_('\n'); return -1; }
    if (rd(n->base, R_VERSION) != 2 || rd(n->base, R_DEVICE_ID) != 1) { puts_("guest: not a virtio-net v2 device\n"); return -1; }
    return 0;
}

static uint64_t device_features(struct nic *n) {
    wr(n->base, R_DEV_FEATURES_SEL, 0);
    uint64_t lo = rd(n->base, R_DEV_FEATURES);
    wr(n->base, R_DEV_FEATURES_SEL, 1);
    return lo | (uint64_t)rd(n->base, R_DEV_FEATURES) << 32;
}

static void set_driver_features(struct nic *n, uint64_t f) {
    wr(n->base, R_DRV_FEATURES_SEL, 0);
    wr(n->base, R_DRV_FEATURES, (uint32_t)f);
    wr(n->base, R_DRV_FEATURES_SEL, 1);
    wr(n->base, R_DRV_FEATURES, (uint32_t)(f >> 32));
}

/* Control command VQ_PAIRS_SET; returns the device's status byte (0 = OK). */
static int ctrl_set_pairs(struct nic *n, uint16_t pairs) {
    struct queue *q = &n->ctrl;
    uint8_t *cmd = alloc(4, 4), *status = alloc(1, 1);
    cmd[0] = 4; cmd[1] = 0; cmd[2] = (uint8_t)pairs; cmd[3] = (uint8_t)(pairs >> 8);
    *status = 0xff;
    uint64_t addr[2] = {(uint64_t)cmd, (uint64_t)status};
    uint32_t len[2] = {4, 1};
    uint16_t flags[2] = {0, D_WRITE};
    if (queue_add(q, addr, len, flags, 2, 0, 0) < 0) return -1;
    wr(n->base, R_QUEUE_NOTIFY, q->index);
    uint16_t head; uint32_t l;
    if (!queue_used(q, &head, &l)) return -2;
    return *(volatile uint8_t *)status;
}

/* Full initialisation: reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK. */
static int init_nic(struct nic *n, uint32_t want_pairs, int version_1) {
    wr(n->base, R_STATUS, 0);
    wr(n->base, R_STATUS, S_ACK);
    wr(n->base, R_STATUS, S_ACK | S_DRIVER);
    uint64_t offered = device_features(n);
    uint64_t f = offered & (F_MAC | (version_1 ? F_VERSION_1 : 0));
    if (want_pairs > 1 && (offered & F_MQ) && (offered & F_CTRL_VQ)) f |= F_MQ | F_CTRL_VQ;
    set_driver_features(n, f);
    wr(n->base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(rd(n->base, R_STATUS) & S_FEATURES_OK)) { puts_("guest: the device refused the features\n"); return -1; }
    n->features = f;
    uint32_t pairs = (f & F_MQ) ? want_pairs : 1;
    if (pairs > MAX_PAIRS) pairs = MAX_PAIRS;
    n->pairs = pairs;
    for (uint32_t i = 0; i < 2 * pairs; i++)
        if (queue_setup(n, (uint16_t)i, QSIZE) < 0) { puts_("guest: queue "); putu(i); puts_(" missing\n"); return -1; }
    /* The control queue follows every data queue the device has (virtio v1.2
       §5.1.2: index 2 × max_virtqueue_pairs, from config space with MQ), not
       just the ones used here. */
    if (f & F_CTRL_VQ) {
        uint32_t max_pairs = (f & F_MQ) ? (rd(n->base, R_CONFIG_MAX_PAIRS) & 0xffff) : 1;
        if (max_pairs == 0 || queue_setup_at(n, &n->ctrl, (uint16_t)(2 * max_pairs), 16) < 0) {
            puts_("guest: no control queue at 2 x max_virtqueue_pairs "); putu(max_pairs); puts_("\n");
            return -1;
        }
    }
    wr(n->base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return 0;
}

/* ---- traffic ---- */
static uint8_t pattern(uint32_t seq, uint32_t i) { return (uint8_t)(seq * 31 + i * 7 + (i >> 8)); }

/* One RX buffer of HDR + len on pair p's RX queue. */
static int post_rx(struct nic *n, uint32_t p, uint32_t len) {
    uint64_t addr = (uint64_t)alloc(HDR + len, 16);
    uint32_t l = HDR + len;
    uint16_t fl = D_WRITE;
    return queue_add(&n->q[2 * p], &addr, &l, &fl, 1, addr, 0);
}

static void repost_rx(struct nic *n, uint32_t p, uint64_t buf, uint32_t len) {
    uint32_t l = HDR + len;
    uint16_t fl = D_WRITE;
    queue_add(&n->q[2 * p], &buf, &l, &fl, 1, buf, 0);
}

/* Queues one TX frame of `len` bytes (header + payload, written into `buf`)
 * over `descs` descriptors. */
static int send_frame(struct nic *n, uint32_t p, uint8_t *buf, uint32_t seq, uint32_t len, uint32_t descs) {
    memset_(buf, 0, HDR);
    for (uint32_t i = 0; i < len; i++) buf[HDR + i] = pattern(seq, i);
    if (descs < 1) descs = 1;
    if (descs > 16) descs = 16;
    uint64_t addr[16]; uint32_t l[16]; uint16_t fl[16];
    uint32_t total = HDR + len, at = 0;
    for (uint32_t k = 0; k < descs; k++) {
        uint32_t piece = total / descs + (k < total % descs ? 1 : 0);
        addr[k] = (uint64_t)buf + at; l[k] = piece; fl[k] = 0;
        at += piece;
    }
    return queue_add(&n->q[2 * p + 1], addr, l, fl, (int)descs, (uint64_t)buf, seq);
}

/* Reaps TX (frees buffers) and RX (checks bytes, reposts) of pair p. */
static void reap(struct nic *n, uint32_t p, uint32_t len) {
    uint16_t head; uint32_t used;
    struct queue *tx = &n->q[2 * p + 1], *rx = &n->q[2 * p];
    while (queue_used(tx, &head, &used)) {}
    while (queue_used(rx, &head, &used)) {
        uint64_t buf = rx->buf[head];
        uint32_t seq = n->next_rx_seq[p]++;
        uint32_t got = used > HDR ? used - HDR : 0;
        int ok = got == len;
        const uint8_t *b = (const uint8_t *)buf;
        if (*(const uint16_t *)(b + 10) != 1) ok = 0; /* num_buffers */
        for (uint32_t i = 0; ok && i < got; i++) if (b[HDR + i] != pattern(seq, i)) ok = 0;
        n->received++;
        n->bytes += got;
        if (!ok) n->bad++;
        repost_rx(n, p, buf, len);
    }
    /* Acknowledge what the device raised (we poll, but a driver acks). */
    uint32_t isr = rd(n->base, R_INT_STATUS);
    if (isr) wr(n->base, R_INT_ACK, isr);
}

#define MAX_BATCH 256
/* Sends `frames` frames round-robin over `pairs` pairs, P->batch per kick;
 * the device drains a kick synchronously and each batch is reaped before the
 * next, so a batch's worth of TX buffers per pair is reused. */
static void traffic(struct nic *n, uint32_t frames, uint32_t len, uint32_t pairs, uint32_t descs) {
    uint32_t seq[MAX_PAIRS] = {0};
    uint8_t *pool[MAX_PAIRS];
    uint32_t batch_size = P->batch >= 1 && P->batch <= MAX_BATCH ? P->batch : 32;
    if (batch_size > 128) batch_size = 128; /* RX keeps 2 × batch posted in a 256-entry ring */
    for (uint32_t p = 0; p < pairs; p++) {
        n->next_rx_seq[p] = 0;
        pool[p] = alloc((uint64_t)batch_size * ((HDR + len + 15) & ~15ull), 16);
        while (n->q[2 * p].free_count > n->q[2 * p].size - 2 * batch_size)
            if (post_rx(n, p, len) < 0) break;
    }
    uint32_t done = 0, stride = (HDR + len + 15) & ~15u;
    while (done < frames) {
        for (uint32_t p = 0; p < pairs && done < frames; p++) {
            uint32_t batch = 0;
            while (batch < batch_size && done < frames && n->q[2 * p + 1].free_count >= descs) {
                if (send_frame(n, p, pool[p] + (uint64_t)batch * stride, seq[p]++, len, descs) < 0) break;
                batch++; done++; n->sent++;
            }
            wr(n->base, R_QUEUE_NOTIFY, 2 * p + 1);
            reap(n, p, len);
        }
    }
}


/* ---- hostile guests: each case checks what it can see and says so ---- */
#define UNMAPPED 0x7f0000000000ull /* far beyond guest RAM */

static void say(const char *what, uint64_t v) { puts_("guest: "); puts_(what); putu(v); putc_('\n'); }

/* A TX chain of raw descriptors on pair 0, kicked, TX used reaped. Returns the used length or -1. */
static int64_t raw_tx(struct nic *n, const uint64_t *addr, const uint32_t *len, const uint16_t *flags, int count) {
    struct queue *tx = &n->q[1];
    if (queue_add(tx, addr, len, flags, count, 0, 0) < 0) return -1;
    wr(n->base, R_QUEUE_NOTIFY, 1);
    uint16_t head; uint32_t used;
    int64_t got = -1;
    while (queue_used(tx, &head, &used)) got = used;
    return got;
}

/* Drains RX used entries of pair 0 without checking; returns how many. */
static uint32_t drain_rx(struct nic *n) {
    uint16_t head; uint32_t used, count = 0;
    while (queue_used(&n->q[0], &head, &used)) count++;
    return count;
}

static uint32_t hostile_case(struct nic *n, uint32_t which, uint32_t len) {
    uint32_t bad = 0;
    uint8_t *frame = alloc(HDR + len, 16);
    for (uint32_t i = 0; i < len; i++) frame[HDR + i] = pattern(0, i);
    uint64_t a[4]; uint32_t l[4]; uint16_t f[4];
    switch (which) {
    case H_AVAIL_IDX: {
        /* avail.idx far ahead of what the device consumed: the TX queue is poisoned. */
        post_rx(n, 0, len);
        n->q[1].avail[1] = (uint16_t)(n->q[1].avail_idx + 1000);
        wr(n->base, R_QUEUE_NOTIFY, 1);
        uint32_t st = rd(n->base, R_STATUS), isr = rd(n->base, R_INT_STATUS);
        say("bogus avail index: status ", st);
        if (!(st & S_NEEDS_RESET) || !(isr & 2)) bad++;
        wr(n->base, R_INT_ACK, isr);
        break;
    }
    case H_UNMAPPED: {
        /* A TX frame at an address beyond RAM, then an RX buffer beyond RAM for a good frame. */
        a[0] = (uint64_t)frame; l[0] = HDR; f[0] = 0;
        a[1] = UNMAPPED; l[1] = len; f[1] = 0;
        int64_t used = raw_tx(n, a, l, f, 2);
        say("TX chain at an unmapped address: used.len ", (uint64_t)used);
        uint64_t ra = UNMAPPED; uint32_t rl = HDR + len; uint16_t rf = D_WRITE;
        queue_add(&n->q[0], &ra, &rl, &rf, 1, 0, 0);
        a[0] = (uint64_t)frame; l[0] = HDR + len; f[0] = 0;
        raw_tx(n, a, l, f, 1);
        n->sent++;  /* the device counts this TX frame */
        say("RX buffers returned for the unmapped one: ", drain_rx(n));
        break;
    }
    case H_TX_WRITE_ONLY: {
        post_rx(n, 0, len);
        a[0] = (uint64_t)frame; l[0] = HDR + len; f[0] = D_WRITE;
        say("write-only TX descriptor: used.len ", (uint64_t)raw_tx(n, a, l, f, 1));
        if (drain_rx(n) != 0) bad++;
        break;
    }
    case H_RX_READ_ONLY: {
        uint64_t ra = (uint64_t)alloc(HDR + len, 16); uint32_t rl = HDR + len; uint16_t rf = 0;
        queue_add(&n->q[0], &ra, &rl, &rf, 1, 0, 0);
        a[0] = (uint64_t)frame; l[0] = HDR + len; f[0] = 0;
        raw_tx(n, a, l, f, 1);
        n->sent++;
        uint32_t back = drain_rx(n);
        say("read-only RX buffer recycled: ", back);
        if (back != 1) bad++;
        break;
    }
    case H_OVERSIZE: {
        uint32_t big = 65557 + 1;
        uint8_t *huge = alloc(HDR + big, 16);
        post_rx(n, 0, len);
        a[0] = (uint64_t)huge; l[0] = HDR + big; f[0] = 0;
        say("oversize frame: used.len ", (uint64_t)raw_tx(n, a, l, f, 1));
        if (drain_rx(n) != 0) bad++;
        break;
    }
    case H_STARVE: {
        /* Frames with no RX buffer posted: counted as sent, dropped for want of a buffer. */
        for (int k = 0; k < 4; k++) {
            a[0] = (uint64_t)frame; l[0] = HDR + len; f[0] = 0;
            raw_tx(n, a, l, f, 1);
            n->sent++;
        }
        say("frames sent with no RX buffer: ", 4);
        break;
    }
    }
    return bad;
}

/* Kicks before DRIVER_OK are ignored; the same chains go once DRIVER_OK is set. */
static uint32_t early_kick(struct nic *n, uint32_t len) {
    wr(n->base, R_STATUS, 0);
    wr(n->base, R_STATUS, S_ACK);
    wr(n->base, R_STATUS, S_ACK | S_DRIVER);
    set_driver_features(n, device_features(n) & (F_VERSION_1 | F_MAC));
    wr(n->base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    n->pairs = 1;
    queue_setup(n, 0, QSIZE);
    queue_setup(n, 1, QSIZE);
    post_rx(n, 0, len);
    uint8_t *frame = alloc(HDR + len, 16);
    uint64_t a = (uint64_t)frame; uint32_t l = HDR + len; uint16_t f = 0;
    queue_add(&n->q[1], &a, &l, &f, 1, 0, 0);
    wr(n->base, R_QUEUE_NOTIFY, 1);
    uint32_t early = drain_rx(n);
    say("RX frames after a kick before DRIVER_OK: ", early);
    wr(n->base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    wr(n->base, R_QUEUE_NOTIFY, 1);
    uint32_t late = drain_rx(n);
    say("RX frames after DRIVER_OK and a second kick: ", late);
    n->sent++;
    n->received += late;
    n->bytes += late * len;
    return early == 0 && late == 1 ? 0 : 1;
}

/* Features without VERSION_1: FEATURES_OK is refused (FAILED set). */
static uint32_t no_version_1(struct nic *n) {
    wr(n->base, R_STATUS, 0);
    wr(n->base, R_STATUS, S_ACK);
    wr(n->base, R_STATUS, S_ACK | S_DRIVER);
    set_driver_features(n, F_MAC);
    wr(n->base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    uint32_t st = rd(n->base, R_STATUS);
    say("status after FEATURES_OK without VERSION_1: ", st);
    return (st & S_FEATURES_OK) || !(st & 0x80) ? 1 : 0; /* refused: FAILED, no FEATURES_OK */
}

/* Runs one hostile case on a freshly initialised NIC, then resets it. */
static uint32_t run_hostile(struct nic *n, uint32_t which, uint32_t len) {
    uint32_t bad = 0;
    if (which == H_KICK_EARLY) bad = early_kick(n, len);
    else if (which == H_NO_VERSION_1) bad = no_version_1(n);
    else if (which == H_RESET) {
        /* A reset in the middle of traffic: counters survive, a new init works. */
        if (init_nic(n, 1, 1) < 0) return 1;
        traffic(n, 8, len, 1, 1);
        post_rx(n, 0, len);
        wr(n->base, R_STATUS, 0);
        say("status after reset: ", rd(n->base, R_STATUS));
        if (init_nic(n, 1, 1) < 0) return 1;
        traffic(n, 8, len, 1, 1);
    } else {
        if (init_nic(n, 1, 1) < 0) return 1;
        bad = hostile_case(n, which, len);
    }
    wr(n->base, R_STATUS, 0);
    return bad;
}

/* Writes pseudo-random values to every register of every window, and outside them. */
static void garbage(uint32_t nics_count, uint32_t seed) {
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 4; round++) {
        for (uint32_t i = 0; i < nics_count; i++) {
            uint64_t base = P->mmio_base + 0x1000ull * i;
            for (uint32_t off = 0; off < 0x200; off += 4) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                if (off == R_STATUS && (x & 3)) continue; /* mostly keep the device alive for more garbage */
                wr(base, off, (uint32_t)x);
                (void)rd(base, off);
            }
        }
        /* Stray: the gap below the first window, past the last, and a port nobody owns. */
        (void)rd(0xC0000000ull, 0);
        wr(P->mmio_base + 0x1000ull * nics_count, 0, 0xdeadbeef);
        outb(0x80, 0x42);
    }
}

static void report(int i, struct nic *n) {
    puts_("guest: nic"); putu((uint64_t)i);
    puts_(" sent "); putu(n->sent);
    puts_(" received "); putu(n->received);
    puts_(" bad "); putu(n->bad);
    puts_(" rx_bytes "); putu(n->bytes);
    puts_(" pairs "); putu(n->pairs);
    putc_('\n');
}

/* Entry of every vCPU; the VMM puts its index in rdi. */
void _start(uint64_t vcpu) {
    if (P->magic != PARAMS_MAGIC || P->version != 1) { puts_("guest: no parameter block\n"); finish(91); }
    uint32_t vcpus = P->vcpus >= 1 && P->vcpus <= 8 ? P->vcpus : 1;
    uint32_t me = (uint32_t)vcpu < vcpus ? (uint32_t)vcpu : 0;
    if (cpu() != me) { puts_("guest: stack does not match the vCPU index\n"); finish(95); }
    uint64_t slice = P->heap_size / vcpus;
    heap_next[me] = P->heap + me * slice;
    heap_end[me] = heap_next[me] + slice;
    uint32_t status = 0;
    uint32_t count = P->nics < 8 ? P->nics : 8;
    if (P->workload == W_GARBAGE) {
        if (me == 0) garbage(count, P->seed);
        puts_("guest: garbage written\n");
        finish(0);
    }
    for (uint32_t i = me; i < count; i += vcpus) {
        struct nic *n = &nics[i];
        n->base = P->mmio_base + 0x1000ull * i;
        if (probe(n) < 0) finish(92);
        uint32_t want = P->pairs ? P->pairs : 1;
        if (init_nic(n, want, 1) < 0) finish(93);
        if (P->workload == W_SPIN || P->workload == W_TRIPLE_FAULT) {
            /* A burst first, so the trace has something to keep up to the end. */
            traffic(n, P->frames, P->len, n->pairs, P->descs);
            report((int)i, n);
            if (P->workload == W_SPIN) { puts_("guest: spinning forever\n"); for (;;) { __asm__ volatile(""); } }
            puts_("guest: executing ud2 with no IDT\n");
            __asm__ volatile("ud2");
        }
        if (P->workload == W_BURST) {
            if (n->pairs > 1 && ctrl_set_pairs(n, (uint16_t)n->pairs) != 0) { puts_("guest: VQ_PAIRS_SET refused\n"); status = 1; }
            traffic(n, P->frames, P->len, n->pairs, P->descs);
        } else if (P->workload == W_MQ) {
            for (uint32_t k = 1; k <= n->pairs; k++) {
                int st = ctrl_set_pairs(n, (uint16_t)k);
                puts_("guest: nic"); putu(i); puts_(" VQ_PAIRS_SET "); putu(k); puts_(st == 0 ? " ok\n" : " refused\n");
                if (st != 0) status = 1;
                traffic(n, P->frames, P->len, k, P->descs);
            }
        } else if (P->workload == W_HOSTILE) {
            uint32_t first = P->hostile == H_ALL ? 1 : P->hostile, last = P->hostile == H_ALL ? H_STARVE : P->hostile;
            for (uint32_t c = first; c <= last; c++) {
                uint32_t bad = run_hostile(n, c, P->len);
                puts_("guest: hostile case "); putu(c); puts_(bad ? " UNEXPECTED\n" : " as expected\n");
                if (bad) status = 1;
            }
        } else {
            puts_("guest: unknown workload\n");
            finish(94);
        }
        report((int)i, n);
        /* Hostile cases expect frames to go missing; their own checks decided. */
        if (P->workload != W_HOSTILE && (n->sent != n->received || n->bad)) status = 1;
    }
    finish(status);
}
