"""Task deadlines: the processing time a task may take (``Max-Processing-Time``) and what was asked.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("max_processing_time_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("requested_processing_time_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("requested_processing_time_s")
        batch.drop_column("max_processing_time_s")
