"""ARMv8-M debug registers (Armv8-M Architecture Reference Manual, DDI0553: the System Control Space, DWT, FPB),
as a debugger reaches them through an AHB-AP: what the Arm-mode twin (sim/arm_core.py) models and pyocd:// reads.
pyOCD drives halt, registers and memory, except in the profile sample, which xipscope batches itself (DHCSR,
DCRSR/DCRDR, DFSR, DWT_CYCCNT, DWT_PCSR: targets/pyocd.py _ArmSampler). With them, the CoreSight identification
registers debuggers discover components by (CoreSight Architecture Specification, ADIv6)."""

CPUID = 0xE000ED00
ICSR, VTOR, AIRCR = 0xE000ED04, 0xE000ED08, 0xE000ED0C
DFSR = 0xE000ED30
ID_PFR1 = 0xE000ED44
CPACR = 0xE000ED88
DHCSR, DCRSR, DCRDR, DEMCR = 0xE000EDF0, 0xE000EDF4, 0xE000EDF8, 0xE000EDFC
DSCSR = 0xE000EE08
DSCSR_CDS = 1 << 16                      # the core is in the Secure state
DSCSR_CDSKEY = 1 << 17                   # a write changes CDS only with CDSKEY written 0 (pyOCD cortex_m_v8m.py)
DBGKEY = 0xA05F
C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS = 1 << 0, 1 << 1, 1 << 2, 1 << 3
S_REGRDY, S_HALT, S_LOCKUP, S_SDE, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 19, 1 << 20, 1 << 24, 1 << 25
DFSR_HALTED, DFSR_BKPT, DFSR_DWTTRAP, DFSR_VCATCH, DFSR_EXTERNAL = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
DFSR_ALL = DFSR_HALTED | DFSR_BKPT | DFSR_DWTTRAP | DFSR_VCATCH | DFSR_EXTERNAL   # W1C: pyOCD's resume clears them
DEMCR_VC_CORERESET = 1 << 0
AIRCR_VECTKEY, AIRCR_SYSRESETREQ = 0x05FA, 1 << 2
DCRSR_REGWNR = 1 << 16
# DCRSR.REGSEL of the core registers xipscope reads (ARMv8-M; pyOCD's CortexMCoreRegisterInfo uses the same numbers):
# 15 is DebugReturnAddress, the pc the core resumes at.
DCRSR_REGSEL = {**{f"r{i}": i for i in range(13)}, "sp": 13, "lr": 14, "pc": 15, "xpsr": 16, "msp": 17, "psp": 18}

SCS_BASE, DWT_BASE, FPB_BASE, PPB_ROM_TABLE = 0xE000E000, 0xE0001000, 0xE0002000, 0xE00FF000
DWT_CYCCNT = DWT_BASE + 0x4
DWT_CTRL_CYCCNTENA = 1 << 0
DEMCR_TRCENA = 1 << 24     # the DWT's global enable: with it clear, DWT registers read UNKNOWN (ARMv7-M/v8-M DEMCR)
# DWT_PCSR, the PC sample register: an IMPLEMENTATION DEFINED option (ARMv6-M ARM DDI0419C C1.7.2; "the ARMv8-M
# optional DWT_PCSR", Cortex-M23 TRM DDI0550C 7.1.3). Read while the core runs it returns the address of a recently
# executed instruction, no halt; PCSR_NO_SAMPLE (0xFFFFFFFF) in Debug state or where non-invasive debug is not
# permitted (DDI0419C C1.7.2). OpenOCD's Cortex-M `profile` samples it when it reads non-zero and halts otherwise
# ("PCSR sampling not supported on this processor", src/target/cortex_m.c, cortex_m_profiling): an absent PCSR reads 0.
# Whether RP2350's Cortex-M33 configuration has it is not yet known (no board here to read it on).
DWT_PCSR = DWT_BASE + 0x1C
PCSR_NO_SAMPLE = 0xFFFFFFFF

# CoreSight identification: the DEVARCH archids pyOCD's discovery matches, and the ID registers of a 4 KiB block.
ARM_JEP106 = (0x4, 0x3B)                    # continuation code, identity code
DEVARCH_PRESENT = (0x23B << 21) | (1 << 20)  # architect Arm, present
ARCHID_V8M_DEBUG, ARCHID_DWT_V2, ARCHID_FPB_V2 = 0x2A04, 0x1A02, 0x1A03
ARCHID_MEM_AP, ARCHID_ROM_TABLE = 0x0A17, 0x0AF7


def coresight_id(offset: int, *, part: int, component_class: int, devarch: int = 0,
                 type_register: int = 0) -> int | None:
    """The ID register at `offset` (0xFBC..0xFFC) of an Arm CoreSight component's 4 KiB block; None below 0xF00.
    type_register is DEVTYPE for a class 0x9 component, MEMTYPE for a class 0x1 ROM table (both at 0xFCC)."""
    continuation, identity = ARM_JEP106
    if offset == 0xFBC:
        return devarch
    if offset == 0xFCC:
        return type_register
    if 0xFD0 <= offset < 0xFE0:
        return continuation if offset == 0xFD0 else 0          # PIDR4: JEP106 continuation code
    if 0xFE0 <= offset < 0xFF0:
        pidr = (part & 0xFF, (part >> 8) | ((identity & 0xF) << 4), (identity >> 4) | 0x8, 0)
        return pidr[(offset - 0xFE0) >> 2]
    if 0xFF0 <= offset <= 0xFFC:
        return (0x0D, component_class << 4, 0x05, 0xB1)[(offset - 0xFF0) >> 2]
    return 0 if offset >= 0xF00 else None

# --- The SW-DP's wire protocol (Arm Debug Interface: ADIv5.2 IHI0031 part B4 "The Serial Wire Debug Port" and B5
# "The SWJ-DP"/dormant state; ADIv6 IHI0074 B4, B5), as a DP model needs it. Bit sequences are LSB first. -------------
SWD_LINE_RESET_ONES = 50        # a line reset: at least 50 SWDIO cycles high, then at least 2 idle (low) cycles
# The selection alert that wakes a DP from the dormant state (ADIv6 B5.3.1; pyOCD probe/swj.py selection_alert),
# preceded by at least 8 cycles high; then 4 cycles low and an activation code (ADIv6 B5.3.4): SWD 0x1a, JTAG 0x0a.
SWD_SELECTION_ALERT = 0x19BC0EA2E3DDAFE986852D956209F392
SWD_SELECTION_ALERT_BITS = 128
SWD_ACTIVATION_SWD, SWD_ACTIVATION_JTAG = 0x1A, 0x0A
# INFERRED: after the SWD activation code the DP answers nothing until a line reset (every host sends one next: ADIv6's
# dormant-to-SWD sequence, pyOCD's dormant_to_swd, OpenOCD's DORMANT_TO_SWD).
SWD_TO_DORMANT = 0xE3BC         # 16 bits, after a line reset (ADIv6 B5.3.3; pyOCD swd_to_dormant)
# Target selection, SWD protocol version 2 (ADIv5.2 B4.3.4): "The target is selected on receiving a line reset
# sequence. After receiving a line reset sequence, if the target receives a write request to TARGETSEL that does not
# select the same target, the target is deselected. When deselected, the target ignores all accesses and must not
# drive the line." No target drives the ACK of a TARGETSEL write ("The target response must be ignored"); a TARGETSEL
# write "must always be followed by a read of the DPIDR register or a line reset". A TARGETSEL value selects the DP
# whose TARGETID bits 27:0 (TDESIGNER, TPARTNO) and DLPIDR.TINSTANCE (bits 31:28) it carries.
DP_TARGETSEL = 0xC              # DP write address (a read at 0xC is RDBUFF)
TARGETSEL_ID_MASK = 0x0FFFFFFF
SWD_TARGETSEL_REQUEST = 0x99    # the 8-bit packet request: start, DP, write, A[3:2] = 0b11, parity 0, stop, park
# After a line reset the DP answers a DPIDR read (or takes a TARGETSEL write) first; until then other transfers get
# FAULT (Arm's SW-DP as ST documents it, RM0367 33.5.3: "After RESET state, it is mandatory to first enter into an
# IDLE state AND to perform a READ access of the DP-SW ID CODE register. Otherwise, the target will issue a FAULT
# acknowledge response on another transactions.").
# DP register bank 2 and 3 at address 0x4 (DPv2+): TARGETID and DLPIDR (DLPIDR.PROTVSN 1: SWD protocol version 2).
DP_BANK_TARGETID, DP_BANK_DLPIDR = 2, 3
DLPIDR_PROTVSN_SWD_V2 = 0x1
# Power-up handshake (ADIv5.2 B2.2.2 CTRL/STAT and "Power control requirements and operation"): the debugger sets
# CDBGPWRUPREQ and CSYSPWRUPREQ and waits until CDBGPWRUPACK and CSYSPWRUPACK follow; an ACK follows its REQ after
# an implementation-defined time.
CSYSPWRUPACK, CSYSPWRUPREQ, CDBGPWRUPACK, CDBGPWRUPREQ = 1 << 31, 1 << 30, 1 << 29, 1 << 28
CTRL_STAT_STICKYERR = 1 << 5
ABORT_STKERRCLR = 1 << 2
