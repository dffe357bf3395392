"""What `make run` and `make test` need before pip runs, checked with the standard library only
(no virtualenv exists yet): Python 3.11+, a C compiler and Python's headers, since
`lightfm-next` builds from source. Prints what to install and exits 1 when one is missing.

    python3 -m app.prereqs
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

INSTALL_HINT = (
    "install them, then run make again:\n"
    "  Debian/Ubuntu: sudo apt-get install -y build-essential python3-dev\n"
    "  Fedora/RHEL:   sudo dnf install -y gcc python3-devel\n"
    "  macOS:         xcode-select --install"
)


def missing() -> list[str]:
    problems = []
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under the system python3, any version
        problems.append(f"Python 3.11 or newer (this is {sys.version.split()[0]})")
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not any(shutil.which(name) for name in (compiler, "cc", "gcc", "clang")):
        problems.append(f"a C compiler ({compiler}, cc, gcc or clang on PATH)")
    include = sysconfig.get_paths().get("include", "")
    if not (Path(include) / "Python.h").is_file():
        problems.append(f"Python's C headers ({include}/Python.h)")
    return problems


def main() -> int:
    problems = missing()
    if not problems:
        return 0
    print("feedrec builds lightfm-next from source and needs:", file=sys.stderr)  # noqa: T201
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)  # noqa: T201
    print(INSTALL_HINT, file=sys.stderr)  # noqa: T201
    return 1


if __name__ == "__main__":
    sys.exit(main())
