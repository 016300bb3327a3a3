#!/usr/bin/env python3
"""Where a benchmark's CPU went: per process (with its children and threads) and the busiest
thread of each, over the seconds between two snapshots. Linux /proc only; used by the
benchmark scripts (cpu_snapshot and cpu_report in scripts/lib.sh).

    cpu.py snapshot NAME=PID ... > before.json
    ... load ...
    cpu.py snapshot NAME=PID ... > after.json
    cpu.py report before.json after.json
    cpu.py backends before.json after.json PROCESS activity.tsv

`backends` splits PROCESS's figure (a PostgreSQL server) by what each of its processes serves:
activity.tsv maps a backend's pid to its client's application_name (pms names each service's
pool `pms-SERVICE`) or to its kind (walwriter, autovacuum worker...), as pg_stat_activity
gives them; the rest (the postmaster, processes gone before the mapping was read) is "other".

A process's figure counts the process itself and every descendant (a PostgreSQL postmaster's
backends), each with all its threads. The report is one Markdown line: CPU seconds per second
of wall time (1.00 = one core busy), and the busiest thread's share, which shows a task that
one core bounds (a broker whose storage runs on one thread).
"""

import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(path):
    with open(path) as f:
        text = f.read()
    # The command name (field 2) is in parentheses and may hold spaces.
    name = text[text.index("(") + 1 : text.rindex(")")]
    return name, text[text.rindex(")") + 2 :].split()


def children():
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                _, rest = stat_fields(f"/proc/{entry}/stat")
            except (OSError, ValueError):
                continue
            parents.setdefault(int(rest[1]), []).append(int(entry))
    return parents


def threads(pid):
    """(thread name, CPU ticks) of each thread of pid."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            name, rest = stat_fields(f"/proc/{pid}/task/{tid}/stat")
        except (OSError, ValueError):
            continue
        # utime and stime are fields 14 and 15; rest starts at field 3.
        out.append((f"{tid}:{name}", int(rest[11]) + int(rest[12])))
    return out


def snapshot(specs):
    tree = children()
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    # Busy: everything but idle and iowait.
    busy = sum(cpu) - cpu[3] - cpu[4]
    # Steal: time the hypervisor gave this VM's cores to others (counted in busy); a VM whose
    # neighbours are busy shows it, and latency tails grow with it.
    steal = cpu[7] if len(cpu) > 7 else 0
    result = {"wall": time.monotonic(), "busy": busy, "steal": steal, "processes": {}}
    for spec in specs:
        name, pid = spec.split("=", 1)
        todo, seen = [int(pid)], {}
        while todo:
            current = todo.pop()
            for thread, ticks in threads(current):
                seen[f"{current}/{thread}"] = ticks
            todo.extend(tree.get(current, []))
        result["processes"][name] = seen
    return result


def report(before, after):
    wall = after["wall"] - before["wall"]
    parts = []
    for name, now in after["processes"].items():
        then = before["processes"].get(name, {})
        deltas = {t: ticks - then.get(t, 0) for t, ticks in now.items()}
        total = sum(deltas.values()) / TICKS
        busiest = max(deltas.values(), default=0) / TICKS
        parts.append(f"{name} {total / wall:.2f} (busiest thread {busiest / wall:.2f})")
    machine = (after["busy"] - before["busy"]) / TICKS / wall
    stolen = (after.get("steal", 0) - before.get("steal", 0)) / TICKS / wall
    return (
        f"CPU over {wall:.0f} s in cores busy: the machine {machine:.2f} of {os.cpu_count()} "
        f"({stolen:.2f} stolen by the hypervisor); "
        + "; ".join(parts)
    )


def backends(before, after, process, activity):
    """Markdown rows: cores of `process` by what each of its processes serves."""
    wall = after["wall"] - before["wall"]
    labels = {}
    for line in activity:
        pid, _, label = line.rstrip("\n").partition("\t")
        if pid.isdigit():
            labels[int(pid)] = label or "other"
    then = before["processes"].get(process, {})
    by_label = {}
    for key, ticks in after["processes"].get(process, {}).items():
        label = labels.get(int(key.split("/", 1)[0]), "other")
        by_label[label] = by_label.get(label, 0) + ticks - then.get(key, 0)
    rows = ["| PostgreSQL process | cores |", "|---|---|"]
    for label, ticks in sorted(by_label.items(), key=lambda item: -item[1]):
        cores = ticks / TICKS / wall
        if cores >= 0.005:
            rows.append(f"| {label} | {cores:.2f} |")
    return "\n".join(rows)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "snapshot":
        json.dump(snapshot(sys.argv[2:]), sys.stdout)
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        with open(sys.argv[2]) as a, open(sys.argv[3]) as b:
            print(report(json.load(a), json.load(b)))
    elif len(sys.argv) == 6 and sys.argv[1] == "backends":
        with open(sys.argv[2]) as a, open(sys.argv[3]) as b, open(sys.argv[5]) as c:
            print(backends(json.load(a), json.load(b), sys.argv[4], c))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
