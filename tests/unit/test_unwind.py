"""The frame-pointer unwinder on hand-built rv32 stacks laid out as the kernel's stacktrace.c expects."""

from xipscope.unwind import linux_stack_top, unwind_frame_pointers

TEXT = range(0x8000_0000, 0x8010_0000)
SP0 = 0x8100_1F00          # inside the 8 KiB stack 0x81000000..0x81002000


def walk(words: dict[int, int], pc: int, sp: int, fp: int, ra: int):
    return unwind_frame_pointers(pc, sp, fp, ra, read_word=words.get, is_code=lambda a: a in TEXT)


def test_three_frames_then_stack_top():
    # frame 1 (fp 0x81001f20) -> frame 2 (fp 0x81001f40) -> frame 3 (fp 0x81001f60) -> fp 0 ends it
    words = {0x81001f18: 0x81001f40, 0x81001f1c: 0x80000200,
             0x81001f38: 0x81001f60, 0x81001f3c: 0x80000300,
             0x81001f58: 0, 0x81001f5c: 0x80000400}
    result = walk(words, 0x80000100, SP0, 0x81001f20, 0x80000111)
    assert result.pcs == [0x80000100, 0x80000200, 0x80000300, 0x80000400]
    assert "outside the stack" in result.stop_reason


def test_leaf_function_takes_ra_register():
    # A leaf saved only fp, at fp-4: that slot holds the caller's frame pointer, ra is still live.
    words = {0x81001f1c: 0x81001f40, 0x81001f18: 0xdeadbeef,
             0x81001f38: 0, 0x81001f3c: 0x80000300}
    result = walk(words, 0x80000100, SP0, 0x81001f20, 0x80000222)
    assert result.pcs == [0x80000100, 0x80000222, 0x80000300]


def test_stops_at_non_code_and_unreadable_memory():
    assert walk({0x81001f18: 0x81001f40, 0x81001f1c: 0x1234}, 0x80000100, SP0, 0x81001f20, 0).pcs == [0x80000100]
    result = walk({}, 0x80000100, SP0, 0x81001f20, 0)
    assert result.pcs == [0x80000100] and "could not be read" in result.stop_reason


def test_misaligned_or_out_of_range_fp_and_kernel_align_rule():
    assert walk({}, 0x80000100, SP0, 0x81001f24, 0).pcs == [0x80000100]
    assert walk({}, 0x80000100, SP0, SP0, 0).pcs == [0x80000100]          # below sp + 8
    assert linux_stack_top(0x81001f00) == 0x81002000
    assert linux_stack_top(0x81002000) == 0x81002000                      # ALIGN() of an aligned sp is sp


def test_cycle_is_bounded():
    words = {0x81001f18: 0x81001f20, 0x81001f1c: 0x80000200}
    # fp points at itself: sp becomes fp, so fp < sp + 8 ends it after one frame
    assert walk(words, 0x80000100, SP0, 0x81001f20, 0).pcs == [0x80000100, 0x80000200]
