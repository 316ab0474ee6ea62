"""What a kernel recorded through krec-provisioner costs the server that manages it.

The proxy of krec-provisioner runs inside the kernel manager's process (Jupyter
Server's, in a deployment), so its cost lands there. In one run, side by side, each
in a fresh process playing the server (an AsyncKernelManager, as jupyter_server's
MultiKernelManager uses): the same python3 kernel started plainly and through
krec-provisioner around local-provisioner, then

* start time: ``start_kernel()`` until the kernel answers kernel_info (median);
* memory: the server process's RSS growth from before the start to after the
  session (the proxy's threads, sockets and buffers);
* CPU per message: the server process's CPU time (all threads) for a burst of
  execute requests with output, divided by the messages in the session.

``python benchmarks/fleet.py`` (300 cells, 5 starts each) takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _ready(km: object) -> object:
    kc = km.client()  # type: ignore[attr-defined]
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return kc


async def server(kernel: str, cells: int, starts: int) -> dict[str, float]:
    """Runs in a fresh process: the figures of one kind of kernel."""
    from jupyter_client.manager import AsyncKernelManager

    times = []
    for _ in range(starts):
        km = AsyncKernelManager(kernel_name=kernel)
        t0 = time.perf_counter()
        await km.start_kernel()
        kc = await _ready(km)
        times.append(time.perf_counter() - t0)
        kc.stop_channels()
        await km.shutdown_kernel()
    rss0 = rss_kb()
    km = AsyncKernelManager(kernel_name=kernel)
    await km.start_kernel()
    kc = await _ready(km)
    cpu0 = time.process_time()
    messages = 0
    for i in range(cells):
        msg_id = kc.execute(f"print({i})")
        while True:  # reply, plus busy/execute_input/stream/idle on iopub
            reply = await kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        idle = False
        while not idle:
            msg = await kc.get_iopub_msg(timeout=30)
            messages += 1
            idle = (
                msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id
            )
        messages += 2  # the request and its reply
    cpu = time.process_time() - cpu0
    rss1 = rss_kb()
    kc.stop_channels()
    await km.shutdown_kernel()
    return {
        "start_s": statistics.median(times),
        "rss_mb": (rss1 - rss0) / 1024,
        "cpu_us_per_message": cpu / messages * 1e6,
        "messages": messages,
    }


def _spec_dir(log_dir: str) -> str:
    from krec.recorder.capture.provisioner import provisioner_spec
    from krec.recorder.kernelspec import find_spec

    root = tempfile.mkdtemp(prefix="krec-bench-specs-")
    folder = os.path.join(root, "kernels", "python3-krec")
    os.makedirs(folder)
    with open(os.path.join(folder, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump(provisioner_spec(find_spec("python3"), log_dir), f)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = asyncio.run(server(args.child, args.cells, args.starts))
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory(prefix="krec-bench-") as tmp:
        env = dict(os.environ)
        env["JUPYTER_PATH"] = os.pathsep.join(
            p for p in (_spec_dir(tmp), env.get("JUPYTER_PATH")) if p
        )
        results = {}
        for kernel in ("python3", "python3-krec"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    kernel,
                    "--cells",
                    str(args.cells),
                    "--starts",
                    str(args.starts),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            results[kernel] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, recorded = results["python3"], results["python3-krec"]
    print(f"{'':28}{'plain':>12}{'krec-provisioner':>18}{'ratio / extra':>16}")
    print(
        f"{'start to ready (median, s)':28}{plain['start_s']:12.2f}{recorded['start_s']:18.2f}"
        f"{recorded['start_s'] / plain['start_s']:15.2f}x"
    )
    print(
        f"{'server RSS growth (MB)':28}{plain['rss_mb']:12.1f}{recorded['rss_mb']:18.1f}"
        f"{recorded['rss_mb'] - plain['rss_mb']:+15.1f}"
    )
    print(
        f"{'server CPU per message (us)':28}{plain['cpu_us_per_message']:12.0f}"
        f"{recorded['cpu_us_per_message']:18.0f}"
        f"{recorded['cpu_us_per_message'] - plain['cpu_us_per_message']:+15.0f}"
    )
    print(f"({recorded['messages']} messages per session, {args.cells} cells)")


if __name__ == "__main__":
    main()
