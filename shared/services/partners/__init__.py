"""Fulfilment partners: forwarding orders to them (forwarding.py), their shipping updates (inbound.py)."""
