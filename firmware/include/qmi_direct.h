/* QMI direct mode as the boot ROM's flash functions use it (rp2350-flash.md): direct mode on (XIP is gone for
   everyone until it is off again), commands clocked out byte by byte through DIRECT_TX/RX with CS0 asserted, the
   flash's status register polled until its write finishes, direct mode off. Shared by the flash-writing firmware. */
#ifndef QMI_DIRECT_H
#define QMI_DIRECT_H
#include "twin.h"

#define QMI_DIRECT_CSR REG32(RP_XIP_QMI_BASE + RP_QMI_DIRECT_CSR)
#define QMI_DIRECT_TX REG32(RP_XIP_QMI_BASE + RP_QMI_DIRECT_TX)
#define QMI_DIRECT_RX REG32(RP_XIP_QMI_BASE + RP_QMI_DIRECT_RX)
/* What the ROM writes: CLKDIV 12 and EN (rp2350-flash.md: 0x03000005 in a command with ASSERT_CS0N). */
#define DIRECT_ON ((12u << RP_DIRECT_CSR_CLKDIV_SHIFT) | RP_DIRECT_CSR_EN)

#define FLASH_CMD_WRITE_ENABLE 0x06
#define FLASH_CMD_PAGE_PROGRAM 0x02   /* 24-bit address, then up to 256 bytes */
#define FLASH_CMD_SECTOR_ERASE 0x20   /* 4 KiB, 24-bit address */
#define FLASH_CMD_READ_STATUS 0x05    /* bit 0: write in progress */

/* Everything here is inlined into its caller, so it runs from wherever the caller runs (flash or SRAM): that is
   the point the firmware makes. */
static inline __attribute__((always_inline)) uint8_t qmi_xfer(uint8_t byte)
{
    QMI_DIRECT_TX = byte;
    while (QMI_DIRECT_CSR & RP_DIRECT_CSR_BUSY)
        ;
    return (uint8_t)QMI_DIRECT_RX;
}

static inline __attribute__((always_inline)) void cs_assert(void) { QMI_DIRECT_CSR = DIRECT_ON | RP_DIRECT_CSR_ASSERT_CS0N; }
static inline __attribute__((always_inline)) void cs_release(void) { QMI_DIRECT_CSR = DIRECT_ON; }

/* Direct mode on and a write enable: the start of every flash write. */
static inline __attribute__((always_inline)) void flash_write_begin(void)
{
    QMI_DIRECT_CSR = DIRECT_ON;           /* from here on XIP is unavailable */
    cs_assert();
    qmi_xfer(FLASH_CMD_WRITE_ENABLE);
    cs_release();
}

/* A command with a 24-bit address, CS0 left asserted for the data that follows (if any). */
static inline __attribute__((always_inline)) void flash_command_at(uint8_t command, uint32_t offset)
{
    cs_assert();
    qmi_xfer(command);
    qmi_xfer((uint8_t)(offset >> 16));
    qmi_xfer((uint8_t)(offset >> 8));
    qmi_xfer((uint8_t)offset);
}

/* Status polled until the write finishes, then direct mode off: XIP is back. */
static inline __attribute__((always_inline)) void flash_write_end(void)
{
    uint8_t status;
    do {
        cs_assert();
        qmi_xfer(FLASH_CMD_READ_STATUS);
        status = qmi_xfer(0);
        cs_release();
    } while (status & 1);
    QMI_DIRECT_CSR = 0;
}
#endif
