/* The C API on the host (gcc, x86-64), linked against libcore_infer_capi.a: reads the shared fixtures'
 * test images with the shipped int8 model and prints the lines the firmware prints (tools/capi.sh diffs
 * them against firmware-example/expected.txt), then checks every refusal the API promises.
 *
 *   host_test MODEL FIXTURES_DIR     (FIXTURES_DIR: images.bin and labels.txt, see tools/capi.sh)
 * Exit code 0 if every check held; the failed checks are named on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_infer.h"

static int failures = 0;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fputc('\n', stderr);                           \
            failures++;                                    \
        }                                                  \
    } while (0)

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(n > 0 ? (size_t)n : 1);
    if (!bytes || fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: could not read\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return bytes;
}

/* FNV-1a of the raw int8 scores, as captcha_synth::fixtures::fingerprint. */
static uint32_t fingerprint(const int8_t *q, size_t n) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)q[i]) * 0x01000193u;
    return h;
}

static CrnnModel model; /* static: zeroed, so "not parsed" until crnn_parse succeeds */

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    size_t model_len, images_len, labels_len;
    uint8_t *bytes = read_file(argv[1], &model_len);
    char path[4096];
    snprintf(path, sizeof path, "%s/images.bin", argv[2]);
    uint8_t *images = read_file(path, &images_len);
    snprintf(path, sizeof path, "%s/labels.txt", argv[2]);
    char *labels = (char *)read_file(path, &labels_len);
    labels = realloc(labels, labels_len + 1);
    labels[labels_len] = 0;

    /* Before parsing: every call refuses the zeroed model. */
    CrnnInfo info;
    CHECK(crnn_info(&model, &info) == CRNN_STATUS_NULL_ARGUMENT, "info of an unparsed model");
    CHECK(crnn_scratch_bytes(&model) == 0 && crnn_image_bytes(NULL) == 0, "sizes of an unparsed model");

    CrnnStatus s = crnn_parse(&model, bytes, model_len);
    if (s != CRNN_STATUS_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], crnn_status_message(s));
        return 1;
    }
    CHECK(crnn_info(&model, &info) == CRNN_STATUS_OK, "info");
    size_t scratch_len = crnn_scratch_bytes(&model), image_len = crnn_image_bytes(&model);
    CHECK(scratch_len == info.scratch_bytes && image_len == info.image_bytes, "sizes agree with info");
    CHECK(image_len == (size_t)info.height * info.width * info.channels, "image bytes = h x w x channels");
    printf("model: %zu bytes, %ux%u input, %u classes, scratch %zu bytes\n", model_len, info.width, info.height,
           info.classes, scratch_len);

    uint8_t *scratch = malloc(scratch_len);
    size_t count = images_len / image_len;
    char *label = strtok(labels, "\n");
    for (size_t i = 0; i < count && label; i++, label = strtok(NULL, "\n")) {
        const uint8_t *img = images + i * image_len;
        CrnnScores scores;
        s = crnn_run(&model, img, image_len, scratch, scratch_len, &scores);
        CHECK(s == CRNN_STATUS_OK, "run image %zu: %s", i, crnn_status_message(s));
        CHECK(info.int8 ? scores.int8 != NULL && scores.f32 == NULL : scores.f32 != NULL, "scores pointer");
        CHECK(scores.classes == info.classes && scores.steps == info.width / 4, "scores shape");
        uint32_t fp = info.int8 ? fingerprint(scores.int8, (size_t)scores.steps * scores.classes) : 0;

        CrnnReading r, beam;
        s = crnn_read(&model, img, image_len, scratch, scratch_len, &r);
        CHECK(s == CRNN_STATUS_OK, "read image %zu: %s", i, crnn_status_message(s));
        CHECK(strlen(r.text) == r.text_bytes, "text length");
        CHECK(r.confidence >= 0.0f && r.confidence <= 1.0f, "confidence %f in [0, 1]", r.confidence);
        float least = 1.0f;
        for (uint32_t c = 0; c < r.chars; c++) {
            CHECK(r.char_probability[c] >= 0.0f && r.char_probability[c] <= 1.0f, "character probability");
            if (r.char_probability[c] < least) least = r.char_probability[c];
        }
        CHECK(r.chars == 0 || least == r.confidence, "greedy confidence is the least character probability");
        s = crnn_read_beam(&model, img, image_len, scratch, scratch_len, &beam);
        CHECK(s == CRNN_STATUS_OK, "beam read image %zu: %s", i, crnn_status_message(s));
        CHECK(beam.confidence >= 0.0f && beam.confidence <= 1.0f, "beam probability in [0, 1]");
        printf("test %zu: label %s read %s scores %08x\n", i, label, r.text, fp);
    }

    /* Refusals, each with its status and a message. */
    CrnnReading r;
    CHECK(crnn_read(&model, images, image_len - 1, scratch, scratch_len, &r) == CRNN_STATUS_IMAGE_SIZE,
          "an image one byte short");
    CHECK(crnn_read(&model, images, image_len, scratch, scratch_len - 1, &r) == CRNN_STATUS_SCRATCH_TOO_SMALL,
          "scratch one byte short");
    CHECK(crnn_read(&model, NULL, image_len, scratch, scratch_len, &r) == CRNN_STATUS_NULL_ARGUMENT, "NULL image");
    CHECK(crnn_read(&model, images, image_len, scratch, scratch_len, NULL) == CRNN_STATUS_NULL_ARGUMENT,
          "NULL reading");
    CHECK(crnn_parse(NULL, bytes, model_len) == CRNN_STATUS_NULL_ARGUMENT, "NULL model");

    static CrnnModel other;
    CHECK(crnn_parse(&other, bytes, 3) == CRNN_STATUS_TRUNCATED, "3 bytes");
    CHECK(crnn_parse(&other, bytes, model_len - 1) == CRNN_STATUS_BAD_HEADER, "a file one byte short");
    CHECK(crnn_info(&other, &info) == CRNN_STATUS_NULL_ARGUMENT, "a failed parse leaves the model unparsed");
    uint8_t *copy = malloc(model_len);
    memcpy(copy, bytes, model_len);
    copy[model_len / 2] ^= 0x40;
    CHECK(crnn_parse(&other, copy, model_len) == CRNN_STATUS_CHECKSUM_MISMATCH, "a flipped bit");
    copy[model_len / 2] ^= 0x40;
    copy[0] = 'X';
    CHECK(crnn_parse(&other, copy, model_len) == CRNN_STATUS_BAD_MAGIC, "bad magic");
    CHECK(strcmp(crnn_status_message(CRNN_STATUS_SCRATCH_TOO_SMALL),
                 "scratch buffer too small (see crnn_scratch_bytes)") == 0, "message");
    CHECK(strcmp(crnn_status_message(999), "unknown status") == 0, "message of an unknown status");

    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else fprintf(stderr, "C API host test: every check held\n");
    return failures ? 1 : 0;
}
