"""Profiling: PC sampling over any Target, the samples on disk, and the analyses of them."""
