"""Data-subject requests: erasure (GDPR Art. 17), access and portability exports (Art. 15, 20)."""
