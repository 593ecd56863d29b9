"""Symbols and line tables from an ELF or System.map: `load_symbols(path)` gives a cached, vectorized SymbolIndex."""

from .symbols import Symbol, SymbolIndex, Symbolized, load_symbols

__all__ = ["Symbol", "SymbolIndex", "Symbolized", "load_symbols"]
