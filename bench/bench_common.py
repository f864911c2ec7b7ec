"""What the benchmark scripts (alert_latency.py, e2e_bench.py) share: paths, statistics,
/proc readings and the processes they start. Standard library only; the scripts run as
`python3 bench/<script>.py`, so this module is found beside them."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now_ms():
    return int(time.time() * 1000)


def say(message):
    print(message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def dist(values):
    """n, min, p50, p90, p99 and max of `values` (None when empty)."""
    if not values:
        return None
    return {"n": len(values), "min": min(values), "p50": round(percentile(values, 50)),
            "p90": round(percentile(values, 90)), "p99": round(percentile(values, 99)),
            "max": max(values)}


def proc_cpu_s(pid):
    """utime + stime of a live process, seconds (fields 14 and 15 of stat(5))."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS, ...); 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def machine_busy_s():
    """CPU time all processes used (from /proc/stat), seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def _die_with_parent():
    """In the child before exec: SIGTERM when the script dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Orchestra:
    """Processes started by a script (`prog` names it in messages); stopped by pid, newest
    first, with SIGTERM and after `stop_timeout` seconds SIGKILL."""

    def __init__(self, prog, stop_timeout):
        self.prog = prog
        self.stop_timeout = stop_timeout
        self.procs = []  # (name, Popen)

    def start(self, name, argv, **kw):
        proc = subprocess.Popen(argv, preexec_fn=_die_with_parent, **kw)
        self.procs.append((name, proc))
        return proc

    def stop(self, proc, timeout=None):
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            except ProcessLookupError:
                pass

    def stop_all(self):
        for name, proc in reversed(self.procs):
            try:
                self.stop(proc)
            except Exception as e:  # keep stopping the others
                sys.stderr.write(f"{self.prog}: stopping {name} (pid {proc.pid}): {e}\n")


def run(argv, cwd, what, timeout=300, **kw):
    """Runs a command to completion; its stdout, or RuntimeError naming `what`."""
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {r.returncode}): {r.stderr.strip()}")
    return r.stdout


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as res:
        return res.read().decode()


def metric(text, name):
    """The value of the Prometheus sample whose name and labels are `name` (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def tail(path, lines=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_in_workdir(prog, prefix, stop_timeout, keep, json_path, measure, report, passed,
                   signals=(signal.SIGTERM,)):
    """The frame of a benchmark run: a temporary working directory, an Orchestra, `signals`
    unwinding like Ctrl-C so everything started is stopped, the logs closed and the directory
    removed (unless `keep`). `measure(work, orch, logs)` returns the result, `report(result)`
    prints it, it is written to `json_path` when given; the exit code is 0 when
    `passed(result)`, 1 otherwise or on an error, 130 when interrupted."""

    def interrupted(signum, frame):
        raise KeyboardInterrupt()

    for s in signals:
        signal.signal(s, interrupted)
    work = tempfile.mkdtemp(prefix=prefix)
    orch = Orchestra(prog, stop_timeout)
    logs = []
    try:
        result = measure(work, orch, logs)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted; stopping everything\n")
        return 130
    except Exception as e:
        sys.stderr.write(f"{prog}: error: {e}\n")
        sys.stderr.write(f"{prog}: logs are in {work}\n" if keep else
                         f"{prog}: rerun with --keep to inspect the logs\n")
        return 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        orch.stop_all()
        for f in logs:
            f.close()
        if keep:
            sys.stderr.write(f"{prog}: kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(result)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0 if passed(result) else 1
