"""Open311 GeoReport v2: the client behind the ``CityBackend`` port, and the built-in server."""
