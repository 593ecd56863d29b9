"""The GDB remote serial protocol, shared by the rsp:// client (targets/rsp.py) and our servers: packet framing and
parsing (packets.py), target descriptions (description.py), and the one RSP server core with its listener
(server.py) that the twin's GDB server and `xipscope serve` are backends of."""
