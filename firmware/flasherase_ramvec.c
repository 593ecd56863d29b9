/* flasherase_ramvec: erase a flash sector from code that runs from flash, with the trap vector in SRAM, as RTOSes
   that keep their vector table in RAM do. The erase routine turns QMI direct mode on, so its very next fetch from XIP
   bus-faults (mcause 1). The handler is in SRAM, so it runs; it counts the fault and returns to mepc, as a handler
   that takes a bus fault for something to retry does: the same fetch faults again. The core never parks: it spins
   between the faulting fetch and the handler, retiring handler instructions forever, the hang a board shows (a
   probe halts it at once). flashwrite_hang.elf is the other case: there the vector is in flash too and the handler
   itself faults. */
#include "qmi_direct.h"

#define SECTOR_OFFSET 0x00100000u   /* 1 MiB into flash, clear of the firmware */

volatile uint32_t ram_fault_count;   /* faults the SRAM handler has retried */

/* The trap vector, in SRAM (copied there by main): touches only SRAM (its stack and ram_fault_count), then mret to
   mepc unchanged, which retries the faulting fetch. */
__asm__(
    "    .section .sram_text.ram_trap_entry, \"ax\"\n"
    "    .align 2\n"
    "    .globl ram_trap_entry\n"
    "    .type ram_trap_entry, @function\n"
    "ram_trap_entry:\n"
    "    addi sp, sp, -8\n"
    "    sw t0, 0(sp)\n"
    "    sw t1, 4(sp)\n"
    "    la t0, ram_fault_count\n"
    "    lw t1, 0(t0)\n"
    "    addi t1, t1, 1\n"
    "    sw t1, 0(t0)\n"
    "    lw t1, 4(sp)\n"
    "    lw t0, 0(sp)\n"
    "    addi sp, sp, 8\n"
    "    mret\n"
    "    .size ram_trap_entry, . - ram_trap_entry\n"
    "    .text\n");

extern void ram_trap_entry(void);

/* The bug: this runs from flash (it should be in SRAM, like flashwrite_ok's flash_program_page). */
__attribute__((noinline)) void flash_erase_sector(uint32_t offset)
{
    flash_write_begin();                  /* from here on XIP is unavailable */
    flash_command_at(FLASH_CMD_SECTOR_ERASE, offset);
    cs_release();
    flash_write_end();
}

extern uint32_t __sram_text_start[], __sram_text_end[], __sram_text_load[];

int main(void)
{
    counters_enable();
    copy_words(__sram_text_start, __sram_text_load, (uint32_t)(__sram_text_end - __sram_text_start) * 4);
    __asm__ volatile("csrw mtvec, %0" : : "r"(ram_trap_entry));
    uart_puts("flasherase: erasing the settings sector\n");
    flash_erase_sector(SECTOR_OFFSET);
    uart_puts("flasherase: sector erased\n");
    return 0;
}
