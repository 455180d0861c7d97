/* Pieces of kp_model_quantize shared between its files. */
#ifndef KP_CONVERT_H
#define KP_CONVERT_H

#include "../format/gguf_write.h"
#include "../model/model.h"
#include "mix.h"

/* general.*, <arch>.* and tokenizer.* keys for model `m` written as `mx`, whose weight matrices
 * are mostly `main_type`; `name` is general.name. */
kp_status kp_convert_write_meta(kp_gguf_writer *w, const kp_model *m, const kp_quant_mix *mx, kp_dtype main_type,
                                const char *name);

/* kp_model_quantize after loading: writes the loaded model `m` (read only) to out_path; `name`
 * (a path) gives general.name. `qp` is complete (struct_size checked, defaults filled). */
kp_status kp_quantize_loaded(kp_model *m, const char *name, const char *out_path, const kp_quantize_params *qp);

#endif
