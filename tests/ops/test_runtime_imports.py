"""Every library the package imports is one of its runtime dependencies.

`make run` installs only `[project].dependencies`; the tests run with the test extra too, so a module that
imports a test-only library (httpx, once, in `referral-service status`) passes every test and breaks
`make run` on a fresh machine. Read from the source, so it fails whatever the test venv holds.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "referral_service"


def _runtime_distributions() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_normal(re.split(r"[\[=<>!~; ]", d, maxsplit=1)[0]) for d in deps}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"referral_service", "__future__"}


def test_every_imported_library_is_a_runtime_dependency() -> None:
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()  # import name -> the distributions installing it
    missing = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for module in _imported_top_levels(path):
            dists = {_normal(d) for d in providers.get(module, [module])}
            if not dists & runtime:
                missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported but not in [project].dependencies: {missing}"
