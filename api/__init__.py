"""REST API (FastAPI) over :mod:`pki`. Its routers arrive with the REST/revocation issue."""
