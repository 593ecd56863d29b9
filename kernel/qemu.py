"""The real reference target: an rv32 nommu Linux 6.1 kernel booted in qemu-system-riscv32 with its gdbstub."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PANIC_LINE = "Kernel panic - not syncing"


@dataclass(frozen=True)
class KernelBuild:
    variant: str
    dir: Path

    @property
    def image(self) -> Path:
        return self.dir / "Image"

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def dtb(self) -> Path:
        """The RP2350 kernels' device tree (pico2, pico2-stock); the QEMU kernels have none (QEMU makes its own)."""
        return self.dir / "pico2.dtb"

    @property
    def build_dir(self) -> Path:
        """The kernel's out-of-tree build directory (holds vmlinux-gdb.py and scripts/gdb for lx-dmesg)."""
        return Path((self.dir / "build-dir").read_text().strip())

    def config(self, name: str) -> str | None:
        for line in (self.dir / ".config").read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1]
        return None


@dataclass
class RunningKernel:
    build: KernelBuild
    process: subprocess.Popen
    port: int
    console_path: Path

    @property
    def url(self) -> str:
        return f"rsp://127.0.0.1:{self.port}"

    def console_text(self) -> str:
        return self.console_path.read_text(errors="replace")


def built_kernel(variant: str) -> KernelBuild:
    """One kernel variant, taken from the cache or built first by build.py (its make output kept out of sight)."""
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("build.py")), variant],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kernel/build.py {variant} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return KernelBuild(variant, Path(result.stdout.split()[0]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def boot_kernel(build: KernelBuild, workdir: Path, timeout: float = 60.0, qemu_args: tuple[str, ...] = ()):
    """Boot `build` until its panic line; yield a RunningKernel; always stop QEMU afterwards. qemu_args are added
    to QEMU's command line (e.g. -icount, so that guest time follows instructions, not the host's wall clock)."""
    def panicked(kernel: RunningKernel) -> bool:
        deadline = time.monotonic() + timeout
        while PANIC_LINE not in kernel.console_text():
            if kernel.process.poll() is not None:
                return _retry_or_raise(kernel, f"QEMU exited with {kernel.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {PANIC_LINE!r} within {timeout}s; console so far:\n"
                                   + kernel.console_text()[-2000:])
            time.sleep(0.05)
        time.sleep(0.2)  # let the panic lines after the first finish printing
        return True

    with _qemu(build, workdir, list(qemu_args), panicked) as kernel:
        yield kernel


@contextlib.contextmanager
def boot_kernel_halted(build: KernelBuild, workdir: Path, timeout: float = 10.0):
    """Start QEMU frozen at reset (-S) with its gdbstub listening; yield a RunningKernel; always stop QEMU afterwards.

    For tests that must act before the kernel panics (e.g. inject a fault at a breakpoint): nothing runs until a
    gdb client continues it.
    """
    def listening(kernel: RunningKernel) -> bool:
        deadline = time.monotonic() + timeout
        while kernel.process.poll() is None and time.monotonic() < deadline:
            # Is the gdbstub listening? Look at the socket table rather than connecting: QEMU takes one client.
            if _tcp_listening(kernel.port):
                return True
            time.sleep(0.02)
        return _retry_or_raise(kernel, f"QEMU's gdbstub is not listening on {kernel.port} after {timeout}s "
                                       f"(exit code {kernel.process.poll()})")

    with _qemu(build, workdir, ["-S"], listening) as kernel:
        yield kernel


@contextlib.contextmanager
def _qemu(build: KernelBuild, workdir: Path, extra_args: list[str], ready):
    """QEMU on `build` with its gdbstub on a free 127.0.0.1 port, yielded once ready(kernel) says so; always stopped.
    ready() returns False to ask for another port (QEMU lost the race for the one we probed)."""
    for _attempt in range(3):  # the free port can be taken between our probe and QEMU's bind
        port = free_port()
        console_path = workdir / "console.log"
        console = open(console_path, "wb")
        cmd = ["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-cpu", "rv32,mmu=off", "-m", "64M",
               "-nographic", "-kernel", str(build.image), "-gdb", f"tcp:127.0.0.1:{port}", *extra_args]
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
        try:
            kernel = RunningKernel(build, process, port, console_path)
            if not ready(kernel):
                continue
            yield kernel
            return
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            console.close()
    raise RuntimeError("QEMU could not bind a gdb port after 3 attempts")


def _retry_or_raise(kernel: RunningKernel, what: str) -> bool:
    """False (try another port) when QEMU exited because the port was taken; otherwise a RuntimeError saying `what`."""
    text = kernel.console_text()
    if kernel.process.poll() is not None and ("Address already in use" in text or "Failed to bind" in text):
        return False
    raise RuntimeError(f"{what}:\n{text[-2000:]}")


def _tcp_listening(port: int) -> bool:
    """True when something listens on 127.0.0.1:port (from /proc/net/tcp: state 0A is LISTEN)."""
    wanted = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(fields[1] == wanted and fields[3] == "0A" for fields in (line.split() for line in lines) if len(fields) > 3)


def wait_for_console(kernel: RunningKernel, text: str, timeout: float = 30.0) -> str:
    """The console output once it contains `text` (a TimeoutError with the tail of the console otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        console = kernel.console_text()
        if text in console:
            return console
        if kernel.process.poll() is not None or time.monotonic() > deadline:
            raise TimeoutError(f"no {text!r} on the console within {timeout}s; console so far:\n{console[-2000:]}")
        time.sleep(0.05)
