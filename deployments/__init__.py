"""The Ray Serve deployments: each a thin batching wrapper of a plain model class from
``models/runtime/`` (or of a client from ``store/``), plus the ingress, the task workers and metrics."""
