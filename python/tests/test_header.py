"""Drift between include/vixDiskLib.h, the shared object and this binding."""

from __future__ import annotations

import ast
import ctypes
import operator
import re
import shutil
import subprocess

import pytest

import vixdisklib as V
from vdl_helpers import REPO_ROOT

HEADER = REPO_ROOT / "include" / "vixDiskLib.h"


@pytest.fixture(scope="module")
def header_text() -> str:
    assert HEADER.exists(), f"{HEADER} does not exist (cbindgen output expected)"
    return HEADER.read_text()


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_functions(text: str) -> set[str]:
    code = _strip_comments(text)
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b(VixDiskLib_\w+)\s*\(", code))


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.LShift: operator.lshift,
        ast.RShift: operator.rshift, ast.BitOr: operator.or_, ast.BitAnd: operator.and_,
        ast.FloorDiv: operator.floordiv}


def _eval(expr: str, env: dict[str, int]):
    """Evaluate a C integer constant expression (casts, suffixes, names)."""
    e = expr.strip()
    e = re.sub(r"\(\s*(?:const\s+)?(?:unsigned\s+|signed\s+)?[A-Za-z_]\w*\s*\*?\s*\)\s*(?=[\w(~-])", "", e)  # casts
    e = re.sub(r"\b(?:U?INT\d+_C|UINT64_C|INT64_C)\s*\(", "(", e)
    e = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)(?:[uU]?[lL]{0,2}|[lL]{1,2}[uU]?)\b", r"\1", e)
    e = e.replace("/", "//")
    try:
        tree = ast.parse(e, mode="eval")
    except SyntaxError:
        return None

    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name):
            if n.id in env:
                return env[n.id]
            raise KeyError(n.id)
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Invert):
            return ~ev(n.operand)
        raise ValueError(ast.dump(n))

    try:
        return ev(tree)
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def header_constants(text: str) -> dict[str, int]:
    """Integer values of every #define and enumerator in the header."""
    code = _strip_comments(text)
    code = re.sub(r"\\\n", " ", code)
    out: dict[str, int] = {}
    raw: list[tuple[str, str]] = []
    for m in re.finditer(r"^\s*#\s*define\s+([A-Za-z_]\w*)[ \t]+([^\n]+)$", code, flags=re.M):
        raw.append((m.group(1), m.group(2)))
    for body in re.findall(r"\benum\b[^{;]*\{([^}]*)\}", code):
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item:
                name, val = (s.strip() for s in item.split("=", 1))
                v = _eval(val, out)
                if v is None:
                    raw.append((name, val))
                    continue
            else:
                name, v = item, nxt
            out[name] = v
            nxt = v + 1
    for _ in range(3):  # resolve defines that refer to other names
        for name, val in raw:
            if name not in out:
                v = _eval(val, out)
                if v is not None:
                    out[name] = v
    return out


def binding_constants() -> dict[str, int]:
    return {k: v for k, v in vars(V).items()
            if re.match(r"^(VIX_|VIXDISKLIB_)[A-Z0-9_]+$", k) and isinstance(v, int) and not isinstance(v, bool)}


# ---------------------------------------------------------------------------


def test_header_functions_match_binding(header_text):
    declared = header_functions(header_text)
    ours = {f for f in V.FUNCTIONS if f.startswith("VixDiskLib_")}  # VixDiskLibExt_*: vixDiskLibExt.h
    assert declared - ours == set(), f"declared in the header, missing in vixdisklib._abi.FUNCTIONS: {sorted(declared - ours)}"
    assert ours - declared == set(), f"in vixdisklib._abi.FUNCTIONS, not declared in the header: {sorted(ours - declared)}"
    assert len(declared) == 50


def test_header_error_codes_match_binding(header_text):
    hdr = header_constants(header_text)
    errs = {k: v for k, v in hdr.items() if k == "VIX_OK" or k == "VIX_ASYNC" or k.startswith("VIX_E_")}
    assert {"VIX_OK", "VIX_ASYNC", "VIX_E_FAIL", "VIX_E_INVALID_ARG", "VIX_E_DISK_OUTOFRANGE"} <= set(errs), \
        f"header lacks basic error codes; found {len(errs)}"
    mismatched = {k: (v, V.ERROR_CODES[k]) for k, v in errs.items() if k in V.ERROR_CODES and V.ERROR_CODES[k] != v}
    assert mismatched == {}, f"header value vs binding value: {mismatched}"
    # every code the binding knows should be in the header too (VDDK 7.0.2 set)
    missing = sorted(set(V.ERROR_CODES) - set(errs))
    assert missing == [], f"error codes missing from the header: {missing}"


def test_header_other_constants_match_binding(header_text):
    hdr = header_constants(header_text)
    ours = {k: v for k, v in binding_constants().items() if not (k == "VIX_OK" or k == "VIX_ASYNC"
                                                                  or k.startswith("VIX_E_"))}
    common = set(hdr) & set(ours)
    for must in ("VIXDISKLIB_SECTOR_SIZE", "VIXDISKLIB_FLAG_OPEN_READ_ONLY", "VIXDISKLIB_DISK_MONOLITHIC_SPARSE",
                 "VIXDISKLIB_ADAPTER_SCSI_LSILOGIC", "VIXDISKLIB_HWVERSION_WORKSTATION_5",
                 "VIXDISKLIB_MIN_CHUNK_SIZE"):
        assert must in common, f"{must} not found in the header"
    mismatched = {k: (hdr[k], ours[k]) for k in common if hdr[k] != ours[k]}
    assert mismatched == {}, f"header value vs binding value: {mismatched}"


def _c_fields(ctype, prefix=""):
    """(designator, ctypes offset, size) for each field, recursing into nested structs/unions."""
    out = []
    for f in ctype._fields_:
        name, t = f[0], f[1]
        desc = getattr(ctype, name)
        out.append((prefix + name, desc.offset, desc.size))
        if isinstance(t, type) and issubclass(t, (ctypes.Structure, ctypes.Union)):
            for sub, off, size in _c_fields(t, prefix + name + "."):
                out.append((sub, desc.offset + off, size))
    return out


def test_struct_layouts_match_header(tmp_path, header_text):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    structs = list(V.STRUCT_SIZES)
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "vixDiskLib.h"', "int main(void) {"]
    expected = []
    for s in structs:
        t = getattr(V, s)
        lines.append(f'printf("{s} %zu\\n", sizeof({s}));')
        expected.append(f"{s} {ctypes.sizeof(t)}")
        for desig, off, size in _c_fields(t):
            if ".dsSpec" in "." + desig and "dsSpec" not in header_text:
                continue  # VixDiskLibDatastoreSpec is an 8.0.1 addition; optional
            lines.append(f'printf("{s}.{desig} %zu %zu\\n", offsetof({s}, {desig}), sizeof((({s}*)0)->{desig}));')
            expected.append(f"{s}.{desig} {off} {size}")
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    p = subprocess.run([cc, "-std=c11", "-Wall", "-I", str(HEADER.parent), str(src), "-o", str(exe)],
                       capture_output=True, text=True)
    assert p.returncode == 0, f"the header does not compile standalone / lacks VMware's member names:\n{p.stderr}"
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(got) == len(expected)
    diff = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert diff == [], "ctypes vs C layout (expected, header):\n" + "\n".join(f"{e} | {g}" for e, g in diff)


def test_exported_symbols_are_exactly_the_api(dll):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed")
    out = subprocess.run([nm, "-D", "--defined-only", dll.path], capture_output=True, text=True, check=True).stdout
    syms = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split()}
    exported = {s for s in syms if s.startswith(("VixDiskLib_", "VixDiskLibExt_"))}
    assert exported - set(V.FUNCTIONS) == set(), f"unexpected exports: {sorted(exported - set(V.FUNCTIONS))}"
    assert set(V.FUNCTIONS) - exported == set(), f"missing exports: {sorted(set(V.FUNCTIONS) - exported)}"


def test_parser_self_check():
    """The header parsers above work on a known snippet (so the drift tests can fail)."""
    snippet = """
    /* VixDiskLib_InComment(x) */
    #define VIX_OK 0
    #define VIX_E_FAIL ((VixError)1ULL)
    #define VIXDISKLIB_FLAG_OPEN_READ_ONLY (1 << 2)
    #define VIXDISKLIB_MAX_CHUNK_SIZE (64 * 2 * 1024)
    typedef enum { VIXDISKLIB_DISK_MONOLITHIC_SPARSE = 1, VIXDISKLIB_DISK_MONOLITHIC_FLAT, X = 256 } T;
    enum { VIX_ASYNC = 25000, };
    VixError
    VixDiskLib_Open(const VixDiskLibConnection connection, const char *path,
                    uint32_t flags, VixDiskLibHandle *diskHandle);
    void VixDiskLib_Exit(void);
    typedef void (VixDiskLibGenericLogFunc)(const char *fmt, va_list args);
    """
    assert header_functions(snippet) == {"VixDiskLib_Open", "VixDiskLib_Exit"}
    c = header_constants(snippet)
    assert c["VIX_OK"] == 0 and c["VIX_E_FAIL"] == 1 and c["VIX_ASYNC"] == 25000
    assert c["VIXDISKLIB_FLAG_OPEN_READ_ONLY"] == 4 and c["VIXDISKLIB_MAX_CHUNK_SIZE"] == 131072
    assert c["VIXDISKLIB_DISK_MONOLITHIC_FLAT"] == 2 and c["X"] == 256
