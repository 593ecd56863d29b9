"""ARMv8-M debug registers (Armv8-M Architecture Reference Manual, DDI0553: the System Control Space, DWT, FPB),
as a debugger reaches them through an AHB-AP: what the Arm-mode twin (sim/arm_core.py) models and pyocd:// reads.
pyOCD itself drives halt, registers and memory; xipscope reads DWT_CYCCNT for --cycles."""

CPUID = 0xE000ED00
ICSR, VTOR, AIRCR = 0xE000ED04, 0xE000ED08, 0xE000ED0C
DFSR = 0xE000ED30
ID_PFR1 = 0xE000ED44
CPACR = 0xE000ED88
DHCSR, DCRSR, DCRDR, DEMCR = 0xE000EDF0, 0xE000EDF4, 0xE000EDF8, 0xE000EDFC
DSCSR = 0xE000EE08
DSCSR_CDS = 1 << 16                      # the core is in the Secure state
DBGKEY = 0xA05F
C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS = 1 << 0, 1 << 1, 1 << 2, 1 << 3
S_REGRDY, S_HALT, S_LOCKUP, S_SDE, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 19, 1 << 20, 1 << 24, 1 << 25
DFSR_HALTED, DFSR_VCATCH = 1 << 0, 1 << 3
DEMCR_VC_CORERESET = 1 << 0
AIRCR_VECTKEY, AIRCR_SYSRESETREQ = 0x05FA, 1 << 2
DCRSR_REGWNR = 1 << 16

SCS_BASE, DWT_BASE, FPB_BASE, PPB_ROM_TABLE = 0xE000E000, 0xE0001000, 0xE0002000, 0xE00FF000
DWT_CYCCNT = DWT_BASE + 0x4
DWT_CTRL_CYCCNTENA = 1 << 0
DEMCR_TRCENA = 1 << 24
