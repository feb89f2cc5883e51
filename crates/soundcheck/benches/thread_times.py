"""Per-thread CPU, scheduler and I/O figures of a running process, for BENCHMARKS.md § 5.

`fresh_start.sh` takes a snapshot before and after a load run and prints the difference per
request, so the SQLite writer thread, the tokio workers and the checkpoint threads of
`soundcheck serve` can be told apart (Linux only: it reads /proc).

    python3 thread_times.py snap PID FILE            # write a snapshot of PID's threads to FILE
    python3 thread_times.py diff BEFORE AFTER N      # per-thread difference divided by N requests

Columns (per request): user and system CPU in ms (/proc/PID/task/TID/stat), time running and
waiting for a core in ms and time slices (schedstat), read and write calls and KiB (io).
"""

import json
import os
import sys

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def snapshot(pid):
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/stat") as f:
                stat = f.read()
            with open(f"{base}/schedstat") as f:
                run_ns, wait_ns, slices = (int(v) for v in f.read().split()[:3])
            with open(f"{base}/io") as f:
                io = {k: int(v) for k, v in (line.split(":") for line in f)}
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # the thread ended meanwhile, or io is not readable
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        threads[tid] = {
            "name": name,
            "user_ms": int(fields[11]) * 1000 / CLOCK_TICKS,
            "system_ms": int(fields[12]) * 1000 / CLOCK_TICKS,
            "run_ms": run_ns / 1e6,
            "wait_ms": wait_ns / 1e6,
            "slices": slices,
            "reads": io.get("syscr", 0),
            "writes": io.get("syscw", 0),
            "read_kib": io.get("rchar", 0) / 1024,
            "written_kib": io.get("wchar", 0) / 1024,
        }
    return threads


def diff(before, after, requests, top=8):
    rows = []
    for tid, now in after.items():
        then = before.get(tid, {})
        delta = {k: (v - then.get(k, 0)) / requests for k, v in now.items() if k != "name"}
        rows.append((delta["run_ms"], tid, now["name"], delta))
    rows.sort(reverse=True)
    print("per request: thread, user ms, system ms, running ms, waiting ms, slices, "
          "read calls, write calls, read KiB, written KiB")
    for _, tid, name, d in rows[:top]:
        print(f"{tid:>8} {name:<16} {d['user_ms']:6.2f} {d['system_ms']:6.2f} {d['run_ms']:6.2f} "
              f"{d['wait_ms']:6.2f} {d['slices']:5.0f} {d['reads']:6.0f} {d['writes']:6.0f} "
              f"{d['read_kib']:6.0f} {d['written_kib']:6.0f}")


def main(args):
    if len(args) == 3 and args[0] == "snap":
        with open(args[2], "w") as f:
            json.dump(snapshot(args[1]), f)
    elif len(args) == 4 and args[0] == "diff" and args[3].isdigit() and int(args[3]) > 0:
        with open(args[1]) as f:
            before = json.load(f)
        with open(args[2]) as f:
            after = json.load(f)
        diff(before, after, int(args[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
