"""Channels: one module per provider API that sends a message (email: SES, sms: SNS, push: Pinpoint)."""
