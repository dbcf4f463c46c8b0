"""Thin wrappers over boto3, one service each; every one takes an optional injected client."""
