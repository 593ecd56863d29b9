/* UART0 output and the trap handler shared by the twin firmware. */
#include "twin.h"

volatile struct trap_record last_trap;
volatile uint32_t trap_count;
volatile uint32_t trap_resume;

void uart_putc(char c)
{
    while (REG32(RP_UART0_BASE + RP_PL011_FR) & RP_PL011_FR_TXFF)
        ;
    REG32(RP_UART0_BASE + RP_PL011_DR) = (uint8_t)c;
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_puthex(uint32_t v)
{
    uart_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4)
        uart_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

void uart_putdec(uint32_t v)
{
    char buf[11];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        uart_putc(buf[--i]);
}

void copy_words(volatile uint32_t *dst, const volatile uint32_t *src, uint32_t bytes)
{
    for (uint32_t i = 0; i < bytes / 4; i++)
        dst[i] = src[i];
}

/* Called by trap_entry; returns the address to resume at, or 0 to park the core. */
uint32_t trap_handler(uint32_t mcause, uint32_t mepc, uint32_t mstatus, uint32_t mtval)
{
    last_trap.mcause = mcause;
    last_trap.mepc = mepc;
    last_trap.mstatus = mstatus;
    last_trap.mtval = mtval;
    trap_count++;
    if (trap_resume) {
        uint16_t first = *(volatile uint16_t *)(uintptr_t)mepc;
        return mepc + ((first & 3) == 3 ? 4 : 2);
    }
    uart_puts("TRAP mcause=");
    uart_puthex(mcause);
    uart_puts(" mepc=");
    uart_puthex(mepc);
    uart_puts(" mtval=");
    uart_puthex(mtval);
    uart_puts(" mstatus=");
    uart_puthex(mstatus);
    uart_puts("\n");
    return 0;
}
