/*
 * host_main.c - runs an exported model (model.h / model.c from
 * `digits export-c --name model`) on raw test images: reads N*INPUT bytes
 * from the file argv[1] (IDX pixels without the header) and prints one
 * line per image, "class s0 s1 ...", scores with %.9g, as `digits
 * evaluate --scores` does. Plain C99; also built for a Cortex-M4 (under
 * qemu, semihosting: files and the command line come from the host). With
 * -DNN_SYSTICK (Cortex-M), the first prediction is timed with SysTick on
 * the processor clock and "systick_ticks: N" printed on stderr.
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#ifdef NN_SYSTICK
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#endif

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
        int c, j;
#ifdef NN_SYSTICK
        if (n == 0) {
            uint32_t t0, t1;
            SYST_RVR = 0xFFFFFF;
            SYST_CVR = 0;
            SYST_CSR = 5;   /* enabled, processor clock, no interrupt */
            t0 = SYST_CVR;
            model_predict(px, scratch, scores);
            t1 = SYST_CVR;
            fprintf(stderr, "systick_ticks: %lu\n",
                    (unsigned long)((t0 - t1) & 0xFFFFFF));
        }
#endif
        c = model_predict(px, scratch, scores);
        /* the class does not depend on whether scores are wanted */
        if (n < 16 && c != model_predict(px, scratch, NULL)) {
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
