"""The staff side: accounts, roles and what each may do, authentication, the hash-chained audit.

A middle-floor package: it stands on ``storage`` only. The admin API and the console (in ``bot``)
call it; it knows nothing of HTTP.
"""
