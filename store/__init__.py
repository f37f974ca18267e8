"""Persistence: tasks and API keys (SQLAlchemy; SQLite by default, Postgres by URL), the
append-only SSE archive per task, and fetched/staged media. Imports nothing from api/,
deployments/ or pipelines/."""
