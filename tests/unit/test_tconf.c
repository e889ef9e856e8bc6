/*
 * test_tconf.c: the key-table configuration: defaults, file sections,
 * command line precedence, and every way a value can be wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "tconf.h"

struct tcfg {
	char name[16];
	uint32_t port;
	bool fg;
	char file[64];
};

static const struct tconf_key keys[] = {
	TCONF_KEY(tcfg, "name", TCONF_STR, name, "dflt", "a name"),
	TCONF_KEY(tcfg, "port", TCONF_U32, port, "5060", "a port"),
	TCONF_KEY(tcfg, "foreground", TCONF_BOOL, fg, "no", "a flag"),
	TCONF_KEY(tcfg, "config-file", TCONF_STR, file, "/nonexistent/default.conf",
		  "the file"),
	{NULL, TCONF_STR, 0, 0, NULL, NULL},
};

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/tconf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_defaults(void **state)
{
	struct tcfg c;
	(void)state;

	memset(&c, 0xff, sizeof(c));
	assert_int_equal(tconf_defaults(&c, keys), 0);
	assert_string_equal(c.name, "dflt");
	assert_int_equal(c.port, 5060);
	assert_false(c.fg);
}

static void test_values(void **state)
{
	struct tcfg c;
	(void)state;

	tconf_defaults(&c, keys);
	assert_int_equal(tconf_set(&c, keys, "port", "70000"), 0);
	assert_int_equal(c.port, 70000);
	assert_int_equal(tconf_set(&c, keys, "port", "-1"), EINVAL);
	assert_int_equal(tconf_set(&c, keys, "port", "12x"), EINVAL);
	assert_int_equal(tconf_set(&c, keys, "port", ""), EINVAL);
	assert_int_equal(tconf_set(&c, keys, "port", "99999999999"), EINVAL);
	assert_int_equal(tconf_set(&c, keys, "foreground", "maybe"), EINVAL);
	assert_int_equal(tconf_set(&c, keys, "name", "0123456789abcdefXX"), E2BIG);
	assert_int_equal(tconf_set(&c, keys, "nope", "1"), ENOENT);
	assert_int_equal(c.port, 70000);   /* failed sets change nothing */
}

static void test_file_sections(void **state)
{
	const char *path = write_tmp(
		"# comment\n"
		"name = top\n"
		"[other]\n"
		"port = 1\n"
		"[mine]\n"
		"port = \"7000\"\n"
		"foreground yes\n");
	struct tcfg c;
	unsigned line = 0;
	(void)state;

	tconf_defaults(&c, keys);
	assert_int_equal(tconf_load_file(&c, keys, path, "mine", &line), 0);
	assert_string_equal(c.name, "top");
	assert_int_equal(c.port, 7000);
	assert_true(c.fg);
	unlink(path);

	path = write_tmp("[mine]\nport = 1\nbogus = 2\n");
	assert_int_equal(tconf_load_file(&c, keys, path, "mine", &line), ENOENT);
	assert_int_equal(line, 3);
	unlink(path);
	assert_int_equal(tconf_load_file(&c, keys, "/nonexistent/x", "mine",
					 &line), ENOENT);
}

static void test_args(void **state)
{
	char *argv[] = {"prog", "--port=10", "--foreground", "--name", "cli",
			"--log-stderr", NULL};
	char *bad_argv[] = {"prog", "--port", NULL};
	char *unk_argv[] = {"prog", "--what=1", NULL};
	const char *const ignore[] = {"log-stderr", NULL};
	const char *bad = NULL;
	struct tcfg c;
	(void)state;

	tconf_defaults(&c, keys);
	assert_int_equal(tconf_args(&c, keys, 6, argv, ignore, &bad), 0);
	assert_null(bad);
	assert_int_equal(c.port, 10);
	assert_true(c.fg);
	assert_string_equal(c.name, "cli");
	assert_string_equal(tconf_arg_peek(6, argv, "name"), "cli");
	assert_null(tconf_arg_peek(6, argv, "nam"));

	assert_int_equal(tconf_args(&c, keys, 2, bad_argv, NULL, &bad), EINVAL);
	assert_string_equal(bad, "--port");
	assert_int_equal(tconf_args(&c, keys, 2, unk_argv, NULL, &bad), ENOENT);
	assert_string_equal(bad, "--what=1");
}

static void test_load_sequence(void **state)
{
	const char *path = write_tmp("[mine]\nport = 7000\nname = file\n");
	const struct tconf_load how = {"prog", "mine", "config-file", NULL};
	char arg_file[96];
	char *argv[] = {"prog", arg_file, "--port=8000", NULL};
	char *argv_none[] = {"prog", "--config-file=none", NULL};
	char *argv_missing[] = {"prog", "--config-file=/nonexistent/x.conf", NULL};
	char *argv_dump[] = {"prog", "--config-file=none", "--dump-config", NULL};
	struct tcfg c;
	bool ex = true;
	(void)state;

	snprintf(arg_file, sizeof(arg_file), "--config-file=%s", path);
	assert_int_equal(tconf_load(&c, keys, &how, 3, argv, &ex), 0);
	assert_false(ex);
	assert_string_equal(c.name, "file");      /* from the file */
	assert_int_equal(c.port, 8000);            /* the command line wins */

	/* the default file may be missing; a named one may not */
	assert_int_equal(tconf_load(&c, keys, &how, 1, argv, &ex), 0);
	assert_int_equal(c.port, 5060);
	assert_int_equal(tconf_load(&c, keys, &how, 2, argv_none, &ex), 0);
	assert_int_equal(tconf_load(&c, keys, &how, 2, argv_missing, &ex),
			 ENOENT);

	ex = false;
	tconf_dump_asked(&c, keys, 3, argv_dump, &ex);
	assert_true(ex);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_file_sections),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_load_sequence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
