"""Domain: the pure rules of retention messaging (no boto3, no I/O). Events, profiles and their fold,
segments, journeys, the delivery policy, offers, stores, contacts, metrics and template variables.
Imports only shared.platform."""
