"""The RP2350 flash image as the boot ROM sees it: block loops, IMAGE_DEF, PARTITION_TABLE, and where Linux sits."""
