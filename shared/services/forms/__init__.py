"""Signup forms and the welcome pop-up: the public endpoints a store's pages call (README "Signup forms").

`signup.py` answers the form's requests (publishable key, origin allow-list, honeypot, rate limits,
validation, then the same ingest path as the event API); `script.py` serves `boomerang.js`.
"""
