"""table.py: print bench/run.sh's results as ONE table, and check it is complete.

usage: table.py [--smoke] [--defaults-only] RESULTS

RESULTS has one line per measurement, `NAME key=value ...` (NAME is the run,
the rest is zjq-bench's last line), and `meta key=value ...` lines with the
conditions. Exit status 0 if every figure of the table is there, 1 if not
(the missing ones are listed). No speed is asserted, in any mode.
"""

import sys

#  Every figure the table shows: (run name, key)
REQUIRED = [(run, key)
            for run in ("relay_1w_w1", "relay_1w_w1000", "relay_2w_w1", "relay_2w_w1000",
                        "zjq_1w_w1", "zjq_1w_w1000", "zjq_2w_w1", "zjq_2w_w1000")
            for key in ("jobs_per_s", "p50_us", "p99_us", "p999_us")]
REQUIRED += [(run, key) for run in ("zjq_1w_w1000", "zjq_2w_w1000")
             for key in ("broker_cpu_us_per_job",)]
REQUIRED += [("zjq_lat_%d" % pct, key) for pct in (10, 50, 80)
             for key in ("offered_per_s", "jobs_per_s", "p50_us", "p99_us", "p999_us")]
REQUIRED += [("mem_submit", key) for key in ("jobs", "jobs_per_s", "broker_rss_before_kb",
                                             "broker_rss_after_kb")]
REQUIRED += [("meta", key) for key in ("mem_rss_idle_kb", "mem_rss_full_kb", "mem_rss_drained_kb",
                                       "sha256_rounds", "lat_max")]
REQUIRED += [(run, "jobs_per_s") for run in ("sha256_1w", "sha256_2w")]
#  Issue 14: two workers with no tuning flags, and the relay at window 200
DEFAULT_REQUIRED = [(run, key)
                    for run in ("relay_2w_w1", "relay_2w_w200", "relay_2w_w1000",
                                "zjq_def_2w_w1", "zjq_def_2w_w200", "zjq_def_2w_w1000")
                    for key in ("jobs_per_s", "p50_us", "p99_us")]
REQUIRED += DEFAULT_REQUIRED


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            fields = runs.setdefault(words[0], {})
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if sep:
                    fields[key] = value
    return runs


def number(runs, run, key):
    try:
        value = float(runs.get(run, {})[key])
    except (KeyError, ValueError):
        return None
    return value if runs.get(run, {}).get("failed") != "1" else None


def full_rows(get, row, fmt, ratio, verdict, runs, meta):
    """The rows of the full run (sections 1-5 of run.sh)."""
    #  1. null-job throughput
    for workers in (1, 2):
        for window in (1, 1000):
            name = "%dw_w%d" % (workers, window)
            z, r = get("zjq_" + name, "jobs_per_s"), get("relay_" + name, "jobs_per_s")
            target = status = ""
            if window == 1000:
                target = ">= 0.40x (goal 0.60x)"
                status = verdict(None if z is None or not r else z / r >= 0.40)
            row("null-job throughput, %d worker%s, window %d" % (workers, "s"[:workers - 1], window),
                fmt(z, unit=" jobs/s"), fmt(r, unit=" jobs/s"), ratio(z, r) + "x", target, status)
    #  latency at window 1
    for workers in (1, 2):
        name = "%dw_w1" % workers
        zl = [get("zjq_" + name, k) for k in ("p50_us", "p99_us", "p999_us")]
        rl = [get("relay_" + name, k) for k in ("p50_us", "p99_us", "p999_us")]
        ok = None if zl[0] is None or not rl[0] else zl[0] / rl[0] <= 1.5
        row("latency p50/p99/p99.9, window 1, %d worker%s" % (workers, "s"[:workers - 1]),
            "/".join(fmt(v) for v in zl) + " us", "/".join(fmt(v) for v in rl) + " us",
            ratio(zl[0], rl[0]) + "x p50", "p50 <= 1.5x relay", verdict(ok))
    #  2. open-loop latency
    for pct in (10, 50, 80):
        run = "zjq_lat_%d" % pct
        lat = [get(run, k) for k in ("p50_us", "p99_us", "p999_us")]
        row("latency p50/p99/p99.9 at %d%% of max, open loop" % pct,
            "/".join(fmt(v) for v in lat) + " us",
            "", "", "offered %s, got %s jobs/s" % (fmt(get(run, "offered_per_s")),
                                                   fmt(get(run, "jobs_per_s"))))
    #  5. broker CPU per job
    for workers in (1, 2):
        for window in (1, 1000):
            cpu = get("zjq_%dw_w%d" % (workers, window), "broker_cpu_us_per_job")
            util = get("zjq_%dw_w%d" % (workers, window), "broker_cpu_util")
            pipelined = window == 1000
            relay_cpu = get("relay_%dw_w%d" % (workers, window), "broker_cpu_us_per_job")
            row("broker CPU per job, %d worker%s, window %d" % (workers, "s"[:workers - 1], window),
                fmt(cpu, "{:.1f}", " us"), fmt(relay_cpu, "{:.1f}", " us"),
                "" if util is None else "%.0f%% of a core" % (util * 100),
                "<= 5 us" if pipelined else "",
                verdict(None if cpu is None else cpu <= 5) if pipelined else "")
    #  3. memory
    jobs = get("mem_submit", "jobs")
    before, after = get("mem_submit", "broker_rss_before_kb"), get("mem_submit", "broker_rss_after_kb")
    size = float(meta.get("mem_size", "100"))
    per_job = None if None in (jobs, before, after) or not jobs else (after - before) * 1024 / jobs
    overhead = None if per_job is None else per_job - size
    row("broker RSS per queued job (%s x %.0f B)" % (fmt(jobs), size), fmt(per_job, unit=" B"),
        "", "%s B beyond payload" % fmt(overhead), "<= 150 B overhead",
        verdict(None if overhead is None else overhead <= 150))
    want = float(meta.get("mem_jobs", "0"))
    errors = get("mem_submit", "errors")
    row("queued jobs accepted (no worker)", fmt(jobs), "", "at %s jobs/s" % fmt(get("mem_submit", "jobs_per_s")),
        "all %s" % fmt(want), verdict(None if jobs is None else jobs == want and not errors))
    idle, full, drained = (number(runs, "meta", k) for k in
                           ("mem_rss_idle_kb", "mem_rss_full_kb", "mem_rss_drained_kb"))
    returned = None if None in (idle, full, drained) or full <= idle else (full - drained) / (full - idle)
    row("broker RSS idle / full / drained", "/".join(fmt(None if v is None else v / 1024, "{:,.1f}")
                                                     for v in (idle, full, drained)) + " MB",
        "", "%s of growth returned" % fmt(None if returned is None else returned * 100, "{:.0f}", "%"),
        "memory back after drain", verdict(None if returned is None else returned >= 0.9))
    #  4. sha256 scaling
    s1, s2 = get("sha256_1w", "jobs_per_s"), get("sha256_2w", "jobs_per_s")
    label = "sha256 ~%s ms jobs (%s rounds)" % (meta.get("sha256_ms", "?"), meta.get("sha256_rounds", "?"))
    row(label + ", 1 worker", fmt(s1, "{:,.1f}", " jobs/s"), "", "n/a")
    row(label + ", 2 workers", fmt(s2, "{:,.1f}", " jobs/s"), "", ratio(s2, s1) + "x over 1",
        ">= 1.8x", verdict(None if s1 is None or not s2 else s2 / s1 >= 1.8))



def print_conditions(meta, fmt, lat_max):
    """The conditions line of the full run."""
    print("conditions: 127.0.0.1 tcp; payload %s B; windows 1 and %s; zjq-worker --builtin echo "
          "%s; jobs %s (window 1), %s (zjq window %s), %s (relay window %s); "
          "open-loop latency with %s worker(s), max %s jobs/s"
          % (meta.get("size"), meta.get("window"), meta.get("echo_worker", "?").replace("_", " "), meta.get("jobs_w1"),
             meta.get("jobs_pipe"), meta.get("window"), meta.get("jobs_relay_pipe"),
             meta.get("window"), meta.get("lat_workers", "?"), fmt(lat_max)))


def main():
    args = sys.argv[1:]
    smoke = "--smoke" in args
    defaults_only = "--defaults-only" in args
    args = [a for a in args if a not in ("--smoke", "--defaults-only")]
    if len(args) != 1:
        sys.exit(__doc__)
    runs = load(args[0])
    meta = runs.get("meta", {})
    get = lambda run, key: number(runs, run, key)

    def fmt(value, spec="{:,.0f}", unit=""):
        return "?" if value is None else spec.format(value) + unit

    def ratio(a, b, spec="{:.2f}"):
        return "?" if a is None or not b else spec.format(a / b)

    def verdict(ok):
        return "?" if ok is None else ("met" if ok else "NOT MET")

    rows = []

    def row(what, zjq="", relay="", rel="", target="", status=""):
        rows.append((what, zjq, relay, rel, target, status))

    #  0. zjq as shipped: two default workers (issue 14)
    for window in (1, 200, 1000):
        z = get("zjq_def_2w_w%d" % window, "jobs_per_s")
        r = get("relay_2w_w%d" % window, "jobs_per_s")
        if window == 1:
            zp, rp = get("zjq_def_2w_w1", "p50_us"), get("relay_2w_w1", "p50_us")
            zl = [get("zjq_def_2w_w1", k) for k in ("p50_us", "p99_us")]
            rl = [get("relay_2w_w1", k) for k in ("p50_us", "p99_us")]
            row("default workers (2, no flags): p50/p99, window 1",
                "/".join(fmt(v) for v in zl) + " us", "/".join(fmt(v) for v in rl) + " us",
                ratio(zp, rp) + "x p50", "p50 <= 1.3x relay",
                verdict(None if zp is None or not rp else zp / rp <= 1.3))
            continue
        row("default workers (2, no flags): window %d" % window, fmt(z, unit=" jobs/s"),
            fmt(r, unit=" jobs/s"), ratio(z, r) + "x", ">= 0.5x (aim 0.6x)",
            verdict(None if z is None or not r else z / r >= 0.5))
    if not defaults_only:
        full_rows(get, row, fmt, ratio, verdict, runs, meta)

    #  Print
    print("zjq benchmark: %s cores (%s), libzmq %s, load average %s at start, %s at end%s"
          % (meta.get("cores", "?"), meta.get("cpu", "?").replace("_", " "),
             meta.get("libzmq", "?"), meta.get("load_start", "?"), meta.get("load_end", "?"),
             " [SMOKE: tiny N, numbers meaningless]" if smoke else ""))
    if defaults_only:
        print("conditions: 127.0.0.1 tcp; payload %s B; two zjq-worker --queue echo --builtin echo "
              "(no tuning flag) against zjq-relay with two echo workers; jobs %s (window 1), %s "
              "(zjq windows 200 and 1000), %s (relay)" % (meta.get("size"), meta.get("jobs_w1"),
                                                         meta.get("jobs_pipe"),
                                                         meta.get("jobs_relay_pipe")))
    else:
        print_conditions(meta, fmt, number(runs, "meta", "lat_max"))
    header = ("measurement", "zjq", "relay", "zjq/relay, notes", "target", "status")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for r in rows:
        print(line(r))

    required = DEFAULT_REQUIRED if defaults_only else REQUIRED
    missing = ["%s.%s" % (run, key) for run, key in required if number(runs, run, key) is None]
    failed = sorted(run for run, fields in runs.items() if fields.get("failed") == "1")
    if failed:
        print("failed runs: " + " ".join(failed))
    if missing:
        print("MISSING figures: " + " ".join(missing))
        return 1
    if smoke:
        print("smoke: every figure present (%d checked)" % len(required))
    return 0


if __name__ == "__main__":
    sys.exit(main())
