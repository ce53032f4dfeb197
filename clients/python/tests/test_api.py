"""The client against a real BioMed-VITAL server, as a notebook uses it: upload and import, paging,
generation, rating and scoring runs waited for with progress, a failing run, datasets and exports,
errors, and another project's key. test/system/python-client.test.ts starts the server (with a worker
and the fake OpenAI server) and runs these with:

    BMV_URL, BMV_KEY (CURATOR), BMV_VIEWER_KEY, BMV_OTHER_PROJECT_KEY, BMV_IMAGES_DIR,
    BMV_RECORDS_FILE, BMV_SELECTOR_DIR (model.onnx, tokenizer.json, selector.json)

Tests are numbered: each step builds on the ones before, as the cells of a notebook do.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import unittest

from support import env, png

from biomed_vital import ApiError, Client, Dataset, Run, RunFailedError, SelectorModel

URL = env("BMV_URL")
REQUIRED = ["BMV_URL", "BMV_KEY", "BMV_VIEWER_KEY", "BMV_OTHER_PROJECT_KEY", "BMV_IMAGES_DIR", "BMV_RECORDS_FILE", "BMV_SELECTOR_DIR"]
UPLOADED = ["bio_patch.png", "med_img_1.png"]
IMPORTED = ["synpic32933.jpg", "synpic42202.jpg", "xy_chromosome.jpg"]
#: test/system/python-client.test.ts has the fake judge refuse to score figures with this in the caption.
UNRATEABLE = "UNRATEABLE"
#: … and the fake model refuses to write conversations for figures with this in the caption.
UNGENERATABLE = "UNGENERATABLE"


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@unittest.skipUnless(all(env(name) for name in REQUIRED), "needs a server: run test/system/python-client.test.ts")
class NotebookFlowTest(unittest.TestCase):
    client: Client
    viewer: Client
    other: Client
    state: dict = {}

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Client(URL, os.environ["BMV_KEY"])
        cls.viewer = Client(URL, os.environ["BMV_VIEWER_KEY"])
        cls.other = Client(URL, os.environ["BMV_OTHER_PROJECT_KEY"])
        cls.images_dir = os.environ["BMV_IMAGES_DIR"]
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def test_00_any_query_stays_available(self) -> None:
        data = self.client.query("query($n: Int!) { viewer { role project { slug } } runs(first: $n) { totalCount } }", {"n": 1})
        self.assertEqual(data["viewer"]["role"], "CURATOR")
        self.assertEqual(data["runs"]["totalCount"], 0)
        self.assertEqual(self.viewer.viewer()["role"], "VIEWER")
        self.assertNotEqual(self.other.viewer()["project"]["slug"], data["viewer"]["project"]["slug"])

    def test_01_uploads_images_and_refuses_a_duplicate_with_code_and_field(self) -> None:
        ids = []
        for name in UPLOADED:
            image = self.client.upload_image(os.path.join(self.images_dir, name), caption=f"Figure {name}: axial CT of the chest", mentions=["As shown in the figure."], modalities=["CT"])
            self.assertEqual(image["fileName"], name)
            self.assertGreater(image["width"], 0)
            self.assertEqual(image["modalities"], ["CT"])
            ids.append(image["id"])
        self.state["uploaded"] = ids
        with self.assertRaises(ApiError) as caught:
            self.client.upload_image(os.path.join(self.images_dir, UPLOADED[0]), caption="again")
        self.assertEqual((caught.exception.code, caught.exception.field), ("DUPLICATE", ["input", "file"]))
        with self.assertRaises(ApiError) as forbidden:
            self.viewer.upload_image(("viewer.png", png(99)), caption="a viewer may not")
        self.assertEqual(forbidden.exception.code, "FORBIDDEN")

    def test_02_imports_records_with_their_image_files(self) -> None:
        with open(os.environ["BMV_RECORDS_FILE"]) as f:
            all_records = json.load(f)
        records = all_records[:4]
        # Three of the shared figures, under the file names the first three records give.
        files = [(records[i]["imgs"], read_bytes(os.path.join(self.images_dir, name))) for i, name in enumerate(IMPORTED)]
        summary = self.client.import_records(records, images=files + [("stray.png", png(7))])
        self.assertEqual((summary.images_created, summary.images_with_bytes, summary.demonstrations_created), (4, 3, 4))
        self.assertEqual(summary.unmatched_files, ["stray.png"])
        # A bad record: nothing is written and the error names the record and field.
        with self.assertRaises(ApiError) as caught:
            self.client.import_records([{"pair_id": "1_F1", "imgs": "x.jpg", "fig_caption": 42}])
        self.assertEqual(caught.exception.code, "INVALID")
        self.assertEqual(caught.exception.field[:3], ["input", "records", "0"])
        # The records as a JSON file (sent as `recordsFile`), the way the README shows it.
        path = os.path.join(self.tmp.name, "records.json")
        with open(path, "w") as f:
            json.dump(all_records[4:5], f)
        from_file = self.client.import_records(path, create_demonstrations=False)
        self.assertEqual((from_file.images_created, from_file.images_with_bytes, from_file.demonstrations_created), (1, 0, 0))
        self.assertEqual(len(list(self.client.demonstrations())), 4)

    def test_03_iterates_connections_over_many_pages(self) -> None:
        images = list(self.client.images(page_size=2))
        total = self.client.query("{ images(first: 1) { totalCount } }")["images"]["totalCount"]
        self.assertEqual(total, 7)
        self.assertEqual(len(images), total)
        self.assertEqual(len({i["id"] for i in images}), total)
        with_bytes = list(self.client.images({"has_bytes": True}, page_size=1, fields="id fileName"))
        self.assertEqual(len(with_bytes), 5)
        # Any connection, through paginate and a custom query.
        query = "query($first: Int!, $after: String) { images(first: $first, after: $after, filter: {modalities: [CT]}) { pageInfo { hasNextPage endCursor } edges { node { id } } } }"
        ct = [n["id"] for n in self.client.paginate(query, page_size=1)]
        self.assertTrue(set(self.state["uploaded"]) <= set(ct))
        self.state["with_bytes"] = [i["id"] for i in with_bytes]

    def test_04_starts_a_generation_run_and_waits_for_it_with_progress(self) -> None:
        started = self.client.start_generation_run(self.state["with_bytes"], demonstrations_per_prompt=1, seed=3, limits={"concurrency": 2})
        self.assertIsInstance(started, Run)
        self.assertEqual((started.kind, started.total), ("GENERATION", 5))
        out = io.StringIO()
        finished = self.client.wait(started, file=out, poll_interval=0.1)
        self.assertEqual((finished.status, finished.done, finished.failed), ("SUCCEEDED", 5, 0))
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[-1], "generation succeeded: 5/5 (0 failed)")
        self.assertTrue(all(line.startswith("generation ") for line in lines))
        self.assertEqual(len(list(self.client.candidates({"run_id": started.id}, page_size=2))), 5)
        self.state["generation"] = finished
        # The viewer reads it with run(id:); another project's key gets NOT_FOUND.
        self.assertEqual(self.viewer.run(started.id).status, "SUCCEEDED")
        with self.assertRaises(ApiError) as caught:
            self.other.run(started.id)
        self.assertEqual(caught.exception.code, "NOT_FOUND")

    def test_05_a_failing_run_raises_with_its_failures(self) -> None:
        image = self.client.upload_image(("unrateable.png", png(5)), caption=f"{UNRATEABLE} figure: a gross specimen", modalities=["GROSS"])
        generation = self.client.wait(self.client.start_generation_run([image["id"]], demonstrations_per_prompt=0), progress=False, poll_interval=0.1)
        self.assertEqual(generation.done, 1)
        rating = self.client.start_rating_run(generation)
        with self.assertRaises(RunFailedError) as caught:
            self.client.wait(rating, file=io.StringIO(), poll_interval=0.1)
        error = caught.exception
        self.assertEqual(error.code, "RUN_FAILED")
        self.assertEqual(error.run.status, "FAILED")
        self.assertEqual(error.run.failed, error.run.total)
        self.assertEqual(len(error.failures), error.run.total)
        self.assertTrue(all(f.item_key.startswith("candidate:") and f.reason for f in error.failures))
        self.assertIn(error.failures[0].reason, str(error))

    def test_05b_a_failing_generation_run_raises_with_its_failed_candidates(self) -> None:
        images = [self.client.upload_image((f"refused-{i}.png", png(50 + i)), caption=f"{UNGENERATABLE} figure {i}", modalities=["OTHER"])["id"] for i in range(2)]
        run = self.client.start_generation_run(images, demonstrations_per_prompt=0)
        with self.assertRaises(RunFailedError) as caught:
            self.client.wait(run, progress=False, poll_interval=0.1)
        error = caught.exception
        self.assertEqual((error.run.status, error.run.failed, error.run.total), ("FAILED", 2, 2))
        self.assertEqual(len(error.failures), 2)
        statuses = {c["id"]: c["status"] for c in self.client.candidates({"run_id": run.id}, fields="id status")}
        self.assertEqual(set(statuses.values()), {"REFUSED"})
        self.assertEqual({f.item_key for f in error.failures}, {f"candidate:{cid}" for cid in statuses})
        self.assertTrue(all(f.raw_output for f in error.failures))

    def test_06_rates_and_scores_with_a_selector_found_by_name(self) -> None:
        rating = self.client.wait(self.client.start_rating_run(self.state["generation"]), progress=False, poll_interval=0.1)
        self.assertEqual((rating.status, rating.failed), ("SUCCEEDED", 0))
        folder = os.environ["BMV_SELECTOR_DIR"]
        files = {k: os.path.join(folder, n) for k, n in (("model", "model.onnx"), ("tokenizer", "tokenizer.json"), ("manifest", "selector.json"))}
        registered = self.client.register_selector("reference", activate=True, **files)
        self.assertIsInstance(registered, SelectorModel)
        found = self.viewer.selector_model("reference")
        self.assertEqual((found.id, found.version, found.active), (registered.id, 1, True))
        self.assertEqual(self.viewer.selector_model("reference", version=1).id, registered.id)
        with self.assertRaises(ApiError) as caught:
            self.other.selector_model("reference")
        self.assertEqual(caught.exception.code, "NOT_FOUND")
        out = io.StringIO()
        scoring = self.client.wait(self.client.start_scoring_run(found, batch_size=2), file=out, poll_interval=0.1)
        self.assertEqual((scoring.status, scoring.done), ("SUCCEEDED", 6))
        self.assertEqual(out.getvalue().splitlines()[-1], "scoring succeeded: 6/6 (0 failed)")
        self.state["selector"] = found

    def test_07_creates_a_dataset_and_refuses_a_bad_rule_with_code_and_field(self) -> None:
        with self.assertRaises(ApiError) as caught:
            self.client.create_dataset("bad", top_fraction=2)
        self.assertEqual((caught.exception.code, caught.exception.field), ("INVALID", ["input", "topFraction"]))
        with self.assertRaises(ApiError) as forbidden:
            self.viewer.create_dataset("viewer", top_k=1)
        self.assertEqual(forbidden.exception.code, "FORBIDDEN")
        dataset = self.client.create_dataset("vital-top", top_fraction=0.5, selector=self.state["selector"])
        self.assertIsInstance(dataset, Dataset)
        self.assertEqual((dataset.name, dataset.version, dataset.item_count), ("vital-top", 1, 3))
        self.assertEqual(set(dataset.exports), {"LLAVA_JSON", "JSONL", "TRL_JSONL", "TRL_VISION_JSONL", "IMAGES_TAR", "CARD_MD", "CARD_JSON"})
        self.assertEqual([d.id for d in self.viewer.datasets()], [dataset.id])
        self.state["dataset"] = dataset

    def test_08_downloads_an_export_to_a_file_and_streams_one(self) -> None:
        dataset = self.state["dataset"]
        path = os.path.join(self.tmp.name, "vital-top.llava.json")
        self.assertEqual(self.viewer.download_export(dataset.id, "llava.json", path), path)
        with open(path) as f:
            samples = json.load(f)
        self.assertEqual(len(samples), 3)
        self.assertTrue(all(s["conversations"][0]["value"].startswith("<image>\n") for s in samples))
        self.assertFalse(os.path.exists(path + ".part"))
        streamed = b"".join(self.client.stream_export(dataset, "JSONL", chunk_size=64))
        lines = [json.loads(line) for line in streamed.decode().splitlines()]
        self.assertEqual([line["rank"] for line in lines], [1, 2, 3])
        self.assertEqual([line["id"] for line in lines], [s["id"] for s in samples])
        # Another project's key cannot read the dataset, nor download it from its link.
        with self.assertRaises(ApiError) as by_id:
            self.other.dataset(dataset.id)
        self.assertEqual(by_id.exception.code, "NOT_FOUND")
        with self.assertRaises(ApiError) as by_link:
            self.other.transport.open("GET", dataset.exports["JSONL"].split("?")[0])  # the key alone, not a signed link
        self.assertEqual(by_link.exception.status, 404)


if __name__ == "__main__":
    unittest.main()
