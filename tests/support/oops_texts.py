"""A real oops the test kernel printed, for the oops parser's tests (unit/test_oops.py) and the hostile-input tests
(twin/test_hostile_files.py, twin/test_hostile_decoders.py)."""

# From the test kernel (6.1.192, CONFIG_PRINTK_CALLER) after the store fault kernel/test_trap_qemu.py injects.
OOPS_61 = """\
[    0.124257][    T1] clk: Disabling unused clocks
[    0.132286][    T1] Oops - store (or AMO) access fault [#1]
[    0.136030][    T1] CPU: 0 PID: 1 Comm: swapper Not tainted 6.1.192 #1 
[    0.136232][    T1] Hardware name: riscv-virtio,qemu (DT)
[    0.136374][    T1] epc : prepare_namespace+0x54/0x148
[    0.137176][    T1]  ra : kernel_init_freeable+0x16e/0x194
[    0.137273][    T1] epc : 80131234 ra : 80130c7e sp : 8040bf20
[    0.137388][    T1]  gp : 801ec4c0 tp : 80407800 t0 : 8040beb8
[    0.137510][    T1]  t1 : 00000000 t2 : 000024c0 s0 : 8040bf60
[    0.137609][    T1]  s1 : 00800000 a0 : fffffffe a1 : f0000080
[    0.137689][    T1]  a2 : 801e7360 a3 : 00000000 a4 : 00000000
[    0.137778][    T1]  a5 : 801ebc74 a6 : 83f74608 a7 : 83f74618
[    0.137856][    T1]  s2 : 8042a110 s3 : 00000008 s4 : 8014229c
[    0.137934][    T1]  s5 : 80146d14 s6 : 801ed024 s7 : 8014227c
[    0.138010][    T1]  s8 : 00000008 s9 : 8012fe20 s10: 00000000
[    0.138087][    T1]  s11: 00000000 t3 : 80494011 t4 : 0000000d
[    0.138203][    T1]  t5 : 8015781c t6 : 804a1bf0
[    0.138348][    T1] status: 00001880 badaddr: 0080004c cause: 00000007
[    0.138555][    T1] [<80131234>] prepare_namespace+0x54/0x148
[    0.138729][    T1] [<8012c780>] kernel_init+0x1a/0xde
[    0.138821][    T1] [<80001da0>] ret_from_exception+0x0/0x1c
[    0.141203][    T1] ---[ end trace 0000000000000000 ]---
[    0.141718][    T1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
"""
