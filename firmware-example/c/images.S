/* The embedded data: the int8 model and the shared fixtures' test images (paths from the Makefile). */
    .section .rodata.embedded, "a"
    .balign 8
    .global model_bytes, model_end, images, images_end, labels, labels_end
model_bytes:
    .incbin MODEL_FILE
model_end:
    .balign 4
images:
    .incbin IMAGES_FILE
images_end:
labels:
    .incbin LABELS_FILE
labels_end:
