"""End to end: 1000 sha256 jobs from 4 concurrent `zjq batch` clients
through 3 workers; every result checked against hashlib."""

import os

import zjqtest as zt


CLIENTS = 4
JOBS_PER_CLIENT = 250
ROUNDS = 200


def parse_batch_output(out):
    rows = {}
    for line in out.decode().splitlines():
        parts = line.split("\t", 3)
        assert len(parts) == 4, "bad batch line %r" % line
        line_no, job_id, state, rest = parts
        line_no = int(line_no)
        assert line_no not in rows, "line %d reported twice" % line_no
        rows[line_no] = (job_id, state, rest)
    return rows


def test_thousand_sha256_jobs(zjq):
    zjq.start_broker(verbose=False)
    workers = [zjq.start_worker("sha", builtin="sha256", verbose=False) for _ in range(3)]

    payloads = []
    procs = []
    for client in range(CLIENTS):
        lines = ["%d:data-%d-%d" % (ROUNDS, client, i) for i in range(JOBS_PER_CLIENT)]
        payloads.append(lines)
        path = os.path.join(zjq.dir, "batch%d.txt" % client)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        if client == 0:
            # One client reads its payloads from stdin, the others from --file.
            stdin = open(path, "rb")
            procs.append(zjq.popen_zjq("batch", "sha", "--window", 32, "--timeout", zt.T(400),
                                       stdin=stdin))
            stdin.close()
        else:
            procs.append(zjq.popen_zjq("batch", "sha", "--file", path, "--window", 32,
                                       "--timeout", zt.T(400)))

    all_ids = []
    for client, proc in enumerate(procs):
        out, err = proc.communicate(timeout=zt.T(500))
        assert proc.returncode == 0, "batch %d exited %d: %s" % (client, proc.returncode, err[-2000:])
        assert not zt.SANITIZER_RE.search(err), err
        rows = parse_batch_output(out)
        assert sorted(rows) == list(range(1, JOBS_PER_CLIENT + 1)), \
            "batch %d: line numbers %r..." % (client, sorted(rows)[:5])
        for line_no, (job_id, state, result) in rows.items():
            assert state == "succeeded", (client, line_no, job_id, state, result)
            expected = zt.sha256_rounds(payloads[client][line_no - 1])
            assert result == expected, (client, line_no, job_id, result, expected)
            all_ids.append(job_id)
        assert err.strip(), "batch %d printed no summary on stderr" % client

    assert len(all_ids) == CLIENTS * JOBS_PER_CLIENT
    assert len(set(all_ids)) == len(all_ids), "job ids are not unique"

    # A few results again through `zjq result`, byte for byte.
    for job_id in all_ids[:: len(all_ids) // 5]:
        rc, out, err = zjq.zjq("result", job_id)
        assert rc == 0, err
        assert len(out) == 64 and out == out.lower()

    stats = zjq.stats()
    total = CLIENTS * JOBS_PER_CLIENT
    assert stats["broker"]["submitted"] == total
    assert stats["broker"]["succeeded"] == total
    assert stats["broker"]["failed"] == 0
    assert stats["queues"]["sha"]["succeeded"] == total
    completed = {w["pid"]: w["completed"] for w in stats["workers"]}
    assert set(completed) == set(w.pid for w in workers), completed
    assert sum(completed.values()) == total, completed
    assert all(count > 0 for count in completed.values()), completed
