"""The build's one step beyond pyproject.toml: the ingest hot path, compiled with mypyc.

The modules ``gridsense/hot_path.py`` lists run once per reading. mypyc turns each into a C
extension from the same typed source, so there is one implementation and the test suite
holds it; a module that is not compiled runs as the plain Python it is. ``pip install .``
(the demo, the container image) compiles them, which needs a C compiler and the Python
headers; without them it installs the plain-Python modules, which behave the same, only
slower (``pip install -v .`` shows why, and ``gridsense doctor`` warns).

An editable install (``pip install -e .``, what ``scripts/test`` does) does not: an extension
built into the source tree would shadow the ``.py`` beside it, and an edit would silently
not take effect. ``GRIDSENSE_PURE_PYTHON=1`` skips the compilation anywhere.
``scripts/test-compiled`` runs the suite against the compiled modules, and
``scripts/with-compiled-hot-path`` any command (a benchmark, say).
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

#: The modules to compile, as source files: gridsense/hot_path.py lists them and says why.
#: It is read as a file, not imported: the build environment does not have gridsense's
#: dependencies.
HOT_PATH = [
    m.replace(".", "/") + ".py"
    for m in runpy.run_path(str(Path(__file__).parent / "gridsense/hot_path.py"))["MODULES"]
]


def can_compile() -> bool:
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(compiler) is not None and header.exists()


#: The setup.py commands that build extensions; pip also runs it to read metadata (egg_info,
#: dist_info), where compiling would cost a mypyc pass for nothing.
BUILDS = {"bdist_wheel", "build", "build_ext", "install"}


def ext_modules() -> list[object]:
    argv = set(sys.argv)
    if os.environ.get("GRIDSENSE_PURE_PYTHON") or "editable_wheel" in argv or not BUILDS & argv:
        return []
    if not can_compile():
        print(
            "gridsense: no C compiler or Python headers here; the ingest hot path stays plain"
            " Python (the same behaviour, about a fifth slower per reading)",
            file=sys.stderr,
        )
        return []
    from mypyc.build import mypycify

    # The build environment holds only what pyproject's build-system asks for: the modules
    # the hot path imports but does not compile (numpy, influxdb-client, ...) are type-checked
    # there without their libraries, so their errors are not the build's business.
    flags = ["--follow-imports=silent", "--no-warn-unused-ignores"]
    return list(mypycify([*flags, *HOT_PATH], opt_level="3"))


if __name__ == "__main__":  # as pip's build runs it; scripts/test-compiled runs it too
    setup(ext_modules=ext_modules())
