"""The city's back end: the Open311 GeoReport v2 client and formats, the filer that files every
report once, the status poller that follows them, and the built-in GeoReport v2 server that
stands in for a city without an endpoint.

It stands on the ground floor only (storage, forms_runtime); it tells residents nothing itself:
the notifier does, through the ports the app wires (``Filer(on_filed=...)``, and the
``request_status_changes`` the poller records).
"""
