"""OCPP certificate handlers, ChargePoint adapters and the station gateway over :mod:`pki`."""
