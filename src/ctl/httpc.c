/*
 * httpc.c: tallyctl's HTTP/1.1 client: blocking sockets, poll() timeouts,
 * one request per connection ("Connection: close").
 *
 *   ctl_get(url, token, "/api/v1/calls", &resp)
 *     connect -> "GET /api/v1/calls HTTP/1.1\r\nHost: ...\r\n
 *                 Authorization: Bearer T\r\nConnection: close\r\n\r\n"
 *     read the head (status line, Content-Length, Upgrade), then the body:
 *     Content-Length bytes, or everything until the server closes.
 *
 *   ctl_send_json(url, token, "POST", "/api/v1/recordings",
 *                 "{\"call\":\"c1-ab\",\"media\":\"audio\"}", &resp)
 *     the same with "Content-Type: application/json" and Content-Length
 *     (a POST without a body says "Content-Length: 0").
 *
 * Chunked bodies are not needed (tally's servers never send them) and are
 * refused with EPROTO rather than misread. Downloads (ctl_get_file) go
 * straight from the socket to a file descriptor, so a recording of any
 * size needs 8 KiB of buffer.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include "ctl.h"

int ctl_url_parse(struct ctl_url *u, const char *url)
{
	static const char scheme[] = "http://";
	const char *h, *end, *colon, *slash;
	size_t hl, bl;

	memset(u, 0, sizeof(*u));
	if (!url || strncasecmp(url, scheme, sizeof(scheme) - 1))
		return EINVAL;
	h = url + sizeof(scheme) - 1;
	slash = strchr(h, '/');
	end = slash ? slash : h + strlen(h);
	colon = memchr(h, ':', (size_t)(end - h));
	hl = (size_t)((colon ? colon : end) - h);
	if (!hl || hl >= sizeof(u->host))
		return EINVAL;
	memcpy(u->host, h, hl);
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);
		char *e;
		long port;

		if (!pl || pl >= sizeof(u->port))
			return EINVAL;
		memcpy(u->port, colon + 1, pl);
		port = strtol(u->port, &e, 10);
		if (*e || port < 1 || port > 65535)
			return EINVAL;
	}
	else {
		strcpy(u->port, "80");
	}
	if (slash) {
		bl = strlen(slash);
		while (bl && slash[bl - 1] == '/')
			--bl;
		if (bl >= sizeof(u->base))
			return EINVAL;
		memcpy(u->base, slash, bl);
	}
	return 0;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {fd, events, 0};
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	return n ? 0 : ETIMEDOUT;
}

static int connect_one(const struct addrinfo *ai, int *fdp)
{
	int fd, err, flags;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return errno;
	flags = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		err = 0;
	}
	else if (errno != EINPROGRESS) {
		err = errno;
	}
	else if (!(err = wait_fd(fd, POLLOUT, CTL_CONNECT_MS))) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
	}
	if (err) {
		close(fd);
		return err;
	}
	(void)fcntl(fd, F_SETFL, flags);
	*fdp = fd;
	return 0;
}

int ctl_connect(struct ctl_conn *c, const struct ctl_url *u)
{
	struct addrinfo hints, *res = NULL, *ai;
	int err = ENOENT;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(u->host, u->port, &hints, &res) || !res)
		return ENOENT;
	for (ai = res; ai; ai = ai->ai_next) {
		err = connect_one(ai, &c->fd);
		if (!err)
			break;
	}
	freeaddrinfo(res);
	return err;
}

void ctl_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

int ctl_write(struct ctl_conn *c, const void *p, size_t n)
{
	const char *b = p;

	while (n) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int ctl_fill(struct ctl_conn *c, int timeout_ms)
{
	ssize_t n;
	int err;

	if (c->len >= sizeof(c->buf))
		return ENOBUFS;
	err = wait_fd(c->fd, POLLIN, timeout_ms);
	if (err)
		return err;
	do {
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	if (n == 0)
		return ENODATA;
	c->len += (size_t)n;
	return 0;
}

void ctl_consume(struct ctl_conn *c, size_t n)
{
	if (n >= c->len) {
		c->len = 0;
		return;
	}
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

void ctl_resp_reset(struct ctl_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Value of header NAME in HEAD (NUL-terminated, lines end CRLF) into V. */
static bool head_value(const char *head, const char *name, char *v,
		       size_t size)
{
	size_t nl = strlen(name);
	const char *l = strstr(head, "\r\n");

	while (l && l[2]) {
		const char *line = l + 2, *e = strstr(line, "\r\n");

		if (!e)
			break;
		if ((size_t)(e - line) > nl && !strncasecmp(line, name, nl) &&
		    line[nl] == ':') {
			const char *p = line + nl + 1;
			size_t n;

			while (p < e && (*p == ' ' || *p == '\t'))
				++p;
			n = (size_t)(e - p);
			while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				--n;
			if (n >= size)
				n = size - 1;
			memcpy(v, p, n);
			v[n] = '\0';
			return true;
		}
		l = e;
	}
	return false;
}

/* Read the response head; its bytes are consumed, the rest stays. */
static int read_head(struct ctl_conn *c, struct ctl_resp *r, int timeout_ms)
{
	char *end, *head, v[32];
	size_t hl;
	int err;
	unsigned sc;

	for (;;) {
		end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (end)
			break;
		err = ctl_fill(c, timeout_ms);
		if (err == ENOBUFS)
			return EPROTO;     /* head larger than our buffer */
		if (err)
			return err == ENODATA ? ECONNRESET : err;
	}
	hl = (size_t)(end - c->buf) + 4;
	head = malloc(hl + 1);
	if (!head)
		return ENOMEM;
	memcpy(head, c->buf, hl);
	head[hl] = '\0';
	ctl_consume(c, hl);

	if (strncmp(head, "HTTP/1.", 7) || strlen(head) < 12 ||
	    sscanf(head + 9, "%3u", &sc) != 1 || sc < 100 || sc > 999) {
		free(head);
		return EPROTO;
	}
	r->scode = (uint16_t)sc;
	if (head[12] == ' ') {
		const char *e = strstr(head + 13, "\r\n");
		size_t n = e ? (size_t)(e - head - 13) : 0;

		if (n >= sizeof(r->reason))
			n = sizeof(r->reason) - 1;
		memcpy(r->reason, head + 13, n);
	}
	(void)head_value(head, "Upgrade", r->upgrade, sizeof(r->upgrade));
	r->clen = -1;
	if (head_value(head, "Transfer-Encoding", v, sizeof(v)) &&
	    strcasecmp(v, "identity"))
		r->chunked = true;
	if (head_value(head, "Content-Length", v, sizeof(v))) {
		char *e;
		unsigned long long n = strtoull(v, &e, 10);

		if (*e || !v[0] || v[0] == '-' || n > INT64_MAX) {
			free(head);
			return EPROTO;
		}
		r->clen = (int64_t)n;
	}
	free(head);
	return 0;
}

static int read_body(struct ctl_conn *c, struct ctl_resp *r, int timeout_ms)
{
	size_t want = SIZE_MAX, have = 0, cap;
	bool until_close = true;
	int err = 0;

	if (r->chunked)
		return EPROTO;
	if (r->clen >= 0) {
		if (r->clen > CTL_BODY_MAX)
			return EPROTO;
		want = (size_t)r->clen;
		until_close = false;
	}
	if (r->scode == 204 || r->scode == 304 || r->scode < 200) {
		want = 0;
		until_close = false;
	}
	cap = until_close ? 4096 : want;
	r->body = malloc(cap + 1);
	if (!r->body)
		return ENOMEM;
	while (have < want) {
		size_t n;

		if (!c->len) {
			err = ctl_fill(c, timeout_ms);
			if (err == ENODATA && until_close) {
				err = 0;
				break;
			}
			if (err)
				return err == ENODATA ? ECONNRESET : err;
		}
		n = c->len;
		if (!until_close && n > want - have)
			n = want - have;
		if (have + n > cap) {
			char *nb;

			if (have + n > CTL_BODY_MAX)
				return EFBIG;
			cap = (have + n) * 2;
			nb = realloc(r->body, cap + 1);
			if (!nb)
				return ENOMEM;
			r->body = nb;
		}
		memcpy(r->body + have, c->buf, n);
		have += n;
		ctl_consume(c, n);
	}
	r->body[have] = '\0';
	r->blen = have;
	return 0;
}

int ctl_http(struct ctl_conn *c, const struct ctl_req *rq, struct ctl_resp *r)
{
	char *req = NULL;
	int n, err;
	char clen[80] = "";

	memset(r, 0, sizeof(*r));
	r->clen = -1;
	/* a POST without content still says so: some servers want a length */
	if (rq->content || (rq->method && !strcmp(rq->method, "POST")))
		snprintf(clen, sizeof(clen), "%sContent-Length: %zu\r\n",
			 rq->content ? "Content-Type: application/json\r\n" :
			 "", rq->content ? strlen(rq->content) : 0);
	n = asprintf(&req, "%s %s%s HTTP/1.1\r\n"
		     "Host: %s:%s\r\n"
		     "User-Agent: tallyctl/" TALLY_VERSION "\r\n"
		     "Accept: application/json\r\n"
		     "%s%s%s"
		     "%s%s"
		     "\r\n"
		     "%s",
		     rq->method ? rq->method : "GET",
		     rq->url->base, rq->path, rq->url->host, rq->url->port,
		     rq->token[0] ? "Authorization: Bearer " : "",
		     rq->token, rq->token[0] ? "\r\n" : "",
		     rq->extra ? rq->extra : "Connection: close\r\n", clen,
		     rq->content ? rq->content : "");
	if (n < 0)
		return ENOMEM;
	err = ctl_write(c, req, (size_t)n);
	free(req);
	if (err)
		return err;
	err = read_head(c, r, rq->timeout_ms);
	if (err)
		return err;
	if (rq->body && r->scode != 101)
		err = read_body(c, r, rq->timeout_ms);
	return err;
}

int ctl_send_json(const struct ctl_url *u, const char *token,
		  const char *method, const char *path, const char *json,
		  struct ctl_resp *r)
{
	struct ctl_req rq = {u, token, path, NULL, true, CTL_READ_MS, method,
			     json};
	struct ctl_conn c;
	int err;

	memset(r, 0, sizeof(*r));
	err = ctl_connect(&c, u);
	if (err)
		return err;
	err = ctl_http(&c, &rq, r);
	ctl_close(&c);
	return err;
}

int ctl_request(const struct ctl_url *u, const char *token,
		const char *method, const char *path, struct ctl_resp *r)
{
	return ctl_send_json(u, token, method, path, NULL, r);
}

int ctl_get(const struct ctl_url *u, const char *token, const char *path,
	    struct ctl_resp *r)
{
	return ctl_request(u, token, "GET", path, r);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int ctl_get_file(const struct ctl_url *u, const char *token,
		 const char *path, int fd, struct ctl_sha256 *sha,
		 uint64_t *np, struct ctl_resp *r)
{
	struct ctl_req rq = {u, token, path, NULL, false, CTL_READ_MS, "GET",
			     NULL};
	struct ctl_conn c;
	uint64_t have = 0, want;
	int err;

	memset(r, 0, sizeof(*r));
	*np = 0;
	err = ctl_connect(&c, u);
	if (err)
		return err;
	err = ctl_http(&c, &rq, r);
	if (err)
		goto out;
	if (r->scode != 200) {
		/* the error's JSON body, for the message */
		err = read_body(&c, r, CTL_READ_MS);
		if (!err)
			err = EACCES;
		goto out;
	}
	if (r->clen < 0 || r->chunked) {
		err = EPROTO;
		goto out;
	}
	want = (uint64_t)r->clen;
	while (have < want) {
		size_t n;

		if (!c.len) {
			err = ctl_fill(&c, CTL_READ_MS);
			if (err) {
				if (err == ENODATA)
					err = ECONNRESET;
				break;
			}
		}
		n = c.len;
		if (n > want - have)
			n = (size_t)(want - have);
		err = write_all(fd, c.buf, n);
		if (err)
			break;
		if (sha)
			ctl_sha256_update(sha, c.buf, n);
		have += n;
		ctl_consume(&c, n);
	}
	*np = have;
 out:
	ctl_close(&c);
	return err;
}
