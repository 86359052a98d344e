#!/usr/bin/env python3
"""Runs README.md's code blocks as a reader would paste them, each in a fresh empty directory.

  scripts/readme_blocks.py [BUILD_DIR]     (default: build; run after the CMake build)

* ```sh blocks run with `bash -e` and `vixdisk` from target/release on PATH;
* ```python blocks run with the package from python/ and target/release/libvixDiskLib.so;
* the ```c block is saved as app.c and built with the README's own command line (the one for
  a checkout: `cc app.c -o app -I include -L build/lib64 ...`, in a directory where `include`
  and `build` are the checkout's), then run; it must print "ok".
* Every VixDiskLib_* / VixDiskLibExt_* name the README mentions must be exported by the
  built library, so the README cannot name functions that do not exist.
* The packages the README says scripts/setup.sh installs (apt and pip) are the ones it does.

Three sh blocks are not run here, because scripts/test.sh runs them itself: the two set-up
commands (they are the test), `pip install ... ./python` (the fresh-venv step) and
`cmake --install` + pkg-config (the install step). Any other block that is not run fails.
"""

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Blocks scripts/test.sh runs itself: (text that identifies the block, where it is run).
RUN_ELSEWHERE = [
    ("scripts/test.sh", "the set-up commands: this test is part of scripts/test.sh"),
    ("pip install", "scripts/test.sh's fresh-venv install"),
    ("cmake --install", "scripts/test.sh's install + pkg-config step"),
]


def blocks(text):
    """(language, body) for each fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)


def run(cmd, cwd, env=None, what=""):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"README {what} failed (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    release = os.path.join(ROOT, "target", "release")
    env = dict(os.environ)
    env["PATH"] = release + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = os.path.join(ROOT, "python")
    env["VIXDISKLIB_LIB"] = os.path.join(release, "libvixDiskLib.so")
    counts = {"sh": 0, "python": 0, "c": 0}
    skipped = {marker: 0 for marker, _ in RUN_ELSEWHERE}
    for lang, body in blocks(readme):
        if lang not in counts:
            continue
        marker = next((m for m, _ in RUN_ELSEWHERE if lang == "sh" and m in body), None)
        if marker:
            skipped[marker] += 1
            continue
        with tempfile.TemporaryDirectory(prefix="readme-") as scratch:
            first = body.strip().splitlines()[0]
            if lang == "sh":
                run(["bash", "-euo", "pipefail", "-c", body], scratch, env, f"sh block {first!r}")
            elif lang == "python":
                run([sys.executable, "-c", body], scratch, env, f"python block {first!r}")
            else:
                build_c(readme, body, build, scratch, env)
        counts[lang] += 1
    for marker, where in RUN_ELSEWHERE:
        if skipped[marker] != 1:
            sys.exit(f"expected one README sh block with {marker!r} ({where}), found {skipped[marker]}")
    if counts["sh"] < 1 or counts["python"] < 1 or counts["c"] != 1:
        sys.exit(f"README blocks run: {counts}; expected sh and python blocks and one C block")
    check_names(readme, build)
    check_setup_lists(readme)
    print(f"README blocks: ok ({counts['sh']} sh, {counts['python']} python, {counts['c']} C run; "
          f"{len(RUN_ELSEWHERE)} run by scripts/test.sh)")


def build_c(readme, body, build, scratch, env):
    """Saves the C block as app.c and builds it with the README's command for a checkout."""
    m = re.search(r"`(cc app\.c -o app -I include [^`]*)`", readme)
    if not m:
        sys.exit("README: no `cc app.c -o app -I include ...` command for the C block")
    with open(os.path.join(scratch, "app.c"), "w", encoding="utf-8") as f:
        f.write(body)
    os.symlink(os.path.join(ROOT, "include"), os.path.join(scratch, "include"))
    os.symlink(build, os.path.join(scratch, "build"))
    run(["bash", "-euc", m.group(1)], scratch, env, f"C build {m.group(1)!r}")
    # The example stays clean under the flags the project's C examples use.
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only",
         "-I", "include", "app.c"], scratch, env, "C block warnings")
    out = run(["./app"], scratch, env, "C program")
    if out.strip() != "ok":
        sys.exit(f"README C program printed {out!r}, not 'ok'")


def check_names(readme, build):
    """Every function name the README mentions is exported by the built library."""
    lib = os.path.join(build, "lib64", "libvixDiskLib.so")
    syms = run(["nm", "-D", "--defined-only", lib], ROOT, what="nm -D")
    exported = {line.split()[-1].split("@")[0] for line in syms.splitlines() if line.strip()}
    named = set(re.findall(r"\bVixDiskLib(?:Ext)?_[A-Za-z]+\b", readme))
    missing = sorted(n for n in named if n not in exported)
    if missing:
        sys.exit(f"README names functions the library does not export: {missing}")
    # A count of functions, if the README gives one, is the library's.
    api = [n for n in exported if re.match(r"VixDiskLib(Ext)?_", n)]
    for claim in re.findall(r"(\d+) exported functions", readme):
        if int(claim) != len(api):
            sys.exit(f"README says {claim} exported functions; the library exports {len(api)}")
    # The set-up commands install as root: the README says so.
    if not re.search(r"scripts/setup\.sh`[^.]*\broot\b", readme, flags=re.S):
        sys.exit("README: the scripts/setup.sh paragraph must say it installs as root")


def check_setup_lists(readme):
    """The packages the README says scripts/setup.sh installs are the ones it installs."""
    setup = open(os.path.join(ROOT, "scripts", "setup.sh"), encoding="utf-8").read()
    apt = set(re.findall(r"need_apt\+=\(([\w.-]+)\)", setup))
    pip = {n for line in re.findall(r"pip install -q ([^|&;\n]+)", setup) for n in line.split()}
    m = re.search(r"`apt-get install` \(([^)]*)\) and `pip install`\s+into the system Python \(([^)]*)\)",
                  readme)
    if not m:
        sys.exit("README: the scripts/setup.sh paragraph must list what it apt-get and pip installs")
    said_apt, said_pip = ({n.strip() for n in g.split(",")} for g in m.groups())
    if (said_apt, said_pip) != (apt, pip):
        sys.exit(f"README's scripts/setup.sh lists are stale: apt {sorted(said_apt)} vs {sorted(apt)}, "
                 f"pip {sorted(said_pip)} vs {sorted(pip)}")


if __name__ == "__main__":
    main()
