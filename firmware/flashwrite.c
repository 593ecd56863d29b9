/* flashwrite: program one flash page the way the boot ROM's flash functions do it: QMI direct mode on (XIP is gone
   for everyone until it is off again), write-enable, page-program and status-poll commands through DIRECT_TX/RX,
   direct mode off. Built twice:
     flashwrite_hang.elf (-DHANG): the routine lives in flash, so the fetch after it turns direct mode on bus-faults,
       and so does the trap handler (also in flash): the core spins in fetch faults, the hang a board shows;
     flashwrite_ok.elf: the routine runs from SRAM and its source data is copied to SRAM first (the fix of zephyr
       PR 68951), so it never touches XIP while direct mode is on.
   The twin has no flash chip behind direct mode (the bytes go nowhere); what matters here is who touches XIP when. */
#include "twin.h"

#define QMI_DIRECT_CSR REG32(RP_XIP_QMI_BASE + RP_QMI_DIRECT_CSR)
#define QMI_DIRECT_TX REG32(RP_XIP_QMI_BASE + RP_QMI_DIRECT_TX)
#define QMI_DIRECT_RX REG32(RP_XIP_QMI_BASE + RP_QMI_DIRECT_RX)
/* What the ROM writes: CLKDIV 12 and EN (rp2350-flash.md: 0x03000005 in a command with ASSERT_CS0N). */
#define DIRECT_ON ((12u << RP_DIRECT_CSR_CLKDIV_SHIFT) | RP_DIRECT_CSR_EN)

#ifdef HANG
#define FLASH_OP __attribute__((noinline))                               /* runs from flash: the bug */
#else
#define FLASH_OP __attribute__((noinline, section(".sram_text.flash_op")))  /* runs from SRAM */
#endif

#define PAGE 256u
#define TARGET_OFFSET 0x00100000u   /* 1 MiB into flash, clear of the firmware */

static const uint8_t settings_in_flash[16] = "calibration v2\n";
static uint8_t page_buf[PAGE] __attribute__((aligned(4)));
volatile uint32_t settings_writes;

static inline __attribute__((always_inline)) uint8_t qmi_xfer(uint8_t byte)
{
    QMI_DIRECT_TX = byte;
    while (QMI_DIRECT_CSR & RP_DIRECT_CSR_BUSY)
        ;
    return (uint8_t)QMI_DIRECT_RX;
}

static inline __attribute__((always_inline)) void cs_assert(void) { QMI_DIRECT_CSR = DIRECT_ON | RP_DIRECT_CSR_ASSERT_CS0N; }
static inline __attribute__((always_inline)) void cs_release(void) { QMI_DIRECT_CSR = DIRECT_ON; }

FLASH_OP void flash_program_page(uint32_t offset, const uint8_t *data)
{
    QMI_DIRECT_CSR = DIRECT_ON;           /* from here on XIP is unavailable */
    cs_assert();
    qmi_xfer(0x06);                       /* write enable */
    cs_release();
    cs_assert();
    qmi_xfer(0x02);                       /* page program, 24-bit address */
    qmi_xfer((uint8_t)(offset >> 16));
    qmi_xfer((uint8_t)(offset >> 8));
    qmi_xfer((uint8_t)offset);
    for (uint32_t i = 0; i < PAGE; i++)
        qmi_xfer(data[i]);
    cs_release();
    uint8_t status;
    do {                                  /* read status register until WIP clears */
        cs_assert();
        qmi_xfer(0x05);
        status = qmi_xfer(0);
        cs_release();
    } while (status & 1);
    QMI_DIRECT_CSR = 0;                   /* direct mode off: XIP is back */
}

extern uint32_t __sram_text_start[], __sram_text_end[], __sram_text_load[];

__attribute__((noinline)) void save_settings(void)
{
    for (uint32_t i = 0; i < PAGE; i++)
        page_buf[i] = i < sizeof settings_in_flash ? settings_in_flash[i] : 0xff;
    flash_program_page(TARGET_OFFSET, page_buf);
    settings_writes++;
}

int main(void)
{
    counters_enable();
    copy_words(__sram_text_start, __sram_text_load, (uint32_t)(__sram_text_end - __sram_text_start) * 4);
    uart_puts("flashwrite: saving settings\n");
    save_settings();
    uart_puts("flashwrite: settings saved\n");
    return 0;
}
