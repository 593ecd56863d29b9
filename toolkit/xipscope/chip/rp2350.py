"""RP2350 register and cache facts, each encoded once, each with the place in ../shared/reference/rp2350.md it comes from.

The twin (xipscope.sim) and the profiler read these; nothing else should spell an RP2350 address.
Facts marked INFERRED are hypotheses the twin makes explicit (no source states them outright).
"""

from __future__ import annotations

from . import riscv as _rv

# --- Memory map (rp2350.md "Memory map", pico-sdk addressmap.h) --------------------------------------------------
ROM_BASE = 0x00000000
ROM_SIZE = 32 * 1024
# XIP: address bits 27:26 pick the alias; bit 24 picks the chip select (CS0 flash, CS1 PSRAM).
XIP_ALIASES = {
    "cached": 0x10000000,
    "nocache": 0x14000000,        # XIP_NOCACHE_NOALLOC_BASE
    "maintenance": 0x18000000,    # writes only; low 3 address bits pick the operation
    "untranslated": 0x1C000000,   # uncached + untranslated
}
XIP_ALIAS_SIZE = 0x04000000
XIP_ALIAS_MASK = 0x0C000000       # bits 27:26
XIP_CS0_OFFSET = 0x00000000
XIP_CS1_OFFSET = 0x01000000
XIP_CS_SIZE = 0x01000000          # 16 MiB window per chip select
XIP_BASE = 0x10000000
XIP_END = 0x20000000
XIP_SRAM_BASE = 0x13FFC000
PSRAM_SIZE_PICO_PLUS_2 = 8 * 1024 * 1024   # seed's board: memory node 0x11000000-0x117fffff
FLASH_SIZE_PICO_PLUS_2 = 16 * 1024 * 1024  # (CS0 window; the twin maps all of it)

SRAM_BASE = 0x20000000
SRAM_END = 0x20082000             # 520 KiB incl. SCRATCH_X 0x20080000 and SCRATCH_Y 0x20081000
SCRATCH_X_BASE = 0x20080000
SCRATCH_Y_BASE = 0x20081000

ACCESSCTRL_BASE = 0x40060000
UART0_BASE = 0x40070000           # the seed boot log's earlycon pl011 at 0x40070000
UART1_BASE = 0x40078000
XIP_CTRL_BASE = 0x400C8000
XIP_QMI_BASE = 0x400D0000
CORESIGHT_APB_AP_RISCV_BASE = 0x4014A000
SIO_BASE = 0xD0000000
PERIPHERAL_BLOCK_SIZE = 0x1000    # each APB peripheral's 4 KiB block (addressmap.h: bases 0x1000 apart or more)
# The register blocks the project names, name -> (base, size): chip/memory_map.py's peripheral regions and the
# twin's bus (sim/bus.py) are both built from this table, so an address is spelled here only.
PERIPHERALS = {
    "xip-maintenance": (XIP_ALIASES["maintenance"], XIP_ALIAS_SIZE),
    "accessctrl": (ACCESSCTRL_BASE, PERIPHERAL_BLOCK_SIZE),
    "uart0": (UART0_BASE, PERIPHERAL_BLOCK_SIZE),
    "uart1": (UART1_BASE, PERIPHERAL_BLOCK_SIZE),
    "xip_ctrl": (XIP_CTRL_BASE, PERIPHERAL_BLOCK_SIZE),
    "xip_qmi": (XIP_QMI_BASE, PERIPHERAL_BLOCK_SIZE),
    "sio": (SIO_BASE, PERIPHERAL_BLOCK_SIZE),
}

# --- XIP cache (rp2350.md "XIP cache and its counters", DS 4.4) --------------------------------------------------
XIP_CACHE_SIZE = 16 * 1024
XIP_CACHE_WAYS = 2
XIP_CACHE_LINE = 8
XIP_CACHE_SETS = XIP_CACHE_SIZE // (XIP_CACHE_WAYS * XIP_CACHE_LINE)   # 1024
XIP_CACHE_HIT_CYCLES = 1
XIP_CACHE_EVICTION = "random"

# Maintenance operations: the low 3 bits of a write address in the 0x18000000 alias.
XIP_MAINT_OPS = {
    0: "invalidate-set-way",
    1: "clean-set-way",
    2: "invalidate-by-address",
    3: "clean-by-address",
    7: "pin",
}
# Erratum RP2350-E11: "clean all" (clean by set/way) also invalidates lines (pico-sdk hardware_xip_cache).
ERRATUM_E11_CLEAN_SET_WAY_INVALIDATES = True

# --- XIP_CTRL registers (pico-sdk regs/xip.h) ----------------------------------------------------------------------
XIP_CTRL_CTRL = 0x00
XIP_CTRL_STAT = 0x08
XIP_CTRL_CTR_HIT = 0x0C
XIP_CTRL_CTR_ACC = 0x10
XIP_CTRL_STREAM_ADDR = 0x14
XIP_CTRL_STREAM_CTR = 0x18
XIP_CTRL_STREAM_FIFO = 0x1C
XIP_CTRL_CTRL_RESET = 0x83
CTRL_EN_SECURE = 1 << 0
CTRL_EN_NONSECURE = 1 << 1
CTRL_POWER_DOWN = 1 << 3
CTRL_WRITABLE_M0 = 1 << 10
CTRL_WRITABLE_M1 = 1 << 11
STAT_FIFO_EMPTY = 1 << 1
STAT_FIFO_FULL = 1 << 2
# CTR_HIT / CTR_ACC: 32-bit, saturating, cleared by any write (type WC) (DS 4.4.4); count for the whole chip.
XIP_COUNTER_MAX = 0xFFFFFFFF

# XIP_CTRL.CTRL bits that turn an alias into a bus error (pico-sdk regs/xip.h; reset 0x83 sets NO_UNTRANSLATED_NONSEC).
CTRL_NO_UNCACHED_SEC = 1 << 4       # Secure (Hazard3 M-mode) accesses to the 0x14000000 alias bus-fault
CTRL_NO_UNCACHED_NONSEC = 1 << 5
CTRL_NO_UNTRANSLATED_SEC = 1 << 6   # Secure accesses to the 0x1c000000 alias bus-fault
CTRL_NO_UNTRANSLATED_NONSEC = 1 << 7

# --- QMI, the QSPI memory interface at XIP_QMI_BASE (rp2350-flash.md "QMI"; pico-sdk regs/qmi.h) --------------------
QMI_DIRECT_CSR = 0x00
QMI_DIRECT_TX = 0x04
QMI_DIRECT_RX = 0x08
QMI_M0_TIMING = 0x0C              # window 0: chip select 0 (flash)
QMI_M1_TIMING = 0x20              # window 1: chip select 1 (PSRAM); M1_* follow M0_* at +0x14
QMI_WINDOW_STRIDE = 0x14
QMI_TIMING, QMI_RFMT, QMI_RCMD, QMI_WFMT, QMI_WCMD = 0x00, 0x04, 0x08, 0x0C, 0x10   # offsets within a window
QMI_ATRANS0 = 0x34                # ATRANS0-7 at 0x34..0x50, one per 4 MiB of XIP address space
QMI_ATRANS_COUNT = 8
QMI_DIRECT_CSR_RESET = 0x01800000
QMI_WINDOW_RESET = {QMI_TIMING: 0x40000004, QMI_RFMT: 0x00001000, QMI_RCMD: 0x0000A003, QMI_WFMT: 0x00001000,
                    QMI_WCMD: 0x0000A002}
# ATRANSn resets to an identity map: SIZE 0x400 (4 MiB) and BASE = (n % 4) * 0x400 (qmi.h QMI_ATRANSn_RESET).
QMI_ATRANS_RESET = tuple(0x04000000 | (n % 4) * 0x400 for n in range(QMI_ATRANS_COUNT))
QMI_ATRANS_WINDOW = 0x400000      # each ATRANS covers 4 MiB of virtual XIP address space
QMI_ATRANS_PAGE = 0x1000          # SIZE and BASE count 4 KiB sectors
QMI_ATRANS_SIZE_SHIFT, QMI_ATRANS_SIZE_MASK = 16, 0x7FF
QMI_ATRANS_BASE_MASK = 0xFFF
# DIRECT_CSR fields
DIRECT_CSR_EN = 1 << 0
DIRECT_CSR_BUSY = 1 << 1
DIRECT_CSR_ASSERT_CS0N = 1 << 2
DIRECT_CSR_ASSERT_CS1N = 1 << 3
DIRECT_CSR_TXEMPTY = 1 << 11
DIRECT_CSR_RXEMPTY = 1 << 16
DIRECT_CSR_CLKDIV_SHIFT = 22
# RFMT / RCMD fields used to judge continuous read (qmi.h): PREFIX_LEN bit 12 (0 none, 1 = 8 bits),
# SUFFIX_LEN bits 15:14 (0 none, 2 = 8 bits); RCMD PREFIX bits 7:0, SUFFIX bits 15:8.
RFMT_PREFIX_LEN = 1 << 12
RFMT_SUFFIX_LEN_SHIFT = 14
RFMT_SUFFIX_LEN_8 = 2
RFMT_DATA_WIDTH_SHIFT = 8
RCMD_SUFFIX_SHIFT = 8
# (RFMT, RCMD) the ROM flash functions leave until the boot-time XIP mode is restored: serial 03h reads, no mode
# bits (rp2350-flash.md, derived); differs from the reset RCMD 0xa003 only in the unused suffix byte.
QMI_ROM_FLASH_OP_READ = (0x00001000, 0x00000003)
# Mode bits 0xAx in the suffix keep a QSPI flash in continuous-read mode (the 0xa0 of the reset RCMD; sdk boot2).
CONTINUOUS_READ_MODE_NIBBLE = 0xA
# The hang rule (rp2350-flash.md "A debugger's hang rule"): with DIRECT_CSR.EN = 1, XIP fetches and loads in these
# ranges bus-fault; the cache-as-SRAM window 0x13ffc000-0x13ffffff is not affected.
XIP_UNAVAILABLE_IN_DIRECT_MODE = ((0x10000000, 0x13FFC000), (0x14000000, 0x20000000))
# INFERRED: whether cache hits still succeed while EN = 1 is not documented; the twin faults them too.

# --- UART (PL011). Offsets and flag bits: ARM PrimeCell UART (PL011) TRM, UARTDR 0x000 and UARTFR 0x018. ----------
PL011_DR = 0x000
PL011_FR = 0x018
PL011_FR_BUSY = 1 << 3
PL011_FR_RXFE = 1 << 4
PL011_FR_TXFF = 1 << 5
PL011_FR_TXFE = 1 << 7

# --- SIO's RISC-V platform timer (linux-on-rp2350.md "SIO platform timer", pico-sdk hardware/regs/sio.h) -------------
SIO_RISCV_SOFTIRQ = 0x1A0          # CORE0_SET bit 0, CORE1_SET bit 1 (read: pending), CORE0_CLR bit 8, CORE1_CLR bit 9
SOFTIRQ_CORE0_SET = 1 << 0
SOFTIRQ_CORE1_SET = 1 << 1
SOFTIRQ_CORE0_CLR = 1 << 8
SOFTIRQ_CORE1_CLR = 1 << 9
SIO_MTIME_CTRL = 0x1A4
MTIME_CTRL_EN = 1 << 0
MTIME_CTRL_FULLSPEED = 1 << 1     # 1: MTIME counts clk_sys cycles instead of the 1 MHz ticks
MTIME_CTRL_DBGPAUSE_CORE0 = 1 << 2
MTIME_CTRL_DBGPAUSE_CORE1 = 1 << 3
MTIME_CTRL_RESET = 0xD            # EN, DBGPAUSE_CORE0/1: MTIME stops while a debugger holds a core halted
SIO_MTIME = 0x1B0                 # MTIME / MTIMEH: one 64-bit count shared by both cores
SIO_MTIMEH = 0x1B4
SIO_MTIMECMP = 0x1B8              # MTIMECMP / MTIMECMPH: per core (each core sees its own here)
SIO_MTIMECMPH = 0x1BC
MTIMECMP_RESET = 0xFFFFFFFF       # both halves
MTIME_TICK_HZ = 1_000_000         # the TICKS generator's 1 MHz (device tree timebase-frequency = <1000000>)
CLK_SYS_DEFAULT_HZ = 150_000_000  # the boards' clk_sys (linux-on-rp2350.md "Real-board timings at 150 MHz")
# Machine-mode interrupts (Hazard3 csr.adoc; RISC-V privileged spec): mie/mip bit n is interrupt code n; mcause has
# bit 31 set. The twin raises the software (RISCV_SOFTIRQ) and timer (MTIME >= MTIMECMP) interrupts; no Xh3irq.
MIE_MSIE = 1 << 3
MIE_MTIE = 1 << 7
CAUSE_INTERRUPT = 1 << 31
CAUSE_MACHINE_SOFTWARE_IRQ = CAUSE_INTERRUPT | 3    # 0x80000003
CAUSE_MACHINE_TIMER_IRQ = CAUSE_INTERRUPT | 7       # 0x80000007

# --- How the Linux ports boot (linux-on-rp2350.md "Boot"): the bootloader copies Image to PSRAM and jumps to it in
# M-mode with a0 = 0 and a1 = the DTB, used in place in flash.
LINUX_IMAGE_ADDR = 0x11000000
LINUX_DTB_ADDR = 0x10010000
# arch/riscv/include/asm/image.h: struct riscv_image_header: magic "RISCV\0\0\0" at 48, magic2 "RSC\x05" at 56.
RISCV_IMAGE_MAGIC = (48, b"RISCV\0\0\0")
RISCV_IMAGE_MAGIC2 = (56, b"RSC\x05")

# --- Atomics (rp2350.md "Atomics outside SRAM", DS 2.1.6.2 / 2.2.2) --------------------------------------------------
EXCLUSIVE_MONITOR_RANGE = (SRAM_BASE, SRAM_END)   # amo*.w elsewhere -> mcause 7; lr.w elsewhere sets no reservation

# --- Hazard3 (rp2350.md "Hazard3, the RISC-V core", DS 3.8) ----------------------------------------------------------
HAZARD3_MVENDORID = 0x493
HAZARD3_MIMPID = 0x86FC4E3F
HAZARD3_MTVAL_HARDWIRED = 0            # mtval is 0 on every trap (DS 3.8.4.1)
HAZARD3_MCOUNTINHIBIT_RESET = 0b101    # .cy (bit 0) and .ir (bit 2) reset to 1
# Exception causes Hazard3 raises (code 0 never occurs), by the privileged spec's names (chip/riscv.py).
HAZARD3_EXCEPTION_CAUSES = {code: _rv.EXCEPTION_NAMES[code] for code in (1, 2, 3, 4, 5, 6, 7, 8, 11)}
CAUSE_FETCH_FAULT = 1
CAUSE_ILLEGAL = 2
CAUSE_BREAKPOINT = 3
CAUSE_LOAD_FAULT = 5
CAUSE_STORE_FAULT = 7
CAUSE_ECALL_U = 8
CAUSE_ECALL_M = 11
# ISA: unicorn runs rv32ima(c)_zicsr; Hazard3's Zba/Zbb/Zbs/Zbkb/Zcb/Zcmp are not executed by the twin.
HAZARD3_ISA = "rv32ima_zicsr_zifencei_zba_zbb_zbs_zbkb_zca_zcb_zcmp"
TWIN_ISA = "rv32imac_zicsr"


def xip_alias(address: int) -> str | None:
    """Which XIP alias an address is in ('cached', 'nocache', 'maintenance', 'untranslated'), or None."""
    if not XIP_BASE <= address < XIP_END:
        return None
    bits = address & XIP_ALIAS_MASK
    for name, base in XIP_ALIASES.items():
        if bits == base & XIP_ALIAS_MASK:
            return name
    return None  # unreachable: four aliases cover the two bits


def xip_physical(address: int) -> int:
    """The XIP address with the alias bits dropped: chip select bit 24 plus the offset within it."""
    return address & (XIP_CS1_OFFSET | (XIP_CS_SIZE - 1))


def in_exclusive_monitor(address: int) -> bool:
    return EXCLUSIVE_MONITOR_RANGE[0] <= address < EXCLUSIVE_MONITOR_RANGE[1]


def xip_blocked_by_direct_mode(address: int) -> bool:
    """True for an address a core cannot fetch or load from while QMI DIRECT_CSR.EN = 1 (the hang rule)."""
    return any(lo <= address < hi for lo, hi in XIP_UNAVAILABLE_IN_DIRECT_MODE)


def atrans_index(address: int) -> int:
    """Which ATRANS register translates an XIP address (0-3 for CS0, 4-7 for CS1)."""
    return (xip_physical(address) // QMI_ATRANS_WINDOW) & (QMI_ATRANS_COUNT - 1)


def atrans_size_pages(atrans: int) -> int:
    return (atrans >> QMI_ATRANS_SIZE_SHIFT) & QMI_ATRANS_SIZE_MASK


def beyond_atrans_size(address: int, atrans: int) -> bool:
    """True if an access through a translated alias lies past the aperture ATRANS configures (a bus error).

    qmi.h: "Bits 21:12 of the virtual address are compared to SIZE. Offsets greater than SIZE return a bus error";
    the twin reads SIZE as a count of 4 KiB sectors, so sector offsets SIZE and above fault.
    """
    return ((address >> 12) & 0x3FF) >= atrans_size_pages(atrans)

# --- The RISC-V Debug Module (rp2350.md "Debug access"; Hazard3 hdl/debug/dm/hazard3_dm.v, doc/sections/debug.adoc) --
# hartinfo = 0x00001bff: nscratch 0, dataaccess 0 (data0 is shadowed in each hart's CSR space), datasize 1,
# dataaddr 0xbff: data0 is also the CSR dmdata0 (hazard3_dm.v ADDR_HARTINFO). (rp2350.md says "dataaccess 1": the
# value 0x00001bff has bit 16 clear, and the RTL's comment says "dataccess = 0, data0 is mapped to each hart's CSR
# space".)
DM_HARTINFO = 0x00001BFF
DM_DATA0_CSR = 0xBFF
# "The dscratch CSRs are not implemented" (debug.adoc); an access is an illegal instruction (csr.adoc), so a program
# buffer that touches them ends in cmderr 3 (exception). The RTL's CSR list (hazard3_csr_addr.vh): DCSR, DPC, DMDATA0.
DM_DSCRATCH_IMPLEMENTED = False
DM_PROGBUF_SIZE = 2               # + impebreak (hazard3_dm.v PROGBUF_SIZE)
DM_DATA_COUNT = 1
# Abstract commands: Access Register only, 32-bit GPRs only, aarpostincrement not supported (cmderr 2) (hazard3_dm.v
# acmd_new_unsupported); a command on a hart that is not halted or not available is cmderr 4.
DM_POSTINCREMENT = False
# Two harts on one DM: hartsel is one bit wide (dmcontrol bit 16), plus the hart array mask (rp2350.md; OpenOCD
# `-coreid 0/1`; hazard3_dm.v W_HARTSEL = $clog2(N_HARTS)).
DM_HARTS = 2
# A hart is available only out of reset (hazard3_dm.v: hart_available = hart_reset_done & sys_reset_done): on a
# chip booted in Arm mode the RISC-V harts are held in reset and dmstatus reads allunavail (raspberrypi/openocd
# issue 104: "unavailable"). What switches the architecture (rp2350.md "Debug access"):
ARM_BOOT_REMEDY = ("the chip runs its Arm cores, so its RISC-V harts are held in reset; switch it to RISC-V with "
                   "`picotool reboot -u -c riscv`, a RISC-V image, or the OTP boot-architecture setting, "
                   "or profile the Arm core with pyocd://...?core=arm")
# abstractcs.busy (debug spec 0.13.2 3.12.6; hazard3_dm.v dmi_access_illegal_when_busy): while a command runs, a
# write to abstractcs, command, abstractauto, data0 or progbuf, or a read of data0 or progbuf, sets cmderr 1 (busy)
# and the access does not take effect (the RTL still latches a data0 write; the model drops it, as the spec allows).
# INFERRED: how many DM accesses a command stays busy for. A command runs 2-5 instructions through the core's
# debug instruction port, a handful of clk_sys cycles; a DM access over SWD takes tens of SWCLK cycles. So busy
# rarely outlasts one access, and then only with a slow clk_sys (the boot-time ring oscillator) against a fast probe:
# the twin keeps a command busy through the next DM access, so drivers are held to the rule.
DM_BUSY_ACCESSES = 1
# The RISC-V Debug Module's APB-AP (rp2350.md "Debug access"): AP address 0xa000, DM register n at byte address 4n.
DM_AP_ADDRESS = 0xA000


# --- ACCESSCTRL at 0x40060000 (pico-sdk src/rp2350/hardware_regs/include/hardware/regs/accessctrl.h) ---------------
# Who (core 0, core 1, DMA, debugger) may reach each peripheral, and at which security/privilege levels. The twin
# models the registers below (at ACCESSCTRL_BASE); the other peripheral registers (from 0x20 on) are not modelled.
ACCESSCTRL_LOCK = 0x00            # reset 0x4 (DMA locked, RO); a LOCK bit once 1 stays 1 until a full reset
ACCESSCTRL_FORCE_CORE_NS = 0x04
ACCESSCTRL_CFGRESET = 0x08        # "Write 1 to reset all ACCESSCTRL configuration, except for the LOCK and
                                  # FORCE_CORE_NS registers" (self-clearing); not writable by a locked-out master
ACCESSCTRL_GPIO_NSMASK0, ACCESSCTRL_GPIO_NSMASK1 = 0x0C, 0x10
ACCESSCTRL_ROM, ACCESSCTRL_XIP_MAIN, ACCESSCTRL_SRAM0 = 0x14, 0x18, 0x1C
ACCESSCTRL_LOCK_CORE0, ACCESSCTRL_LOCK_CORE1, ACCESSCTRL_LOCK_DMA, ACCESSCTRL_LOCK_DEBUG = 1 << 0, 1 << 1, 1 << 2, 1 << 3
# offset -> (writable bits, reset value), as accessctrl.h gives them (ROM, XIP_MAIN, SRAM0: "Defaults to fully open
# access", DBG DMA CORE1 CORE0 SP SU NSP NSU = 0xff).
ACCESSCTRL_REGISTERS = {
    ACCESSCTRL_LOCK: (0x0000000B, 0x00000004),            # LOCK_DMA is RO
    ACCESSCTRL_FORCE_CORE_NS: (0x00000002, 0x00000000),
    ACCESSCTRL_GPIO_NSMASK0: (0xFFFFFFFF, 0x00000000),
    ACCESSCTRL_GPIO_NSMASK1: (0xFF00FFFF, 0x00000000),
    ACCESSCTRL_ROM: (0x000000FF, 0x000000FF),
    ACCESSCTRL_XIP_MAIN: (0x000000FF, 0x000000FF),
    ACCESSCTRL_SRAM0: (0x000000FF, 0x000000FF),
}
# Every write to ACCESSCTRL carries this password in its top 16 bits (pico-sdk rp2350 platform_defs.h
# ACCESSCTRL_PASSWORD_BITS; the bootrom resets ACCESSCTRL with PASSWORD | CFGRESET). INFERRED: a write without it
# is ignored; GPIO_NSMASK0/1 take none (their fields reach bit 31, where the password would go).
ACCESSCTRL_PASSWORD = 0xACCE0000
ACCESSCTRL_NO_PASSWORD = (ACCESSCTRL_GPIO_NSMASK0, ACCESSCTRL_GPIO_NSMASK1)
# pyOCD's `rp2350` target (pyocd/target/family/target_rp2.py, RP2350._set_secure_mode, an init task named
# 'set_set_secure_mode'): when the core is Non-secure at connect it writes DSCSR to make it Secure, then, unless
# LOCK.DEBUG is set, writes CFGRESET = 0xacce0001 ("Secure mode is only needed for the flash algo").
PYOCD_RP2350_SECURE_MODE_TASK = "set_set_secure_mode"

# --- The SW-DP (rp2350.md "Debug access"; raspberrypi/openocd tcl/target/rp2350.cfg) ----------------------------------
DPIDR = 0x4C013477
# One multidrop SW-DP (SWD protocol version 2) for the whole chip; the cores are APs behind it. The fork's
# rp2350.cfg selects it in multidrop mode with `-dp-id 0x0040927 -instance-id 0`, i.e. TARGETSEL 0x00040927; by
# default it connects without TARGETSEL (a lone DP answers a DPIDR read right after a line reset).
DP_TARGETID = 0x00040927        # TDESIGNER 0x493 (Raspberry Pi), TPARTNO 0x0004; TREVISION (31:28) ASSUMED 0
DP_TINSTANCE = 0
DP_TARGETSEL = (DP_TINSTANCE << 28) | (DP_TARGETID & 0x0FFFFFFF)
# RP2040's multidrop IDs, which select nothing on an RP2350 (RP2040 datasheet 2.3.4; pyOCD target_rp2.py
# RP2040Base.Targetsel). The RP2350 has no Rescue DP: rescue is RP-AP CTRL.RESCUE_RESTART (rp2350.cfg rescue_reset).
RP2040_TARGETSEL_CORE0, RP2040_TARGETSEL_CORE1, RP2040_TARGETSEL_RESCUE = 0x01002927, 0x11002927, 0xF1002927
# A multidrop SW-DP (SWD protocol version 2) comes out of a cold reset in the dormant state, so a host must send the
# selection alert and the SWD activation code before it answers (pyOCD target_rp2.py: "An SW-DPv2 implementing
# multi-drop SWD will cold reset into dormant mode"; ADIv5.2 B5.3). pyOCD's rp2350 target sends no TARGETSEL: its DP
# connect tries the JTAG-to-SWD sequence twice, then falls back to dormant-to-SWD (coresight/dap.py DPConnector).
DP_POWER_ON_DORMANT = True
# INFERRED: how long the power-up ACKs take (implementation defined): the twin withholds them from the first
# CTRL/STAT read after a request changes, so a driver must poll; and an AP access before CDBGPWRUPACK gets FAULT and
# sets STICKYERR (the APs sit in the debug power domain, which is off until the ACK).
DP_POWER_ACK_DELAY_READS = 1
