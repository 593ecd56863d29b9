/* The twin's hot unicorn hooks in C (a model): the common case of hazard3/hooks.py's block, XIP data and peripheral
 * hooks, over state Python shares (native/__init__.py mirrors `struct state` and `struct row` field for field).
 *
 * Each hook first looks at everything that makes its call unusual (a slice's budget spent, a deferred mstatus write,
 * an interrupt due, QMI checks, a run to a cycle within reach, a block unknown here or spanning functions, a trace,
 * an atomic instruction in the block, no block yet) and, if any holds, hands the call to the Python hook it
 * replaces (`py_entry` and `py_run`, the two halves of the block hook, `py_mem`, `py_periph`) before changing
 * anything. Otherwise it does what the Python hook does
 * in that case, line for line, on the same numbers: the Python hooks and this file are one model. The XIP cache's
 * random eviction draws from CPython's Mersenne Twister (random.Random.getrandbits(1)), whose state lives here, so
 * Python's fills and these draw from one stream.
 *
 * Built by native/__init__.py with the system C compiler; no unicorn header is needed (the callback signatures are
 * unicorn 2's; every stop is the Python hooks' business).
 */
#include <stdint.h>
#include <stdlib.h>

#define SETS 1024
#define SET_SHIFT 3
#define SET_MASK (SETS - 1)
#define TAG_SHIFT 13
#define INVALID (-1)
#define UC_MEM_WRITE 17
#define CHUNK_SHIFT 12
#define CHUNKS 4096
#define MT_N 624
#define MT_M 397

struct row {                 /* one translated block (hooks.py's block record; B_ names in comments) */
    int64_t count, miss, dacc, dhit, dstall, epoch;   /* B_COUNT B_MISS B_DACC B_DHIT B_DSTALL B_EPOCH */
    int64_t n, size, reach, words, pen, nlines;       /* B_N B_SIZE B_REACH B_WORDS B_PEN len(B_LINES) */
    int32_t *lines;          /* B_LINES as set, tag pairs */
    int32_t fast, cached, atomic, mixed;              /* B_FAST B_CACHED B_ATOMIC (B_FIDX is None) */
};

typedef void (*block_cb)(void *uc, uint64_t address, uint32_t size, void *ud);
typedef int (*entry_cb)(void *uc, uint64_t address, uint32_t size, void *ud);
typedef void (*mem_cb)(void *uc, int type, uint64_t address, int size, int64_t value, void *ud);

struct state {
    int64_t st[3];           /* Machine._st: budget left, instructions retired, stall cycles */
    int64_t ctr[2];          /* XipCache.ctr: accesses, hits */
    int64_t epoch[1];        /* XipCache.epoch */
    int64_t on[1];           /* XipCache.on */
    int64_t irq_at[1];       /* Machine._irq_at */
    int64_t land_at[1];      /* Machine._land_at */
    int64_t xip_checks[1];   /* Qmi.xip_checks */
    int64_t acs[2], hcs[2];  /* Machine._data_acc_by_cs, _data_hit_by_cs */
    int64_t penalty[2];      /* Machine._penalty */
    int64_t pending[2];      /* Machine._pending_mstatus: set?, value */
    int64_t last[2];         /* Machine._last: row index (-1: None), instructions of it not taken back */
    int64_t trace;           /* Machine.trace is not None */
    int32_t tags[2][SETS];   /* XipCache.tags */
    int32_t pinned[2][SETS]; /* XipCache.pinned */
    uint32_t mt[MT_N];       /* XipCache.rng: CPython's random.Random state */
    int64_t mti;
    entry_cb py_entry;       /* the Python block hook's halves: what comes before a block starts, */
    block_cb py_run;         /* and the block's start */
    mem_cb py_mem, py_periph;
    void *py_ud;
    struct row *chunks[CHUNKS];
    /* address -> row index of the latest block decoded there (Machine._blocks), open addressing */
    uint64_t *map_keys;
    int64_t *map_vals;
    int64_t map_cap, map_used;
};

static inline struct row *row_at(struct state *S, int64_t i) {
    return &S->chunks[i >> CHUNK_SHIFT][i & ((1 << CHUNK_SHIFT) - 1)];
}

/* CPython's genrand_uint32 (Modules/_randommodule.c); getrandbits(1) is its top bit. */
static uint32_t genrand(struct state *S) {
    static const uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
    uint32_t *mt = S->mt, y;
    if (S->mti >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
            mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (mt[MT_N - 1] & 0x80000000u) | (mt[0] & 0x7fffffffu);
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        S->mti = 0;
    }
    y = mt[S->mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

int xs_random_bit(struct state *S) { return (int)(genrand(S) >> 31); }

/* XipCache._fill */
static int fill(struct state *S, int s, int32_t t) {
    int way;
    if (S->tags[0][s] == INVALID) {
        way = 0;
    } else if (S->tags[1][s] == INVALID) {
        way = 1;
    } else {
        int p0 = S->pinned[0][s], p1 = S->pinned[1][s];
        if (p0 && p1)
            return 0;
        way = p0 ? 1 : p1 ? 0 : xs_random_bit(S);
    }
    S->tags[way][s] = t;
    S->epoch[0] += 1;
    return 1;
}

/* --- the address map (Machine._blocks) ----------------------------------------------------------------------- */
static uint64_t slot_of(uint64_t key, int64_t cap) { return (key * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1); }

static int64_t map_get(struct state *S, uint64_t key) {
    if (!S->map_cap)
        return -1;
    for (uint64_t i = slot_of(key, S->map_cap);; i = (i + 1) & (S->map_cap - 1)) {
        if (S->map_vals[i] < 0)
            return -1;
        if (S->map_keys[i] == key)
            return S->map_vals[i];
    }
}

static int map_insert(uint64_t *keys, int64_t *vals, int64_t cap, uint64_t key, int64_t val) {
    for (uint64_t i = slot_of(key, cap);; i = (i + 1) & (cap - 1)) {
        if (vals[i] < 0 || keys[i] == key) {
            int fresh = vals[i] < 0;
            keys[i] = key;
            vals[i] = val;
            return fresh;
        }
    }
}

/* The block decoded latest at `key` is row `val`; 0 on success, -1 out of memory. */
int xs_map_put(struct state *S, uint64_t key, int64_t val) {
    if (2 * (S->map_used + 1) > S->map_cap) {
        int64_t cap = S->map_cap ? 2 * S->map_cap : 1 << 16;
        uint64_t *keys = malloc(cap * sizeof *keys);
        int64_t *vals = malloc(cap * sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return -1;
        }
        for (int64_t i = 0; i < cap; i++)
            vals[i] = -1;
        for (int64_t i = 0; i < S->map_cap; i++)
            if (S->map_vals[i] >= 0)
                map_insert(keys, vals, cap, S->map_keys[i], S->map_vals[i]);
        free(S->map_keys);
        free(S->map_vals);
        S->map_keys = keys;
        S->map_vals = vals;
        S->map_cap = cap;
    }
    S->map_used += map_insert(S->map_keys, S->map_vals, S->map_cap, key, val);
    return 0;
}

void xs_free(struct state *S) {
    free(S->map_keys);
    free(S->map_vals);
    S->map_keys = NULL;
    S->map_vals = NULL;
    S->map_cap = S->map_used = 0;
}

/* --- the hooks ---------------------------------------------------------------------------------------------------- */
void xs_on_block(void *uc, uint64_t address, uint32_t size, void *ud) {
    struct state *S = ud;
    if (S->st[0] <= 0 || S->pending[0] || S->st[1] + S->st[2] >= S->irq_at[0] || S->xip_checks[0]) {
        if (S->py_entry(uc, address, size, S->py_ud))
            return;
    }
    int64_t now = S->st[1] + S->st[2];
    int64_t i = map_get(S, address);
    struct row *b = i < 0 ? NULL : row_at(S, i);
    if (!b || b->size != size || now + b->reach > S->land_at[0] || (b->words && !b->fast)) {
        S->py_run(uc, address, size, S->py_ud);
        return;
    }
    int64_t n = b->n;
    S->st[0] -= n;
    S->st[1] += n;
    b->count += 1;
    S->last[0] = i;
    S->last[1] = n;
    int64_t w = b->words, m;
    if (!w)
        return;
    S->ctr[0] += w;
    if (b->cached && S->on[0]) {
        if (b->epoch == S->epoch[0]) {
            S->ctr[1] += w;
            return;
        }
        int complete = 1;
        m = 0;
        for (int64_t k = 0; k < b->nlines; k++) {
            int s = b->lines[2 * k];
            int32_t t = b->lines[2 * k + 1];
            if (S->tags[0][s] != t && S->tags[1][s] != t) {
                m += 1;
                if (!fill(S, s, t))
                    complete = 0;
            }
        }
        S->ctr[1] += w - m;
        if (complete)
            b->epoch = S->epoch[0];
    } else {
        m = w;
    }
    if (m) {
        b->miss += m;
        S->st[2] += m * b->pen;
    }
}

void xs_on_xip_mem(void *uc, int type, uint64_t address, int size, int64_t value, void *ud) {
    struct state *S = ud;
    int alias = (address >> 26) & 3;
    if (alias == 2)
        return;   /* the maintenance alias: an operation, not an XIP access */
    int64_t i = S->last[0];
    struct row *b = i < 0 ? NULL : row_at(S, i);
    if (S->xip_checks[0] || S->trace || !b || b->atomic || b->mixed) {
        S->py_mem(uc, type, address, size, value, S->py_ud);
        return;
    }
    uint32_t phys = address & 0x01FFFFFF;
    int cs = phys >> 24;
    if (type == UC_MEM_WRITE && cs == 0)
        return;   /* flash is not writable: the protection fault that follows is the whole story */
    S->ctr[0] += 1;
    S->acs[cs] += 1;
    int hit = 0;
    if (alias == 0 && S->on[0]) {
        int s = (phys >> SET_SHIFT) & SET_MASK;
        int32_t t = phys >> TAG_SHIFT;
        if (S->tags[0][s] == t || S->tags[1][s] == t)
            hit = 1;
        else
            fill(S, s, t);
    }
    b->dacc += 1;
    if (hit) {
        S->ctr[1] += 1;
        S->hcs[cs] += 1;
        b->dhit += 1;
    } else {
        int64_t pen = S->penalty[cs];
        S->st[2] += pen;
        b->dstall += pen;
    }
}

void xs_on_periph_mem(void *uc, int type, uint64_t address, int size, int64_t value, void *ud) {
    struct state *S = ud;
    int64_t i = S->last[0];
    if (i >= 0 && row_at(S, i)->atomic)
        S->py_periph(uc, type, address, size, value, S->py_ud);
}

/* The loader checks its mirrors of the structs against these. */
int64_t xs_sizeof_state(void) { return sizeof(struct state); }
int64_t xs_sizeof_row(void) { return sizeof(struct row); }
