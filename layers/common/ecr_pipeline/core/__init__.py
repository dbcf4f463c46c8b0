"""What the functions decide and do, with AWS reached only through the adapters."""
