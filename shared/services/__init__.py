"""Services: the use cases each Lambda runs (ingest, journeys, consent, analytics). The top layer:
handlers in functions/ call these; nothing in shared/ imports them."""
