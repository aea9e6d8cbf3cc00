"""ISO 15118-2 Plug & Charge: the EXI codec (``exi/``), messages, signatures, contract-key encryption,
the contract registry and the contract provisioning service behind OCPP Get15118EVCertificate."""
