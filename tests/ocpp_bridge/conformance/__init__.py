"""OCTT-style conformance: one test per OCA Compliance Test Tool case that concerns evpki (the CSMS as the
system under test), walking the case's steps in order against the bridge with a real ``ocpp`` station over
TLS, the CSMS-initiated steps started through the operator API the way the test tool's operator would.
"""
