"""What a debug probe's wire and USB link cost: the facts the probe model (probe_model.py) counts with, each sourced.

SWD (Arm Debug Interface, ADIv5.2 IHI0031 and ADIv6.0 IHI0074, chapter B4 "The Serial Wire Debug Protocol", the
successful read and write operations): a transfer is an 8-bit packet request (Start, APnDP, RnW, A[2:3], Parity, Stop,
Park), one turnaround cycle, a 3-bit acknowledge, then 32 data bits and a parity bit, with one more turnaround either
after the data (a read, the target drives it) or before it (a write, the host drives it). The default turnaround
(DLCR.TURNROUND = 0) is one cycle. AP reads are posted: each returns the previous AP read's value, so a run of AP reads
ends with one DP RDBUFF read (a CMSIS-DAP probe adds it itself, inside DAP_Transfer).

CMSIS-DAP v2 (Arm CMSIS-DAP documentation, DAP_Transfer and DAP_TransferBlock commands): one command per USB packet
each way. DAP_Transfer: a 3-byte header (command, DAP index, count), then per transfer one request byte and, for a
write, 4 data bytes; its response a 3-byte header (command, count, response) and 4 bytes per read. DAP_TransferBlock:
a 5-byte header (command, DAP index, 16-bit count, request) and 4 bytes per written word; its response a 4-byte
header (command, 16-bit count, response) and 4 bytes per read word.

The Raspberry Pi Debug Probe (CMSIS-DAP v2 on full-speed USB): 64-byte packets (DAP_PACKET_SIZE 64 in
raspberrypi/debugprobe include/DAP_config.h). Packets in flight: issue 16 says 8; that file at commit 0761424 says
DAP_PACKET_COUNT 2, so the model takes it as a parameter (a sample fits one packet either way). Its round trip, about 470 us, is inferred from probe-rs' benchmark on an RP2040-class probe reading
4-byte words one at a time at 8,587 B/s (rgrr/yapicoprobe issue 108): 4 / 8587 s = 466 us a read, wire time included.
"""

SWD_REQUEST_BITS = 8
SWD_TURNAROUND_BITS = 1
SWD_ACK_BITS = 3
SWD_DATA_BITS = 32 + 1          # data and its parity bit
# A read: request, turnaround, ACK, data + parity, turnaround; a write: request, turnaround, ACK, turnaround, data +
# parity. The same 46 bits either way.
SWD_TRANSFER_BITS = SWD_REQUEST_BITS + SWD_TURNAROUND_BITS + SWD_ACK_BITS + SWD_DATA_BITS + SWD_TURNAROUND_BITS

USB_PACKET_BYTES = 64            # CMSIS-DAP v2 on full-speed USB (the Raspberry Pi Debug Probe)
PACKETS_IN_FLIGHT = 8            # issue 16's figure (debugprobe's DAP_config.h at 0761424 says 2): a parameter

DAP_TRANSFER_HEADER = 3          # request: command, DAP index, count; response: command, count, response
DAP_TRANSFER_BLOCK_REQUEST_HEADER = 5     # command, DAP index, 16-bit count, request
DAP_TRANSFER_BLOCK_RESPONSE_HEADER = 4    # command, 16-bit count, response
DAP_WORD_BYTES = 4
DAP_REQUEST_BYTE = 1

# The Raspberry Pi Debug Probe's round trip, wire time included (rgrr/yapicoprobe issue 108: 8,587 B/s of 4-byte
# reads): the model's default latency.
DEBUG_PROBE_READ_RATE_BYTES_S = 8587
DEBUG_PROBE_ROUND_TRIP_S = 470e-6
DEBUG_PROBE_SOURCE = ("Raspberry Pi Debug Probe, CMSIS-DAP v2 on full-speed USB: about 470 us a round trip (probe-rs "
                      "read 4-byte words at 8,587 B/s on an RP2040-class probe, rgrr/yapicoprobe issue 108)")
DEFAULT_WIRE_HZ = 5_000_000      # SWCLK (or TCK) the model assumes unless told: a common probe default

# RP2350's system clock as the SDK sets it up (RP2350 datasheet, clocks chapter; pico-sdk SYS_CLK_HZ 150 MHz): a
# halted core loses clk_sys cycles for every second it is held.
CLK_SYS_HZ = 150_000_000
