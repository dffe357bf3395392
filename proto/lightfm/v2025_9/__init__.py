"""Generated stubs of `lightfm.v2025_9`. Never edit the `_pb2` files; regenerate them."""
