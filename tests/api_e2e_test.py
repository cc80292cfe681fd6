#!/usr/bin/python3
"""End-to-end tests of the REST API against a real `sked serve` on loopback.

Run by ctest (tests/CMakeLists: ApiE2E) as
    /usr/bin/python3 tests/api_e2e_test.py --sked build/gcc/sked
and, for readiness across a PostgreSQL stop, by scripts/test.sh as
    ... --pg-url URL --pg-ctl 'scripts/postgres.sh'
Every wait is bounded; every request goes to 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import ssl
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

from sked_serve import SkedServe, read, wait_for

ARGS = None


class Sked(SkedServe):
    """A `sked serve` in a temporary directory, and an HTTP client for it."""

    def __init__(self, config_extra="", store_url="sqlite://sked.db", schema=None, tls=False):
        self.sked = ARGS.sked
        self.dir = tempfile.mkdtemp(prefix="sked-api-")
        self.tls = tls
        if tls:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", os.path.join(self.dir, "key.pem"), "-out",
                            os.path.join(self.dir, "cert.pem")],
                           check=True, capture_output=True, timeout=60)
            config_extra += 'tls_cert = "cert.pem"\ntls_key = "key.pem"\n'
        self.config = os.path.join(self.dir, "sked.toml")
        if ARGS.plugin:  # the example driver plugin, from a plugin folder
            os.mkdir(os.path.join(self.dir, "plugins"))
            shutil.copy(ARGS.plugin, os.path.join(self.dir, "plugins", "hello.so"))
            config_extra = config_extra + '[drivers]\nplugin_dir = "plugins"\n'
        store = 'url = "%s"\n' % store_url
        if schema:
            store += 'schema = "%s"\n' % schema
        with open(self.config, "w") as f:
            f.write(
                "[store]\n" + store +
                '[server]\nlisten = "127.0.0.1:0"\nmax_body_bytes = 65536\n'
                'threads = 6\nmax_streams = 2\n' + config_extra +
                '[scheduler]\nmin_interval = "1s"\npoll_interval = "200ms"\n'
                'shutdown_grace = "2s"\n'
                '[[job]]\nname = "ticker"\nschedule = "* * * * * *"\ndriver = "shell"\n'
                'config = { command = "echo tick" }\n'
                '[[job]]\nname = "streamer"\nschedule = "@yearly"\ndriver = "shell"\n'
                'config = { command = "echo one; sleep 1.5; echo two" }\n'
                '[[job]]\nname = "sleeper"\nschedule = "@yearly"\ndriver = "shell"\n'
                'config = { command = "sleep 30" }\n')
        self.log_path = os.path.join(self.dir, "sked.log")
        self.cli("migrate")
        self.tokens = {}
        for role in ("viewer", "operator", "admin"):
            self.tokens[role] = self.cli("token", "create", "--name", role + "-tok", "--role",
                                         role).strip()
        self.tokens["revoked"] = self.cli("token", "create", "--name", "gone", "--role",
                                          "admin").strip()
        self.cli("token", "revoke", "gone")
        self.start()
        parsed = urllib.parse.urlparse(self.url)
        self.host, self.port = parsed.hostname, parsed.port
        assert self.host == "127.0.0.1"
        assert parsed.scheme == ("https" if tls else "http"), self.url

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                timeout=10):
        if self.tls:
            context = ssl.create_default_context(cafile=os.path.join(self.dir, "cert.pem"))
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        ctype = resp.getheader("Content-Type", "")
        parsed = None
        if "json" in ctype and payload:
            parsed = json.loads(payload)
        return resp.status, parsed, payload, resp

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def admin_job(name, **extra):
    body = {"name": name, "schedule": "@yearly", "driver": "noop"}
    body.update(extra)
    return body


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Sked()
        cls.admin = cls.s.tokens["admin"]
        cls.viewer = cls.s.tokens["viewer"]
        cls.operator = cls.s.tokens["operator"]
        # A finished run to point run routes at.
        wait_for(lambda: cls.s.request("GET", "/api/v1/runs?job=ticker&status=succeeded",
                                       token=cls.viewer)[1]["items"],
                 what="a ticker run")
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src",
                               "server", "openapi.json")) as f:
            cls.doc = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        log = read(cls.s.log_path)
        cls.s.cleanup()
        # No secret ever reaches the log.
        for role, token in cls.s.tokens.items():
            secret = token.split("_", 2)[2]
            assert secret not in log, "the %s token's secret is in the log" % role
            assert token not in log

    def api(self, method, path, body=None, token=None, **kw):
        return self.s.request(method, path, body=body, token=token or self.admin, **kw)

    def assertError(self, result, status, code=None, field=None):
        got, body, raw, _ = result
        self.assertEqual(got, status, raw)
        self.assertIn("error", body, raw)
        e = body["error"]
        self.assertEqual(set(e), {"code", "message", "field"})
        self.assertTrue(e["message"])
        self.assertNotIn("<html", raw.decode(errors="replace").lower())
        if code:
            self.assertEqual(e["code"], code, raw)
        if field is not None:
            self.assertEqual(e["field"], field, raw)
        return e

    # ------------------------------------------------------------- probes

    def test_health_and_readiness(self):
        status, body, _, _ = self.s.request("GET", "/healthz")
        self.assertEqual((status, body["status"]), (200, "ok"))
        status, body, _, _ = self.s.request("GET", "/readyz")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["checks"]["store"], "ok")
        self.assertEqual(body["checks"]["migrations"], "current")
        self.assertEqual(body["checks"]["scheduler_loop"], "ok")

    # ------------------------------------------------------------- OpenAPI

    def concrete(self, path):
        run = self.api("GET", "/api/v1/runs?job=ticker&status=succeeded&limit=1")[1]["items"][0][
            "id"]
        return path.replace("{name}", "matrix").replace("{id}", str(run))

    def operations(self):
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                yield method.upper(), path, op

    def test_every_documented_route_is_served_with_a_documented_status(self):
        self.api("POST", "/api/v1/jobs", admin_job("matrix"))
        status, served, _, _ = self.api("GET", "/api/v1/openapi.json")
        self.assertEqual(status, 200)
        self.assertEqual(served, self.doc)
        self.assertTrue(self.doc["openapi"].startswith("3."))
        for method, path, op in self.operations():
            if path.endswith("/stream"):
                continue  # streams: test_output_stream_*
            target = self.concrete(path)
            body = None
            if method in ("POST", "PUT", "PATCH"):
                body = {"version": 1} if method != "POST" else {}
            if path == "/api/v1/jobs/{name}" and method == "DELETE":
                target = "/api/v1/jobs/never-created"
            if path == "/api/v1/cron/preview":
                target += "?expr=*%20*%20*%20*%20*"
            status, parsed, raw, _ = self.api(method, target, body)
            self.assertIn(str(status), op["responses"],
                          "%s %s answered %d, not documented: %s" % (method, path, status, raw))
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                self.assertNotIn("no such route", parsed["error"]["message"],
                                 "%s %s is documented but not served" % (method, path))

    def test_undocumented_routes_are_json_404s(self):
        result = self.api("GET", "/api/v1/nothing")
        self.assertError(result, 404, "not_found")
        self.assertEqual(result[3].getheader("X-Content-Type-Options"), "nosniff")
        self.assertError(self.api("GET", "/api/v2/jobs"), 404, "not_found")
        self.assertError(self.api("GET", "/ui/nothing.js"), 404, "not_found")
        self.assertError(self.api("GET", "/ui/../api/v1/jobs"), 404)

    # ------------------------------------------------------------- auth

    def test_every_route_by_every_role(self):
        self.api("POST", "/api/v1/jobs", admin_job("matrix"))
        rank = {"viewer": 0, "operator": 1, "admin": 2}
        callers = {
            "none": None,
            "malformed": "Basic dXNlcjpwYXNz",
            "not-a-sked-token": "Bearer abc",
            "forged": "Bearer sked_1_" + "0" * 64,
            "revoked": "Bearer " + self.s.tokens["revoked"],
            "viewer": "Bearer " + self.viewer,
            "operator": "Bearer " + self.operator,
            "admin": "Bearer " + self.admin,
        }
        for method, path, op in self.operations():
            need = op.get("x-sked-role")
            if path == "/metrics":
                need = None  # server.metrics_auth is off here
            target = self.concrete(path)
            if method == "DELETE":
                target = target.replace("/matrix", "/not-there").replace("viewer-tok", "x")
            if path == "/api/v1/cron/preview":
                target += "?expr=*%20*%20*%20*%20*"
            for who, header in callers.items():
                headers = {"Authorization": header} if header else {}
                body = None
                if method in ("PUT", "PATCH"):
                    body = {"version": 999}
                elif method == "POST" and path in ("/api/v1/jobs", "/api/v1/tokens"):
                    body = {"bogus": 1}  # refused after auth: nothing is created
                if path.endswith("/stream"):
                    result = self.s.request(method, target, headers=headers)
                    if who not in rank:
                        self.assertError(result, 401, "unauthenticated")
                    else:  # a finished run: its output, then the end
                        self.assertEqual(result[0], 200, result[2])
                        self.assertIn(b"event: end", result[2])
                    continue
                if path.endswith("/cancel") or path.endswith("/trigger"):
                    target_now = target.replace("/matrix/", "/not-there/") if "jobs" in path \
                        else re.sub(r"/runs/\d+/", "/runs/999999999/", target)
                else:
                    target_now = target
                result = self.s.request(method, target_now, body=body, headers=headers)
                status = result[0]
                if need is None:
                    self.assertLess(status, 400, "%s %s as %s" % (method, path, who))
                elif who not in rank:
                    self.assertError(result, 401, "unauthenticated")
                elif rank[who] < rank[need]:
                    self.assertError(result, 403, "forbidden")
                else:
                    self.assertNotIn(status, (401, 403), "%s %s as %s: %s" %
                                     (method, path, who, result[2]))

    def test_tokens_through_the_api_and_revocation_at_once(self):
        status, body, _, _ = self.api("POST", "/api/v1/tokens", {"name": "ci", "role": "viewer"})
        self.assertEqual(status, 201, body)
        token = body["token"]
        self.assertEqual(self.s.request("GET", "/api/v1/jobs", token=token)[0], 200)
        listed = self.api("GET", "/api/v1/tokens")[1]["items"]
        self.assertIn("ci", [t["name"] for t in listed])
        self.assertNotIn(token.split("_")[2], json.dumps(listed))
        self.assertError(self.api("POST", "/api/v1/tokens", {"name": "ci", "role": "viewer"}),
                         409)
        self.assertError(self.api("POST", "/api/v1/tokens", {"name": "x", "role": "root"}), 400,
                         field="role")
        self.assertError(self.api("POST", "/api/v1/tokens", {"name": "<b>x</b>", "role": "viewer"}),
                         400, field="name")
        self.assertEqual(self.api("DELETE", "/api/v1/tokens/ci")[0], 200)
        self.assertError(self.s.request("GET", "/api/v1/jobs", token=token), 401)
        # The name is free again; the new token is another row, the old one stays refused.
        again = self.api("POST", "/api/v1/tokens", {"name": "ci", "role": "admin"})[1]["token"]
        self.assertEqual(self.s.request("GET", "/api/v1/jobs", token=again)[0], 200)
        self.assertError(self.s.request("GET", "/api/v1/jobs", token=token), 401)
        # The old secret under the new id is refused too: ids and secrets go together.
        forged = "sked_%s_%s" % (again.split("_")[1], token.split("_")[2])
        self.assertError(self.s.request("GET", "/api/v1/jobs", token=forged), 401)
        self.assertEqual(self.api("DELETE", "/api/v1/tokens/ci")[0], 200)
        # A token whose secret is off by one character is refused.
        wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
        self.assertError(self.s.request("GET", "/api/v1/jobs", token=wrong), 401)

    # ------------------------------------------------------------- jobs

    def test_job_lifecycle_with_optimistic_versions(self):
        status, job, _, resp = self.api("POST", "/api/v1/jobs", admin_job(
            "lifecycle", schedule="30 2 * * *", timezone="America/New_York", tags=["etl"]))
        self.assertEqual(status, 201, job)
        self.assertEqual(resp.getheader("Location"), "/api/v1/jobs/lifecycle")
        self.assertEqual(job["version"], 1)
        self.assertError(self.api("POST", "/api/v1/jobs", admin_job("lifecycle")), 409)
        status, got, _, resp = self.api("GET", "/api/v1/jobs/lifecycle?fires=3",
                                        token=self.viewer)
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")
        self.assertEqual(resp.getheader("ETag"), '"1"')
        self.assertEqual(len(got["next_fires"]), 3)
        for fire in got["next_fires"]:
            self.assertIn("dst", fire)
        # Stale version: 409; no version: 428; the right one: 200.
        self.assertError(self.api("PATCH", "/api/v1/jobs/lifecycle", {"description": "x"},
                                  headers={"If-Match": '"7"'}), 409, "conflict")
        self.assertError(self.api("PATCH", "/api/v1/jobs/lifecycle", {"description": "x"}), 428)
        status, patched, _, resp = self.api("PATCH", "/api/v1/jobs/lifecycle",
                                            {"description": "nightly"},
                                            headers={"If-Match": '"1"'})
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["description"], "nightly")
        self.assertEqual(patched["tags"], ["etl"])  # PATCH keeps what it does not name
        self.assertEqual(resp.getheader("ETag"), '"2"')
        self.assertEqual(patched["retention"],
                         {"max_age": None, "max_runs": None, "keep_failures": None})
        status, kept, _, _ = self.api("PATCH", "/api/v1/jobs/lifecycle",
                                      {"retention": {"max_age": "7d", "max_runs": 0},
                                       "overrun_factor": 2.5},
                                      headers={"If-Match": '"2"'})
        self.assertEqual(status, 200, kept)
        self.assertEqual(kept["overrun_factor"], 2.5)
        self.assertEqual(kept["retention"],
                         {"max_age": "7d", "max_runs": 0, "keep_failures": None})
        status, put, _, _ = self.api("PUT", "/api/v1/jobs/lifecycle",
                                     admin_job("lifecycle", version=3))
        self.assertEqual(status, 200, put)
        self.assertEqual(put["tags"], [])  # PUT replaces
        self.assertEqual(put["retention"]["max_age"], None)  # PUT replaces
        self.assertEqual(put["overrun_factor"], None)
        self.assertError(self.api("PUT", "/api/v1/jobs/lifecycle",
                                  admin_job("renamed", version=4)), 400, field="name")
        # Filters.
        names = lambda q: [j["name"] for j in self.api("GET", "/api/v1/jobs?" + q)[1]["items"]]
        self.assertEqual(names("prefix=lifecy"), ["lifecycle"])
        self.assertIn("ticker", names("driver=shell"))
        self.assertNotIn("lifecycle", names("driver=shell"))
        # Pause, resume, trigger (operator), delete (admin).
        self.assertEqual(self.api("POST", "/api/v1/jobs/lifecycle/pause",
                                  token=self.operator)[1]["state"], "paused")
        self.assertIn("lifecycle", names("state=paused"))
        self.assertEqual(self.api("POST", "/api/v1/jobs/lifecycle/resume",
                                  token=self.operator)[1]["state"], "active")
        status, run, _, _ = self.api("POST", "/api/v1/jobs/lifecycle/trigger",
                                     token=self.operator)
        self.assertEqual((status, run["trigger"]), (202, "manual"))
        self.assertEqual(self.api("DELETE", "/api/v1/jobs/lifecycle")[0], 204)
        self.assertError(self.api("GET", "/api/v1/jobs/lifecycle"), 404, "not_found")
        # The deleted job's run is gone with it, not left for reuse.
        self.assertError(self.api("GET", "/api/v1/runs/%d" % run["id"]), 404)

    def test_bad_input_is_refused_naming_the_field_and_writes_nothing(self):
        before = len(self.api("GET", "/api/v1/jobs?limit=1000")[1]["items"])
        cases = [
            (dict(raw=b"{not json", headers={"Content-Type": "application/json"}), None),
            (dict(raw=b'{"name": "\xff\xfe"}', headers={"Content-Type": "application/json"}),
             None),
            (dict(body=admin_job("typed", max_queued="many")), "max_queued"),
            (dict(body=admin_job("typed", retry={"max": 2, "tries": 3})), "retry.tries"),
            (dict(body=admin_job("typed", surprise=True)), "surprise"),
            (dict(body=admin_job("typed", version=3)), "version"),
            (dict(body=admin_job("x'; DROP TABLE jobs; --")), "name"),
            (dict(body=admin_job("<script>alert(1)</script>")), "name"),
            (dict(body=admin_job("typed", schedule="61 * * * *")), "schedule"),
            (dict(body=admin_job("typed", timezone="Mars/Olympus")), "timezone"),
            (dict(body=admin_job("typed", driver="nope")), "driver"),
            (dict(body=admin_job("typed", driver="shell", config={"command": 3})), "config"),
            (dict(body=admin_job("typed", timeout="soon")), "timeout"),
            (dict(body=admin_job("typed", retention={"max_runs": -1})), "retention.max_runs"),
            (dict(body=admin_job("typed", retention={"keep": 3})), "retention.keep"),
            (dict(body=admin_job("typed", retention={"max_age": "-1s"})), "retention.max_age"),
            (dict(body=admin_job("typed", retention=5)), "retention"),
            (dict(body=admin_job("typed", overrun_factor=1)), "overrun_factor"),
            (dict(body=admin_job("typed", overrun_factor="3")), "overrun_factor"),
            (dict(body={"schedule": "@daily", "driver": "noop"}), "name"),
            (dict(body=[1, 2]), None),
        ]
        for kw, field in cases:
            e = self.assertError(self.api("POST", "/api/v1/jobs", **kw), 400, "invalid_argument",
                                 field)
            self.assertTrue(e["message"])
            if kw.get("raw", b"").startswith(b'{"name": "\xff'):
                self.assertIn("UTF-8", e["message"])
        # Hostile query strings are data, never SQL or wildcards.
        for q in ("prefix=%27%20OR%201%3D1--", "prefix=%25", "tag=%3Cscript%3E", "driver=_"):
            status, page, raw, _ = self.api("GET", "/api/v1/jobs?" + q)
            self.assertEqual((status, page["items"]), (200, []), q)
        self.assertError(self.api("POST", "/api/v1/jobs", raw=json.dumps(admin_job("t")).encode(),
                                  headers={"Content-Type": "text/plain"}), 415)
        huge = admin_job("huge", description="x" * 70000)
        self.assertError(self.api("POST", "/api/v1/jobs", huge), 413, "payload_too_large")
        self.assertError(self.api("GET", "/api/v1/runs?limit=100000"), 400, field="limit")
        self.assertError(self.api("GET", "/api/v1/runs?limit=-1"), 400, field="limit")
        self.assertError(self.api("GET", "/api/v1/runs?cursor=abc"), 400, field="cursor")
        self.assertError(self.api("GET", "/api/v1/runs?status=great"), 400, field="status")
        self.assertError(self.api("GET", "/api/v1/runs?since=yesterday"), 400, field="since")
        self.assertError(self.api("GET", "/api/v1/runs?sort=id"), 400, field="sort")
        self.assertError(self.api("GET", "/api/v1/runs/abc"), 400, field="id")
        self.assertError(self.api("GET", "/api/v1/runs/99999999999999999999"), 400, field="id")
        self.assertError(self.api("GET", "/api/v1/jobs/" + "a" * 200), 404)
        after = len(self.api("GET", "/api/v1/jobs?limit=1000")[1]["items"])
        self.assertEqual(before, after, "a refused create left a job behind")

    # ------------------------------------------------------------- runs

    def test_runs_page_newest_first_without_repeats(self):
        wait_for(lambda: len(self.api("GET", "/api/v1/runs?job=ticker&status=succeeded")[1][
            "items"]) >= 3, what="three ticker runs")
        seen, cursor = [], None
        for _ in range(20):
            q = "/api/v1/runs?job=ticker&status=succeeded&limit=2" + ("&cursor=" + cursor if cursor else "")
            page = self.api("GET", q, token=self.viewer)[1]
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor or len(seen) >= 6:
                break
        self.assertGreaterEqual(len(seen), 2)
        self.assertEqual(seen, sorted(seen, reverse=True))
        self.assertEqual(len(seen), len(set(seen)))
        run = self.api("GET", "/api/v1/runs/%d" % seen[0])[1]
        self.assertEqual(run["output"], "tick\n")
        out = self.api("GET", "/api/v1/runs/%d/output" % seen[0])[1]
        self.assertEqual((out["output"], out["live"]), ("tick\n", False))
        until = run["queued_at"]
        older = self.api("GET", "/api/v1/runs?job=ticker&until=" + urllib.parse.quote(until))
        self.assertTrue(all(r["id"] < seen[0] for r in older[1]["items"]))
        self.assertError(self.api("GET", "/api/v1/runs?job=nope"), 404)

    def test_output_stream_follows_a_running_run_then_ends_with_its_status(self):
        status, run, _, _ = self.api("POST", "/api/v1/jobs/streamer/trigger", token=self.operator)
        self.assertEqual(status, 202)
        conn = http.client.HTTPConnection(self.s.host, self.s.port, timeout=15)
        conn.request("GET", "/api/v1/runs/%d/output/stream" % run["id"],
                     headers={"Authorization": "Bearer " + self.viewer})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/event-stream"))
        events, event, deadline = [], {}, time.monotonic() + 15
        first_output_status = None
        while time.monotonic() < deadline:
            line = resp.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                event = {"event": line[7:]}
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and event:
                events.append(event)
                if event["event"] == "output" and first_output_status is None:
                    first_output_status = self.api(
                        "GET", "/api/v1/runs/%d" % run["id"])[1]["status"]
                if event["event"] == "end":
                    break
                event = {}
        conn.close()
        outputs = "".join(e["data"]["data"] for e in events if e["event"] == "output")
        self.assertEqual(outputs, "one\ntwo\n")
        # The first chunk came while the run was still running: live, not replayed.
        self.assertEqual(first_output_status, "running")
        self.assertEqual(events[-1]["event"], "end")
        self.assertEqual(events[-1]["data"]["status"], "succeeded")

    def test_output_stream_of_a_finished_run_replays_then_ends(self):
        run = self.api("GET", "/api/v1/runs?job=ticker&status=succeeded&limit=1")[1]["items"][0]
        status, _, raw, _ = self.api("GET", "/api/v1/runs/%d/output/stream" % run["id"],
                                     token=self.viewer)
        self.assertEqual(status, 200)
        text = raw.decode()
        self.assertIn('"data":"tick\\n"', text)
        self.assertIn("event: end", text)
        self.assertError(self.api("GET", "/api/v1/runs/999999999/output/stream"), 404)
        # A stream that ended has given its slot back by the time its client has
        # read the end: one after another, many more than server.max_streams (2).
        for i in range(30):
            status, _, raw, _ = self.api("GET", "/api/v1/runs/%d/output/stream" % run["id"],
                                         token=self.viewer)
            self.assertEqual(status, 200, "stream %d: %s" % (i, raw))

    def test_cancel_stops_a_running_run(self):
        run = self.api("POST", "/api/v1/jobs/sleeper/trigger", token=self.operator)[1]
        wait_for(lambda: self.api("GET", "/api/v1/runs/%d" % run["id"])[1]["status"] == "running",
                 what="the sleeper to run")
        status, _, _, _ = self.api("POST", "/api/v1/runs/%d/cancel" % run["id"],
                                   token=self.operator)
        self.assertEqual(status, 202)
        final = wait_for(lambda: (lambda r: r if r["status"] != "running" else None)(
            self.api("GET", "/api/v1/runs/%d" % run["id"])[1]), what="the cancel")
        self.assertEqual(final["status"], "cancelled")
        self.assertError(self.api("POST", "/api/v1/runs/%d/cancel" % run["id"],
                                  token=self.operator), 409)

    # ------------------------------------------------------------- the rest

    def test_cron_preview_flags_dst_and_explains_errors(self):
        status, body, _, _ = self.api(
            "GET", "/api/v1/cron/preview?expr=30%202%20*%20*%20*&tz=America/New_York&n=2"
            "&from=2026-03-07T12:00:00Z", token=self.viewer)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["valid"])
        self.assertEqual(body["next"][0]["utc"], "2026-03-08T07:00:00Z")
        self.assertTrue(body["next"][0]["dst"])
        self.assertFalse(body["next"][1]["dst"])
        bad = self.api("GET", "/api/v1/cron/preview?expr=30%2025%20*%20*%20*")[1]
        self.assertFalse(bad["valid"])
        self.assertIn("hour", bad["message"])
        self.assertError(self.api("GET", "/api/v1/cron/preview"), 400, field="expr")
        self.assertError(self.api("GET", "/api/v1/cron/preview?expr=*&tz=Nowhere"), 400,
                         field="tz")

    def test_drivers_with_their_config_schemas(self):
        status, page, _, _ = self.api("GET", "/api/v1/drivers", token=self.viewer)
        self.assertEqual(status, 200)
        names = [d["name"] for d in page["items"]]
        self.assertEqual(names, sorted(names))
        for name in ("http", "noop", "shell", "sleep"):
            self.assertIn(name, names)
        shell = next(d for d in page["items"] if d["name"] == "shell")
        self.assertIn("command", shell["config_schema"]["properties"])
        self.assertTrue(shell["description"])
        self.assertIsNone(shell["plugin"])
        if not ARGS.plugin:
            return
        # A plugin's driver: its file name (never the host's path), its
        # schema, and its own validation of a job's config, naming the key.
        hello = next(d for d in page["items"] if d["name"] == "hello")
        self.assertEqual(hello["plugin"], "hello.so")
        self.assertIn("times", hello["config_schema"]["properties"])
        e = self.assertError(self.api("POST", "/api/v1/jobs", admin_job(
            "plugged", driver="hello", config={"times": 0})), 400, "invalid_argument", "config")
        self.assertIn("times: must be an integer from 1 to 1000", e["message"])
        status, job, raw, _ = self.api("POST", "/api/v1/jobs", admin_job(
            "plugged", driver="hello", config={"greeting": "<b>hi</b>", "times": 2}))
        self.assertEqual(status, 201, raw)
        status, run, raw, _ = self.api("POST", "/api/v1/jobs/plugged/trigger")
        self.assertEqual(status, 202, raw)
        run_id = run["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = self.api("GET", "/api/v1/runs/%d" % run_id, token=self.viewer)[1]
            if got["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        self.assertEqual(got["status"], "succeeded", got)
        self.assertEqual(got["output"], "<b>hi</b>, plugged (attempt 1)\n" * 2)
        self.assertEqual(self.api("DELETE", "/api/v1/jobs/plugged")[0], 204)

    def test_instances_show_liveness(self):
        items = self.api("GET", "/api/v1/instances", token=self.viewer)[1]["items"]
        me = [i for i in items if i["self"]]
        self.assertEqual(len(me), 1)
        self.assertEqual(me[0]["state"], "alive")
        self.assertIsInstance(me[0]["running"], int)

    # ------------------------------------------------------------- for the dashboard

    def test_whoami_names_the_token_and_its_role_never_the_secret(self):
        for role in ("viewer", "operator", "admin"):
            status, body, raw, _ = self.api("GET", "/api/v1/whoami", token=self.s.tokens[role])
            self.assertEqual(status, 200, raw)
            self.assertEqual(body, {"name": role + "-tok", "role": role})
            self.assertNotIn(self.s.tokens[role].split("_", 2)[2].encode(), raw)
        self.assertError(self.s.request("GET", "/api/v1/whoami"), 401, "unauthenticated")
        self.assertError(self.api("GET", "/api/v1/whoami", token=self.s.tokens["revoked"]), 401)

    def test_failing_jobs_are_found_and_each_job_brings_its_newest_runs(self):
        self.assertEqual(self.api("POST", "/api/v1/jobs", admin_job(
            "broken", schedule="every 1s", driver="shell", config={"command": "exit 4"}))[0], 201)
        wait_for(lambda: "broken" in [j["name"] for j in self.api(
            "GET", "/api/v1/jobs?attention=failing")[1]["items"]], what="broken to be failing")
        page = self.api("GET", "/api/v1/jobs?attention=failing&recent=3", token=self.viewer)[1]
        names = [j["name"] for j in page["items"]]
        self.assertNotIn("ticker", names)  # it succeeds
        broken = [j for j in page["items"] if j["name"] == "broken"][0]
        self.assertTrue(broken["failing"])
        self.assertFalse(broken["late"])
        self.assertTrue(1 <= len(broken["recent_runs"]) <= 3)
        ids = [r["id"] for r in broken["recent_runs"]]
        self.assertEqual(ids, sorted(ids, reverse=True))  # newest first
        self.assertTrue(all(r["job"] == "broken" for r in broken["recent_runs"]))
        # Without recent=, no runs are read; late ones are active and overdue (none here).
        plain = self.api("GET", "/api/v1/jobs?prefix=broken")[1]["items"][0]
        self.assertNotIn("recent_runs", plain)
        self.assertEqual(self.api("GET", "/api/v1/jobs?attention=late")[1]["items"], [])
        self.assertError(self.api("GET", "/api/v1/jobs?attention=bad"), 400, field="attention")
        self.assertError(self.api("GET", "/api/v1/jobs?recent=51"), 400, field="recent")
        self.assertError(self.api("GET", "/api/v1/jobs?attention=late&state=paused"), 400,
                         field="state")
        summary = self.api("GET", "/api/v1/summary", token=self.viewer)[1]
        self.assertGreaterEqual(summary["jobs"]["failing"], 1)
        self.assertEqual(summary["jobs"]["total"], sum(
            summary["jobs"][s] for s in ("active", "paused", "disabled", "expired")))
        self.assertEqual(summary["instances"], {"alive": 1, "total": 1})
        self.assertGreaterEqual(summary["runs"]["running"], 0)
        job = self.api("GET", "/api/v1/jobs/broken")[1]
        self.assertEqual(job["schedule_description"], "every 1s")
        # With every optional key set too (times with milliseconds, durations as shown).
        status, _, raw, _ = self.api("PATCH", "/api/v1/jobs/broken", {
            "version": job["version"], "start_at": "2026-01-01T00:00:00Z",
            "end_at": "2099-01-01T00:00:00Z", "timeout": "90s", "starting_deadline": "5m"})
        self.assertEqual(status, 200, raw)
        job = self.api("GET", "/api/v1/jobs/broken")[1]
        self.assertEqual(job["start_at"], "2026-01-01T00:00:00.000Z")
        # What GET gives can be sent back (the dashboard's edit does).
        status, _, raw, _ = self.api("PATCH", "/api/v1/jobs/broken", job)
        self.assertEqual(status, 200, raw)
        self.assertEqual(self.api("DELETE", "/api/v1/jobs/broken")[0], 204)

    def test_dashboard_files_are_compiled_in_with_a_strict_policy(self):
        status, _, _, resp = self.s.request("GET", "/")
        self.assertEqual((status, resp.getheader("Location")), (302, "/ui/"))
        status, _, html, resp = self.s.request("GET", "/ui/")
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "text/html; charset=utf-8")
        policy = resp.getheader("Content-Security-Policy")
        self.assertIn("script-src 'self'", policy)
        self.assertIn("default-src 'none'", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        self.assertNotIn("unsafe", policy)
        self.assertEqual(resp.getheader("X-Frame-Options"), "DENY")
        self.assertEqual(resp.getheader("Cache-Control"), "no-cache")
        html = html.decode()
        # No inline script or style, nothing from another origin.
        for tag in re.findall(r"<script[^>]*>", html):
            self.assertIn('src="/ui/', tag)
        self.assertNotRegex(html, r"<style|\sstyle=|\son[a-z]+=|https?://")
        srcs = re.findall(r'(?:src|href)="(/ui/[^"]+)"', html)
        self.assertIn("/ui/vendor/chart.min.js", srcs)
        types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml"}
        for src in srcs + ["/ui/views.js", "/ui/api.js", "/ui/dom.js", "/ui/format.js",
                           "/ui/job_form.js"]:
            status, _, body, resp = self.s.request("GET", src)
            self.assertEqual(status, 200, src)
            self.assertEqual(resp.getheader("Content-Type"), types[src[src.rfind("."):]], src)
            etag = resp.getheader("ETag")
            self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
            again = self.s.request("GET", src, headers={"If-None-Match": etag})
            self.assertEqual((again[0], again[2]), (304, b""), src)
            if src.startswith("/ui/vendor/"):
                continue
            text = body.decode()
            self.assertNotRegex(text, r"https?://(?!www\.w3\.org)", src)  # nothing fetched outside
            self.assertNotIn("innerHTML", text, src)  # text only: markup in data stays text
            self.assertNotIn("eval(", text, src)
        # The token is sent as a header and kept in session storage, never in a URL or cookie.
        api_js = self.s.request("GET", "/ui/api.js")[2].decode()
        self.assertIn("sessionStorage", api_js)
        self.assertNotIn("document.cookie", api_js)
        self.assertNotIn("localStorage.setItem(KEY", api_js)

    def test_metrics_parse_with_the_prometheus_parser(self):
        wait_for(lambda: "sked_runs_total{" in self.s.request("GET", "/metrics")[2].decode(),
                 what="a settled run in the metrics")
        status, _, raw, resp = self.s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
        families = {f.name: f for f in text_string_to_metric_families(raw.decode())}
        for name in ("sked_runs", "sked_run_duration_seconds", "sked_fire_lag_seconds",
                     "sked_fires_skipped", "sked_queue_depth", "sked_running_runs",
                     "sked_retries", "sked_leases_reaped", "sked_claim_waits",
                     "sked_job_last_success_timestamp_seconds",
                     "sked_job_next_fire_timestamp_seconds",
                     "sked_store_operation_duration_seconds", "sked_instance_alive",
                     "sked_retention_sweeps", "sked_retention_runs_deleted"):
            self.assertIn(name, families, name)
        runs = families["sked_runs"]
        self.assertEqual(runs.type, "counter")
        ticks = [s for s in runs.samples
                 if s.labels.get("job") == "ticker" and s.labels.get("status") == "succeeded"]
        self.assertTrue(ticks and ticks[0].value >= 1)
        lag = families["sked_fire_lag_seconds"]
        self.assertEqual(lag.type, "histogram")
        self.assertIn("+Inf", [s.labels.get("le") for s in lag.samples])
        success = [s for s in families["sked_job_last_success_timestamp_seconds"].samples
                   if s.labels["job"] == "ticker"]
        self.assertLess(abs(success[0].value - time.time()), 120)
        ops = {s.labels["operation"] for s in
               families["sked_store_operation_duration_seconds"].samples}
        self.assertIn("settle_runs", ops)
        # Cardinality: series follow jobs, never runs.
        for f in families.values():
            for s in f.samples:
                self.assertNotIn("run", s.labels)

    def test_audit_log_records_who_did_what_from_where(self):
        self.api("POST", "/api/v1/jobs", admin_job("audited"))
        self.api("POST", "/api/v1/jobs/audited/pause", token=self.viewer)  # refused: recorded
        entries = self.api("GET", "/api/v1/audit?limit=50")[1]["items"]
        create = [e for e in entries if e["action"] == "job.create" and e["target"] ==
                  "job/audited"]
        self.assertTrue(create, entries)
        self.assertEqual((create[0]["actor"], create[0]["source"], create[0]["status"]),
                         ("admin-tok", "127.0.0.1", 201))
        refused = [e for e in entries if e["action"] == "job.pause" and e["actor"] == "viewer-tok"]
        self.assertEqual(refused[0]["status"], 403)
        self.assertError(self.api("GET", "/api/v1/audit", token=self.operator), 403)
        cli = json.loads(self.s.cli("audit", "list", "--json", "--action", "job.create"))
        self.assertIn("job/audited", [e["target"] for e in cli])
        tokens = json.loads(self.s.cli("audit", "list", "--json", "--action", "token.revoke"))
        self.assertEqual(tokens[0]["target"], "token/gone")

    def test_request_logs_name_the_token_never_its_secret(self):
        self.api("GET", "/api/v1/jobs", token=self.viewer)
        log = wait_for(lambda: (lambda t: t if "token=viewer-tok" in t else None)(
            read(self.s.log_path)), what="a request log line")
        self.assertRegex(log, r"http request method=GET route=\"GET /api/v1/jobs\" "
                              r"path=/api/v1/jobs status=200 duration_ms=[\d.]+")


class TlsTest(unittest.TestCase):
    """server.tls_cert/tls_key: HTTPS only, with the certificate given; a bad pair is refused."""

    def test_https_with_the_configured_certificate(self):
        s = Sked(tls=True)
        try:
            status, body, _, _ = s.request("GET", "/healthz")
            self.assertEqual((status, body["status"]), (200, "ok"))
            status, _, _, _ = s.request("GET", "/api/v1/jobs", token=s.tokens["viewer"])
            self.assertEqual(status, 200)
            # Plain HTTP to the TLS port is never served.
            plain = http.client.HTTPConnection(s.host, s.port, timeout=5)
            try:
                plain.request("GET", "/healthz")
                status = plain.getresponse().status
            except (http.client.HTTPException, OSError):
                status = None
            finally:
                plain.close()
            self.assertNotEqual(status, 200)
        finally:
            s.stop()
            s.cleanup()

    def test_a_key_that_is_not_a_key_is_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="sked-tls-")
        try:
            for name in ("cert.pem", "key.pem"):
                with open(os.path.join(d, name), "w") as f:
                    f.write("not a pem file\n")
            config = os.path.join(d, "sked.toml")
            with open(config, "w") as f:
                f.write('[store]\nurl = "sqlite://sked.db"\n[server]\nlisten = "127.0.0.1:0"\n'
                        'tls_cert = "cert.pem"\ntls_key = "key.pem"\n')
            out = subprocess.run([ARGS.sked, "serve", "--config", config], cwd=d,
                                 capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("not a valid PEM certificate and key pair", out.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class DashboardOffTest(unittest.TestCase):
    """server.dashboard = false: the API alone, no /ui/."""

    def test_no_dashboard_when_turned_off(self):
        s = Sked(config_extra="dashboard = false\n")
        try:
            self.assertEqual(s.request("GET", "/ui/")[0], 404)
            self.assertEqual(s.request("GET", "/ui/app.js")[0], 404)
            self.assertEqual(s.request("GET", "/api/v1/whoami", token=s.tokens["viewer"])[0], 200)
        finally:
            s.stop()
            s.cleanup()


class PostgresReadinessTest(unittest.TestCase):
    """/readyz goes 503 while PostgreSQL is down and 200 when it is back."""

    def test_readiness_follows_the_database(self):
        if not ARGS.pg_url or not ARGS.pg_ctl:
            self.skipTest("needs --pg-url and --pg-ctl")
        schema = "api_readiness_%d" % os.getpid()
        s = Sked(store_url=ARGS.pg_url, schema=schema)
        try:
            ready = lambda: s.request("GET", "/readyz")
            wait_for(lambda: ready()[0] == 200, what="ready on PostgreSQL")
            subprocess.run(ARGS.pg_ctl.split() + ["stop"], check=True, timeout=60)
            try:
                status, body, _, _ = wait_for(
                    lambda: (lambda r: r if r[0] == 503 else None)(ready()), timeout=30,
                    what="503 with PostgreSQL stopped")
                self.assertEqual(body["status"], "not_ready")
                self.assertIn("store unreachable", body["reasons"][0])
                self.assertEqual(s.request("GET", "/healthz")[0], 200)  # alive all the same
            finally:
                subprocess.run(ARGS.pg_ctl.split(), check=True, timeout=120,
                               stdout=subprocess.DEVNULL)
            wait_for(lambda: ready()[0] == 200, timeout=60, what="ready again")
        finally:
            s.stop()
            s.cleanup()
            # Its schema too: one was left behind in the server by each run.
            subprocess.run(["psql", ARGS.pg_url, "-q", "-c",
                            "DROP SCHEMA IF EXISTS %s CASCADE" % schema],
                           capture_output=True, timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sked", required=True)
    parser.add_argument("--pg-url", default="")
    parser.add_argument("--pg-ctl", default="")
    parser.add_argument("--plugin", default="", help="the example plugin (hello.so) to load")
    ARGS, rest = parser.parse_known_args()
    ARGS.sked = os.path.abspath(ARGS.sked)
    if ARGS.plugin:
        ARGS.plugin = os.path.abspath(ARGS.plugin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
