"""Print (or, with ``--write``, put into README.md) the route → scope table from ``api/scopes.py``.

The README's table must list every authenticated operation (``tests/api/test_scopes.py`` checks it);
run ``.venv/bin/python tools/scope_table.py --write`` after adding a route.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app
from api.scopes import ROUTE_SCOPES

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| method | path | scope |\n|---|---|---|\n"


def table() -> str:
    rows = []
    for path, item in create_app().openapi()["paths"].items():
        for method, operation in item.items():
            scope = ROUTE_SCOPES.get(operation["operationId"])
            if scope is not None:
                rows.append((path, method.upper(), scope.value))
    return HEADER + "".join(f"| `{method}` | `{path}` | {scope} |\n" for path, method, scope in sorted(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args()
    text = table()
    if not args.write:
        print(text, end="")
        return
    readme = README.read_text()
    pattern = re.compile(re.escape(HEADER) + r"(\| `[A-Z]+` \| `[^`]+` \| \w+ \|\n)*")
    if not pattern.search(readme):
        raise SystemExit("README.md has no scope table to replace")
    README.write_text(pattern.sub(lambda _: text, readme, count=1))


if __name__ == "__main__":
    main()
