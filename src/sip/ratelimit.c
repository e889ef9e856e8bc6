/*
 * ratelimit.c: a token bucket per source address for requests outside any
 * dialog, so a scanner flooding INVITEs or REGISTERs from one address cannot
 * starve real calls. The table is bounded: when it is full the oldest idle
 * buckets are dropped.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <re.h>

enum { RL_MAX = 8192 };

struct bucket {
	struct le he, le;
	struct sa addr;
	double tokens;
	uint64_t last_ms;
	uint64_t warned_s;       /* the second a 503 was last sent */
};

struct ratelimit {
	struct hash *ht;
	struct list lru;         /* least recently used first */
	unsigned n;
	double rate, burst;
};

int  ratelimit_alloc(struct ratelimit **rlp, uint32_t rate, uint32_t burst);
int  ratelimit_check(struct ratelimit *rl, const struct sa *src);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void bucket_destructor(void *arg)
{
	struct bucket *bk = arg;

	hash_unlink(&bk->he);
	list_unlink(&bk->le);
}

static void rl_destructor(void *arg)
{
	struct ratelimit *rl = arg;

	hash_flush(rl->ht);
	mem_deref(rl->ht);
}

int ratelimit_alloc(struct ratelimit **rlp, uint32_t rate, uint32_t burst)
{
	struct ratelimit *rl = mem_zalloc(sizeof(*rl), rl_destructor);
	int err;

	if (!rl)
		return ENOMEM;
	err = hash_alloc(&rl->ht, 1024);
	if (err) {
		mem_deref(rl);
		return err;
	}
	rl->rate = rate;
	rl->burst = burst > rate ? burst : rate;
	*rlp = rl;
	return 0;
}

static bool addr_cmp(struct le *le, void *arg)
{
	const struct bucket *bk = le->data;
	return sa_cmp(&bk->addr, arg, SA_ADDR);
}

int ratelimit_check(struct ratelimit *rl, const struct sa *src)
{
	uint32_t key = sa_hash(src, SA_ADDR);
	uint64_t now = now_ms();
	struct bucket *bk;

	bk = list_ledata(hash_lookup(rl->ht, key, addr_cmp, (void *)src));
	if (!bk) {
		if (rl->n >= RL_MAX) {
			mem_deref(list_ledata(list_head(&rl->lru)));
			--rl->n;
		}
		bk = mem_zalloc(sizeof(*bk), bucket_destructor);
		if (!bk)
			return 0;           /* never refuse for our own lack */
		bk->addr = *src;
		bk->tokens = rl->burst;
		bk->last_ms = now;
		hash_append(rl->ht, key, &bk->he, bk);
		++rl->n;
	}
	else {
		list_unlink(&bk->le);
		bk->tokens += (double)(now - bk->last_ms) * rl->rate / 1000.0;
		if (bk->tokens > rl->burst)
			bk->tokens = rl->burst;
		bk->last_ms = now;
	}
	list_append(&rl->lru, &bk->le, bk);
	if (bk->tokens >= 1.0) {
		bk->tokens -= 1.0;
		return 0;
	}
	if (bk->warned_s != now / 1000) {
		bk->warned_s = now / 1000;
		return EAGAIN;
	}
	return EBUSY;
}
