/*
 * snapshot: page building and publishing (see snapshot.h).
 *
 * Building is a counting sort of every valid span of every target by
 * family (stable, so targets keep their order inside a family), then one
 * pass that writes each family's header once followed by its spans,
 * inflating packed pieces as it goes. The cost is one pass over the
 * page's bytes, O(spans + families log families) besides.
 */
#include "snapshot.h"

#include <h2o.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "clock.h"
#include "piece.h"
#include "selfmetrics.h"

#define REFRESH_MS 5000    /* rebuild at least this often */
#define DEBOUNCE_MS 200    /* wait this long after new data to batch others */
#define INLINE_GZIP 262144 /* pages smaller than this are gzipped on the loop */
#define BIG_PAGE (1 << 20) /* from this size on, data builds at most ~once a second */
#define BIG_PAGE_MS 1000
#define BUILD_NICE 10    /* the priority of threads that build pages */
#define SPACING 8        /* builds at least this many times their cost apart */
#define URGENT_SPACING 2 /* the same after a change of state */

struct pp_snapshot {
    uv_loop_t *loop;
    const pp_registry *reg;
    pp_process_status *status; /* read; its page statistics written */
    const pp_log *log;
    pp_page *current;
    uint64_t current_built_at; /* hrtime the current page's build started */
    uint64_t build_started;    /* hrtime the build in flight started */
    uint64_t last_build_end;   /* hrtime the last build ended (loop side) */
    bool urgent;               /* a change of state waits to be published */
    uv_timer_t debounce;
    uv_timer_t refresh;
    int handles;
    bool closing;
    bool building;              /* a gzip is running on the thread pool */
    bool dirty;                 /* changed since the build in flight started */
    bool no_refresh;            /* built on changes only, always off the loop */
    uint64_t last_build_ms;     /* wall time the last build took, for spacing */
    uint64_t last_build_cpu_ms; /* its CPU time, for spacing news */
};

/* A big page's gzip body is one raw deflate stream cut at every family
 * (a full flush: byte-aligned, no reference back across it), so the next
 * build can copy a family's bytes instead of inflating and deflating them
 * again when every span in it comes from the same pieces as before (a
 * piece is kept while its query's results do not change: the settings,
 * idle tables). A family's key is a 64-bit hash of its spans' piece ids
 * and indexes in page order; the header is the generation's. */
typedef struct part {
    uint64_t key;
    uint32_t crc; /* of the family's plain bytes */
    bool valid;
    size_t plain_len;
    size_t gz_off, gz_len;
} part;

typedef struct pp_page_parts {
    uint64_t gen_id;
    size_t n; /* by family id */
    part p[];
} pp_page_parts;

static void free_states(pp_page_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].name);
    free(t);
}

static void dispose_page(void *p)
{
    pp_page *page = p;
    free(page->plain);
    free(page->gz);
    free_states(page->targets, page->ntargets);
    free(page->parts);
}

/* The targets' states as of this build, for the role endpoints. */
static pp_page_target *capture_states(const pp_registry *reg, size_t *n)
{
    *n = pp_registry_count(reg);
    pp_page_target *out = pp_calloc(*n ? *n : 1, sizeof(pp_page_target));
    for (size_t i = 0; i < *n; i++) {
        const pp_target *t = pp_registry_at(reg, i);
        out[i].name = pp_strdup(pp_target_dsn(t)->label);
        out[i].up = pp_target_up(t);
        out[i].role = pp_target_role(t);
    }
    return out;
}

int pp_snapshot_gzip(const char *in, size_t n, char **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* 15 + 16: a gzip header, which is what Content-Encoding: gzip means */
    /* a big page is compressed faster (level 1 costs about a third of
     * level 5 and the page comes out about 20 % larger) */
    int level = n >= BIG_PAGE ? 1 : 5;
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    char *buf = pp_malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* One span on its way to the page, 336,000 of them at 1,000 targets: its
 * piece's index and its own in that piece, packed into 32 bits when both
 * fit (slots_init), else into 64 (spans of a piece are counted in 32
 * bits, pieces are far fewer than 2^32). */
typedef struct slots {
    uint32_t *narrow;
    uint64_t *wide;
    unsigned shift; /* bits for the span */
} slots;

static unsigned bits_for(size_t n)
{
    unsigned b = 0;
    while (b < 64 && (n >> b) != 0)
        b++;
    return b;
}

static void slots_init(slots *sl, size_t n, size_t npieces, size_t most_spans)
{
    sl->shift = bits_for(most_spans);
    unsigned need = bits_for(npieces) + sl->shift;
    sl->narrow = need <= 32 ? pp_malloc((n ? n : 1) * sizeof(uint32_t)) : NULL;
    sl->wide = need <= 32 ? NULL : pp_malloc((n ? n : 1) * sizeof(uint64_t));
}

static void slots_put(slots *sl, size_t at, size_t piece, size_t span)
{
    uint64_t v = ((uint64_t)piece << sl->shift) | span;
    if (sl->narrow != NULL)
        sl->narrow[at] = (uint32_t)v;
    else
        sl->wide[at] = v;
}

static void slots_get(const slots *sl, size_t at, size_t *piece, size_t *span)
{
    uint64_t v = sl->narrow != NULL ? sl->narrow[at] : sl->wide[at];
    *piece = (size_t)(v >> sl->shift);
    *span = (size_t)(v & ((UINT64_C(1) << sl->shift) - 1));
}

static void slots_free(slots *sl)
{
    free(sl->narrow);
    free(sl->wide);
}

/* One page build: what the loop gathered (references to the pieces and
 * the family headers, the self-metrics text) and what the assembly made.
 * Assembly reads only this, so it runs on the thread pool. */
typedef struct job {
    uv_work_t req;
    pp_snapshot *s; /* NULL for pp_snapshot_render */
    uint64_t started;
    pp_gen *gen;       /* a reference: the header strings are its family table's */
    pp_piece **pieces; /* references, in registry and catalog order */
    size_t npieces;
    const char **headers; /* per family id */
    size_t *header_lens;
    size_t nfam;
    pp_self_values self; /* the per-target self-metrics' values, rendered by the assembly */
    char *tail;          /* self-metrics, after every family */
    size_t tail_len;
    pp_page_target *states;
    size_t nstates;
    bool want_gzip;
    size_t gz_hint; /* the current page's gzip size: the next one's is close */
    pp_page *prev;  /* a reference to the current page when it has parts to reuse */
    /* results */
    char *plain;
    size_t plain_len;
    char *gz;
    size_t gz_len;
    pp_page_parts *parts;
    uint64_t reused, compressed; /* plain bytes of families, by how */
    uint64_t cpu_ns;             /* CPU time the assembly took on its thread */
    int rc;
} job;

static job *gather(const pp_registry *reg, const pp_process_status *status)
{
    job *j = pp_calloc(1, sizeof(*j));
    size_t ntargets = pp_registry_count(reg), cap = 0;
    for (size_t t = 0; t < ntargets; t++)
        cap += pp_target_nqueries(pp_registry_at(reg, t)) + PP_SELF_PIECES; /* + self pieces */
    pp_gen *gen = pp_registry_gen(reg);
    j->pieces = pp_malloc((cap ? cap : 1) * sizeof(pp_piece *));
    for (size_t t = 0; t < ntargets; t++) {
        const pp_target *tg = pp_registry_at(reg, t);
        for (size_t q = 0; q < pp_target_nqueries(tg); q++) {
            const pp_query_state *qs = pp_target_query(tg, q);
            if (qs->valid && qs->piece != NULL)
                j->pieces[j->npieces++] = pp_piece_ref(qs->piece);
        }
        /* interns the self families: before the header table is read */
        pp_piece *self[PP_SELF_PIECES];
        size_t nself = gen != NULL ? pp_selfmetrics_target_pieces((pp_target *)tg, gen, self) : 0;
        for (size_t k = 0; k < nself; k++)
            j->pieces[j->npieces++] = pp_piece_ref(self[k]);
    }
    if (gen != NULL) {
        j->gen = pp_gen_ref(gen);
        j->nfam = pp_families_count(gen->families);
        j->headers = pp_malloc((j->nfam ? j->nfam : 1) * sizeof(char *));
        j->header_lens = pp_malloc((j->nfam ? j->nfam : 1) * sizeof(size_t));
        for (size_t f = 0; f < j->nfam; f++) {
            const pp_family *fam = pp_families_get(gen->families, (uint32_t)f);
            j->headers[f] = fam->header;
            j->header_lens[f] = fam->header_len;
        }
    }
    pp_selfmetrics_capture(&j->self, reg, pp_clock_wall());
    pp_buf tail = PP_BUF_INIT;
    pp_selfmetrics_render_process(&tail, reg, status);
    j->tail = pp_buf_steal(&tail, &j->tail_len);
    j->states = capture_states(reg, &j->nstates);
    return j;
}

/* Where assembly writes the page: into a plain buffer, or through
 * deflate into the gzip form only (a big page is never held as plain text:
 * that copy was as big as every piece together). */
typedef struct sink {
    pp_buf plain; /* when !deflating */
    bool deflating;
    z_stream z;
    pp_buf gz;
    size_t in;    /* plain bytes written */
    uint32_t crc; /* of the plain bytes of the family being written */
    int rc;
} sink;

/* Room for deflate's output: grown by an eighth, not doubled, so the page
 * being built (held next to the current one) is never much bigger than
 * it needs: doubling left a 3.5 MB page in a 4 MiB buffer, or 7 MiB after
 * a page grew past its hint. */
static void sink_room(sink *k, size_t need)
{
    size_t want = need > (1 << 16) ? need : (1 << 16);
    while (k->gz.cap - k->gz.len <= want) {
        size_t grow = k->gz.cap / 8 > (1 << 16) ? k->gz.cap / 8 : (1 << 16);
        k->gz.data = pp_realloc(k->gz.data, k->gz.cap + grow);
        k->gz.cap += grow;
    }
}

/* Bytes that go into the gzip body as they are. */
static void sink_copy(sink *k, const void *p, size_t n)
{
    sink_room(k, n);
    memcpy(k->gz.data + k->gz.len, p, n);
    k->gz.len += n;
}

static void sink_deflate(sink *k, const char *p, size_t n, int flush)
{
    k->z.next_in = (Bytef *)p;
    k->z.avail_in = (uInt)n;
    do {
        sink_room(k, 0);
        k->z.next_out = (Bytef *)k->gz.data + k->gz.len;
        k->z.avail_out = (uInt)(k->gz.cap - k->gz.len - 1);
        uInt before = k->z.avail_out;
        int rc = deflate(&k->z, flush);
        k->gz.len += before - k->z.avail_out;
        if (rc == Z_STREAM_ERROR) {
            k->rc = -1;
            return;
        }
        if (rc == Z_STREAM_END)
            return;
    } while (k->z.avail_in > 0 || k->z.avail_out == 0 || flush == Z_FINISH);
}

static void put(sink *k, const char *p, size_t n)
{
    k->in += n;
    if (!k->deflating) {
        pp_buf_append(&k->plain, p, n);
        return;
    }
    while (n > 0 && k->rc == 0) { /* avail_in is 32 bits */
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        k->crc = (uint32_t)crc32(k->crc, (const Bytef *)p, (uInt)chunk);
        sink_deflate(k, p, chunk, Z_NO_FLUSH);
        p += chunk;
        n -= chunk;
    }
}

/* The text of a piece while its spans are written: its own bytes, or,
 * packed, each chunk inflated for its first span and dropped after its
 * last (left[unit], a unit being a chunk, or a whole piece that is not
 * packed). Families go out grouped by query (family_order), so what is
 * inflated at once is about a chunk of each target's piece of one query,
 * not the page. That text goes into mapped blocks of its own, unmapped
 * once the last text in them is done: from the heap it would leave holes
 * between the loop's allocations that the heap keeps (50 MB of RSS at
 * 1,000 targets). A block is unmapped when the last text in it is done:
 * at 1,000 targets 256 KiB blocks held 6.8 MB at most, 1 MiB ones 7.3
 * and 16 KiB ones 8.2 (chunks of 4-7 KiB round badly into them). */
#define BLOCK_BYTES ((size_t)1 << 18)

typedef struct block {
    size_t size, used, live;
} block;

typedef struct unpacked {
    z_stream z;
    bool open;
    size_t *base; /* per piece: its first unit */
    size_t nunits;
    char **text; /* per unit: inflated, or NULL */
    size_t *left;
    block **owner;
    block *cur; /* where the next text goes */
} unpacked;

static void unpacked_init(unpacked *u, pp_piece *const *pieces, size_t n)
{
    memset(u, 0, sizeof(*u));
    u->base = pp_malloc((n + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        u->base[i] = u->nunits;
        u->nunits += pieces[i]->packed != NULL ? pieces[i]->nchunks : 1;
    }
    u->text = pp_calloc(u->nunits + 1, sizeof(char *));
    u->left = pp_calloc(u->nunits + 1, sizeof(size_t));
    u->owner = pp_calloc(u->nunits + 1, sizeof(block *));
}

static size_t unit_of(const unpacked *u, const pp_piece *p, size_t i, const pp_span *sp)
{
    return u->base[i] + (p->packed != NULL ? pp_piece_chunk_at(p, sp->off) : 0);
}

static block *block_new(size_t len)
{
    size_t size = sizeof(block) + len;
    size = size < BLOCK_BYTES ? BLOCK_BYTES : (size + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    block *b = m;
    *b = (block){.size = size, .used = sizeof(block), .live = 0};
    return b;
}

static void block_release(unpacked *u, block *b)
{
    if (--b->live == 0 && b != u->cur)
        munmap(b, b->size);
}

/* The text of span sp of piece i (p); *unit for unpacked_done. */
static const char *span_text(unpacked *u, const pp_piece *p, size_t i, const pp_span *sp,
                             size_t *unit)
{
    if (p->packed == NULL) {
        *unit = u->base[i];
        return p->text + sp->off;
    }
    size_t c = pp_piece_chunk_at(p, sp->off);
    *unit = u->base[i] + c;
    const pp_chunk *ch = &p->chunks[c];
    if (u->text[*unit] == NULL) {
        if (!u->open && !(u->open = pp_piece_inflate_open(&u->z)))
            return NULL;
        if (u->cur == NULL || u->cur->size - u->cur->used < ch->len) {
            block *old = u->cur;
            u->cur = block_new(ch->len);
            if (old != NULL && old->live == 0)
                munmap(old, old->size);
            if (u->cur == NULL)
                return NULL;
        }
        char *at = (char *)u->cur + u->cur->used;
        u->cur->used += ch->len;
        u->cur->live++;
        u->owner[*unit] = u->cur;
        u->text[*unit] = at;
        if (!pp_piece_unpack_chunk(&u->z, p, c, at))
            return NULL;
    }
    return u->text[*unit] + (sp->off - ch->off);
}

static void unpacked_done(unpacked *u, size_t unit)
{
    if (--u->left[unit] == 0 && u->text[unit] != NULL) {
        u->text[unit] = NULL;
        block_release(u, u->owner[unit]);
    }
}

static void unpacked_free(unpacked *u)
{
    for (size_t i = 0; i < u->nunits; i++) /* only after a failure */
        if (u->text[i] != NULL)
            block_release(u, u->owner[i]);
    if (u->cur != NULL && u->cur->live == 0)
        munmap(u->cur, u->cur->size);
    free(u->base);
    free(u->text);
    free(u->left);
    free(u->owner);
    if (u->open)
        pp_piece_inflate_close(&u->z);
}

typedef struct famkey {
    uint32_t key, pos, id;
} famkey;

static int famkey_cmp(const void *a, const void *b)
{
    const famkey *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Where each family goes on the page: families sorted by the smallest
 * family id of the pieces they appear in, then by where they first appear
 * in a piece, then by id; order[place] is the family, the result
 * rank[family] its place. By id alone a piece stays inflated from its
 * first family to its last, and families are numbered as first seen: a
 * setting first seen after the self-metrics' families kept every target's
 * settings inflated while the self-metrics went out (35 MB at once at
 * 1,000 targets instead of 16). This way a query's families stay together
 * on the page, in the order its pieces hold them, so a target's piece has
 * one chunk inflated at a time: in id order each self-metrics piece had
 * two (at 1,000 targets 2,000 chunks, 13 MB, at once instead of 7). */
static uint32_t *family_order(const job *j, uint32_t *order)
{
    size_t nfam = j->nfam;
    famkey *keys = pp_malloc((nfam + 1) * sizeof(famkey));
    for (size_t f = 0; f < nfam; f++)
        keys[f] = (famkey){UINT32_MAX, UINT32_MAX, (uint32_t)f};
    for (size_t i = 0; i < j->npieces; i++) {
        const pp_piece *p = j->pieces[i];
        uint32_t least = UINT32_MAX;
        for (size_t k = 0; k < p->nspans; k++)
            if (p->spans[k].family < least)
                least = p->spans[k].family;
        for (size_t k = 0; k < p->nspans; k++) {
            if (p->spans[k].family >= nfam)
                continue;
            famkey *fk = &keys[p->spans[k].family];
            if (least < fk->key)
                fk->key = least;
            if (fk->pos == UINT32_MAX) /* its place in the first piece it is in */
                fk->pos = (uint32_t)k;
        }
    }
    qsort(keys, nfam, sizeof(famkey), famkey_cmp);
    uint32_t *rank = pp_malloc((nfam + 1) * sizeof(uint32_t));
    for (size_t r = 0; r < nfam; r++) {
        order[r] = keys[r].id;
        rank[keys[r].id] = (uint32_t)r;
    }
    free(keys);
    return rank;
}

/* A family's key: its spans' piece ids and indexes, in page order. */
static uint64_t family_key(const job *j, const slots *sl, size_t from, size_t to)
{
    uint64_t h = (uint64_t)(to - from);
    for (size_t i = from; i < to; i++) {
        size_t pi, si;
        slots_get(sl, i, &pi, &si);
        h ^= j->pieces[pi]->id * UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)si;
        /* splitmix64's mix: every bit of the step reaches every bit */
        h ^= h >> 30;
        h *= UINT64_C(0xBF58476D1CE4E5B9);
        h ^= h >> 27;
        h *= UINT64_C(0x94D049BB133111EB);
        h ^= h >> 31;
    }
    return h;
}

/* The pieces' spans counting-sorted by family (stable, so targets keep
 * their order inside a family; families in family_order's order), each
 * family's header once, then the self-metrics: one pass over the page's
 * bytes. A small page is kept plain and gzipped after; a big one goes
 * straight through deflate. Touches nothing but the job. */
static void assemble_page(job *j)
{
    size_t nfam = j->nfam;
    size_t total = 0, bytes = 0, most = 0;
    unpacked u;
    unpacked_init(&u, j->pieces, j->npieces);
    /* counting sort by place on the page */
    uint32_t *order = pp_malloc((nfam + 1) * sizeof(uint32_t));
    uint32_t *rank = family_order(j, order);
    size_t *count = pp_calloc(nfam + 1, sizeof(size_t));
    for (size_t i = 0; i < j->npieces; i++) {
        const pp_piece *p = j->pieces[i];
        for (size_t k = 0; k < p->nspans; k++)
            if (p->spans[k].family < nfam) {
                u.left[unit_of(&u, p, i, &p->spans[k])]++;
                count[rank[p->spans[k].family]]++;
            }
        total += p->nspans;
        bytes += p->len;
        if (p->nspans > most)
            most = p->nspans;
    }
    size_t acc = 0;
    for (size_t r = 0; r <= nfam; r++) {
        size_t c = count[r];
        count[r] = acc;
        acc += c;
    }
    slots sl;
    slots_init(&sl, total, j->npieces, most);
    size_t *next = pp_malloc((nfam + 1) * sizeof(size_t));
    memcpy(next, count, (nfam + 1) * sizeof(size_t));
    for (size_t i = 0; i < j->npieces; i++) {
        const pp_piece *p = j->pieces[i];
        for (size_t k = 0; k < p->nspans; k++) {
            const pp_span *sp = &p->spans[k];
            if (sp->family < nfam) /* ids come from this generation's table */
                slots_put(&sl, next[rank[sp->family]]++, i, k);
        }
    }
    free(rank);
    sink k;
    memset(&k, 0, sizeof(k));
    size_t estimate = bytes + nfam * 64 + j->tail_len + 64;
    k.deflating = j->want_gzip && estimate >= BIG_PAGE;
    const pp_page_parts *old = NULL;
    if (k.deflating) {
        /* level 1: about a third of level 5's cost, 20 % larger; raw, the
         * gzip header and trailer are ours (parts are copied past zlib) */
        if (deflateInit2(&k.z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            k.rc = -1;
        if (j->gz_hint > 0) { /* the next page's size is close to the last's */
            k.gz.cap = j->gz_hint + j->gz_hint / 32 + (1 << 17);
            k.gz.data = pp_malloc(k.gz.cap);
        }
        static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        sink_copy(&k, gzip_header, sizeof(gzip_header));
        j->parts = pp_calloc(1, sizeof(pp_page_parts) + (nfam + 1) * sizeof(part));
        j->parts->gen_id = j->gen != NULL ? j->gen->id : 0;
        j->parts->n = nfam;
        if (j->prev != NULL && j->gen != NULL && j->prev->parts->gen_id == j->gen->id)
            old = j->prev->parts;
    } else {
        pp_buf_reserve(&k.plain, estimate);
    }
    uint32_t crc = (uint32_t)crc32(0, Z_NULL, 0);
    for (size_t r = 0; r < nfam && k.rc == 0; r++) {
        size_t from = count[r], to = count[r + 1];
        if (from == to)
            continue;
        uint32_t f = order[r];
        part *np = k.deflating ? &j->parts->p[f] : NULL;
        if (np != NULL) {
            np->key = family_key(j, &sl, from, to);
            const part *op = old != NULL && f < old->n ? &old->p[f] : NULL;
            if (op != NULL && op->valid && op->key == np->key) {
                /* the same spans as on the last page: its bytes */
                *np = *op;
                np->gz_off = k.gz.len;
                sink_copy(&k, j->prev->gz + op->gz_off, op->gz_len);
                k.in += op->plain_len;
                j->reused += op->plain_len;
                crc = (uint32_t)crc32_combine(crc, op->crc, (z_off_t)op->plain_len);
                for (size_t i = from; i < to; i++) {
                    size_t pi, si;
                    slots_get(&sl, i, &pi, &si);
                    unpacked_done(&u, unit_of(&u, j->pieces[pi], pi, &j->pieces[pi]->spans[si]));
                }
                continue;
            }
            np->gz_off = k.gz.len;
            k.crc = (uint32_t)crc32(0, Z_NULL, 0);
        }
        size_t in0 = k.in;
        put(&k, j->headers[f], j->header_lens[f]);
        for (size_t i = from; i < to && k.rc == 0; i++) {
            size_t pi, si, unit;
            slots_get(&sl, i, &pi, &si);
            const pp_piece *p = j->pieces[pi];
            const pp_span *sp = &p->spans[si];
            const char *text = span_text(&u, p, pi, sp, &unit);
            if (text == NULL) {
                k.rc = -1;
                break;
            }
            put(&k, text, sp->len);
            unpacked_done(&u, unit);
        }
        if (np != NULL && k.rc == 0) {
            sink_deflate(&k, NULL, 0, Z_FULL_FLUSH);
            np->crc = k.crc;
            np->plain_len = k.in - in0;
            np->gz_len = k.gz.len - np->gz_off;
            np->valid = true;
            j->compressed += np->plain_len;
            crc = (uint32_t)crc32_combine(crc, np->crc, (z_off_t)np->plain_len);
        }
    }
    k.crc = (uint32_t)crc32(0, Z_NULL, 0);
    size_t tail0 = k.in;
    put(&k, j->tail, j->tail_len);
    crc = (uint32_t)crc32_combine(crc, k.crc, (z_off_t)(k.in - tail0));
    unpacked_free(&u);
    slots_free(&sl);
    free(next);
    free(count);
    free(order);
    j->plain_len = k.in;
    j->rc = k.rc;
    if (k.deflating) {
        if (k.rc == 0)
            sink_deflate(&k, NULL, 0, Z_FINISH);
        deflateEnd(&k.z);
        j->rc = k.rc;
        if (j->rc == 0) { /* the gzip trailer: CRC-32 and length, little-endian */
            unsigned char trailer[8];
            uint32_t isize = (uint32_t)k.in;
            for (int b = 0; b < 4; b++) {
                trailer[b] = (unsigned char)(crc >> (8 * b));
                trailer[4 + b] = (unsigned char)(isize >> (8 * b));
            }
            sink_copy(&k, trailer, sizeof(trailer));
        }
        j->gz = pp_buf_steal(&k.gz, &j->gz_len);
        if (j->rc == 0) /* the page keeps it for seconds: its exact size */
            j->gz = pp_realloc(j->gz, j->gz_len + 1);
        if (j->rc != 0) {
            free(j->gz);
            j->gz = NULL;
        }
        return;
    }
    j->plain = pp_buf_steal(&k.plain, NULL);
    if (j->rc != 0) {
        free(j->plain);
        j->plain = NULL;
        return;
    }
    if (j->want_gzip)
        j->rc = pp_snapshot_gzip(j->plain, j->plain_len, &j->gz, &j->gz_len);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A build's CPU time, besides its wall time: a build at nice 10 on a busy
 * machine waits for a core for seconds, and spacing news by that kept the
 * page 10-15 s behind the targets while 1,000 of them started (the build
 * itself took 0.7 s of CPU). */
static void assemble(job *j)
{
    uint64_t cpu0 = thread_cpu_ns();
    pp_buf tail = PP_BUF_INIT;
    pp_selfmetrics_render_values(&tail, &j->self);
    pp_buf_append(&tail, j->tail, j->tail_len);
    free(j->tail);
    j->tail = pp_buf_steal(&tail, &j->tail_len);
    assemble_page(j);
    j->cpu_ns = thread_cpu_ns() - cpu0;
}

/* Releases what the job holds (on the loop: refcounts); the results are
 * freed unless they were handed over (set to NULL). */
static void job_free(job *j)
{
    for (size_t i = 0; i < j->npieces; i++)
        pp_piece_unref(j->pieces[i]);
    free(j->pieces);
    pp_gen_unref(j->gen);
    free(j->headers);
    free(j->header_lens);
    free(j->tail);
    pp_selfmetrics_values_free(&j->self);
    free_states(j->states, j->nstates);
    free(j->plain);
    free(j->gz);
    free(j->parts);
    if (j->prev != NULL)
        h2o_mem_release_shared(j->prev);
    free(j);
}

void pp_snapshot_render(pp_buf *out, const pp_registry *reg, const pp_process_status *status)
{
    job *j = gather(reg, status);
    assemble(j);
    if (j->plain != NULL)
        pp_buf_append(out, j->plain, j->plain_len);
    job_free(j);
}

static void publish(pp_snapshot *s, job *j)
{
    pp_page *page = h2o_mem_alloc_shared(NULL, sizeof(pp_page), dispose_page);
    page->plain = j->plain;
    page->plain_len = j->plain_len;
    page->gz = j->gz;
    page->gz_len = j->gz_len;
    page->targets = j->states;
    page->ntargets = j->nstates;
    page->parts = j->parts;
    j->parts = NULL;
    j->plain = j->gz = NULL;
    j->states = NULL;
    j->nstates = 0;
    if (s->current != NULL)
        h2o_mem_release_shared(s->current);
    s->current = page;
    s->current_built_at = j->started;
}

static void maybe_free(pp_snapshot *s)
{
    if (s->closing && s->handles == 0 && !s->building)
        free(s);
}

static void schedule(pp_snapshot *s);

/* Assembly is background work: the thread that runs it yields to the
 * loop, which answers scrapes (at 1,000 targets a build is 0.7 s of a
 * core every few seconds). libuv's pool threads only do background work
 * (this, name lookups, password hashes), so one that has built a page
 * stays at the lower priority: raising it back would need privileges. */
static void on_assemble(uv_work_t *req)
{
    static _Thread_local bool lowered;
    if (!lowered) {
        lowered = true;
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BUILD_NICE);
    }
    assemble((job *)req);
}

/* j's page was published: for spacing the next, and for the self-metrics
 * (which say the wall time, what a reader of the page waited). */
static void built(pp_snapshot *s, const job *j)
{
    s->last_build_end = uv_hrtime();
    uint64_t took = s->last_build_end - j->started;
    s->last_build_ms = took / 1000000;
    s->last_build_cpu_ms = j->cpu_ns / 1000000;
    if (s->status != NULL) {
        s->status->page.builds++;
        s->status->page.build_seconds += (double)took / 1e9;
        s->status->page.last_build_seconds = (double)took / 1e9;
        s->status->page.bytes_reused += j->reused;
        s->status->page.bytes_compressed += j->compressed;
    }
}

static void after_assemble(uv_work_t *req, int status)
{
    job *j = (job *)req;
    pp_snapshot *s = j->s;
    s->building = false;
    if (s->closing || status != 0 || j->rc != 0) {
        if (!s->closing)
            pp_log_write(s->log, PP_LOG_ERROR, "cannot build the page", NULL);
        job_free(j);
        maybe_free(s);
        return;
    }
    publish(s, j);
    built(s, j);
    job_free(j);
    if (s->dirty)
        schedule(s);
}

static void build(pp_snapshot *s)
{
    uint64_t start = uv_hrtime();
    s->dirty = false;
    s->urgent = false;
    job *j = gather(s->reg, s->status);
    j->s = s;
    j->started = start;
    j->want_gzip = true;
    j->gz_hint = s->current != NULL ? s->current->gz_len : 0;
    if (s->current != NULL && s->current->parts != NULL) {
        j->prev = s->current;
        h2o_mem_addref_shared(j->prev);
    }
    /* the per-target self-metrics: a line per value, about a family
     * name, the label and a number long */
    size_t estimate = j->tail_len + (j->self.labels.len + j->self.n * 64) * PP_SELF_TARGET_VALUES;
    for (size_t i = 0; i < j->npieces; i++)
        estimate += j->pieces[i]->len;
    if (estimate < INLINE_GZIP && !s->no_refresh) {
        /* small: on the loop, at once */
        assemble(j);
        if (j->rc != 0)
            pp_log_write(s->log, PP_LOG_ERROR, "cannot build the page", NULL);
        else
            publish(s, j);
        built(s, j);
        job_free(j);
        return;
    }
    /* big: the loop only gathered references; the copy and the gzip run
     * on the thread pool */
    s->building = true;
    if (uv_queue_work(s->loop, &j->req, on_assemble, after_assemble) != 0) {
        s->building = false;
        job_free(j);
    }
}

static void on_debounce(uv_timer_t *h)
{
    pp_snapshot *s = h->data;
    if (s->building) {
        s->dirty = true; /* after_gzip schedules again */
        return;
    }
    build(s);
}

static void schedule(pp_snapshot *s)
{
    if (s->closing)
        return;
    /* space builds out by a multiple of what the last one took, so a huge
     * page cannot keep a core busy building: at most a ninth of one, less
     * when the machine is busy and the build waited for a core */
    uint64_t spacing = s->last_build_ms * SPACING;
    uint64_t wait = DEBOUNCE_MS > spacing ? DEBOUNCE_MS : spacing;
    /* new data on a big page waits for a second's worth of changes: the
     * build is O(page) however little changed */
    if (s->current != NULL && s->current->plain_len >= BIG_PAGE && wait < BIG_PAGE_MS)
        wait = BIG_PAGE_MS;
    if (s->urgent) {
        /* a change of state (up, down, a role, a reload) is news: sooner,
         * at most a third of a core, by CPU time so a busy machine does not
         * hold it back; such changes come in storms only at start-up and
         * when servers go */
        uint64_t gap = s->last_build_cpu_ms * URGENT_SPACING;
        uint64_t since = (uv_hrtime() - s->last_build_end) / 1000000;
        wait = since >= gap ? 0 : gap - since;
    }
    if (uv_is_active((uv_handle_t *)&s->debounce)) {
        if (uv_timer_get_due_in(&s->debounce) <= wait)
            return;
        uv_timer_stop(&s->debounce);
    }
    uv_timer_start(&s->debounce, on_debounce, wait, 0);
}

static void on_refresh(uv_timer_t *h)
{
    pp_snapshot_mark_dirty(h->data, false);
}

pp_snapshot *pp_snapshot_new(uv_loop_t *loop, const pp_registry *reg, pp_process_status *status,
                             const pp_log *log)
{
    pp_snapshot *s = pp_calloc(1, sizeof(*s));
    s->loop = loop;
    s->reg = reg;
    s->status = status;
    s->log = log;
    uv_timer_init(loop, &s->debounce);
    uv_timer_init(loop, &s->refresh);
    s->debounce.data = s->refresh.data = s;
    s->handles = 2;
    uv_timer_start(&s->refresh, on_refresh, REFRESH_MS, REFRESH_MS);
    build(s);
    return s;
}

void pp_snapshot_mark_dirty(pp_snapshot *s, bool urgent)
{
    s->dirty = true;
    if (urgent)
        s->urgent = true;
    if (s->building)
        return; /* after_gzip schedules again */
    schedule(s);
}

void pp_snapshot_no_refresh(pp_snapshot *s)
{
    s->no_refresh = true;
    uv_timer_stop(&s->refresh);
}

pp_page *pp_snapshot_fresh(pp_snapshot *s, uint64_t max_age_ms)
{
    uint64_t age = (uv_hrtime() - s->last_build_end) / 1000000;
    if (!s->building && !s->closing && (s->dirty || age >= max_age_ms))
        build(s);
    return s->current;
}

bool pp_snapshot_ready(const pp_snapshot *s)
{
    /* a page shows every change made before its build started */
    return pp_registry_settled(s->reg) && s->current_built_at >= pp_registry_settled_at(s->reg);
}

pp_page *pp_snapshot_current(const pp_snapshot *s)
{
    return s->current;
}

static void on_closed(uv_handle_t *h)
{
    pp_snapshot *s = h->data;
    s->handles--;
    maybe_free(s);
}

void pp_snapshot_close(pp_snapshot *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    if (s->current != NULL)
        h2o_mem_release_shared(s->current);
    s->current = NULL;
    uv_close((uv_handle_t *)&s->debounce, on_closed);
    uv_close((uv_handle_t *)&s->refresh, on_closed);
}
