#!/usr/bin/env python3
"""hearth vs llama.cpp on the same GGUF files, same threads, same run, interleaved repetitions.

Builds nothing itself: pass the llama.cpp bin folder printed by tools/build-llama-baseline.sh
and a hearth binary. For each model x threads it runs `llama-bench` and `hearth bench` one
repetition at a time, alternating, and reports medians, peak RSS (wait4 of each process) and
decode as a percentage of the memory-bandwidth roofline (weight bytes read per token / read
bandwidth measured by bench/bandwidth_bench).

Usage:
  bench/compare_llama.py --llama-bin DIR --hearth build/release/src/cli/hearth \
      --bandwidth-bench build/release/bench/bandwidth_bench \
      --model e2b.Q4_K_M.gguf [--model ...] [--threads 1,2] [-p 512] [-n 128] [--depth 0] [-r 3]
Prints a Markdown table (and --json FILE writes the raw numbers).
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys


def run(cmd):
    """Runs cmd, returns (stdout, peak RSS bytes of that process)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return out.decode(), usage.ru_maxrss * 1024


def llama_once(llama_bin, model, threads, p, n, depth):
    cmd = [os.path.join(llama_bin, "llama-bench"), "-m", model, "-t", str(threads), "-r", "1",
           "-o", "json", "-p", str(p), "-n", str(n)]
    if depth:
        cmd += ["-d", str(depth)]
    out, rss = run(cmd)
    pp = tg = None
    for row in json.loads(out):
        if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
            pp = row["avg_ts"]
        if row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            tg = row["avg_ts"]
    return pp, tg, rss


def hearth_once(hearth, model, threads, p, n, depth):
    cmd = [hearth, "bench", "-m", model, "-t", str(threads), "-r", "1", "--json", "-p", str(p),
           "-n", str(n), "--depth", str(depth)]
    out, rss = run(cmd)
    row = json.loads(out)
    return row["pp_tokens_per_s"] if p else None, row["tg_tokens_per_s"] if n else None, rss


def gguf_tensors(path):
    """(name, shape, n_bytes) of every tensor, from the GGUF header."""
    with open(path, "rb") as f:
        head = f.read(64 << 20)
    pos = 8
    n_tensors, n_kv = struct.unpack_from("<qq", head, pos)
    pos += 16
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def read_str():
        nonlocal pos
        (length,) = struct.unpack_from("<Q", head, pos)
        pos += 8 + length
        return head[pos - length:pos].decode("utf-8", "replace")

    for _ in range(n_kv):
        read_str()
        (vtype,) = struct.unpack_from("<I", head, pos)
        pos += 4
        if vtype == 8:
            read_str()
        elif vtype == 9:
            etype, count = struct.unpack_from("<IQ", head, pos)
            pos += 12
            if etype == 8:
                for _ in range(count):
                    read_str()
            else:
                pos += count * sizes[etype]
        else:
            pos += sizes[vtype]
    block = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
             8: (32, 34), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
             14: (256, 210), 20: (32, 18), 23: (256, 136)}
    tensors = []
    for _ in range(n_tensors):
        name = read_str()
        (n_dims,) = struct.unpack_from("<I", head, pos)
        pos += 4
        shape = struct.unpack_from(f"<{n_dims}q", head, pos)
        pos += 8 * n_dims
        ttype, _ = struct.unpack_from("<IQ", head, pos)
        pos += 12
        elements = 1
        for d in shape:
            elements *= d
        bs, ts = block[ttype]
        tensors.append((name, shape, elements // bs * ts))
    return tensors


def bytes_per_token(path):
    """Weight bytes a decode step reads: everything except the per-layer embedding table (one
    row per token), the unused K/V projections of KV-shared layers, and the experts not routed to
    (top-k of E)."""
    tensors = gguf_tensors(path)
    total = 0
    for name, shape, n_bytes in tensors:
        if name == "per_layer_token_embd.weight":
            total += n_bytes // shape[-1]
        elif "_exps." in name and len(shape) == 3:
            total += n_bytes * 8 // shape[2]  # top-8 experts (26B-A4B)
        else:
            total += n_bytes
    return total


def bandwidth(bench_binary, threads):
    out, _ = run([bench_binary, "--benchmark_format=json",
                  f"--benchmark_filter=BM_ReadBandwidth/{threads}/"])
    return json.loads(out)["benchmarks"][0]["bytes_per_second"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--hearth", required=True)
    ap.add_argument("--bandwidth-bench")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--depth", type=int, default=0)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()

    results = []
    bw = {}
    for model in args.model:
        bpt = bytes_per_token(model)
        for threads in [int(t) for t in args.threads.split(",")]:
            if args.bandwidth_bench and threads not in bw:
                bw[threads] = bandwidth(args.bandwidth_bench, threads)
            runs = {"llama": [], "hearth": []}
            for _ in range(args.r):  # interleaved: llama, hearth, llama, hearth, ...
                runs["llama"].append(llama_once(args.llama_bin, model, threads, args.p, args.n,
                                                args.depth))
                runs["hearth"].append(hearth_once(args.hearth, model, threads, args.p, args.n,
                                                  args.depth))
            row = {"model": os.path.basename(model), "threads": threads, "depth": args.depth,
                   "bytes_per_token": bpt}
            for engine, rs in runs.items():
                pps = [r[0] for r in rs if r[0]]
                tgs = [r[1] for r in rs if r[1]]
                row[engine] = {
                    "pp": statistics.median(pps) if pps else None,
                    "tg": statistics.median(tgs) if tgs else None,
                    "pp_all": pps,  # every repetition, for the spread
                    "tg_all": tgs,
                    "rss": max(r[2] for r in rs),
                }
            if threads in bw:
                row["bandwidth"] = bw[threads]
            results.append(row)
            print(f"# {row}", file=sys.stderr, flush=True)
            if args.json:  # after every row, so an interrupted run keeps what it measured
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)

    def fmt(x, spec="{:.2f}"):
        return "–" if x is None else spec.format(x)

    print(f"| model | threads | depth | llama.cpp pp{args.p} | hearth pp{args.p} | ratio | "
          f"llama.cpp tg{args.n} | hearth tg{args.n} | ratio | hearth roofline % | "
          f"llama.cpp RSS MiB | hearth RSS MiB | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        l, h = r["llama"], r["hearth"]
        pp_ratio = h["pp"] / l["pp"] if h["pp"] and l["pp"] else None
        tg_ratio = h["tg"] / l["tg"] if h["tg"] and l["tg"] else None
        roof = None
        if h["tg"] and "bandwidth" in r:
            roof = 100.0 * h["tg"] * r["bytes_per_token"] / r["bandwidth"]
        print(f"| {r['model']} | {r['threads']} | {r['depth']} | {fmt(l['pp'])} | {fmt(h['pp'])} | "
              f"{fmt(pp_ratio, '{:.2f}x')} | {fmt(l['tg'])} | {fmt(h['tg'])} | "
              f"{fmt(tg_ratio, '{:.2f}x')} | {fmt(roof, '{:.0f}')} | {l['rss'] / 2**20:.0f} | "
              f"{h['rss'] / 2**20:.0f} | {h['rss'] / l['rss']:.2f}x |")


if __name__ == "__main__":
    main()
