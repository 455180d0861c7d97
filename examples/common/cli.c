#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_name(cli *c, int opt)
{
    const char *lng = NULL;
    for (const struct option *o = c->long_opts; o && o->name; o++)
        if (o->val == opt && !o->flag) {
            lng = o->name;
            break;
        }
    if (opt > 0 && opt < CLI_LONG_ONLY && lng)
        snprintf(c->name, sizeof c->name, "-%c/--%s", opt, lng);
    else if (lng)
        snprintf(c->name, sizeof c->name, "--%s", lng);
    else
        snprintf(c->name, sizeof c->name, "-%c", opt > 0 && opt < 128 ? opt : '?');
    return c->name;
}

int cli_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 0;
}

int cli_getopt_error(cli *c, int ret, char **argv)
{
    if (ret == ':')
        return cli_error(c, "option %s needs a value (see --help)", cli_name(c, optopt));
    /* getopt_long leaves the text of a bad long option in argv[optind - 1]; optopt is then 0 for
     * an unknown name and the option's value for one given a value it does not take. */
    const char *a = optind > 0 ? argv[optind - 1] : "";
    if (!strncmp(a, "--", 2)) {
        if (optopt)
            return cli_error(c, "option %s takes no value (see --help)", cli_name(c, optopt));
        return cli_error(c, "unknown option '%.*s' (see --help)", (int)strcspn(a, "="), a);
    }
    return cli_error(c, "unknown option '-%c' (see --help)", optopt > 32 && optopt < 127 ? optopt : '?');
}

void cli_version(const cli *c)
{
    printf("%s %s\n", c->prog, kp_version());
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && errno == 0 && isfinite(*v);
}

int cli_number(cli *c, int opt, const char *arg, double lo, double hi, double *out)
{
    double v;
    if (!parse_double(arg, &v) || v < lo || v > hi)
        return cli_error(c, "%s '%s' must be a number in [%g, %g]", cli_name(c, opt), arg, lo, hi);
    *out = v;
    return 1;
}

int cli_integer(cli *c, int opt, const char *arg, long lo, long hi, long *out)
{
    double v;
    if (!parse_double(arg, &v) || v != floor(v) || v < (double)lo || v > (double)hi)
        return cli_error(c, "%s '%s' must be an integer in [%ld, %ld]", cli_name(c, opt), arg, lo, hi);
    *out = (long)v;
    return 1;
}

int cli_sampler_value(cli *c, int opt, const char *arg, kp_sampler_opt sopt, double *out)
{
    double lo = 0, hi = 0, v;
    kp_sampler_bounds(sopt, &lo, &hi);
    int integer = sopt == KP_SAMPLER_SEED || sopt == KP_SAMPLER_TOP_K || sopt == KP_SAMPLER_PENALTY_WINDOW;
    if (!parse_double(arg, &v) || v < lo || v > hi || (integer && v != floor(v)))
        return integer ? cli_error(c, "%s '%s' must be an integer in [%.0f, %.0f]", cli_name(c, opt), arg, lo, hi)
                       : cli_error(c, "%s '%s' must be a number in [%g, %g]", cli_name(c, opt), arg, lo, hi);
    *out = v;
    return 1;
}

int cli_device(cli *c, int opt, const char *arg, kp_device *out)
{
    if (!strcmp(arg, "cpu"))
        *out = KP_DEVICE_CPU;
    else if (!strcmp(arg, "cuda"))
        *out = KP_DEVICE_CUDA;
    else
        return cli_error(c, "%s '%s' must be cpu or cuda", cli_name(c, opt), arg);
    return 1;
}

int cli_kv_type(cli *c, int opt, const char *arg, kp_kv_type *out)
{
    if (!strcmp(arg, "f32"))
        *out = KP_KV_F32;
    else if (!strcmp(arg, "f16"))
        *out = KP_KV_F16;
    else
        return cli_error(c, "%s '%s' must be f32 or f16", cli_name(c, opt), arg);
    return 1;
}
