/*
 * host_main.c - runs an exported model (model.h / model.c from
 * `digits export-c --name model`) on raw test images: reads N*INPUT bytes
 * from the file argv[1] (IDX pixels without the header) and prints one
 * line per image, "class s0 s1 ...", scores with %.9g, as `digits
 * evaluate --scores` does. Plain C99: also built for ARM Linux.
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

static unsigned char scratch[MODEL_SCRATCH_BYTES] __attribute__((aligned(16)));

int main(int argc, char **argv)
{
    static uint8_t px[MODEL_INPUT_SIZE];
    float scores[MODEL_OUTPUTS];
    FILE *f;
    long n = 0, limit = argc > 2 ? atol(argv[2]) : -1;
    if (argc < 2 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: host_main PIXELS [N]\n");
        return 2;
    }
    while ((limit < 0 || n < limit) &&
           fread(px, 1, sizeof px, f) == sizeof px) {
        int c = model_predict(px, scratch, scores), j;
        if (c != model_predict(px, scratch, NULL)) {
            fprintf(stderr, "image %ld: class differs without scores\n", n);
            return 1;
        }
        printf("%d", c);
        for (j = 0; j < MODEL_OUTPUTS; j++)
            printf(" %.9g", (double)scores[j]);
        printf("\n");
        n++;
    }
    fclose(f);
    return n > 0 ? 0 : 1;
}
