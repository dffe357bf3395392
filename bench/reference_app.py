"""The ceiling bench/feed.py compares the feed with: one gRPC Recommend call and nothing else.

    gunicorn -c python:app.gunicorn_conf 'bench.reference_app:create_app()'

Served by the same gunicorn settings as the `web` process (gevent workers, WEB_WORKERS,
WEB_BIND) and made gevent-friendly the same way (`app.cooperative`). `GET /reference?userId=`
asks the model service at LIGHTFM_TARGET for that user's top 50 (with the feed's deadline)
and answers their ids as JSON. No auth, no database, no fallback: an RPC error is a 500.
"""

from __future__ import annotations

import grpc
from flask import Flask, Response, jsonify, request

from app.cooperative import make_c_clients_cooperative
from app.settings import Settings
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

LIMIT = 50


def create_app() -> Flask:
    # Before any gRPC object exists: channels made earlier would stay blocking.
    make_c_clients_cooperative()
    settings = Settings.from_env()
    channel = grpc.insecure_channel(settings.lightfm_target)
    stub = pb_grpc.RecommenderStub(channel)
    timeout_s = settings.lightfm_deadline_ms / 1000
    app = Flask("reference")

    @app.get("/reference")
    def reference() -> Response:
        reply = stub.Recommend(
            pb.RecommendRequest(user_id=request.args.get("userId", ""), limit=LIMIT),
            timeout=timeout_s,
        )
        return jsonify({"videoIds": [item.video_id for item in reply.items]})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    return app
