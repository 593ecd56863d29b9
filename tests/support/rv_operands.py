"""How capstone and binutils print a memory operand (`-8(sp)`, `(a0)`): the offset and the base register, for the
decoder tests in unit/ and kernel/."""

import re

MEM_OPERAND = re.compile(r"(-?(?:0x[0-9a-f]+|\d+))?\((\w+)\)$")
