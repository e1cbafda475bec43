"""Consent services: one-click unsubscribe, the preferences page, double opt-in, and SES feedback."""
