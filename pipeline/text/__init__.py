"""Pure text functions: no Beam, no I/O. Each one is unit-tested on its own."""
