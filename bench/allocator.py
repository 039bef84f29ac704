"""Which memory allocator a CPU run should use, as JSON: the bare forward+backward of style_step.py's VGG19
head at each size, in a fresh process per allocator, with its page faults and kernel time.

    python bench/allocator.py [--sizes 512 1024 2048] [--steps 2] [--threads 2] [--out results/allocator.json]

glibc's malloc maps every buffer over 32 MB afresh and unmaps it when freed, so each step the kernel faults
and zeroes the activations in again; allocators that keep freed memory avoid that. Compared: the C library's
malloc (PyTorch's default), PyTorch's `THP_MEM_ALLOC_ENABLE=1` (huge pages), glibc's `glibc.malloc.hugetlb=1`
tunable, and tcmalloc and jemalloc preloaded where their libraries are installed (Debian:
libtcmalloc-minimal4, libjemalloc2). Per size: the fastest of `--steps` steps after one untimed (wall and
CPU seconds), and the page faults and kernel seconds of those steps, per step.
"""
from __future__ import annotations

import argparse
import ctypes.util
import datetime
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SELECTORS = ("LD_PRELOAD", "GLIBC_TUNABLES", "THP_MEM_ALLOC_ENABLE")  # what chooses an allocator
PRELOADED = {"tcmalloc": "tcmalloc_minimal", "jemalloc": "jemalloc"}  # name -> library to preload


def allocators() -> dict[str, dict[str, str]]:
    """Each allocator available here and the environment that selects it."""
    chosen = {"glibc malloc": {}, "glibc malloc, THP_MEM_ALLOC_ENABLE=1": {"THP_MEM_ALLOC_ENABLE": "1"},
              "glibc malloc, glibc.malloc.hugetlb=1": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}}
    for name, library in PRELOADED.items():
        found = ctypes.util.find_library(library)
        if found:
            chosen[f"{name} ({found})"] = {"LD_PRELOAD": found}
    return chosen


def child(sizes: list[int], steps: int, threads: int) -> None:
    import torch
    sys.path.insert(0, str(HERE))
    from style_step import bare_steps, setup
    torch.set_num_threads(threads)
    results = {}
    with torch.inference_mode(False), torch.enable_grad():
        for size in sizes:
            net, _, content, _ = setup(size, "gram", torch.device("cpu"))
            bare_steps(net, content, 1, lambda: None)  # allocates once
            before = resource.getrusage(resource.RUSAGE_SELF)
            times = bare_steps(net, content, steps, lambda: None)
            after = resource.getrusage(resource.RUSAGE_SELF)
            results[str(size)] = {"wall_s": round(min(w for w, _ in times), 3),
                                  "cpu_s": round(min(c for _, c in times), 3),
                                  "page_faults_per_step": round((after.ru_minflt - before.ru_minflt) / steps),
                                  "kernel_s_per_step": round((after.ru_stime - before.ru_stime) / steps, 3)}
            print(f"{size} px: {results[str(size)]}", file=sys.stderr, flush=True)
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.sizes, args.steps, args.threads)
    runs, load = {}, os.getloadavg()[0]
    inherited = {k: v for k, v in os.environ.items() if k not in SELECTORS}  # each run sets its own
    for name, env in allocators().items():
        print(f"{name}:", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--child", "--sizes", *map(str, args.sizes), "--steps", str(args.steps),
                   "--threads", str(args.threads)]
        done = subprocess.run(command, env={**inherited, **env}, stdout=subprocess.PIPE, text=True)
        runs[name] = json.loads(done.stdout) if done.returncode == 0 else {"failed": f"exit status {done.returncode}"}
    default = runs["glibc malloc"]
    for run in runs.values():
        if "failed" not in run and "failed" not in default:
            for size, figures in run.items():
                figures["speedup"] = round(default[size]["wall_s"] / figures["wall_s"], 2)
    report = json.dumps({
        "benchmark": "allocator", "what": "bare forward+backward of the VGG19 head (style_step.py) on the CPU",
        "threads": args.threads, "steps": args.steps, "load_average_at_start": load,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "runs": runs,
    }, indent=1)
    if args.out:
        args.out.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
