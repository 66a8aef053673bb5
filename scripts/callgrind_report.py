#!/usr/bin/env python3
"""Turns scripts/callgrind.sh's rows (server, scenario, requests, callgrind dump, Redis
INFO COMMANDSTATS) into the table of instructions and allocations per request, and with
--write puts it into BENCHMARKS.md, between <!-- callgrind:start --> and its end."""

import collections
import datetime
import os
import re
import subprocess
import sys

LABELS = {
    "bare": "bare Rocket 0.5, `/json`, cookie sent",
    "store-memory": "rocket-session-store 0.2.1, memory",
    "flex-memory": "rocket_flex_session 0.2, memory",
    "ours-memory": "rocket_server_sessions, memory",
    "flex-redis": "rocket_flex_session 0.2, Redis (fred)",
    "ours-redis": "rocket_server_sessions, Redis",
}
SCENARIOS = {
    "json_with_cookie": "the base",
    "counter": "`/counter`, one session",
    "new_visitors": "`/counter`, new visitors",
}
# SHA-256's compression function in sha2 0.10: `compress256` dispatches to `soft::compress`
# (what runs under valgrind, which hides SHA-NI) or `x86::...`. A call into any of them from
# outside them is counted with all it calls.
SHA_COMPRESS = re.compile(r"^sha2::sha256::(compress256|soft::|x86::)")
# Calls that make a new block; realloc is reported apart. Calls among these functions
# themselves (glibc's realloc calling malloc, say) are not counted.
ALLOCS = {"malloc", "calloc", "posix_memalign", "aligned_alloc", "memalign"}
ALLOC_FAMILY = ALLOCS | {"realloc", "free"}


def base_name(name):
    """A function's name without callgrind's recursion suffix ('2) or glibc's aliases."""
    name = re.sub(r"'\d+$", "", name)
    return {"__libc_malloc": "malloc", "__libc_calloc": "calloc", "__libc_realloc": "realloc",
            "__libc_free": "free", "__posix_memalign": "posix_memalign",
            "__libc_memalign": "memalign"}.get(name, name)


def parse(path):
    """Total Ir, Ir inside sha2's compression function, allocations and reallocs."""
    names = {}
    total = None
    fn = cfn = None
    pending_calls = None
    sha = allocs = reallocs = 0

    def named(value):
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return base_name(value)
        if m.group(2) is not None:
            names[m.group(1)] = base_name(m.group(2))
        return names[m.group(1)]

    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        if line[0].isdigit() or line[0] in "+-*":
            if pending_calls is not None:
                ir = int(line.split()[1]) if len(line.split()) > 1 else 0
                if SHA_COMPRESS.match(cfn) and not SHA_COMPRESS.match(fn):
                    sha += ir
                if cfn in ALLOCS and fn not in ALLOC_FAMILY:
                    allocs += pending_calls
                if cfn == "realloc" and fn not in ALLOC_FAMILY:
                    reallocs += pending_calls
                pending_calls = None
            continue
        key, _, value = line.partition("=")
        if key == "fn":
            fn = named(value)
        elif key == "cfn":
            cfn = named(value)
        elif key == "calls":
            pending_calls = int(value.split()[0])
        elif line.startswith("totals:") or line.startswith("summary:"):
            total = int(line.split()[1])
    return total, sha, allocs, reallocs


def redis_stats(path, requests):
    """[(command, usec_per_call, calls per request)] and Redis's usec per request."""
    stats, usec = [], 0.0
    for line in open(path):
        m = re.match(r"cmdstat_(\S+?):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", line)
        if not m or m.group(1) in ("info", "ping") or m.group(1).startswith("config"):
            continue
        stats.append((m.group(1), float(m.group(4)), int(m.group(2)) / requests))
        usec += int(m.group(3))
    stats.sort(key=lambda s: -s[2])
    return stats, usec / requests


def table(rows):
    base = next(r["without"] for r in rows if r["server"] == "bare")
    lines = ["| server | scenario | instructions / request | without sha2 compress | × bare | allocations / request | Redis usec_per_call (calls / request) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        redis = "-"
        if r["server"].endswith("redis"):
            stats, usec = r["redis"]
            redis = ", ".join(f"{name} {per_call:.2f} ({calls:.2f})" for name, per_call, calls in stats)
            redis += f"; {usec:.2f} µs / request"
        lines.append(f"| {LABELS.get(r['server'], r['server'])} | {SCENARIOS.get(r['scenario'], r['scenario'])} "
                     f"| {r['whole'] / 1000:,.1f}k | {r['without'] / 1000:,.1f}k | **{r['without'] / base:.2f}** "
                     f"| {r['allocs']:.1f} | {redis} |")
    return "\n".join(lines)


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores ({model}), {valgrind}"


def main():
    rows = []
    for line in open(sys.argv[1]):
        server, scenario, requests, dump, redis = line.split()
        requests = int(requests)
        total, sha, allocs, reallocs = parse(dump)
        row = dict(server=server, scenario=scenario, whole=total / requests,
                   without=(total - sha) / requests, allocs=allocs / requests,
                   redis=redis_stats(redis, requests))
        print(f"{server} {scenario}: {requests} requests, Ir {total}, sha2 compress {sha}, "
              f"allocations {allocs}, reallocs {reallocs} ({reallocs / requests:.2f} / request)",
              file=sys.stderr)
        rows.append(row)
    text = table(rows)
    print(text)
    if "--write" not in sys.argv:
        return
    block = (f"<!-- callgrind:start -->\nMeasured {datetime.date.today()} on {machine()} by "
             f"`bash scripts/callgrind.sh --write`.\n\n{text}\n<!-- callgrind:end -->")
    doc = open("BENCHMARKS.md").read()
    if "<!-- callgrind:start -->" not in doc:
        sys.exit("BENCHMARKS.md has no <!-- callgrind:start --> ... <!-- callgrind:end --> block")
    doc = re.sub(r"<!-- callgrind:start -->.*<!-- callgrind:end -->", lambda _: block, doc, flags=re.S)
    open("BENCHMARKS.md", "w").write(doc)


if __name__ == "__main__":
    main()
