"""Builds the native backend of alphaforge_cache, or installs the pure-Python one without it.

Two extensions make the native backend: the cffi module over the Rust engine, and ``_reads``, the
read path in C (a small stable-ABI C-API module that serves gets from the Python-side mirror;
not built on PyPy, where the Python version of the same code is faster than a C-API call).
``compat._speedups`` is the same kind of module for ``alphaforge_cache.compat``'s read paths.

``cffi_modules`` declares the cffi extension (``bindings/python/alphaforge_cache/_ffi_build.py``).
Before compiling it, ``build_ext`` runs ``cargo build --release -p alphaforge-cache`` to make the
engine's static library, which the extension links in. The extension uses the stable ABI
(``py_limited_api``), so one wheel serves every CPython >= 3.8. If cargo or a C compiler is
missing, or the build fails, the package installs without the extension and ``alphaforge_cache``
uses its pure-Python backend (set ``ALPHAFORGE_CACHE_REQUIRE_NATIVE=1`` to fail instead).
"""

import os
import platform
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def _say(message):
    bar = "=" * 78
    sys.stderr.write(f"\n{bar}\nalphaforge-cache: {message}\n{bar}\n\n")
    sys.stderr.flush()


class build_native_or_fallback(build_ext):
    """Builds the Rust static library, then the cffi extension; falls back to pure Python."""

    def run(self):
        try:
            self._build_rust()
            super().run()
        except Exception as error:  # noqa: BLE001 - any failure means: no native backend
            if os.environ.get("ALPHAFORGE_CACHE_REQUIRE_NATIVE") == "1":
                raise
            _say(
                f"the native backend could not be built ({error}).\n"
                "Installing the pure-Python package: alphaforge_cache will use its fallback "
                "backend (BACKEND == 'python').\nInstall Rust (cargo) and a C compiler, then "
                "reinstall, to get the native backend."
            )
            for ext in self.extensions:  # no stale extension from an earlier build may ship
                for path in (self.get_ext_fullpath(ext.name),):
                    if os.path.exists(path):
                        os.remove(path)
            self.extensions = []
            self.distribution.ext_modules = []

    def _build_rust(self):
        if not self.extensions:
            return
        cargo = os.environ.get("CARGO") or shutil.which("cargo")
        if not cargo:
            raise RuntimeError("cargo was not found on PATH")
        if not os.path.exists(os.path.join(ROOT, "alphaforge-cache", "Cargo.toml")):
            raise RuntimeError("the Rust sources (alphaforge-cache/) are not in this source tree")
        command = [cargo, "build", "--release", "-p", "alphaforge-cache"]
        _say("building the Rust engine: " + " ".join(command))
        subprocess.run(command, cwd=ROOT, check=True)


# A function missing from the stable ABI of the oldest CPython (3.8) must fail the build, not
# be declared implicitly (as returning int: a truncated pointer, a crash at run time).
C_FLAGS = ["-O2", "-Werror=implicit-function-declaration"] if sys.platform != "win32" else []

READS = Extension(
    "alphaforge_cache._reads",
    sources=[
        "bindings/python/alphaforge_cache/_reads.c",
        "bindings/python/alphaforge_cache/_mirror.c",
        "bindings/python/alphaforge_cache/_cache_lock.c",
        "bindings/python/alphaforge_cache/_snapshot_rows.c",
    ],
    depends=[
        "bindings/python/alphaforge_cache/_mirror.h",
        "bindings/python/alphaforge_cache/_cache_lock.h",
        "bindings/python/alphaforge_cache/_module_type.h",
        "bindings/python/alphaforge_cache/_snapshot_rows.h",
    ],
    py_limited_api=True,
    extra_compile_args=C_FLAGS,
)

# alphaforge_cache.compat's read paths in C (the same kind of module as _reads; optional too: the
# compat classes fall back to their Python read paths without it).
COMPAT_SPEEDUPS = Extension(
    "alphaforge_cache.compat._speedups",
    sources=["bindings/python/alphaforge_cache/compat/_speedups.c"],
    py_limited_api=True,
    extra_compile_args=C_FLAGS,
)

setup(
    license="MIT OR Apache-2.0",  # see pyproject.toml
    ext_modules=[] if platform.python_implementation() == "PyPy" else [READS, COMPAT_SPEEDUPS],
    cffi_modules=["bindings/python/alphaforge_cache/_ffi_build.py:ffibuilder"],
    cmdclass={"build_ext": build_native_or_fallback},
    options={"bdist_wheel": {"py_limited_api": "cp38"}},
)
