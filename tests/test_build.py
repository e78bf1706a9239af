"""The install: a machine that cannot compile still gets a working, pure-Python Levante.

scripts/test runs the whole suite on the compiled build as well, which shows the
compiled wheel works; this shows the fallback setup.py promises.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.timeout(600)
def test_a_failed_compile_installs_the_pure_modules(tmp_path: Path) -> None:
    # A compiler that fails on mypyc's shared library only: the small per-module
    # extensions that import it would build, and must not be installed without it.
    cc = tmp_path / "cc"
    cc.write_text('#!/bin/sh\ncase "$*" in *__native*) exit 1;; esac\nexec gcc "$@"\n')
    cc.chmod(0o755)
    env = {**os.environ, "LEVANTE_COMPILE": "1", "CC": str(cc)}
    # Built from a copy: setuptools reuses what an earlier build left in the tree's build/.
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"),
    )
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    out = tmp_path / "w"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(tree)],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "levante: not compiled" in build.stdout + build.stderr
    [wheel] = out.glob("levante-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "levante/server/protocols/http1.py" in names
    assert not [n for n in names if n.endswith(".so")], "a compiled module without its library"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run(
        [sys.executable, "-c", "import levante.server as s; print(s.compiled(), s.__file__)"],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    compiled, where = probe.stdout.split()
    assert compiled == "False"
    assert where.startswith(str(site))


def _compiled_modules() -> list[Path]:
    """The modules setup.py compiles, read from its COMPILED list."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return [ROOT / ast.literal_eval(item) for item in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("setup.py has no COMPILED list")


def test_compiled_modules_do_not_raise_from() -> None:
    # mypyc drops the `from` of `raise X from Y`: the cause would be lost, and
    # `from None` would not hide the exception being handled. `chained` does both.
    found = []
    for path in _compiled_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.cause is not None:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], f"use levante.native.chained(error, cause) instead: {found}"


def test_chained_is_raise_from() -> None:
    from levante.native import chained

    def raise_from(cause: BaseException | None) -> None:
        try:
            raise KeyError("inner")
        except KeyError:
            raise chained(ValueError("outer"), cause)  # noqa: B904

    with pytest.raises(ValueError) as hidden:
        raise_from(None)
    assert hidden.value.__cause__ is None
    assert hidden.value.__suppress_context__  # the KeyError is not shown
    cause = OSError("the cause")
    with pytest.raises(ValueError) as caused:
        raise_from(cause)
    assert caused.value.__cause__ is cause


def test_a_compiled_raise_keeps_its_cause_and_hides_the_context() -> None:
    # Runs the compiled code in the compiled pass of scripts/test: a path template
    # naming a parameter twice raises TemplateError from None (mypyc would drop the `from`).
    from levante.web.convertors import TemplateError, compile_host

    with pytest.raises(TemplateError) as caught:
        compile_host("{name}.{name}.example.com")
    assert caught.value.__suppress_context__
    assert caught.value.__cause__ is None
