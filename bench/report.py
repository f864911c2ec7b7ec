#!/usr/bin/env python3
"""Turns Google Benchmark JSON (with repetitions) into the tables of bench/RESULTS.md:
medians per operation and the same-run ratios the core targets are stated in."""

import json
import sys


def medians(doc):
    out = {}
    for b in doc["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"]
            unit = b.get("time_unit", "ns")
            scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[unit]
            out[name] = b["real_time"] * scale  # microseconds
    return out


def lookup(m, name, bits):
    """Median of benchmark `name` at `bits`, whatever fixed-iteration suffix it carries."""
    for key, value in m.items():
        parts = key.split("/")
        if parts[0] == name and len(parts) > 1 and parts[1] == str(bits):
            return value
    return None


def main(path):
    with open(path) as f:
        doc = json.load(f)
    m = medians(doc)
    ctx = doc["context"]
    print(f"Machine: {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz, "
          f"{ctx.get('date')}, library build type {ctx.get('library_build_type')}.\n")
    print("| operation | n = 2048 | n = 3072 |")
    print("|---|---|---|")
    sized = sorted({k.split("/", 1)[0] for k in m if "/" in k})
    unsized = sorted(k for k in m if "/" not in k)
    for name in sized:
        cells = []
        for bits in (2048, 3072):
            v = lookup(m, name, bits)
            if v is None:
                cells.append("–")
            elif v >= 1000:
                cells.append(f"{v / 1000:,.2f} ms ({1e6 / v:,.1f}/s)")
            else:
                cells.append(f"{v:,.2f} µs ({1e6 / v:,.0f}/s)")
        print(f"| {name.replace('BM_', '')} | {cells[0]} | {cells[1]} |")

    if unsized:
        print("\n| operation (independent of n) | time |")
        print("|---|---|")
        for name in unsized:
            print(f"| {name.replace('BM_', '')} | {m[name] * 1000:,.0f} ns |")

    def ratio(a, b, bits):
        va, vb = lookup(m, a, bits), lookup(m, b, bits)
        if va is not None and vb is not None:
            return va / vb
        return float("nan")

    print("\n| target (same-run ratio) | needed | n = 2048 | n = 3072 |")
    print("|---|---|---|---|")
    rows = [
        ("fast encryption vs textbook", "BM_EncryptTextbook", "BM_EncryptFast", ">= 12x", 12, True),
        ("online encryption from pool vs textbook", "BM_EncryptTextbook",
         "BM_EncryptOnlineFromPool", ">= 1000x", 1000, True),
        ("constant-time CRT decryption vs textbook decryption", "BM_DecryptTextbook",
         "BM_DecryptCrtConstantTime", ">= 3x", 3, True),
        ("add vs bare mpz_mul + mpz_mod (time ratio)", "BM_Add", "BM_BareMulMod", "<= 1.10", 1.10,
         False),
    ]
    for label, slow, fast, needed, bound, higher_is_better in rows:
        cells = []
        for bits in (2048, 3072):
            r = ratio(slow, fast, bits)
            ok = (r >= bound) if higher_is_better else (r <= bound)
            cells.append(f"{r:,.2f}x {'met' if ok else 'MISSED'}" if r == r else "–")
        print(f"| {label} | {needed} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1])
