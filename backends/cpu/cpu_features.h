/* Runtime CPU feature detection. The detected level is the one piece of global state the
 * library keeps; it is computed once and only ever lowered by tests and benchmarks. */
#ifndef KP_CPU_FEATURES_H
#define KP_CPU_FEATURES_H

typedef enum kp_isa {
    KP_ISA_SCALAR = 0,      /* portable C, the reference for every other path */
    KP_ISA_AVX2 = 1,        /* AVX2 + FMA + F16C */
    KP_ISA_AVX512 = 2,      /* AVX-512 F/BW/VL/DQ on top of AVX2 */
    KP_ISA_AVX512_VNNI = 3, /* plus AVX-512 VNNI */
    KP_ISA_COUNT
} kp_isa;

/* The best level this CPU and OS support. */
kp_isa kp_cpu_isa_detected(void);
/* The level kernels use: min(detected, override). */
kp_isa kp_cpu_isa(void);
/* Caps the level used (tests compare each path with the scalar one); returns the old cap.
 * Not thread-safe: call before starting work. */
kp_isa kp_cpu_isa_cap(kp_isa cap);
const char *kp_isa_name(kp_isa isa);
/* Whether the avx512_vnni level may also use AVX512_BF16 (vdpbf16ps): the CPU has it and the
 * detected level is avx512_vnni. Not a level of its own; KP_ISA below avx512_vnni excludes it
 * because the kernels are only looked up at that level. */
int kp_cpu_has_avx512_bf16(void);

#endif
