#!/usr/bin/env python3
"""Turns scripts/bench.sh's raw rows into a table of ratios to bare Rocket's plain route,
and with --write puts the table into BENCHMARKS.md and draws benches/results.svg."""

import datetime
import os
import platform
import re
import sys

LABELS = {
    "bare": "bare Rocket 0.5 (private-cookie counter)",
    "ours-memory": "rocket_server_sessions, memory",
    "ours-redis": "rocket_server_sessions, Redis",
    "ours-redis-one": "rocket_server_sessions, Redis, `redis.connections = 1`",
    "flex-memory": "rocket_flex_session 0.2, memory",
    "flex-redis": "rocket_flex_session 0.2, Redis (fred)",
    "ours-million": "rocket_server_sessions, memory, 1M sessions held",
    "store-memory": "rocket-session-store 0.2.1, memory",
    "ours-postgres": "rocket_server_sessions, PostgreSQL",
    "ours-sqlite": "rocket_server_sessions, SQLite",
    "flex-postgres": "rocket_flex_session 0.2, PostgreSQL (sqlx)",
}
SCENARIOS = {
    "plain": "plain route, no cookie",
    "plain_with_cookie": "plain route, session cookie sent",
    "json_with_cookie": "/counter's JSON answer without a session, cookie sent",
    "counter": "/counter, one session",
    "new_visitors": "/counter, new visitors",
    "counter_before_sweep": "/counter, 1M sessions about to expire",
    "counter_during_sweep": "/counter, while 1M expired sessions are swept",
}
COLORS = {"bare": "#888888", "ours-memory": "#1f77b4", "ours-redis": "#17becf", "ours-redis-one": "#9edae5",
          "flex-memory": "#ff7f0e", "flex-redis": "#d62728", "ours-million": "#2ca02c", "store-memory": "#9467bd",
          "ours-postgres": "#393b79", "ours-sqlite": "#6b6ecf", "flex-postgres": "#8c564b"}


def read(path):
    rows = []
    for line in open(path):
        parts = line.split()
        if len(parts) != 8:
            continue
        server, scenario, rps, p99, requests, trips, cmds, rss = parts
        rows.append(dict(server=server, scenario=scenario, rps=float(rps), p99=p99,
                         trips=trips, cmds=cmds, rss=rss))
    return rows


def table(rows):
    base = next(r["rps"] for r in rows if r["server"] == "bare" and r["scenario"] == "plain")
    lines = ["| server | scenario | requests/s | ratio to bare plain | p99 (ms) | store round trips / request | Redis commands / request | resident memory after (MB) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        r["ratio"] = r["rps"] / base
        lines.append(f"| {LABELS.get(r['server'], r['server'])} | {SCENARIOS.get(r['scenario'], r['scenario'])} "
                     f"| {r['rps']:.0f} | **{r['ratio']:.2f}** | {r['p99']} | {r['trips']} | {r['cmds']} | {r['rss']} |")
    return "\n".join(lines)


def svg(rows):
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]
    bar, gap, left, top = 18, 14, 230, 40
    height = top + sum(gap + bar * sum(1 for r in rows if r["scenario"] == s) for s in scenarios) + 40
    width = 760
    scale = (width - left - 60) / max(1.0, max(r["ratio"] for r in rows))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14" font-weight="bold">Requests/s as a ratio to bare Rocket\'s plain route (higher is better)</text>']
    y = top
    for s in scenarios:
        out.append(f'<text x="10" y="{y + 12}" font-weight="bold">{SCENARIOS[s]}</text>')
        y += gap
        for r in (r for r in rows if r["scenario"] == s):
            w = r["ratio"] * scale
            out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{LABELS.get(r["server"], r["server"])}</text>')
            out.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar - 4}" fill="{COLORS.get(r["server"], "#444")}"/>')
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{r["ratio"]:.2f}</text>')
            y += bar
    x1 = left + scale
    out.append(f'<line x1="{x1:.1f}" y1="{top}" x2="{x1:.1f}" y2="{y}" stroke="#000" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x1:.1f}" y="{y + 16}" text-anchor="middle">1.00 = bare Rocket, plain route</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    rows = read(sys.argv[1])
    text = table(rows)
    print(text)
    if "--write" not in sys.argv:
        return
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    block = (f"<!-- results:start -->\nMeasured {datetime.date.today()} on {machine} by "
             f"`bash scripts/bench.sh --write`.\n\n{text}\n\n![ratios](benches/results.svg)\n<!-- results:end -->")
    doc = open("BENCHMARKS.md").read()
    doc = re.sub(r"<!-- results:start -->.*<!-- results:end -->", lambda _: block, doc, flags=re.S)
    open("BENCHMARKS.md", "w").write(doc)
    open("benches/results.svg", "w").write(svg(rows))


if __name__ == "__main__":
    main()
