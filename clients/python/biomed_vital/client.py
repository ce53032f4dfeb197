"""The BioMed-VITAL API from Python: ``Client(url, key)``."""
from __future__ import annotations

import itertools
import os
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, TextIO, Union

from . import multipart
from .errors import ApiError, RunFailedError
from .models import (
    CANDIDATE_FIELDS, DATASET_FIELDS, IMAGE_FIELDS, RUN_FAILURE_FIELDS, RUN_FIELDS, SELECTOR_FIELDS,
    Candidate, Dataset, Image, ImportSummary, Run, RunFailure, SelectorModel,
)
from .progress import Progress, make_progress
from .transport import Transport

RunRef = Union[str, Run]
DatasetRef = Union[str, Dataset]
SelectorRef = Union[str, SelectorModel]

#: Export formats by GraphQL enum name; the URL path uses the file suffix.
EXPORT_FORMATS = {
    "LLAVA_JSON": "llava.json",
    "JSONL": "jsonl",
    "TRL_JSONL": "trl.jsonl",
    "TRL_VISION_JSONL": "trl-vision.jsonl",
    "IMAGES_TAR": "images.tar",
    "CARD_MD": "card.md",
    "CARD_JSON": "card.json",
}

USER_ERRORS = "userErrors { field message code }"


def camel(name: str) -> str:
    """``samples_per_image`` → ``samplesPerImage``; camelCase names pass unchanged."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_keys(value: Any) -> Any:
    """Input objects with snake_case keys, as Python callers write them, in the API's camelCase."""
    if isinstance(value, Mapping):
        return {camel(str(k)): camel_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [camel_keys(v) for v in value]
    return value


def _id(ref: Any) -> str:
    return ref if isinstance(ref, str) else ref.id


def _graphql_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path="/graphql"))
    return url


def export_format_name(fmt: str) -> str:
    """``llava.json``, ``LLAVA_JSON`` or ``llava_json`` → ``LLAVA_JSON``; ``trl-vision.jsonl`` → ``TRL_VISION_JSONL``."""
    upper = fmt.upper().replace(".", "_").replace("-", "_")
    if upper not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS.values())}")
    return upper


class Client:
    """A client for one API key (one user in one project, with that member's role).

    ``url`` is the GraphQL endpoint (``http://127.0.0.1:4000/graphql``; a bare origin gets
    ``/graphql``). Every request that the API answers 429 is retried after the ``Retry-After`` it
    gives (``max_retries`` times). Failures raise :class:`ApiError`.
    """

    def __init__(
        self,
        url: str,
        key: Optional[str],
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = _graphql_url(url)
        self.transport = Transport(self.url, key, timeout=timeout, max_retries=max_retries, sleep=sleep)

    @classmethod
    def from_env(cls, **options: Any) -> "Client":
        """``BMV_URL`` (default ``http://127.0.0.1:4000/graphql``) and ``BMV_KEY``."""
        return cls(os.environ.get("BMV_URL", "http://127.0.0.1:4000/graphql"), os.environ["BMV_KEY"], **options)

    # ----- GraphQL -------------------------------------------------------------------------------

    def query(self, query: str, variables: Optional[Mapping[str, Any]] = None, *, files: Optional[Mapping[str, multipart.FileLike]] = None) -> Dict[str, Any]:
        """Runs any GraphQL document and returns its ``data``; GraphQL errors raise :class:`ApiError`.
        ``files`` maps variable paths (``input.file``) to files, sent as a multipart request."""
        variables = dict(variables or {})
        if files:
            body, content_type = multipart.encode(query, variables, files)
            # Apollo's CSRF prevention asks non-JSON requests for this header.
            result = self.transport.post(self.url, body, content_type, {"apollo-require-preflight": "true"})
        else:
            result = self.transport.post_json(self.url, {"query": query, "variables": variables})
        if result.get("errors"):
            raise ApiError.from_graphql_errors(result["errors"])
        return result.get("data") or {}

    def mutate(self, mutation: str, variables: Optional[Mapping[str, Any]] = None, *, files: Optional[Mapping[str, multipart.FileLike]] = None) -> Dict[str, Any]:
        """Runs a mutation with one root field and returns its payload; ``userErrors`` raise
        :class:`ApiError` with their code and field (nothing was written)."""
        data = self.query(mutation, variables, files=files)
        if len(data) != 1:
            raise ValueError("mutate() expects exactly one root field")
        payload = next(iter(data.values()))
        if payload and payload.get("userErrors"):
            raise ApiError.from_user_errors(payload["userErrors"])
        return payload

    def paginate(self, query: str, variables: Optional[Mapping[str, Any]] = None, *, path: Optional[str] = None, page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Every node of a connection, fetching page after page. The query declares ``$after:
        String`` (and ``$first: Int!`` to let ``page_size`` set the page) and selects
        ``pageInfo { hasNextPage endCursor }`` and ``edges { node { … } }``. ``path`` is the dotted
        path of the connection in ``data`` (``"runs"``, ``"run.failures"``); by default the first
        connection found."""
        after: Optional[str] = None
        while True:
            page_variables = dict(variables or {}, after=after)
            if "$first" in query:
                page_variables["first"] = page_size
            connection = _connection(self.query(query, page_variables), path)
            for edge in connection["edges"]:
                yield edge["node"]
            info = connection["pageInfo"]
            if not info["hasNextPage"]:
                return
            after = info["endCursor"]

    def _connection_of(self, root: str, types: str, fields: str, variables: Mapping[str, Any], page_size: int) -> Iterator[Dict[str, Any]]:
        declared = "".join(f", ${name}: {kind}" for name, kind in _pairs(types))
        passed = "".join(f", {name}: ${name}" for name, _ in _pairs(types))
        query = f"query($first: Int!, $after: String{declared}) {{ {root}(first: $first, after: $after{passed}) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }} }} }}"
        return self.paginate(query, {k: camel_keys(v) for k, v in variables.items()}, path=root, page_size=page_size)

    # ----- reading -------------------------------------------------------------------------------

    def viewer(self) -> Dict[str, Any]:
        """Who the key acts for: ``{user {id displayName email}, project {id name slug}, role}``."""
        return self.query("{ viewer { role user { id displayName email } project { id name slug } } }")["viewer"]

    def images(self, filter: Optional[Mapping[str, Any]] = None, *, order_by: Optional[Mapping[str, Any]] = None, fields: str = IMAGE_FIELDS, page_size: int = 100) -> Iterator[Image]:
        """Every image (``filter``: modalities, captionSearch, clusterId, hasBytes, hasCandidates)."""
        return self._connection_of("images", "filter: ImageFilter, orderBy: ImageOrder", fields, {"filter": filter, "orderBy": order_by}, page_size)  # type: ignore[return-value]

    def candidates(self, filter: Optional[Mapping[str, Any]] = None, *, order_by: Optional[Mapping[str, Any]] = None, fields: str = CANDIDATE_FIELDS, page_size: int = 100) -> Iterator[Candidate]:
        """Every candidate (``filter``: runId, imageId, statuses, score, hasPreferences)."""
        return self._connection_of("candidates", "filter: CandidateFilter, orderBy: CandidateOrder", fields, {"filter": filter, "orderBy": order_by}, page_size)  # type: ignore[return-value]

    def preferences(self, filter: Optional[Mapping[str, Any]] = None, *, fields: str = "id kind source rating rationale choice accepted roundIndex answerIndex judgeModel createdAt candidate { id }", page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Every preference (``filter``: kinds, sources, candidateId, annotatorId)."""
        return self._connection_of("preferences", "filter: PreferenceFilter", fields, {"filter": filter}, page_size)

    def demonstrations(self, filter: Optional[Mapping[str, Any]] = None, *, fields: str = "id active externalId image { id pairId } turns { from value }", page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Every clinician demonstration (``filter``: active, modalities)."""
        return self._connection_of("demonstrations", "filter: DemonstrationFilter", fields, {"filter": filter}, page_size)

    def runs(self, kinds: Optional[Sequence[str]] = None, statuses: Optional[Sequence[str]] = None, *, page_size: int = 100) -> Iterator[Run]:
        """Every run, newest first."""
        for node in self._connection_of("runs", "kinds: [RunKind!], statuses: [RunStatus!]", RUN_FIELDS, {"kinds": kinds, "statuses": statuses}, page_size):
            yield Run.from_api(node)

    def datasets(self, *, page_size: int = 100) -> Iterator[Dataset]:
        """Every dataset version."""
        for node in self._connection_of("datasets", "", DATASET_FIELDS, {}, page_size):
            yield Dataset.from_api(node)

    def selector_models(self, *, active_only: bool = False, page_size: int = 100) -> Iterator[SelectorModel]:
        """Every registered selector version, newest first."""
        for node in self._connection_of("selectorModels", "activeOnly: Boolean", SELECTOR_FIELDS, {"activeOnly": active_only or None}, page_size):
            yield SelectorModel.from_api(node)

    def run(self, run: RunRef) -> Run:
        """A run's current state."""
        return Run.from_api(self.query(f"query($id: ID!) {{ run(id: $id) {{ {RUN_FIELDS} }} }}", {"id": _id(run)})["run"])

    def run_failures(self, run: RunRef, *, page_size: int = 100) -> Iterator[RunFailure]:
        """Every item the run gave up on, newest first."""
        query = f"query($id: ID!, $first: Int!, $after: String) {{ run(id: $id) {{ failures(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {RUN_FAILURE_FIELDS} }} }} }} }} }}"
        for node in self.paginate(query, {"id": _id(run)}, path="run.failures", page_size=page_size):
            yield RunFailure.from_api(node)

    def selector_model(self, name: str, version: Optional[int] = None) -> SelectorModel:
        """A selector by name; the latest version unless ``version`` is given."""
        query = f"query($name: String!, $version: Int) {{ selectorModel(name: $name, version: $version) {{ {SELECTOR_FIELDS} }} }}"
        return SelectorModel.from_api(self.query(query, {"name": name, "version": version})["selectorModel"])

    def dataset(self, dataset: DatasetRef) -> Dataset:
        """A dataset by id."""
        query = f"query($id: ID!) {{ node(id: $id) {{ ... on Dataset {{ {DATASET_FIELDS} }} }} }}"
        return Dataset.from_api(self.query(query, {"id": _id(dataset)})["node"])

    # ----- writing -------------------------------------------------------------------------------

    def upload_image(self, file: multipart.FileLike, *, metadata: Optional[Mapping[str, Any]] = None, fields: str = IMAGE_FIELDS, **metadata_fields: Any) -> Image:
        """Uploads one figure; metadata as a dict or keywords (caption, mentions, modalities,
        pair_id, pmid, fig_label…). Duplicate or unreadable files raise ``ApiError``."""
        meta = camel_keys({**(metadata or {}), **metadata_fields})
        mutation = f"mutation($input: UploadImageInput!) {{ uploadImage(input: $input) {{ image {{ {fields} }} {USER_ERRORS} }} }}"
        return self.mutate(mutation, {"input": {"file": None, "metadata": meta or None}}, files={"input.file": file})["image"]

    def import_records(self, records: Union[Sequence[Mapping[str, Any]], str, "os.PathLike[str]"], *, images: Iterable[multipart.FileLike] = (), create_demonstrations: bool = True) -> ImportSummary:
        """Imports LLaVA-Med / BioMed-VITAL figure records (a list, or the path of a JSON file) with
        image files matched by name; all or nothing. Bad records raise ``ApiError`` (``INVALID``)
        whose ``errors`` list each ``recordErrors`` entry."""
        files: Dict[str, multipart.FileLike] = {f"input.images.{i}": image for i, image in enumerate(images)}
        payload_input: Dict[str, Any] = {"createDemonstrations": create_demonstrations}
        if isinstance(records, (str, os.PathLike)):
            files["input.recordsFile"] = records
        else:
            payload_input["records"] = list(records)
        mutation = (
            "mutation($input: ImportRecordsInput!) { importRecords(input: $input) { "
            "summary { imagesCreated imagesUpdated imagesWithBytes demonstrationsCreated unmatchedFiles } "
            f"recordErrors {{ index recordId field message }} {USER_ERRORS} }} }}"
        )
        payload = self.mutate(mutation, {"input": payload_input}, files=files or None)
        if payload["recordErrors"]:
            first = payload["recordErrors"][0]
            message = "; ".join(f"record {e['index']}{' ' + e['field'] if e.get('field') else ''}: {e['message']}" for e in payload["recordErrors"][:10])
            field = ["input", "records", str(first["index"])] + ([first["field"]] if first.get("field") else [])
            raise ApiError(message, "INVALID", field, errors=payload["recordErrors"])
        return ImportSummary.from_api(payload["summary"])

    def _start(self, mutation_name: str, input_type: str, run_input: Mapping[str, Any]) -> Run:
        mutation = f"mutation($input: {input_type}!) {{ {mutation_name}(input: $input) {{ run {{ {RUN_FIELDS} }} {USER_ERRORS} }} }}"
        return Run.from_api(self.mutate(mutation, {"input": camel_keys(run_input)})["run"])

    def start_generation_run(self, images: Union[Sequence[str], Mapping[str, Any], None] = None, **options: Any) -> Run:
        """Generates candidates for images given by ids, by an ``ImageFilter`` dict, or all of them.
        Options as in ``StartGenerationRunInput`` (snake_case accepted): samples_per_image, form,
        min_rounds, demonstrations_per_prompt, demonstration_strategy, seed, model, limits."""
        return self._start("startGenerationRun", "StartGenerationRunInput", {"images": _image_selection(images), **options})

    def start_rating_run(self, generation_run: Optional[RunRef] = None, *, candidate_ids: Optional[Sequence[str]] = None, **options: Any) -> Run:
        """The judge rates every answer of a generation run's OK candidates, or of given candidates."""
        run_input = {"generationRunId": _id(generation_run) if generation_run else None, "candidateIds": candidate_ids, **options}
        return self._start("startRatingRun", "StartRatingRunInput", {k: v for k, v in run_input.items() if v is not None})

    def start_clustering_run(self, images: Union[Sequence[str], Mapping[str, Any], None] = None, **options: Any) -> Run:
        """k-means diversity clusters (options: k, seed, text_weight, image_weight, limits)."""
        run_input = dict(options)
        if images is not None:
            run_input["images"] = _image_selection(images)
        return self._start("startClusteringRun", "StartClusteringRunInput", run_input)

    def start_scoring_run(self, selector: Optional[SelectorRef] = None, *, candidates: Optional[Mapping[str, Any]] = None, batch_size: Optional[int] = None) -> Run:
        """Scores candidates (default: every OK one) with a selector (default: the active one)."""
        run_input = {"selectorModelId": _id(selector) if selector else None, "candidates": candidates, "batchSize": batch_size}
        return self._start("startScoringRun", "StartScoringRunInput", {k: v for k, v in run_input.items() if v is not None})

    def cancel_run(self, run: RunRef) -> Run:
        """Stops a queued run at once, a running one within a second."""
        mutation = f"mutation($input: CancelRunInput!) {{ cancelRun(input: $input) {{ run {{ {RUN_FIELDS} }} {USER_ERRORS} }} }}"
        return Run.from_api(self.mutate(mutation, {"input": {"runId": _id(run)}})["run"])

    def register_selector(
        self,
        name: str,
        *,
        model: Optional[multipart.FileLike] = None,
        tokenizer: Optional[multipart.FileLike] = None,
        manifest: Optional[multipart.FileLike] = None,
        server_path: Optional[str] = None,
        activate: bool = False,
        description: Optional[str] = None,
    ) -> SelectorModel:
        """Registers a selector from model.onnx, tokenizer.json and selector.json (files or paths),
        or from a server folder; the same files under the same name return the existing version."""
        files = {f"input.{k}": v for k, v in (("model", model), ("tokenizer", tokenizer), ("manifest", manifest)) if v is not None}
        selector_input = {"name": name, "activate": activate, "description": description, "serverPath": server_path}
        mutation = f"mutation($input: RegisterSelectorModelInput!) {{ registerSelectorModel(input: $input) {{ selectorModel {{ {SELECTOR_FIELDS} }} {USER_ERRORS} }} }}"
        payload = self.mutate(mutation, {"input": {k: v for k, v in selector_input.items() if v is not None}}, files=files or None)
        return SelectorModel.from_api(payload["selectorModel"])

    def create_dataset(
        self,
        name: str,
        *,
        top_fraction: Optional[float] = None,
        top_k: Optional[int] = None,
        min_score: Optional[float] = None,
        selector: Optional[SelectorRef] = None,
        candidates: Optional[Mapping[str, Any]] = None,
        union_datasets: Optional[Sequence[DatasetRef]] = None,
        description: Optional[str] = None,
    ) -> Dataset:
        """Ranks the scored candidates by a selector and freezes the top fraction, top k and/or
        those at or above ``min_score`` as a new version of ``name``."""
        dataset_input = {
            "name": name, "topFraction": top_fraction, "topK": top_k, "minScore": min_score,
            "selectorModelId": _id(selector) if selector else None, "candidates": camel_keys(candidates) if candidates else None,
            "unionDatasetIds": [_id(d) for d in union_datasets] if union_datasets else None, "description": description,
        }
        mutation = f"mutation($input: CreateDatasetInput!) {{ createDataset(input: $input) {{ dataset {{ {DATASET_FIELDS} }} {USER_ERRORS} }} }}"
        return Dataset.from_api(self.mutate(mutation, {"input": {k: v for k, v in dataset_input.items() if v is not None}})["dataset"])

    # ----- waiting -------------------------------------------------------------------------------

    def wait(
        self,
        run: RunRef,
        *,
        progress: Union[bool, Progress] = True,
        file: Optional[TextIO] = None,
        poll_interval: float = 1.0,
        timeout: Optional[float] = None,
    ) -> Run:
        """Polls the run until it ends, showing its progress (tqdm when installed, else a line on
        ``file``, default stderr), and returns its final state. A FAILED run raises
        :class:`RunFailedError` with its failures; a CANCELLED one is returned. ``timeout``
        (seconds) raises ``TimeoutError`` and leaves the run going."""
        reporter: Optional[Progress] = progress if isinstance(progress, Progress) else (make_progress(file) if progress else None)
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self.run(run)
        try:
            while not state.ended:
                if reporter:
                    reporter.update(state)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {state.id} still {state.status} after {timeout} s")
                time.sleep(poll_interval)
                state = self.run(state.id)
        finally:
            if reporter:
                reporter.close(state)
        if state.status == "FAILED":
            raise RunFailedError(state, self.failures(state))
        return state

    def failures(self, run: RunRef, limit: int = 100) -> List[RunFailure]:
        """The newest ``limit`` failures of a run. A generation run keeps its failed items as
        candidates (FAILED, PARSE_FAILED, REFUSED), so for one those are the failures, keyed
        ``candidate:<id>``, with the model's reply."""
        state = run if isinstance(run, Run) else self.run(run)
        if state.kind == "GENERATION":
            candidates = self.candidates(
                {"runId": state.id, "statuses": ["FAILED", "PARSE_FAILED", "REFUSED"]},
                fields="id status failureReason rawOutput createdAt provenance { attempts }",
                page_size=min(100, max(1, limit)),
            )
            found = (
                RunFailure(id=c["id"], item_key=f"candidate:{c['id']}", reason=c.get("failureReason") or c["status"], raw_output=c.get("rawOutput"), attempts=c["provenance"]["attempts"], created_at=c.get("createdAt"))
                for c in candidates
            )
        else:
            found = self.run_failures(state, page_size=min(100, max(1, limit)))
        return list(itertools.islice(found, limit))

    # ----- exports -------------------------------------------------------------------------------

    def export_url(self, dataset: DatasetRef, format: str) -> str:
        """The download link of a dataset export (``llava.json``, ``jsonl``, ``trl.jsonl``, ``images.tar``)."""
        name = export_format_name(format)
        record = dataset if isinstance(dataset, Dataset) and name in dataset.exports else self.dataset(dataset)
        return record.exports[name]

    def open_export(self, dataset: DatasetRef, format: str) -> Any:
        """The export's HTTP response, open for reading (a file-like object; use it in ``with``).
        The API key is sent only when the link is on the API's own origin."""
        return self.transport.open("GET", self.export_url(dataset, format))

    def stream_export(self, dataset: DatasetRef, format: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The export's bytes in chunks, as they arrive (constant memory)."""
        with self.open_export(dataset, format) as response:
            while True:
                chunk = response.read(chunk_size)
                if not chunk:
                    return
                yield chunk

    def download_export(self, dataset: DatasetRef, format: str, path: Union[str, "os.PathLike[str]"], chunk_size: int = 1 << 20) -> str:
        """Writes the export to ``path`` (through a ``.part`` file, so that an interrupted download
        never looks complete) and returns the path."""
        target = os.fspath(path)
        partial = target + ".part"
        try:
            with open(partial, "wb") as out:
                for chunk in self.stream_export(dataset, format, chunk_size):
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return target


def _pairs(types: str) -> List[List[str]]:
    return [[p.strip() for p in pair.split(":", 1)] for pair in types.split(",") if pair.strip()]


def _image_selection(images: Union[Sequence[str], Mapping[str, Any], None]) -> Dict[str, Any]:
    if images is None:
        return {"filter": {}}
    if isinstance(images, Mapping):
        return {"filter": camel_keys(images)}
    if isinstance(images, str):
        return {"imageIds": [images]}
    return {"imageIds": list(images)}


def _connection(data: Mapping[str, Any], path: Optional[str]) -> Dict[str, Any]:
    if path:
        here: Any = data
        for key in path.split("."):
            here = here[key]
        return here
    found = _find_connection(data)
    if found is None:
        raise ValueError("no connection (edges and pageInfo) in the query's result")
    return found


def _find_connection(value: Any) -> Optional[Dict[str, Any]]:
    if isinstance(value, dict):
        if "edges" in value and "pageInfo" in value:
            return value
        for child in value.values():
            found = _find_connection(child)
            if found is not None:
                return found
    return None


