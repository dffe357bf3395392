"""Protobuf contracts and their generated Python stubs (regenerate: `python proto/generate.py`)."""
