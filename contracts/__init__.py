"""Contract artefacts (Pact files, the proto descriptor snapshot) and the small tools that keep
them: see contracts/README.md."""
