"""The composition root of the processes that serve no HTTP: `build_relay`, `build_worker`
and `build_model_service`, each from `Settings` plus overrides (tests pass fakes). The web
process is built by `app.bootstrap.build_web` from the same shared parts (`common`); it lives
apart only because it brings Flask in, which these processes never import.

Building opens no connection and starts no thread: clients connect on first use, and each
process's run loop (`app.relay_main`, `app.worker_main`, `app.lightfm_main`) starts the work.
"""
