/* The command-line conventions the example programs share: getopt_long parsing, --help on stdout
 * with exit status 0, --version, and mistakes reported on one stderr line that names the option
 * the way the user can find it in --help ("-t/--temperature"), with exit status 1. */
#ifndef KUIPER_EXAMPLES_CLI_H
#define KUIPER_EXAMPLES_CLI_H

#include <getopt.h>
#include <stddef.h>

#include <kuiper/kuiper.h>

/* Values for options that have no one-letter form; getopt_long returns them. */
enum { CLI_LONG_ONLY = 256 };

typedef struct cli {
    const char *prog;                /* name printed before every message */
    const char *short_opts;          /* getopt_long's optstring, starting with ':' */
    const struct option *long_opts;  /* terminated by a zero entry */
    char name[64];                   /* scratch for cli_name */
} cli;

/* "-t/--temperature", "--top-p" or "-m" for the option whose getopt_long value is `opt`. */
const char *cli_name(cli *c, int opt);
/* Prints "prog: message" on stderr; returns 0 so that parsers can `return cli_error(...)`. */
int cli_error(const cli *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Explains getopt_long's '?' (unknown option) or ':' (missing value); returns 0. */
int cli_getopt_error(cli *c, int ret, char **argv);
/* Prints "prog VERSION" (the library's kp_version()) on stdout. */
void cli_version(const cli *c);

/* Parse the argument of option `opt`, reporting a bad one; 1 on success, 0 after a message. */
int cli_number(cli *c, int opt, const char *arg, double lo, double hi, double *out);
int cli_integer(cli *c, int opt, const char *arg, long lo, long hi, long *out);
/* A sampler setting, checked against kp_sampler_bounds (integer options must be integers). */
int cli_sampler_value(cli *c, int opt, const char *arg, kp_sampler_opt sopt, double *out);
int cli_device(cli *c, int opt, const char *arg, kp_device *out);  /* cpu | cuda */
int cli_kv_type(cli *c, int opt, const char *arg, kp_kv_type *out); /* f32 | f16 */

#endif
