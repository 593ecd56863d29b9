/* armxip: the twin's Arm-mode firmware (Cortex-M33, Thumb-2), so pyOCD's own rp2350 target can be run against the
   twin's DAP face. A loop of three phases, each a function of its own:
     flash_spin  a counted loop executing in place from flash (XIP fetches, cache hits after the first pass)
     sram_spin   the same loop copied to SRAM at start (no XIP traffic)
     table_walk  sums a 32 KiB table in flash, twice the XIP cache's size (XIP data reads, mostly misses)
   `rounds` counts completed loops and `checksum` holds the last sum, so a debugger can watch them change.
   The twin starts the core from the vector table at the start of flash (MSP, then the reset handler); a board would
   boot through the bootrom's IMAGE_DEF, which this firmware does not carry. */
    .syntax unified
    .cpu cortex-m33
    .thumb

    .equ SPIN_COUNT, 20000
    .equ TABLE_WORDS, 8192

/* The counted loop of flash_spin and sram_spin: one body, placed in two memories. */
    .macro spin_loop name
    .thumb_func
    .globl \name
    .type \name, %function
\name:
    ldr r0, =SPIN_COUNT
1:  subs r0, r0, #1
    bne 1b
    bx lr
    .size \name, . - \name
    .endm

    .section .vectors, "a"
    .globl __vectors
__vectors:
    .word __stack_top
    .word _start

    .text
    .thumb_func
    .globl _start
    .type _start, %function
_start:
    ldr r0, =__sram_text_start          @ copy sram_spin to SRAM
    ldr r1, =__sram_text_load
    ldr r2, =__sram_text_end
1:  cmp r0, r2
    bhs 2f
    ldr r3, [r1], #4
    str r3, [r0], #4
    b 1b
2:  ldr r0, =__bss_start
    ldr r1, =__bss_end
    movs r2, #0
3:  cmp r0, r1
    bhs main
    str r2, [r0], #4
    b 3b
    .size _start, . - _start

    .thumb_func
    .globl main
    .type main, %function
main:
    bl flash_spin
    bl sram_spin
    bl table_walk
    ldr r1, =checksum
    str r0, [r1]
    ldr r1, =rounds
    ldr r2, [r1]
    adds r2, r2, #1
    str r2, [r1]
    b main
    .size main, . - main

    spin_loop flash_spin

    .thumb_func
    .globl table_walk
    .type table_walk, %function
table_walk:
    ldr r1, =table
    ldr r2, =TABLE_WORDS
    movs r0, #0
1:  ldr r3, [r1], #4
    add r0, r0, r3
    subs r2, r2, #1
    bne 1b
    bx lr
    .size table_walk, . - table_walk
    .ltorg

    .section .sram_text, "ax"
    spin_loop sram_spin
    .ltorg

    .section .rodata
    .balign 4
    .globl table
    .type table, %object
table:
    .rept TABLE_WORDS
    .word 1
    .endr
    .size table, . - table

    .bss
    .balign 4
    .globl rounds, checksum
    .type rounds, %object
rounds:
    .word 0
    .size rounds, 4
    .type checksum, %object
checksum:
    .word 0
    .size checksum, 4
