/* What every twin firmware shares: UART0 output, the XIP cache counters, Hazard3's counter CSRs, the trap record. */
#ifndef TWIN_H
#define TWIN_H

#include <stdint.h>
#include "rp2350_regs.h"

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define XIP_CTR_HIT REG32(RP_XIP_CTRL_BASE + RP_XIP_CTRL_CTR_HIT)
#define XIP_CTR_ACC REG32(RP_XIP_CTRL_BASE + RP_XIP_CTRL_CTR_ACC)
#define XIP_CTRL    REG32(RP_XIP_CTRL_BASE + RP_XIP_CTRL_CTRL)

#define CSR_MCOUNTINHIBIT 0x320

static inline uint32_t read_mcycle(void) { uint32_t v; __asm__ volatile("csrr %0, mcycle" : "=r"(v)); return v; }
static inline uint32_t read_minstret(void) { uint32_t v; __asm__ volatile("csrr %0, minstret" : "=r"(v)); return v; }
static inline uint32_t read_mcountinhibit(void)
{
    uint32_t v;
    __asm__ volatile("csrr %0, 0x320" : "=r"(v));
    return v;
}
/* Hazard3 resets mcountinhibit.cy/.ir to 1: the counters stand still until this runs. */
static inline void counters_enable(void) { __asm__ volatile("csrw 0x320, zero"); }
/* CTR_HIT / CTR_ACC are cleared by any write. */
static inline void xip_counters_clear(void) { XIP_CTR_HIT = 0; XIP_CTR_ACC = 0; }

void uart_putc(char c);
void uart_puts(const char *s);
void uart_puthex(uint32_t v);
void uart_putdec(uint32_t v);
void copy_words(volatile uint32_t *dst, const volatile uint32_t *src, uint32_t bytes);

struct trap_record {
    uint32_t mcause, mepc, mstatus, mtval;
};
extern volatile struct trap_record last_trap;
extern volatile uint32_t trap_count;
extern volatile uint32_t trap_resume;   /* nonzero: return past the faulting instruction instead of parking */

int main(void);

#endif
