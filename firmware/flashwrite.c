/* flashwrite: program one flash page the way the boot ROM's flash functions do it: QMI direct mode on (XIP is gone
   for everyone until it is off again), write-enable, page-program and status-poll commands through DIRECT_TX/RX,
   direct mode off. Built twice:
     flashwrite_hang.elf (-DHANG): the routine lives in flash, so the fetch after it turns direct mode on bus-faults,
       and so does the trap handler (also in flash): the core spins in fetch faults, the hang a board shows;
     flashwrite_ok.elf: the routine runs from SRAM and its source data is copied to SRAM first (the fix of zephyr
       PR 68951), so it never touches XIP while direct mode is on.
   The twin has no flash chip behind direct mode (the bytes go nowhere); what matters here is who touches XIP when. */
#include "qmi_direct.h"

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

FLASH_OP void flash_program_page(uint32_t offset, const uint8_t *data)
{
    flash_write_begin();
    flash_command_at(FLASH_CMD_PAGE_PROGRAM, offset);
    for (uint32_t i = 0; i < PAGE; i++)
        qmi_xfer(data[i]);
    cs_release();
    flash_write_end();
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
