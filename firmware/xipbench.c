/* xipbench: one workload run from flash (XIP), then from SRAM, then from PSRAM, each with a working set that fits the
   16 KiB XIP cache and one that thrashes it. Prints its own phase timings (mcycle, minstret, CTR_ACC, CTR_HIT). */
#include "twin.h"

#define TABLE_WORDS   (64 * 1024 / 4)   /* thrashing working set: 4x the cache */
#define FIT_WORDS     (4 * 1024 / 4)    /* fitting working set: a quarter of the cache */
#define STRIDE        2                 /* one word per 8-byte line: every access is a new line */
#define FIT_PASSES    64
#define THRASH_PASSES 4                 /* same number of accesses as the fitting run */

typedef uint32_t (*work_fn)(const volatile uint32_t *t, uint32_t words, uint32_t passes);

/* The same C body, compiled three times into the sections that decide where it runs from. */
#define DEFINE_WORK(name, sect)                                                                       \
    __attribute__((noinline, section(sect))) uint32_t name(const volatile uint32_t *t, uint32_t words, \
                                                              uint32_t passes)                           \
    {                                                                                                    \
        uint32_t acc = 0;                                                                                \
        for (uint32_t p = 0; p < passes; p++)                                                            \
            for (uint32_t i = 0; i < words; i += STRIDE)                                                 \
                acc = acc * 33u + t[i];                                                                    \
        return acc;                                                                                      \
    }

DEFINE_WORK(work_flash, ".text.work_flash")
DEFINE_WORK(work_sram, ".sram_text.work_sram")
DEFINE_WORK(work_psram, ".psram_text.work_psram")

const uint32_t flash_table[TABLE_WORDS] = {[0 ... TABLE_WORDS - 1] = 0x9e3779b9u};
uint32_t sram_table[TABLE_WORDS];
uint32_t psram_table[TABLE_WORDS] __attribute__((section(".psram_bss")));

extern uint32_t __sram_text_start[], __sram_text_end[], __sram_text_load[];
extern uint32_t __psram_text_start[], __psram_text_end[], __psram_text_load[];

static void phase(const char *name, work_fn fn, const volatile uint32_t *table, uint32_t words, uint32_t passes)
{
    xip_counters_clear();
    uint32_t c0 = read_mcycle(), i0 = read_minstret();
    uint32_t result = fn(table, words, passes);
    uint32_t c1 = read_mcycle(), i1 = read_minstret();
    uint32_t acc = XIP_CTR_ACC, hit = XIP_CTR_HIT;
    uart_puts("phase ");
    uart_puts(name);
    uart_puts(" cycles=");
    uart_putdec(c1 - c0);
    uart_puts(" instret=");
    uart_putdec(i1 - i0);
    uart_puts(" xip_acc=");
    uart_putdec(acc);
    uart_puts(" xip_hit=");
    uart_putdec(hit);
    uart_puts(" result=");
    uart_puthex(result);
    uart_puts("\n");
}

int main(void)
{
    uart_puts("xipbench: flash XIP, then SRAM, then PSRAM; fitting and thrashing working sets\n");
    counters_enable();
    phase("flash-fit", work_flash, flash_table, FIT_WORDS, FIT_PASSES);
    phase("flash-thrash", work_flash, flash_table, TABLE_WORDS, THRASH_PASSES);

    copy_words(__sram_text_start, __sram_text_load, (uint32_t)(__sram_text_end - __sram_text_start) * 4);
    copy_words(sram_table, flash_table, sizeof sram_table);
    __asm__ volatile("fence.i" ::: "memory");
    phase("sram-fit", work_sram, sram_table, FIT_WORDS, FIT_PASSES);
    phase("sram-thrash", work_sram, sram_table, TABLE_WORDS, THRASH_PASSES);

    copy_words(__psram_text_start, __psram_text_load, (uint32_t)(__psram_text_end - __psram_text_start) * 4);
    copy_words(psram_table, flash_table, sizeof psram_table);
    __asm__ volatile("fence.i" ::: "memory");
    phase("psram-fit", work_psram, psram_table, FIT_WORDS, FIT_PASSES);
    phase("psram-thrash", work_psram, psram_table, TABLE_WORDS, THRASH_PASSES);
    uart_puts("xipbench: done\n");
    return 0;
}
