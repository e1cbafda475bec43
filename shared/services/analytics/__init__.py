"""Analytics services: the retention report, locally and at scale from a table export."""
