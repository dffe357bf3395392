"""The feed's business rules: pure Python, no frameworks, no I/O."""
