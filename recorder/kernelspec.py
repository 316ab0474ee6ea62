"""Kernelspecs: finding them, writing krec's wrapper specs, and launching the inner kernel.

A wrapper spec has the name (``krec record --``) or the name plus ``-krec``
(``krec install``) of a real kernelspec, and runs ``python -m krec.recorder wrap``
instead of the kernel. The wrapper then launches the real kernel with its
explicit argv (from ``krec-inner.json`` or looked up by name) and without krec's
shadow directory on JUPYTER_PATH, so it never recurses into itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from string import Template
from typing import IO, Any

from krec.recorder.errors import KernelSpecError

INNER_SPEC_FILE = "krec-inner.json"
WRAPPER_MARK = "krec_wrapper"


def recorded_by_krec(spec: dict[str, Any]) -> bool:
    """True for a krec wrapper spec or one that records through krec-provisioner."""
    metadata = spec.get("metadata") or {}
    provisioner = (metadata.get("kernel_provisioner") or {}).get("provisioner_name")
    return bool(metadata.get(WRAPPER_MARK)) or provisioner == "krec-provisioner"


def all_specs() -> dict[str, dict[str, Any]]:
    """Every installed kernelspec: name -> {"resource_dir", "spec"}."""
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager()
    try:
        return ksm.get_all_specs()
    except Exception as e:  # a broken kernel.json somewhere must not hide the others
        raise KernelSpecError(f"cannot list kernelspecs: {e}") from None


def find_spec(name: str) -> dict[str, Any]:
    """The kernelspec ``name`` as {"name", "resource_dir", "spec"}; KernelSpecError if unknown."""
    specs = all_specs()
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise KernelSpecError(f"no kernel named {name!r} (installed kernels: {known})")
    entry = specs[name]
    return {"name": name, "resource_dir": entry["resource_dir"], "spec": entry["spec"]}


def wrapped_spec(spec: dict[str, Any], argv: list[str], display_name: str) -> dict[str, Any]:
    """The kernel.json of a wrapper for ``spec``: same language and metadata, krec's argv."""
    metadata = dict(spec.get("metadata") or {})
    metadata[WRAPPER_MARK] = True
    out: dict[str, Any] = {
        "argv": argv,
        "display_name": display_name,
        "language": spec.get("language", ""),
        "metadata": metadata,
    }
    for key in ("interrupt_mode", "kernel_protocol_version"):
        if key in spec:
            out[key] = spec[key]
    return out


def _copy_resources(src: str, dst: str) -> None:
    if not src or not os.path.isdir(src):
        return
    for entry in os.listdir(src):
        if entry in ("kernel.json", INNER_SPEC_FILE):
            continue
        path = os.path.join(src, entry)
        if os.path.isfile(path):
            shutil.copy2(path, os.path.join(dst, entry))


def write_shadow_specs(
    shadow_dir: str,
    log_dir: str,
    *,
    record_passwords: bool = False,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Write one wrapper per installed kernelspec under ``shadow_dir/kernels``; return names.

    ``extra_args``: more ``krec wrap`` options (e.g. ``--otlp URL``)."""
    names = []
    for name, entry in sorted(all_specs().items()):
        spec = entry["spec"]
        if recorded_by_krec(spec):
            continue
        target = os.path.join(shadow_dir, "kernels", name)
        os.makedirs(target, exist_ok=True)
        inner_path = os.path.join(target, INNER_SPEC_FILE)
        with open(inner_path, "w", encoding="utf-8") as f:
            json.dump({"name": name, "resource_dir": entry["resource_dir"], "spec": spec}, f)
        argv = [
            sys.executable,
            "-m",
            "krec.recorder",
            "wrap",
            "--inner-spec",
            inner_path,
            "--log-dir",
            log_dir,
            "--shadow-dir",
            shadow_dir,
            *extra_args,
            "-f",
            "{connection_file}",
        ]
        if record_passwords:
            argv.insert(-2, "--record-passwords")
        with open(os.path.join(target, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump(wrapped_spec(spec, argv, spec.get("display_name", name)), f, indent=1)
        _copy_resources(entry["resource_dir"], target)
        names.append(name)
    return names


def recorded_display_name(display_name: str) -> str:
    """ "Python 3 (ipykernel)" -> "Python 3 (recorded)"."""
    base = re.sub(r"\s*\([^()]*\)\s*$", "", display_name).strip() or display_name
    return f"{base} (recorded)"


def install_wrapper(
    name: str,
    log_dir: str,
    *,
    user: bool = False,
    prefix: str | None = None,
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> tuple[str, str]:
    """Install the kernelspec ``NAME-krec``; return (its name, where it went).

    ``extra_args``: more ``krec wrap`` options (e.g. ``--otlp URL``)."""
    entry = find_spec(name)
    spec = entry["spec"]
    if spec.get("metadata", {}).get(WRAPPER_MARK):
        raise KernelSpecError(f"{name!r} is already a krec wrapper")
    argv = [
        sys.executable,
        "-m",
        "krec.recorder",
        "wrap",
        "--kernel",
        name,
        "--log-dir",
        log_dir,
        *extra_args,
        "-f",
        "{connection_file}",
    ]
    data = wrapped_spec(spec, argv, recorded_display_name(spec.get("display_name", name)))
    if env:
        data["env"] = {**(spec.get("env") or {}), **env}
    return install_spec(entry, f"{name}-krec", data, user=user, prefix=prefix)


def install_spec(
    entry: dict[str, Any],
    wrapper_name: str,
    data: dict[str, Any],
    *,
    user: bool = False,
    prefix: str | None = None,
) -> tuple[str, str]:
    """Install ``data`` as kernelspec ``wrapper_name`` with ``entry``'s resources."""
    import tempfile

    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, wrapper_name)
        os.makedirs(src)
        with open(os.path.join(src, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        _copy_resources(entry["resource_dir"], src)
        try:
            dest = KernelSpecManager().install_kernel_spec(
                src, wrapper_name, user=user, prefix=prefix, replace=True
            )
        except OSError as e:
            raise KernelSpecError(f"cannot install {wrapper_name}: {e.strerror or e}") from None
    return wrapper_name, dest


def load_inner_spec(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise KernelSpecError(f"cannot read wrapped kernelspec {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("spec", {}).get("argv"), list):
        raise KernelSpecError(f"{path} is not a wrapped kernelspec")
    return data


# -- launching the inner kernel ---------------------------------------------------

# PR_SET_PDEATHSIG(SIGKILL), then exec the kernel. Run as a separate tiny program rather
# than a preexec_fn: running Python code between fork and exec in a process whose other
# threads are forwarding messages can deadlock on (or corrupt) locks those threads hold.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"  # krec already died: do not start
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def kernel_argv(entry: dict[str, Any], connection_file: str) -> list[str]:
    """The inner kernel's argv with {connection_file} and {resource_dir} substituted."""
    spec = entry["spec"]
    argv = [
        str(a)
        .replace("{connection_file}", connection_file)
        .replace("{resource_dir}", entry.get("resource_dir", ""))
        for a in spec["argv"]
    ]
    v = sys.version_info
    if argv and argv[0] in ("python", f"python{v[0]}", f"python{v[0]}.{v[1]}"):
        argv[0] = sys.executable  # as jupyter_client does
    return argv


def kernel_env(entry: dict[str, Any], strip_path: str | None = None) -> dict[str, str]:
    """The inner kernel's environment: ours, minus krec's shadow specs, plus the spec's env."""
    env = dict(os.environ)
    if strip_path:
        parts = [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
        parts = [p for p in parts if os.path.abspath(p) != os.path.abspath(strip_path)]
        if parts:
            env["JUPYTER_PATH"] = os.pathsep.join(parts)
        else:
            env.pop("JUPYTER_PATH", None)
    for key, value in (entry["spec"].get("env") or {}).items():
        env[str(key)] = Template(str(value)).safe_substitute(env)
    env["JPY_PARENT_PID"] = str(os.getpid())
    env.pop("KREC_SEAL_KEY", None)  # the recorder's secret; the kernel runs the user's code
    return env


def launch_kernel(
    argv: list[str], env: dict[str, str], cwd: str | None = None, output: IO[bytes] | None = None
) -> subprocess.Popen:
    """Start the inner kernel in its own session; the OS kills it if krec dies.

    ``output`` receives the kernel's stdout and stderr (default: krec's own).

    Its own process group keeps a frontend's ``killpg(SIGINT)`` from reaching it
    twice (krec forwards the signal); PR_SET_PDEATHSIG makes SIGKILL of krec kill it.
    Call from the main thread: the death signal follows the thread that forked.
    """
    if shutil.which(argv[0], path=env.get("PATH")) is None and not os.path.isfile(argv[0]):
        raise KernelSpecError(f"cannot start kernel: {argv[0]!r} not found")
    if sys.platform.startswith("linux"):
        argv = [sys.executable, "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]
    try:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    except OSError as e:
        raise KernelSpecError(f"cannot start kernel {argv[0]!r}: {e.strerror}") from None


def stop_kernel(proc: subprocess.Popen, timeout: float = 3.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; return the exit status."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        return -9
