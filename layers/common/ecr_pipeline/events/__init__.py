"""Typed views of the events the functions receive (AWS's and the pipeline's own)."""
