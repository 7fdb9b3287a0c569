"""Integration tests: real SMP clients over real sockets, real smpsim processes."""
