"""The ``evpki`` command line: a thin Typer front over :class:`pki.PKI`."""
