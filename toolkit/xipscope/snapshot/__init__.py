"""Post-mortem snapshots of a target: take.py halts a target and saves its registers and RAM with a manifest
(`xipscope snapshot`), read.py reads one back as a halted Target (snapshot://DIR), serve.py serves one over the GDB
remote protocol (`xipscope serve`). The directory's format, which all three share:"""

FORMAT = "xipscope-snapshot"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
