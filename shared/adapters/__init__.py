"""Adapters: the domain to and from AWS. DynamoDB stores, S3 file catalogs, the event bus and the
channels (SES, SNS, Pinpoint). Imports shared.platform and shared.domain."""
