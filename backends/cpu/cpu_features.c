/* Runtime ISA detection: cpuid says what the CPU has, xgetbv says whether the OS saves the
 * wider registers on a context switch (a CPU with AVX-512 under an OS that does not enable the
 * ZMM state must not run AVX-512 code). KP_ISA in the environment caps the level once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned int lo, hi;
    /* Raw opcode form of xgetbv so this file needs no -mxsave. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int has_bf16;

static kp_isa probe(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return KP_ISA_SCALAR;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx || !fma || !f16c)
        return KP_ISA_SCALAR;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) /* XMM and YMM state */
        return KP_ISA_SCALAR;
    if (__get_cpuid_max(0, NULL) < 7)
        return KP_ISA_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    if (!((b >> 5) & 1)) /* AVX2 */
        return KP_ISA_SCALAR;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    if (!avx512 || (xcr0 & 0xe0) != 0xe0) /* opmask, ZMM_Hi256, Hi16_ZMM state */
        return KP_ISA_AVX2;
    if (!((c >> 11) & 1)) /* AVX512_VNNI */
        return KP_ISA_AVX512;
    if (a >= 1) { /* leaf 7 subleaf 1, EAX bit 5: AVX512_BF16 */
        unsigned int a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        has_bf16 = (a1 >> 5) & 1;
    }
    return KP_ISA_AVX512_VNNI;
}
#else
static kp_isa probe(void) { return KP_ISA_SCALAR; }
#endif

static const char *const isa_names[KP_ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512_vnni"};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static kp_isa detected = KP_ISA_SCALAR;
static kp_isa env_cap = KP_ISA_COUNT - 1;
/* Atomic so that a test lowering the cap never races with a worker reading it under TSan. */
static _Atomic int user_cap = KP_ISA_COUNT - 1;

static void init(void)
{
    detected = probe();
    const char *e = getenv("KP_ISA");
    if (!e)
        return;
    /* An unknown value is ignored: the library has no channel to complain through here. */
    for (int i = 0; i < KP_ISA_COUNT; i++)
        if (strcmp(e, isa_names[i]) == 0)
            env_cap = (kp_isa)i;
}

kp_isa kp_cpu_isa_detected(void)
{
    pthread_once(&once, init);
    return detected;
}

int kp_cpu_has_avx512_bf16(void)
{
    pthread_once(&once, init);
#if defined(__x86_64__) || defined(__i386__)
    return has_bf16;
#else
    return 0;
#endif
}

kp_isa kp_cpu_isa(void)
{
    pthread_once(&once, init);
    int l = (int)detected;
    if ((int)env_cap < l)
        l = (int)env_cap;
    int u = atomic_load_explicit(&user_cap, memory_order_relaxed);
    return (kp_isa)(u < l ? u : l);
}

kp_isa kp_cpu_isa_cap(kp_isa cap)
{
    pthread_once(&once, init);
    if ((int)cap < 0 || (int)cap >= KP_ISA_COUNT)
        cap = KP_ISA_COUNT - 1;
    return (kp_isa)atomic_exchange(&user_cap, (int)cap);
}

const char *kp_isa_name(kp_isa isa)
{
    return ((unsigned)isa < KP_ISA_COUNT) ? isa_names[isa] : "invalid";
}
