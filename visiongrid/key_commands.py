"""``visiongrid keys create|list|revoke``: API keys straight in the database, for the first admin key
(there is no key yet to call ``POST /v1/keys`` with) and for operators."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from contract.keys import MAX_EXPIRY_DAYS, Scope
from visiongrid.settings import get_settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``keys`` command and its subcommands."""
    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key for a project and print its secret once")
    create.add_argument("--project", required=True)
    create.add_argument(
        "--scope",
        action="append",
        choices=[scope.value for scope in Scope],
        help="admin, write, read or search (repeatable; default admin)",
    )
    create.add_argument("--name", default="cli", help="what the key is for")
    create.add_argument("--expires-in-days", type=int, default=None, help=f"1..{MAX_EXPIRY_DAYS} (default: never)")
    listing = key_commands.add_parser("list", help="list a project's keys (masked)")
    listing.add_argument("--project", required=True)
    revoke = key_commands.add_parser("revoke", help="revoke a key (its secret stops working at once)")
    revoke.add_argument("--project", required=True)
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    from store.db import open_engine
    from store.keys import KeyStore

    keys = KeyStore(open_engine(get_settings().resolved_database_url()))
    if args.keys_command == "create":
        days = args.expires_in_days
        if days is not None and not 1 <= days <= MAX_EXPIRY_DAYS:
            print(f"visiongrid: error: --expires-in-days must be 1..{MAX_EXPIRY_DAYS}", file=sys.stderr)
            return 2
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days is not None else None
        scopes = tuple(dict.fromkeys(args.scope or [Scope.ADMIN.value]))
        record, secret = keys.create(args.project, scopes, args.name, expires_at)
        print(
            f"project: {record.project}\nkey id:  {record.id}\nscopes:  {','.join(record.scopes)}\n"
            f"secret:  {secret}\n(the secret is shown once; store it)"
        )
        return 0
    if args.keys_command == "list":
        print(f"{'id':<30} {'name':<20} {'scopes':<18} {'key':<20} {'status':<8} last used")
        now = dt.datetime.now(dt.UTC)
        for record in keys.list(args.project):
            status = "revoked" if record.revoked_at else ("active" if record.usable_at(now) else "expired")
            used = record.last_used_at.isoformat(timespec="seconds") if record.last_used_at else "never"
            masked = f"{record.prefix}…{record.last4}"
            print(
                f"{record.id:<30} {record.name[:20]:<20} {','.join(record.scopes):<18} {masked:<20} {status:<8} {used}"
            )
        return 0
    if keys.revoke(args.project, args.key_id) is None:
        print(f"visiongrid: error: no key {args.key_id!r} in project {args.project!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0
