#!/usr/bin/python3
"""Browser tests of the dashboard in real headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium) against a real `sked serve` on loopback,
started on the quick start's example jobs (examples/sked.toml).

Run by ctest (DashboardBrowser) as
    /usr/bin/python3 tests/dashboard_test.py --sked build/gcc/sked --shots build/gcc/dashboard
Screenshots of every step go to --shots. Every wait is bounded; the browser talks only
to 127.0.0.1 (background networking off, as this machine's network is closed).
"""

import argparse
import http.client
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from sked_serve import SkedServe, read

ARGS = None
HERE = os.path.dirname(os.path.abspath(__file__))
WAIT = 20.0  # seconds, for any one condition


def wait_for(predicate, timeout=WAIT, step=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException, IndexError) as e:
            last = e  # the page redrew under us, or has not drawn it yet: look again
        time.sleep(step)
    raise AssertionError("timed out after %.0fs waiting for %s (%s)" % (timeout, what, last))


def next_transition(zone_name, after):
    """The next UTC-offset change of a zone after `after`, read from the system's tzdata."""
    zone = ZoneInfo(zone_name)
    t = after.replace(minute=0, second=0, microsecond=0)
    offset = t.astimezone(zone).utcoffset()
    for _ in range(24 * 800):  # bounded: about two years of hours
        t += timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != offset:
            return t
    return None


# What a hostile (or broken) webhook receiver answers: markup, which sked quotes
# into the notification's last error and the dashboard must show as text.
HOSTILE_BODY = ('<img src=x id=pwn-notify onerror="window.pwnedNotify=1">'
                '<script>window.pwnedNotify=2</script>')


class HostileHook:
    """A webhook receiver on loopback that refuses every delivery with markup."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = HOSTILE_BODY.encode()
                self.send_response(500)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Sked(SkedServe):
    """`sked serve` on the example config (its port made free), with tokens of each role."""

    def __init__(self):
        self.sked = ARGS.sked
        self.dir = tempfile.mkdtemp(prefix="sked-ui-")
        self.config = os.path.join(self.dir, "sked.toml")
        example = read(os.path.join(HERE, "..", "examples", "sked.toml"))
        example = example.replace('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:0"')
        assert 'listen = "127.0.0.1:0"' in example
        example = example.replace("[scheduler]\n", '[scheduler]\npoll_interval = "200ms"\n', 1)
        self.hook = HostileHook()
        example += ('\n[[channel]]\nname = "hostile"\ntype = "webhook"\nurl = "%s"\n'
                    'timeout = "2s"\n' % self.hook.url)
        with open(self.config, "w") as f:
            f.write(example)
        self.log_path = os.path.join(self.dir, "sked.log")
        self.cli("migrate")
        self.tokens = {role: self.cli("token", "create", "--name", "ui-" + role, "--role",
                                      role).strip()
                       for role in ("viewer", "operator", "admin")}
        self.start()
        assert urllib.parse.urlparse(self.url).hostname == "127.0.0.1"

    def api(self, method, path, body=None, role="admin"):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization", "Bearer " + self.tokens[role])
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

def chromium(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions",
                 "--disable-dev-shm-usage", "--window-size=1366,900",
                 "--user-data-dir=" + profile):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARGS.shots, exist_ok=True)
        cls.s = Sked()
        s = cls.s
        # Jobs the steps act on, next to the examples.
        for job in (
            {"name": "streamer", "schedule": "@yearly", "driver": "shell",
             "description": "prints, waits, prints",
             "config": {"command": "echo first line; sleep 2; echo second line"}},
            {"name": "long", "schedule": "@yearly", "driver": "shell",
             "config": {"command": "echo started; sleep 60"}},
            {"name": "markup", "schedule": "@yearly", "driver": "shell",
             "description": "<img src=x id=injected onerror=alert(1)><b>bold</b>",
             "config": {"command": "echo '<script>window.pwned=1</script><i id=ital>x</i>'"}},
        ):
            status, body = s.api("POST", "/api/v1/jobs", job)
            assert status == 201, body
        # A job whose next fires cross the zone's next DST change (read from tzdata).
        change = next_transition("Europe/Berlin", datetime.now(timezone.utc))
        assert change, "Europe/Berlin has no offset change ahead in this tzdata"
        start = (change - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, body = s.api("POST", "/api/v1/jobs", {
            "name": "dst-nightly", "schedule": "30 2 * * *", "timezone": "Europe/Berlin",
            "driver": "shell", "config": {"command": "true"}, "start_at": start})
        assert status == 201, body
        # More jobs than a page holds (50), after the ones above (pages go by id).
        for i in range(56):
            status, body = s.api("POST", "/api/v1/jobs", {
                "name": "bulk-%02d" % i, "schedule": "@yearly", "driver": "noop",
                "tags": ["bulk"]})
            assert status == 201, body
        cls.profile = tempfile.mkdtemp(prefix="sked-chromium-")
        cls.d = chromium(cls.profile)
        cls.d.set_page_load_timeout(30)
        cls.d.set_script_timeout(30)

    @classmethod
    def tearDownClass(cls):
        try:
            logs = cls.d.get_log("browser")
        finally:
            cls.d.quit()
            cls.s.stop()
            cls.s.hook.close()
        log = read(cls.s.log_path)
        shutil.rmtree(cls.s.dir, ignore_errors=True)
        shutil.rmtree(cls.profile, ignore_errors=True)
        for token in cls.s.tokens.values():
            assert token.split("_", 2)[2] not in log, "a token's secret is in the server log"
        # The page policy was never broken, and no script failed. Expected network errors:
        # the 400/401/404/409 answers the tests provoke, and the 503 of a stream refused
        # while test_14 holds every one.
        bad = [e for e in logs if e["level"] == "SEVERE" and not re.search(
            r"status of (401|404|409|400)|output/stream - .* status of 503", e["message"])]
        assert not bad, "browser errors: %s" % bad

    # ------------------------------------------------------------- helpers

    def setUp(self):
        self.shot_n = 0

    def shot(self, name, full=False):
        """A screenshot into --shots; `full`: the whole page's height (at most 4000 px)."""
        self.shot_n += 1
        path = os.path.join(ARGS.shots, "%s-%d-%s.png" % (self._testMethodName, self.shot_n,
                                                          name))
        if not full:
            self.d.save_screenshot(path)
            return
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1366, min(int(height) + 100, 4000))
        try:
            time.sleep(0.3)  # let the chart follow the new size (it redraws on resize)
            self.d.save_screenshot(path)
        finally:
            self.d.set_window_size(1366, 900)

    def go(self, route):
        self.d.get(self.s.url + "/ui/#" + route)

    def css(self, selector):
        return self.d.find_elements(By.CSS_SELECTOR, selector)

    def wait_css(self, selector, what=None, timeout=WAIT):
        return wait_for(lambda: (lambda els: els[0] if els and els[0].is_displayed() else None)(
            self.css(selector)), timeout=timeout, what=what or selector)

    def wait_text(self, selector, text, timeout=WAIT):
        return wait_for(lambda: any(text in e.text for e in self.css(selector)),
                        timeout=timeout, what="%r in %s" % (text, selector))

    def signed_out_page(self):
        """The dashboard loaded afresh with no token kept. A reload, not a move to "#/": a page
        that was signed in may still be asking the server who it is, and when the answer came it
        drew the sign-in form again under the test's hands (a stale element, seen under ASan)."""
        self.d.get(self.s.url + "/ui/")
        self.d.execute_script("sessionStorage.clear()")
        self.d.refresh()

    def sign_in(self, role):
        self.signed_out_page()
        field = self.wait_css("#token", "the sign-in form")
        field.clear()
        field.send_keys(self.s.tokens[role])
        self.css("#signin-submit")[0].click()
        self.wait_text("#who", "ui-" + role)

    def row(self, table, job):
        rows = self.css('#%s tr[data-job="%s"]' % (table, job))
        return rows[0] if rows else None

    def confirm(self):
        ok = self.wait_css("#confirm[open] .confirm-ok", "the confirmation dialog")
        self.shot("confirm")
        ok.click()

    # ------------------------------------------------------------- tests

    def test_01_a_wrong_token_sees_the_sign_in_error(self):
        self.signed_out_page()
        self.wait_css("#token").send_keys("sked_1_" + "0" * 64)
        self.css("#signin-submit")[0].click()
        self.wait_text("#signin-error", "not accepted")
        self.shot("wrong-token")
        self.assertFalse(self.css("#nav")[0].is_displayed())
        self.assertIsNone(self.d.execute_script("return sessionStorage.getItem('sked.token')"))
        self.assertNotIn("sked_", self.d.current_url)

    def test_02_sign_in_and_see_the_example_jobs(self):
        self.sign_in("admin")
        for name in ("hello", "disk-usage", "flaky", "too-slow", "nightly-cleanup"):
            wait_for(lambda: self.row("jobs-table", name), what="the example job " + name)
        # hello runs every 10 s: its strip fills in and its last run succeeds.
        wait_for(lambda: self.row("jobs-table", "hello").find_elements(
            By.CSS_SELECTOR, ".strip .r-succeeded"), timeout=30, what="a hello run in the strip")
        # flaky fails every time: it is listed first, under "Needs attention".
        wait_for(lambda: self.row("attention-table", "flaky"), timeout=40, what="flaky failing")
        self.assertIn("failing", self.row("attention-table", "flaky").text)
        self.assertIsNone(self.row("attention-table", "hello"))
        self.assertIn("UTC", self.row("jobs-table", "hello").text)
        self.assertRegex(self.row("jobs-table", "hello").text, r"in \d+ s|now")
        self.assertEqual(self.css('[data-count="jobs"] .n')[0].text, "65")
        # The token went out as a header: it is in session storage, not the URL or a cookie.
        self.assertEqual(self.d.execute_script("return sessionStorage.getItem('sked.token')"),
                         self.s.tokens["admin"])
        self.assertEqual(self.d.get_cookies(), [])
        self.assertNotIn("sked_", self.d.current_url)
        self.shot("overview")
        # Filters: a name prefix the server pages on.
        prefix = self.css("#f-prefix")[0]
        prefix.clear()
        prefix.send_keys("nightly", Keys.ENTER)
        wait_for(lambda: self.row("jobs-table", "hello") is None and
                 self.row("jobs-table", "nightly-cleanup"), what="the filtered list")
        self.shot("filtered")
        self.css("#f-prefix")[0].clear()
        self.css("#f-prefix")[0].send_keys(Keys.ENTER)
        wait_for(lambda: self.row("jobs-table", "hello"), what="the whole list again")
        # The failing count filters the list to the failing jobs.
        self.css('[data-count="failing"]')[0].click()
        wait_for(lambda: self.row("jobs-table", "hello") is None and
                 self.row("jobs-table", "flaky"), what="only failing jobs")
        self.css("#f-attention option[value='']")[0].click()
        self.css("#f-prefix")[0].send_keys(Keys.ENTER)
        wait_for(lambda: self.row("jobs-table", "hello"), what="every job again")
        # A phone-width window still shows the list (no sideways page).
        self.d.set_window_size(390, 844)
        try:
            wait_for(lambda: self.row("jobs-table", "hello").is_displayed(), what="narrow")
            width = self.d.execute_script("return document.documentElement.scrollWidth")
            self.assertLessEqual(width, 400)
            self.shot("phone")
        finally:
            self.d.set_window_size(1366, 900)

    def test_03_a_job_its_schedule_and_next_fires_with_dst_flagged(self):
        self.sign_in("admin")
        self.go("/jobs/dst-nightly")
        self.wait_text("#schedule-text", "02:30")
        self.wait_text("#fires", "+01:00")
        fires = self.css("#fires tbody tr")
        self.assertEqual(len(fires), 10)
        flagged = self.css("#fires tr.fire-dst")
        self.assertGreaterEqual(len(flagged), 1, "no fire flagged near the DST change")
        self.assertIn("⚠", flagged[0].text)
        self.assertIn("Europe/Berlin", self.css("#schedule")[0].text)
        # Times are in the job's zone, with its offset then; in UTC on request.
        self.assertIn("+01:00", self.css("#schedule")[0].text)
        self.shot("job-dst", full=True)
        self.d.find_element(By.CSS_SELECTOR, "#tz-pref option[value=utc]").click()
        wait_for(lambda: "UTC" in self.css("#schedule")[0].text and
                 "+01:00" not in self.css("#schedule")[0].text, what="times in UTC")
        self.shot("job-dst-utc")
        self.d.find_element(By.CSS_SELECTOR, "#tz-pref option[value=job]").click()
        # A job that ran: counters, runs and the chart of durations and lag.
        self.go("/jobs/hello")
        self.wait_text("#schedule-text", "10 seconds")
        wait_for(lambda: self.css(".runs-table tbody tr[data-run]"), what="hello's runs")
        wait_for(lambda: self.d.execute_script(
            "const c = document.getElementById('run-chart'); return c && c.chart &&"
            " c.chart.data.labels.length > 0"), what="the chart drawn")
        self.assertIn("median duration", self.css("#chart-note")[0].text)
        self.assertIn("echo", self.css("#driver-config")[0].text)
        self.shot("job-hello", full=True)

    def test_04_trigger_and_watch_the_output_stream_in(self):
        self.sign_in("operator")
        self.go("/jobs/streamer")
        self.wait_css(".act-trigger").click()
        self.wait_css(".toast-run").click()
        self.wait_text("#run-status", "running")
        # The first line is on the page while the run is still going: streamed live.
        self.wait_text("#output", "first line")
        self.assertNotIn("second line", self.css("#output")[0].text)
        self.assertIn("running", self.css("#run-status")[0].text)
        self.shot("streaming")
        self.wait_text("#output", "second line")
        self.wait_text("#run-status", "succeeded")
        self.assertIn("Exit code", self.css("#run-facts")[0].text)
        self.assertEqual(self.css("#output")[0].text.count("first line"), 1)
        self.shot("succeeded", full=True)

    def test_05_pause_and_resume(self):
        self.sign_in("operator")
        self.go("/")
        row = lambda: self.row("jobs-table", "disk-usage")
        wait_for(row, what="disk-usage listed")
        row().find_element(By.CSS_SELECTOR, ".act-pause").click()
        wait_for(lambda: "paused" in row().text and row().find_elements(
            By.CSS_SELECTOR, ".act-resume"), what="disk-usage paused")
        self.assertEqual(self.s.api("GET", "/api/v1/jobs/disk-usage")[1]["state"], "paused")
        self.shot("paused")
        row().find_element(By.CSS_SELECTOR, ".act-resume").click()
        wait_for(lambda: row().find_elements(By.CSS_SELECTOR, ".act-pause"), what="resumed")
        self.assertEqual(self.s.api("GET", "/api/v1/jobs/disk-usage")[1]["state"], "active")

    def test_06_cancel_a_long_run_after_confirming(self):
        self.sign_in("operator")
        status, run = self.s.api("POST", "/api/v1/jobs/long/trigger")
        self.assertEqual(status, 202, run)
        self.go("/runs/%d" % run["id"])
        self.wait_text("#output", "started")
        # Keeping it first: nothing is cancelled.
        self.wait_css(".act-cancel").click()
        self.wait_css("#confirm[open] .confirm-cancel").click()
        time.sleep(0.5)  # a cancel would be sent at once; give it the chance to go wrong
        self.assertEqual(self.s.api("GET", "/api/v1/runs/%d" % run["id"])[1]["status"],
                         "running")
        self.wait_css(".act-cancel").click()
        self.confirm()
        self.wait_text("#run-status", "cancelled")
        self.assertEqual(self.s.api("GET", "/api/v1/runs/%d" % run["id"])[1]["status"],
                         "cancelled")
        self.assertEqual(self.css(".act-cancel"), [])
        self.shot("cancelled")

    def test_07_a_viewer_sees_no_action(self):
        status, run = self.s.api("POST", "/api/v1/jobs/long/trigger")
        self.assertEqual(status, 202, run)
        try:
            self.sign_in("viewer")
            wait_for(lambda: self.row("jobs-table", "hello"), what="the list")
            self.assertEqual(self.css("#jobs-table th")[-1].text.lower(), "recent runs")
            for selector in (".act-trigger", ".act-pause", ".act-resume", "#new-job"):
                self.assertEqual(self.css(selector), [], selector)
            self.shot("viewer-overview")
            self.go("/jobs/hello")
            self.wait_text("#schedule-text", "10 seconds")
            for selector in (".act-trigger", ".act-pause", "#edit-job", ".act-delete"):
                self.assertEqual(self.css(selector), [], selector)
            self.go("/runs/%d" % run["id"])
            self.wait_text("#run-status", "running")
            self.assertEqual(self.css(".act-cancel"), [])
            self.shot("viewer-run")
            self.go("/new")
            self.wait_text("#forbidden", "admin")
            self.assertFalse(self.css("#nav-audit")[0].is_displayed())
            self.go("/audit")
            self.wait_text("#forbidden", "admin")
        finally:
            self.s.api("POST", "/api/v1/runs/%d/cancel" % run["id"])

    def test_08_markup_in_data_is_shown_as_text(self):
        self.sign_in("admin")
        status, run = self.s.api("POST", "/api/v1/jobs/markup/trigger")
        self.assertEqual(status, 202, run)
        self.go("/jobs/markup")
        self.wait_text("h1", "markup")
        self.assertIn("<img src=x", self.d.find_element(By.TAG_NAME, "main").text)
        self.go("/runs/%d" % run["id"])
        self.wait_text("#run-status", "succeeded")
        self.wait_text("#output", "<script>window.pwned=1</script>")
        self.assertEqual(self.css("#injected"), [])
        self.assertEqual(self.css("#ital"), [])
        self.assertIsNone(self.d.execute_script("return window.pwned"))
        self.shot("markup")

    def test_09_create_edit_and_delete_a_job_with_the_servers_messages(self):
        self.sign_in("admin")
        self.go("/")
        self.wait_css("#new-job").click()
        self.wait_css("#f-name").send_keys("from-ui")
        schedule = self.css("#f-schedule")[0]
        schedule.clear()
        schedule.send_keys("61 * * * *")
        self.wait_text("#schedule-preview", "minute")  # the live preview says what is wrong
        self.css("#job-save")[0].click()
        # The message the CLI would print, next to the field it names.
        self.wait_text("#f-schedule-err", "schedule:")
        self.assertEqual(self.css("#f-schedule")[0].get_attribute("aria-invalid"), "true")
        self.assertEqual(self.s.api("GET", "/api/v1/jobs/from-ui")[0], 404)  # nothing written
        self.shot("invalid-schedule")
        schedule.clear()
        schedule.send_keys("*/5 * * * *")
        self.wait_text("#schedule-preview", "next:")
        config = self.css("#f-config")[0]
        config.clear()
        config.send_keys('{"command": "echo made in the browser"')  # not JSON
        self.css("#job-save")[0].click()
        self.wait_text("#f-config-err", "not valid JSON")
        config.clear()
        config.send_keys('{"command": "echo made in the browser"}')
        retry_on = self.css("#f-retry-on")[0]
        retry_on.clear()
        retry_on.send_keys("failed, sometimes")
        self.css("#job-save")[0].click()
        self.wait_text("#f-retry-on-err", "retry.on")
        retry_on.clear()
        retry_on.send_keys("timed_out")
        self.css("#f-tags")[0].send_keys("ui, test")
        self.css("#job-save")[0].click()
        self.wait_text("#job-name", "from-ui")
        job = self.s.api("GET", "/api/v1/jobs/from-ui")[1]
        self.assertEqual(job["schedule"], "*/5 * * * *")
        self.assertEqual(job["tags"], ["ui", "test"])
        self.assertEqual(job["retry"]["on"], ["timed_out"])
        self.shot("created")
        # Edit: the version it was opened at is sent; a change by someone else is refused.
        self.wait_css("#edit-job").click()
        desc = self.wait_css("#f-description")
        desc.send_keys("edited in the browser")
        self.s.api("PATCH", "/api/v1/jobs/from-ui", {"version": job["version"],
                                                     "priority": 5})
        self.css("#job-save")[0].click()
        self.wait_text("#form-error", "reload")
        self.shot("stale-edit")
        self.go("/jobs/from-ui")
        self.wait_css("#edit-job").click()
        self.wait_text("h1", "Edit from-ui")
        self.wait_css("#f-description").send_keys("edited in the browser")
        self.css("#job-save")[0].click()
        self.wait_text("main", "edited in the browser")
        after = self.s.api("GET", "/api/v1/jobs/from-ui")[1]
        self.assertEqual(after["description"], "edited in the browser")
        self.assertEqual(after["priority"], 5)  # the other change is kept
        self.assertEqual(after["retry"], job["retry"])  # what the form did not change stays
        # Delete asks first.
        self.wait_css(".act-delete").click()
        self.confirm()
        wait_for(lambda: self.s.api("GET", "/api/v1/jobs/from-ui")[0] == 404, what="deleted")
        wait_for(lambda: self.row("jobs-table", "hello"), what="back on the list")
        # All of it is in the audit log, by this token, the stale edit refused.
        self.wait_css("#nav-audit").click()
        self.wait_text("#audit-table", "job.delete")
        log = self.css("#audit-table")[0].text
        for action in ("job.create", "job.update", "job.delete"):
            self.assertIn(action, log)
        self.assertIn("ui-admin", log)
        self.assertIn("409", log)
        self.shot("audit")

    def test_10_instances(self):
        self.sign_in("viewer")
        self.go("/instances")
        self.wait_text("#instances-table", "alive")
        self.assertIn("this one", self.css("#instances-table")[0].text)
        self.shot("instances")

    def test_11_a_token_revoked_while_signed_in_goes_back_to_sign_in(self):
        token = self.s.cli("token", "create", "--name", "short-lived", "--role",
                           "viewer").strip()
        self.signed_out_page()
        self.wait_css("#token").send_keys(token)
        self.css("#signin-submit")[0].click()
        self.wait_text("#who", "short-lived")
        self.s.cli("token", "revoke", "short-lived")
        self.wait_text("#signin-error", "no longer accepts", timeout=15)
        self.assertIsNone(self.d.execute_script("return sessionStorage.getItem('sked.token')"))
        self.shot("revoked")

    def test_12_the_keyboard_reaches_every_action(self):
        self.sign_in("operator")
        self.go("/")
        wait_for(lambda: self.row("jobs-table", "hello"), what="the list")
        # Tab from the top of the page: the job links and the buttons are reachable.
        body = self.d.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        seen = set()
        for _ in range(80):  # bounded
            el = self.d.switch_to.active_element
            seen.add((el.tag_name, el.get_attribute("class") or "", el.text))
            el.send_keys(Keys.TAB)
        self.assertTrue(any(t == "a" and c == "job-link" for t, c, _ in seen), seen)
        self.assertTrue(any(t == "button" and "act-trigger" in c for t, c, _ in seen), seen)

    def test_13_pages_of_jobs_come_from_the_server(self):
        self.sign_in("viewer")
        self.go("/")
        wait_for(lambda: len(self.css("#jobs-table tbody tr")) == 50, what="a first page of 50")
        self.assertIsNotNone(self.row("jobs-table", "hello"))
        self.wait_css("#page-next").click()
        wait_for(lambda: self.row("jobs-table", "bulk-55") and
                 self.row("jobs-table", "hello") is None, what="the second page")
        self.assertLess(len(self.css("#jobs-table tbody tr")), 50)
        self.assertEqual(self.css("#page-next"), [])  # the last page
        self.shot("page-2")
        self.wait_css("#page-prev").click()
        wait_for(lambda: self.row("jobs-table", "hello"), what="the first page again")
        # A tag filter is the server's too.
        tag = self.css("#f-tag")[0]
        tag.send_keys("bulk", Keys.ENTER)
        wait_for(lambda: self.row("jobs-table", "hello") is None and
                 self.row("jobs-table", "bulk-00"), what="the bulk tag")
        tag.clear()
        tag.send_keys(Keys.ENTER)
        wait_for(lambda: self.row("jobs-table", "hello"), what="every job again")

    def test_14_with_every_stream_taken_the_run_page_polls_instead(self):
        status, run = self.s.api("POST", "/api/v1/jobs/long/trigger")
        self.assertEqual(status, 202, run)
        held = []
        try:
            wait_for(lambda: self.s.api("GET", "/api/v1/runs/%d" % run["id"])[1]["status"] ==
                     "running", what="the long run running")
            # server.max_streams (4) streams, held open by this test.
            parsed = urllib.parse.urlparse(self.s.url)
            for _ in range(4):
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
                conn.request("GET", "/api/v1/runs/%d/output/stream" % run["id"],
                             headers={"Authorization": "Bearer " + self.s.tokens["viewer"]})
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                held.append(conn)
            self.sign_in("viewer")
            self.go("/runs/%d" % run["id"])
            self.wait_text("#output-note", "Live output unavailable")
            self.wait_text("#output", "started")  # read by polling meanwhile
            self.assertIn("running", self.css("#run-status")[0].text)
            self.shot("polling")
            requests = len(re.findall(r"output/stream", read(self.s.log_path)))
            time.sleep(3)  # no retry storm: at most one stream attempt per 10 s
            self.assertLessEqual(len(re.findall(r"output/stream", read(self.s.log_path))),
                                 requests + 1)
        finally:
            for conn in held:
                conn.close()
            self.s.api("POST", "/api/v1/runs/%d/cancel" % run["id"])

    def test_15_notifications_and_their_delivery_attempts(self):
        status, body = self.s.api("POST", "/api/v1/jobs", {
            "name": "alerting", "schedule": "@yearly", "driver": "shell",
            "config": {"command": "exit 4"},
            "notify": {"on": ["failed"], "channels": ["log"]}})
        self.assertEqual(status, 201, body)
        status, run = self.s.api("POST", "/api/v1/jobs/alerting/trigger")
        self.assertEqual(status, 202, run)
        self.sign_in("viewer")
        self.go("/notifications")
        self.wait_css('#nav a[data-section="notifications"][aria-current="page"]')
        row = wait_for(lambda: next((r for r in self.css("#notifications-table tbody tr")
                                     if "alerting" in r.text and "delivered" in r.text), None),
                       what="the alerting job's notification, delivered")
        self.assertIn("failed", row.text)  # the event
        self.assertIn("#%d" % run["id"], row.text)
        nid = row.get_attribute("data-notification")
        row.find_element(By.CSS_SELECTOR, "button.link").click()  # its attempts
        attempt = self.wait_css('#notifications-table tr.attempt[data-attempt="1"]',
                                "the notification's first attempt")
        self.assertIn("delivered", attempt.text)
        self.assertIn("attempt 1 by", attempt.text)
        self.shot("notifications")
        # Filtered to failed deliveries: this one is not among them.
        Select(self.css("#n-status")[0]).select_by_value("failed")
        self.css("#n-job")[0].send_keys("alerting")
        self.css(".filters button[type=submit]")[0].click()
        self.wait_text("#notifications-table", "Nothing on record.")
        self.assertFalse(self.css('#notifications-table tr[data-notification="%s"]' % nid))

    def test_16_a_receivers_markup_in_a_delivery_error_is_text(self):
        status, body = self.s.api("POST", "/api/v1/jobs", {
            "name": "alerting-hostile", "schedule": "@yearly", "driver": "shell",
            "config": {"command": "exit 5"},
            "notify": {"on": ["failed"], "channels": ["hostile"]}})
        self.assertEqual(status, 201, body)
        self.assertEqual(self.s.api("POST", "/api/v1/jobs/alerting-hostile/trigger")[0], 202)
        self.sign_in("viewer")
        self.go("/notifications")
        row = wait_for(lambda: next((r for r in self.css("#notifications-table tbody tr")
                                     if "alerting-hostile" in r.text and "pwn-notify" in r.text),
                                    None),
                       what="the refused notification, its error shown")
        self.assertIn("HTTP 500", row.text)
        self.assertIn("<script>window.pwnedNotify=2</script>", row.text)
        row.find_element(By.CSS_SELECTOR, "button.link").click()  # its attempts
        attempt = self.wait_css('#notifications-table tr.attempt[data-attempt="1"]',
                                "the refused attempt")
        self.assertIn("pwn-notify", attempt.text)
        self.assertEqual(self.css("#pwn-notify"), [])
        self.assertEqual(self.css("#notifications-table img, #notifications-table script"), [])
        self.assertIsNone(self.d.execute_script("return window.pwnedNotify"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sked", required=True)
    parser.add_argument("--shots", required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.sked = os.path.abspath(ARGS.sked)
    ARGS.shots = os.path.abspath(ARGS.shots)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
