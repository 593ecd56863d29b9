"""The errors xipscope raises on purpose: each says what was expected, what was found, and what to do."""


class XipscopeError(Exception):
    """Base of every error the toolkit reports to the user without a traceback."""


class TargetError(XipscopeError):
    """A target (GDB server, probe, memory image) failed, vanished or answered something we could not use."""


class CapabilityError(TargetError):
    """The transport can't do what was asked (e.g. read registers from a RAM image)."""


class SymbolError(XipscopeError):
    """An ELF or System.map could not be read, or is not the kind we need."""


class FormatError(XipscopeError):
    """Kernel data in memory (printk ring, oops text) is not in a shape we can decode."""
