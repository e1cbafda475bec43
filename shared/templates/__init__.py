"""Templates: where marketer templates live, how they render in a sandbox, how they are checked and
published. Imports platform, domain and adapters."""
