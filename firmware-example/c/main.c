/* The int8 captcha CRNN from C on a Cortex-M4F (QEMU mps2-an386), through core-infer's C API
 * (core-infer/capi: libcore_infer_capi.a and core_infer.h). It embeds the same model and test images as
 * the Rust firmware and prints the same `model:` and `test N:` lines, which tools/capi.sh diffs against
 * ../expected.txt (scores bit-identical with the host). Output goes through newlib's semihosting (rdimon).
 *
 * Build and run: bash tools/capi.sh firmware   (or `make run` here, after `make` has its inputs) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core_infer.h"

/* From images.S: the model file and the test images, as built (see the Makefile). */
extern const uint8_t model_bytes[], model_end[], images[], images_end[], labels[], labels_end[];

/* The network's working memory: a static buffer, as on any device; the model says what it needs. */
static uint8_t scratch[35 * 1024];
static CrnnModel model; /* zeroed until crnn_parse fills it */

/* FNV-1a of the raw int8 scores, as captcha_synth::fixtures::fingerprint. */
static uint32_t fingerprint(const int8_t *q, size_t n) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)q[i]) * 0x01000193u;
    return h;
}

int main(void) {
    size_t model_len = (size_t)(model_end - model_bytes);
    CrnnStatus s = crnn_parse(&model, model_bytes, model_len);
    if (s != CRNN_STATUS_OK) {
        printf("model: %s\n", crnn_status_message(s));
        return 1;
    }
    CrnnInfo info;
    crnn_info(&model, &info);
    if (info.scratch_bytes > sizeof scratch) {
        printf("model needs %u bytes of scratch, this build has %u\n", (unsigned)info.scratch_bytes,
               (unsigned)sizeof scratch);
        return 1;
    }
    printf("model: %u bytes, %ux%u input, %u classes, scratch %u bytes\n", (unsigned)model_len,
           (unsigned)info.width, (unsigned)info.height, (unsigned)info.classes, (unsigned)info.scratch_bytes);

    const uint8_t *label = labels;
    size_t count = (size_t)(images_end - images) / info.image_bytes;
    for (size_t i = 0; i < count && label < labels_end; i++) {
        const uint8_t *img = images + i * info.image_bytes;
        const uint8_t *eol = memchr(label, '\n', (size_t)(labels_end - label));
        int label_len = (int)((eol ? eol : labels_end) - label);
        CrnnScores scores;
        s = crnn_run(&model, img, info.image_bytes, scratch, sizeof scratch, &scores);
        if (s != CRNN_STATUS_OK) {
            printf("image %u: %s\n", (unsigned)i, crnn_status_message(s));
            return 1;
        }
        uint32_t fp = fingerprint(scores.int8, (size_t)scores.steps * scores.classes);
        CrnnReading r;
        s = crnn_read(&model, img, info.image_bytes, scratch, sizeof scratch, &r);
        if (s != CRNN_STATUS_OK) {
            printf("image %u: %s\n", (unsigned)i, crnn_status_message(s));
            return 1;
        }
        printf("test %u: label %.*s read %s scores %08lx\n", (unsigned)i, label_len, (const char *)label, r.text,
               (unsigned long)fp);
        label = eol ? eol + 1 : labels_end;
    }
    return 0;
}
