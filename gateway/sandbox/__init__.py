"""Embedded Kombo-compatible sandbox: a REST server that speaks Kombo's `GET /v1/ats/jobs`."""
