"""Checks that the running Python environment holds exactly the packages of a lock file.

Usage: python scripts/check_lock.py python/requirements.lock
Exits non-zero, naming each difference, when a locked package is missing or at another version,
or when a package that the lock does not name is installed.
"""

import re
import sys
from importlib import metadata


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(path: str) -> dict[str, str]:
    pins = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
            if match:
                pins[canonical(match.group(1))] = match.group(2)
    return pins


def main() -> int:
    pins = locked_versions(sys.argv[1])
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    problems = []
    for name, version in sorted(pins.items()):
        if name not in installed:
            problems.append(f"{name}=={version} is locked but not installed")
        elif installed[name] != version:
            problems.append(f"{name}=={version} is locked but {installed[name]} is installed")
    for name in sorted(set(installed) - set(pins)):
        problems.append(f"{name}=={installed[name]} is installed but not in the lock")
    for problem in problems:
        print(f"check_lock: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_lock: {len(pins)} packages, each at its locked version", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
