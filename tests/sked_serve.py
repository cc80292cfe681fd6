"""What the end-to-end tests share: a `sked serve` process on loopback, its CLI, and a
bounded wait. Imported by api_e2e_test.py and dashboard_test.py (from this folder)."""

import re
import signal
import subprocess
import time


def read(path):
    with open(path) as f:
        return f.read()


def wait_for(predicate, timeout=15.0, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


class SkedServe:
    """A base for a test's sked: the subclass sets `sked` (the binary), `dir` (the working
    folder), `config` and `log_path`, then calls start()."""

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.sked, "serve", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.url = wait_for(self._url, what="the api listening line")
        return self.url

    def _url(self):
        if self.proc.poll() is not None:
            raise AssertionError("sked serve exited: " + read(self.log_path))
        m = re.search(r"api listening url=(\S+)", read(self.log_path))
        return m.group(1) if m else None

    def cli(self, *args):
        out = subprocess.run([self.sked, *args, "--config", self.config], cwd=self.dir,
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError("sked %s failed: %s" % (" ".join(args), out.stderr))
        return out.stdout

    def stop(self):
        """SIGTERM (graceful), then SIGKILL if it has not ended in 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
