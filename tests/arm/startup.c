/*
 * startup.c - the smallest start for a Cortex-M4 under qemu-system-arm -M
 * mps2-an386: a vector table (initial stack, reset), the FPU switched on,
 * then newlib's _start (rdimon.specs: semihosting for stdio, files and the
 * command line). Link with -Wl,-u,vectors so that --gc-sections keeps it.
 */
#include <stdint.h>

extern void _start(void);
/* the stack: the top of the 4 MB of SRAM at 0x20000000 */
#define STACK_TOP 0x20400000u

static void reset(void)
{
    /* CPACR: full access to CP10 and CP11 (the FPU) */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb");
    _start();
    for (;;)
        ;
}

static void fault(void)
{
    for (;;)
        ;
}

__attribute__((section(".vectors"), used))
void (*const vectors[16])(void) = {
    (void (*)(void))STACK_TOP, reset, fault, fault, fault, fault, fault,
};
