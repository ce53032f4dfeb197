"""The client's HTTP behaviour against a tiny local server that answers what each test scripts:
retries on 429 after Retry-After, the key sent to the API's origin only, errors, multipart bodies,
paging and the plain progress line. No BioMed-VITAL server needed."""
from __future__ import annotations

import email.parser
import email.policy
import io
import json
import sys
import types
import unittest

from support import ScriptedServer, json_reply, png

from biomed_vital import ApiError, Client, PlainProgress, Run, TqdmProgress, make_progress
from biomed_vital import multipart
from biomed_vital.transport import retry_after_seconds


class Recorder:
    def __init__(self) -> None:
        self.waits: list = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class RetryTest(unittest.TestCase):
    def test_retries_a_429_after_the_retry_after_it_gives(self) -> None:
        server = ScriptedServer([
            json_reply(429, {"errors": [{"message": "Too many requests", "extensions": {"code": "RATE_LIMITED"}}]}, {"Retry-After": "2"}),
            json_reply(429, {"errors": [{"message": "Too many requests", "extensions": {"code": "RATE_LIMITED"}}]}, {"Retry-After": "3"}),
            json_reply(200, {"data": {"viewer": {"role": "CURATOR"}}}),
        ])
        self.addCleanup(server.close)
        sleep = Recorder()
        client = Client(server.origin + "/graphql", "k1", sleep=sleep)
        self.assertEqual(client.query("{ viewer { role } }"), {"viewer": {"role": "CURATOR"}})
        self.assertEqual(sleep.waits, [2.0, 3.0])
        self.assertEqual(len(server.requests), 3)
        # The same request each time.
        self.assertEqual({r["body"] for r in server.requests}, {server.requests[0]["body"]})

    def test_gives_up_after_max_retries_with_the_servers_error(self) -> None:
        server = ScriptedServer([json_reply(429, {"errors": [{"message": "Too many requests; retry after 1 s", "extensions": {"code": "RATE_LIMITED"}}]}, {"Retry-After": "1"})])
        self.addCleanup(server.close)
        sleep = Recorder()
        client = Client(server.origin + "/graphql", "k1", max_retries=2, sleep=sleep)
        with self.assertRaises(ApiError) as caught:
            client.query("{ viewer { role } }")
        self.assertEqual(caught.exception.code, "RATE_LIMITED")
        self.assertEqual(caught.exception.status, 429)
        self.assertEqual(sleep.waits, [1.0, 1.0])
        self.assertEqual(len(server.requests), 3)

    def test_backs_off_without_retry_after_and_never_retries_a_plain_503(self) -> None:
        server = ScriptedServer([json_reply(429, {"errors": [{"message": "slow down"}]}), json_reply(200, {"data": {"ok": True}})])
        self.addCleanup(server.close)
        sleep = Recorder()
        self.assertEqual(Client(server.origin, "k", sleep=sleep).query("{ ok }"), {"ok": True})
        self.assertEqual(sleep.waits, [1.0])

        down = ScriptedServer([(503, {}, b"down"), json_reply(200, {"data": {"ok": True}})])
        self.addCleanup(down.close)
        with self.assertRaises(ApiError) as caught:
            Client(down.origin, "k", sleep=sleep).query("{ ok }")
        self.assertEqual((caught.exception.code, caught.exception.status), ("HTTP_503", 503))

    def test_retry_after_as_http_date(self) -> None:
        self.assertEqual(retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0), 10.0)
        self.assertEqual(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0), 0.0)
        self.assertIsNone(retry_after_seconds("soon"))

    def test_retries_a_busy_export_503_that_says_when(self) -> None:
        server = ScriptedServer([json_reply(503, {"error": "RATE_LIMITED", "message": "busy"}, {"Retry-After": "5"}), (200, {}, b"line1\nline2\n")])
        self.addCleanup(server.close)
        sleep = Recorder()
        client = Client(server.origin + "/graphql", "k", sleep=sleep)
        url = server.origin + "/exports/datasets/x/jsonl"
        with client.transport.open("GET", url) as response:
            self.assertEqual(response.read(), b"line1\nline2\n")
        self.assertEqual(sleep.waits, [5.0])


class KeyScopeTest(unittest.TestCase):
    def test_sends_the_key_to_the_api_origin_only(self) -> None:
        api = ScriptedServer([(200, {}, b"from the api")])
        elsewhere = ScriptedServer([(200, {}, b"from a signed link")])
        self.addCleanup(api.close)
        self.addCleanup(elsewhere.close)
        client = Client(api.origin + "/graphql", "secret-key")
        with client.transport.open("GET", api.origin + "/exports/datasets/d/jsonl") as r:
            self.assertEqual(r.read(), b"from the api")
        with client.transport.open("GET", elsewhere.origin + "/exports/datasets/d/jsonl?expires=1&signature=abc") as r:
            self.assertEqual(r.read(), b"from a signed link")
        self.assertEqual(api.requests[0]["headers"].get("Authorization"), "Bearer secret-key")
        self.assertNotIn("Authorization", elsewhere.requests[0]["headers"])

    def test_drops_the_key_when_the_api_redirects_to_another_origin(self) -> None:
        elsewhere = ScriptedServer([(200, {}, b"object store bytes")])
        self.addCleanup(elsewhere.close)
        api = ScriptedServer([(302, {"Location": elsewhere.origin + "/bucket/export.jsonl"}, b"")])
        self.addCleanup(api.close)
        with Client(api.origin + "/graphql", "secret-key").transport.open("GET", api.origin + "/exports/datasets/d/jsonl") as r:
            self.assertEqual(r.read(), b"object store bytes")
        self.assertEqual(api.requests[0]["headers"].get("Authorization"), "Bearer secret-key")
        self.assertNotIn("Authorization", elsewhere.requests[0]["headers"])

    def test_an_export_error_body_becomes_an_api_error(self) -> None:
        server = ScriptedServer([json_reply(404, {"error": "NOT_FOUND", "message": "Dataset not found"})])
        self.addCleanup(server.close)
        with self.assertRaises(ApiError) as caught:
            Client(server.origin, "k").transport.open("GET", server.origin + "/exports/datasets/x/jsonl")
        self.assertEqual((caught.exception.code, caught.exception.message, caught.exception.status), ("NOT_FOUND", "Dataset not found", 404))


class ErrorsAndPagingTest(unittest.TestCase):
    def test_graphql_errors_and_user_errors_raise_api_error_with_code_and_field(self) -> None:
        server = ScriptedServer([
            json_reply(400, {"errors": [{"message": "Variable \"$id\" got invalid value", "extensions": {"code": "BAD_USER_INPUT", "field": "id"}}]}),
            json_reply(200, {"data": {"createDataset": {"dataset": None, "userErrors": [{"field": ["input", "topK"], "message": "At least 1", "code": "INVALID"}]}}}),
        ])
        self.addCleanup(server.close)
        client = Client(server.origin, "k")
        with self.assertRaises(ApiError) as bad:
            client.query("query($id: ID!) { node(id: $id) { id } }", {"id": 1})
        self.assertEqual((bad.exception.code, bad.exception.field, bad.exception.status), ("BAD_USER_INPUT", ["id"], 400))
        with self.assertRaises(ApiError) as refused:
            client.mutate("mutation { createDataset(input: {name: \"x\", topK: 0}) { dataset { id } userErrors { field message code } } }")
        self.assertEqual((refused.exception.code, refused.exception.field, refused.exception.message), ("INVALID", ["input", "topK"], "At least 1"))

    def test_paginate_follows_end_cursors_until_the_last_page(self) -> None:
        def page(ids, end, more):
            return json_reply(200, {"data": {"runs": {"pageInfo": {"hasNextPage": more, "endCursor": end}, "edges": [{"node": {"id": i}} for i in ids]}}})

        server = ScriptedServer([page(["a", "b"], "c1", True), page(["c", "d"], "c2", True), page(["e"], "c3", False)])
        self.addCleanup(server.close)
        query = "query($first: Int!, $after: String) { runs(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }"
        nodes = list(Client(server.origin, "k").paginate(query, page_size=2))
        self.assertEqual([n["id"] for n in nodes], ["a", "b", "c", "d", "e"])
        sent = [json.loads(r["body"])["variables"] for r in server.requests]
        self.assertEqual(sent, [{"after": None, "first": 2}, {"after": "c1", "first": 2}, {"after": "c2", "first": 2}])


class MultipartTest(unittest.TestCase):
    def test_encodes_operations_map_and_files_as_the_spec_asks(self) -> None:
        image = png(1)
        body, content_type = multipart.encode(
            "mutation($input: ImportRecordsInput!) { importRecords(input: $input) { summary { imagesCreated } } }",
            {"input": {"createDemonstrations": False}},
            {"input.images.0": ("a.png", image), "input.images.1": ("b \"quoted\".png", b"xyz"), "input.recordsFile": ("records.json", b"[]")},
        )
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        parts = list(message.iter_parts())
        self.assertEqual([p.get_param("name", header="content-disposition") for p in parts], ["operations", "map", "0", "1", "2"])
        operations = json.loads(parts[0].get_content())
        self.assertEqual(operations["variables"], {"input": {"createDemonstrations": False, "images": [None, None], "recordsFile": None}})
        self.assertEqual(json.loads(parts[1].get_content()), {"0": ["variables.input.images.0"], "1": ["variables.input.images.1"], "2": ["variables.input.recordsFile"]})
        self.assertEqual(parts[2].get_filename(), "a.png")
        self.assertEqual(parts[2].get_content_type(), "image/png")
        self.assertEqual(parts[2].get_payload(decode=True), image)
        self.assertEqual(parts[4].get_payload(decode=True), b"[]")


class ProgressTest(unittest.TestCase):
    def run_state(self, status: str, done: int, failed: int = 0) -> Run:
        return Run.from_api({"id": "r", "kind": "SCORING", "status": status, "total": 4, "done": done, "failed": failed})

    def test_plain_progress_writes_one_line_per_change_when_not_interactive(self) -> None:
        out = io.StringIO()
        progress = PlainProgress(out)
        for state in [self.run_state("QUEUED", 0), self.run_state("RUNNING", 1), self.run_state("RUNNING", 1), self.run_state("RUNNING", 3)]:
            progress.update(state)
        progress.close(self.run_state("SUCCEEDED", 3, 1))
        self.assertEqual(out.getvalue().splitlines(), [
            "scoring queued: 0/4 (0 failed)", "scoring running: 1/4 (0 failed)", "scoring running: 3/4 (0 failed)", "scoring succeeded: 4/4 (1 failed)",
        ])

    def test_uses_tqdm_when_it_is_installed(self) -> None:
        class FakeBar:
            bars: list = []

            def __init__(self, **kwargs: object) -> None:
                self.kwargs, self.total, self.n, self.descriptions, self.closed = kwargs, None, 0, [], False
                FakeBar.bars.append(self)

            def set_description(self, text: str, refresh: bool = True) -> None:
                self.descriptions.append(text)

            def set_postfix(self, ordered_dict: object = None, refresh: bool = True, **kwargs: object) -> None:
                self.postfix = kwargs

            def update(self, n: int) -> None:
                self.n += n

            def refresh(self) -> None:
                pass

            def close(self) -> None:
                self.closed = True

        package, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
        auto.tqdm = FakeBar  # type: ignore[attr-defined]
        package.auto = auto  # type: ignore[attr-defined]
        saved = {name: sys.modules.get(name) for name in ("tqdm", "tqdm.auto")}
        sys.modules.update({"tqdm": package, "tqdm.auto": auto})
        try:
            progress = make_progress(io.StringIO())
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        self.assertIsInstance(progress, TqdmProgress)
        progress.update(self.run_state("RUNNING", 2))
        progress.close(self.run_state("SUCCEEDED", 3, 1))
        bar = FakeBar.bars[0]
        self.assertEqual((bar.total, bar.n, bar.closed, bar.postfix), (4, 4, True, {"failed": 1}))
        self.assertEqual(bar.descriptions[-1], "scoring succeeded")

    def test_falls_back_to_the_plain_line_without_tqdm(self) -> None:
        saved = sys.modules.get("tqdm")
        sys.modules["tqdm"] = None  # type: ignore[assignment]  # makes `import tqdm` fail
        try:
            self.assertIsInstance(make_progress(io.StringIO()), PlainProgress)
        finally:
            if saved is None:
                sys.modules.pop("tqdm", None)
            else:
                sys.modules["tqdm"] = saved


if __name__ == "__main__":
    unittest.main()


class ExportFormatNamesTest(unittest.TestCase):
    def test_every_file_name_and_enum_name_maps_to_the_enum(self) -> None:
        from biomed_vital.client import EXPORT_FORMATS, export_format_name

        for enum_name, file_name in EXPORT_FORMATS.items():
            self.assertEqual(export_format_name(file_name), enum_name)
            self.assertEqual(export_format_name(enum_name.lower()), enum_name)
        self.assertEqual(export_format_name("trl-vision.jsonl"), "TRL_VISION_JSONL")
        with self.assertRaises(ValueError):
            export_format_name("parquet")
