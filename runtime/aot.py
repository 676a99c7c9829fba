"""The ahead-of-time library of a build (``fspec compile --aot``), and its use by ``fspec run``.

``fspec run`` spends most of its fixed start-up in numba: its import, its CPU target, then every kernel's machine
code loaded from numba's cache. ``fspec compile --aot`` therefore also builds ONE extension module under
build/aot/ with numba's ahead-of-time compiler (``numba.pycc``, the same LLVM as its JIT, for this CPU): every
compiled function a run of the manifest calls from Python (the tick and event kernels, bar operators, numpy
fallbacks, the option chain's math, the regrouping), each exported with every signature the compile's warm-up
compiled it for. Which functions and types those are is what :func:`fspec.runtime.warmup.warm_calls` calls: the
build runs those calls in a fresh process in :mod:`fspec.jit`'s record mode, which notes every compiled function
that Python called, and numba's dispatchers then know their signatures.

The manifest records the library (:class:`fspec.manifest.LibraryDef`): its file, its sha256 and a stamp of what it
was built from. A run uses it only while the stamp is what the run's environment gives (:func:`use_library`):
the kernel files' contents, numba's, numpy's, Python's and fspec's versions, fspec's sources, the CPU. A run from
the library does not import numba; a call whose types the library lacks falls back to numba (see fspec/jit.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fspec import __version__
from fspec.errors import BuildError, ToolchainError
from fspec.manifest import ExportDef, LibraryDef
from fspec.project import BUILD_DIR, MANIFEST

if TYPE_CHECKING:
    from fspec.manifest import ManifestData
    from fspec.runtime.manifest import Manifest

LIBRARY_DIR = "aot"  # under build/
BUILD_ONLY = ("calls",)  # stamp entries that decide a rebuild at compile time, not a run's use of the library


# ---- the stamp ----------------------------------------------------------------------------------------------


def stamp(root: Path, data: ManifestData) -> dict[str, str]:
    """What the library's machine code depends on, as the run's environment gives it now."""
    import numpy as np

    kernels = hashlib.sha256()
    for _, path, _ in sorted(f for k in (*data.kernels, *(k for g in data.grids for k in g.kernels)) for f in k.files):
        kernels.update(path.encode() + b"\0")
        try:
            kernels.update(hashlib.sha256((root / path).read_bytes()).digest())
        except OSError:
            kernels.update(b"missing")
    return {
        "kernels": kernels.hexdigest(),
        "numba": _version("numba"),
        "numpy": np.__version__,
        "python": sys.version,
        "fspec": __version__,
        "fspec sources": sources_stamp(),
        "cpu": cpu_name(),
    }


def _version(package: str) -> str:
    """The installed version of ``package``, without importing it: from the name of its ``.dist-info`` folder
    beside it (a millisecond; importlib.metadata scans every installed distribution, 40 ms here), else from
    importlib.metadata."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin:
        site = Path(spec.origin).parent.parent
        found = sorted(site.glob(f"{package}-*.dist-info"))
        if len(found) == 1:
            return found[0].name.removeprefix(f"{package}-").removesuffix(".dist-info")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def sources_stamp() -> str:
    """The newest time of fspec's own source files: machine code compiled from them (numba's cache, the library)
    is stale once one of them changes (an installed upgrade changes the version too, an edited checkout only
    this)."""
    import fspec
    import fspec.compiler
    import fspec.operators
    import fspec.options
    import fspec.runtime

    packages = (fspec, fspec.compiler, fspec.operators, fspec.options, fspec.runtime)
    folders = {Path(str(m.__file__)).parent for m in packages}
    return str(max(p.stat().st_mtime_ns for folder in folders for p in folder.glob("*.py")))


def cpu_name() -> str:
    """The CPU the machine code is for: its model and instruction set extensions (Linux: /proc/cpuinfo), read
    without LLVM; the library is built for this CPU (as numba's JIT compiles for it)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags", "Features", "CPU part") and key not in fields:
            fields[key] = value.strip()
        if not line.strip() and fields:
            break  # the first processor's block is enough
    flags = hashlib.sha256(fields.get("flags", fields.get("Features", "")).encode()).hexdigest()[:16]
    return f"{platform.machine()} {fields.get('model name', fields.get('CPU part', ''))} [{flags}]"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- a run ----------------------------------------------------------------------------------------------------


def use_library(manifest: Manifest) -> str | None:
    """Load the build's library, if it has one that is valid here, and switch :mod:`fspec.jit` to it (before any
    compiled function is imported). Returns why a library the build has is not used (a note for the user), or
    None (used, or none to use)."""
    library = manifest.data.library
    if library is None:
        return None
    from fspec import jit

    if jit.mode() == jit.LIBRARY:
        return None  # loaded already (a worker process running another task of the same build)
    path = manifest.root / library.file
    if not path.is_file():
        return f"{library.file} is missing: the run compiles with numba; run 'fspec compile --aot' again"
    now = stamp(manifest.root, manifest.data)
    changed = sorted(
        k for k in set(now) | set(library.stamp) if k not in BUILD_ONLY and now.get(k) != library.stamp.get(k)
    )
    if changed or _sha256(path) != library.sha256:
        what = ", ".join(changed) if changed else "its file"
        return f"{library.file} is stale ({what} changed): the run compiles with numba; run 'fspec compile --aot' again"
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader(library.module, str(path))
    spec = importlib.util.spec_from_file_location(library.module, str(path), loader=loader)
    if spec is None:
        return f"{library.file} cannot be loaded: the run compiles with numba"
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    if not jit.use_library(module, ((e.function, e.args, e.name) for e in library.exports)):
        return f"{library.file} is not used: this process compiled with numba already (or NUMBA_DISABLE_JIT is set)"
    return None


# ---- the build --------------------------------------------------------------------------------------------


def check_toolchain() -> None:
    """numba.pycc compiles the library's glue with the C compiler Python was built with, against Python's
    headers (and numpy's): refuse at once, saying what to install, when they are missing."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if os.environ.get("CC"):
        compiler = os.environ["CC"].split()[0]
    if shutil.which(compiler) is None:
        raise ToolchainError(
            f"fspec compile --aot needs a C compiler, and '{compiler}' is not installed",
            "install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; macOS: xcode-select "
            "--install), or set CC to one; or compile without --aot",
        )
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.is_file():
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise ToolchainError(
            f"fspec compile --aot needs Python's C headers, and {include} is missing",
            f"install them (Debian/Ubuntu: apt-get install python{version}-dev; Fedora: dnf install "
            "python3-devel), or compile without --aot",
        )
    try:
        import distutils  # noqa: F401  (numba.pycc builds with it; Python 3.12 has none)
    except ImportError:
        raise ToolchainError(
            "fspec compile --aot needs distutils, which this Python does not have",
            "install setuptools (pip install setuptools), which provides it, or compile without --aot",
        ) from None


def previous_library(root: Path) -> LibraryDef | None:
    """The library the build's manifest records now (before ``fspec compile`` writes a new manifest)."""
    try:
        raw = json.loads((root / BUILD_DIR / MANIFEST).read_text(encoding="utf-8"))
        return LibraryDef.from_json(raw["library"]) if "library" in raw else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def build_library(root: Path, previous: LibraryDef | None = None) -> tuple[LibraryDef, bool]:
    """Build the library of the compiled build at ``root`` (warmed already, so numba's cache holds its
    functions), record it in build/manifest.json and remove any other library file; returns it and whether it
    was built (False: ``previous`` was built from the same files, environment and calls, and is kept)."""
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.warmup import warm_calls

    check_toolchain()
    manifest = load_manifest(root)
    wanted = stamp(root, manifest.data) | {"calls": _calls_stamp([key for key, _ in warm_calls(manifest)])}
    folder = root / BUILD_DIR / LIBRARY_DIR
    if previous is not None and previous.stamp == wanted and _intact(root, previous):
        _record(root, previous)
        return previous, False
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".aot-", dir=folder) as tmp:
        result = Path(tmp) / "exports.json"
        done = subprocess.run(
            [sys.executable, "-m", "fspec.runtime.aot", str(root), tmp, str(result)],
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONWARNINGS": "ignore"},
        )
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
            raise BuildError(f"the ahead-of-time library could not be built:\n{tail}", "compile without --aot")
        built = json.loads(result.read_text(encoding="utf-8"))
        name = built["module"]
        source = Path(tmp) / built["file"]
        target = folder / built["file"]
        os.replace(source, target)
    for old in folder.iterdir():
        if old != target and old.is_file():
            old.unlink()
    library = LibraryDef(
        file=target.relative_to(root).as_posix(),
        module=name,
        sha256=_sha256(target),
        stamp=wanted,
        exports=tuple(ExportDef(e["function"], tuple(e["args"]), e["name"]) for e in built["exports"]),
    )
    _record(root, library)
    return library, True


def _intact(root: Path, library: LibraryDef) -> bool:
    path = root / library.file
    return path.is_file() and _sha256(path) == library.sha256


def remove_library(root: Path) -> None:
    """A compile without --aot leaves no library behind (its manifest records none)."""
    shutil.rmtree(root / BUILD_DIR / LIBRARY_DIR, ignore_errors=True)


def _calls_stamp(keys: list[str]) -> str:
    """The warm-up's calls but the kernels (their files are in the stamp's ``kernels``): bar operators with their
    constants' types, numpy fallbacks, chains, regrouping."""
    return hashlib.sha256("\n".join(sorted(k for k in keys if not k.startswith("kernel "))).encode()).hexdigest()


def _record(root: Path, library: LibraryDef) -> None:
    """Write the library into build/manifest.json (as the compiler writes it: sorted keys, indent 1)."""
    path = root / BUILD_DIR / MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["library"] = library.to_json()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---- the build's own process (python -m fspec.runtime.aot ROOT FOLDER RESULT) --------------------------------


def _main(root: Path, folder: Path, result: Path) -> None:
    """Run the warm-up's calls in record mode, then compile every compiled function Python called, with every
    signature numba compiled it for, into one extension module in ``folder``; its file, module name and exports
    go to ``result`` as JSON."""
    import warnings

    from fspec import jit

    jit.record()  # before anything compiled is imported
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.warmup import warm_calls

    manifest = load_manifest(root)
    for _, call in warm_calls(manifest):
        call()
    entries = _entries(jit.standins())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc's deprecation notices: the user's terminal stays clean
        from numba.pycc import CC

        digest = hashlib.sha256(json.dumps([[f, a] for f, a, _ in entries]).encode())
        digest.update(json.dumps(stamp(root, manifest.data), sort_keys=True).encode())
        name = f"fspec_aot_{digest.hexdigest()[:12]}"
        cc = CC(name)
        cc.output_dir = str(folder)
        cc.target_cpu = "host"
        cc.verbose = False
        exports = []
        options: dict[Any, Any] = {}
        for n, (function, args, (dispatcher, signature)) in enumerate(entries):
            export = f"f{n}"
            cc.export(export, signature)(dispatcher.py_func)
            options[dispatcher.py_func] = dispatcher
            exports.append({"function": function, "args": args, "name": export})
        with _as_the_jit_compiles(options):
            cc.compile()
    file = Path(cc.output_file).name
    result.write_text(json.dumps({"module": name, "file": file, "exports": exports}), encoding="utf-8")


def _entries(standins: list[Any]) -> list[tuple[str, list[str], tuple[Any, Any]]]:
    """(function id, argument type keys, (dispatcher, signature)) of every signature of every compiled function
    Python called (or that declares its types), in the order they were made; signatures of types the library
    cannot key (:func:`fspec.jit.numba_type_key`) are left to numba."""
    from fspec.jit import numba_type_key

    out = []
    for standin in standins:
        if standin.kind != "njit" or not (standin.called or standin.signatures_given is not None):
            continue
        dispatcher = standin.real
        for signature in dispatcher.nopython_signatures:
            keys = [numba_type_key(t) for t in signature.args]
            if None not in keys:
                out.append((standin.id, keys, (dispatcher, signature)))
    return out


class _as_the_jit_compiles:
    """While numba.pycc compiles, each export gets the options of its dispatcher (``nogil``, ``error_model``,
    ``fastmath``, ...) as the JIT compiles it, and the machine code is for this CPU with its features, as the
    JIT's is (pycc's defaults: Python's error model, the GIL held, a CPU model's features)."""

    def __init__(self, dispatchers: dict[Any, Any]) -> None:
        self.dispatchers = dispatchers

    def __enter__(self) -> None:
        import numba.pycc.compiler as pycc_compiler
        from numba.core.codegen import AOTCPUCodegen

        self._compile_extra = pycc_compiler.compile_extra
        self._features = AOTCPUCodegen._customize_tm_features
        dispatchers = self.dispatchers
        original = self._compile_extra

        def compile_extra(
            typingctx: Any, targetctx: Any, func: Any, args: Any, return_type: Any, flags: Any, locals: Any, **kw: Any
        ) -> Any:
            dispatcher = dispatchers.get(func)
            if dispatcher is not None:
                flags = flags.copy()
                options = {k: v for k, v in dispatcher.targetoptions.items() if k != "cache"}
                dispatcher.targetdescr.options.parse_as_flags(flags, options)
            return original(typingctx, targetctx, func, args, return_type, flags, locals, **kw)

        pycc_compiler.compile_extra = compile_extra
        AOTCPUCodegen._customize_tm_features = lambda codegen: codegen._get_host_cpu_features()

    def __exit__(self, *exc: object) -> None:
        import numba.pycc.compiler as pycc_compiler
        from numba.core.codegen import AOTCPUCodegen

        pycc_compiler.compile_extra = self._compile_extra
        AOTCPUCodegen._customize_tm_features = self._features


if __name__ == "__main__":
    _main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
