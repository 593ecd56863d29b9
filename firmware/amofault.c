/* amofault: a spinlock word in PSRAM, as the seed's kernel had it ("Atomics will only work in SRAM, the kernel is
   located PSRAM"). Built twice: with amoswap.w it dies with mcause 7; with LR_SC (lrscspin.elf) it spins forever,
   because lr.w outside SRAM sets no reservation and every sc.w fails. */
#include "twin.h"

volatile uint32_t psram_lock __attribute__((section(".psram_bss")));

__attribute__((noinline)) void spin_lock(volatile uint32_t *lock)
{
#ifdef LR_SC
    uint32_t tmp;
    __asm__ volatile("1: lr.w.aq %0, (%1)\n"
                     "   bnez %0, 1b\n"
                     "   sc.w %0, %2, (%1)\n"
                     "   bnez %0, 1b\n"
                     : "=&r"(tmp)
                     : "r"(lock), "r"(1)
                     : "memory");
#else
    while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
        ;
#endif
}

int main(void)
{
    uart_puts("amofault: taking the spinlock at ");
    uart_puthex((uint32_t)(uintptr_t)&psram_lock);
    uart_puts(" (PSRAM)\n");
    spin_lock(&psram_lock);
    uart_puts("amofault: lock taken (an RP2350 never gets here)\n");
    return 0;
}
