/* xipprobe: small functions the tests call through the twin, one per modelled fact; main just says it is ready. */
#include "twin.h"

uint32_t probe_buffer[256];

__attribute__((noinline)) uint32_t probe_read32(uint32_t addr) { return REG32(addr); }

__attribute__((noinline)) void probe_write32(uint32_t addr, uint32_t value) { REG32(addr) = value; }

/* Read each address of a list (in SRAM) once, in order; returns the XOR of what was read. */
__attribute__((noinline)) uint32_t probe_read_list(const uint32_t *addrs, uint32_t n)
{
    uint32_t x = 0;
    for (uint32_t i = 0; i < n; i++)
        x ^= REG32(addrs[i]);
    return x;
}

/* Clear the XIP counters, read the list, return the counters: out[0] = CTR_ACC, out[1] = CTR_HIT. */
__attribute__((noinline)) void probe_count_reads(const uint32_t *addrs, uint32_t n, uint32_t *out)
{
    xip_counters_clear();
    probe_read_list(addrs, n);
    out[0] = XIP_CTR_ACC;
    out[1] = XIP_CTR_HIT;
}

__attribute__((noinline)) uint32_t probe_amoswap(uint32_t addr, uint32_t value)
{
    uint32_t old;
    __asm__ volatile("amoswap.w %0, %2, (%1)" : "=r"(old) : "r"(addr), "r"(value) : "memory");
    return old;
}

/* One lr.w / sc.w pair: returns sc.w's result (0 = the store happened). */
__attribute__((noinline)) uint32_t probe_lrsc(uint32_t addr, uint32_t value)
{
    uint32_t loaded, fail;
    __asm__ volatile("lr.w %0, (%2)\n"
                     "sc.w %1, %3, (%2)\n"
                     : "=&r"(loaded), "=&r"(fail)
                     : "r"(addr), "r"(value)
                     : "memory");
    (void)loaded;
    return fail;
}

__attribute__((noinline)) void probe_ecall(void) { __asm__ volatile("ecall"); }

__attribute__((noinline)) void probe_ebreak(void) { __asm__ volatile("ebreak"); }

/* out[0] = mcountinhibit as found, out[1..2] = mcycle, minstret while still inhibited (reset state),
   then counters enabled: out[3] = minstret delta across 100 known instructions, out[4] = mcycle delta. */
__attribute__((noinline)) void probe_counters(uint32_t *out)
{
    out[0] = read_mcountinhibit();
    out[1] = read_mcycle();
    out[2] = read_minstret();
    counters_enable();
    uint32_t i0 = read_minstret(), c0 = read_mcycle();
    __asm__ volatile(".rept 100\n addi x0, x0, 0\n .endr");
    uint32_t i1 = read_minstret(), c1 = read_mcycle();
    out[3] = i1 - i0;
    out[4] = c1 - c0;
}

int main(void)
{
    uart_puts("xipprobe ready\n");
    return 0;
}
