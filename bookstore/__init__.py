"""The bookstore: two small services (catalog, orders) that write exemplary JSON logs.

`python -m bookstore catalog|orders|loadgen`; see `bookstore.logs` for the log contract and
`log-schema.json` for its machine-readable form.
"""
