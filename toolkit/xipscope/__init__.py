"""xipscope: debug and profile the RP2350 running code in place (XIP) from flash and PSRAM."""

__version__ = "0.1.0"
