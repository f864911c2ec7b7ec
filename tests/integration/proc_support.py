"""Helpers shared by the Python tests that drive the programs as real processes."""

import os
import socket
import subprocess


def run_program(bin_dir, program, args, expect=0, timeout=300, stdin=None):
    """Runs bin_dir/program with args; fails the test when it exits other than `expect`
    (None: any exit)."""
    proc = subprocess.run([os.path.join(bin_dir, program)] + list(args), capture_output=True,
                          text=True, timeout=timeout, input=stdin)
    if expect is not None and proc.returncode != expect:
        raise AssertionError(
            f"{program} {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def free_port():
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
