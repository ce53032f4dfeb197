"""Typed views of what the client returns. Objects whose fields a caller chooses (images,
candidates) stay dictionaries (see the TypedDicts); objects the client itself asks for are
dataclasses, each keeping the API's dictionary in ``raw``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

try:  # Python 3.9 has TypedDict in typing; total=False keeps every field optional
    from typing import TypedDict
except ImportError:  # pragma: no cover
    from typing_extensions import TypedDict  # type: ignore

TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "CANCELLED")

RUN_FIELDS = (
    "id kind status total done failed queued promptTokens completionTokens costUsd lastError params "
    "itemsPerSecond etaSeconds createdAt startedAt finishedAt"
)
RUN_FAILURE_FIELDS = "id itemKey reason rawOutput attempts createdAt"
SELECTOR_FIELDS = "id name version active description filesHash dryRunScore modelBytes manifest metrics createdAt"
DATASET_FIELDS = "id name version description itemCount contentHash countsByModality rule createdAt selectorModel { id name version } exports { format url }"
IMAGE_FIELDS = "id pairId pmid figLabel caption mentions modalities fileName width height contentHash clusterId url thumbnailUrl createdAt"
CANDIDATE_FIELDS = "id status form sampleIndex failureReason createdAt image { id pairId caption } rounds { index question answer alternativeAnswer } provenance { model promptTemplateVersion promptTokens completionTokens costUsd }"


class Image(TypedDict, total=False):
    """An ``Image`` node as ``IMAGE_FIELDS`` asks for it."""

    id: str
    pairId: Optional[str]
    pmid: Optional[str]
    figLabel: Optional[str]
    caption: str
    mentions: List[str]
    modalities: List[str]
    fileName: Optional[str]
    width: Optional[int]
    height: Optional[int]
    contentHash: Optional[str]
    clusterId: Optional[int]
    url: Optional[str]
    thumbnailUrl: Optional[str]
    createdAt: str


class Candidate(TypedDict, total=False):
    """A ``Candidate`` node as ``CANDIDATE_FIELDS`` asks for it."""

    id: str
    status: str
    form: str
    sampleIndex: int
    failureReason: Optional[str]
    createdAt: str
    image: Dict[str, Any]
    rounds: List[Dict[str, Any]]
    provenance: Dict[str, Any]


@dataclass
class Run:
    """Long work: generation, rating, clustering or scoring."""

    id: str
    kind: str
    status: str
    total: int
    done: int
    failed: int
    queued: int
    cost_usd: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    last_error: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)
    items_per_second: Optional[float] = None
    eta_seconds: Optional[float] = None
    created_at: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_api(cls, d: Dict[str, Any]) -> "Run":
        return cls(
            id=d["id"], kind=d["kind"], status=d["status"], total=d["total"], done=d["done"], failed=d["failed"],
            queued=d.get("queued", max(0, d["total"] - d["done"] - d["failed"])),
            cost_usd=d.get("costUsd") or 0.0, prompt_tokens=d.get("promptTokens") or 0.0,
            completion_tokens=d.get("completionTokens") or 0.0, last_error=d.get("lastError"),
            params=d.get("params") or {}, items_per_second=d.get("itemsPerSecond"), eta_seconds=d.get("etaSeconds"),
            created_at=d.get("createdAt"), started_at=d.get("startedAt"), finished_at=d.get("finishedAt"), raw=d,
        )


@dataclass
class RunFailure:
    """An item a run gave up on, with the reason (and the model's reply when there was one)."""

    id: str
    item_key: str
    reason: str
    raw_output: Optional[str] = None
    attempts: int = 0
    created_at: Optional[str] = None

    @classmethod
    def from_api(cls, d: Dict[str, Any]) -> "RunFailure":
        return cls(id=d["id"], item_key=d["itemKey"], reason=d["reason"], raw_output=d.get("rawOutput"), attempts=d.get("attempts", 0), created_at=d.get("createdAt"))


@dataclass
class SelectorModel:
    """A registered ONNX selector, versioned by name."""

    id: str
    name: str
    version: int
    active: bool
    files_hash: str
    description: Optional[str] = None
    dry_run_score: Optional[float] = None
    model_bytes: Optional[float] = None
    manifest: Dict[str, Any] = field(default_factory=dict, repr=False)
    metrics: Optional[Dict[str, Any]] = None
    created_at: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, d: Dict[str, Any]) -> "SelectorModel":
        return cls(
            id=d["id"], name=d["name"], version=d["version"], active=d["active"], files_hash=d["filesHash"],
            description=d.get("description"), dry_run_score=d.get("dryRunScore"), model_bytes=d.get("modelBytes"),
            manifest=d.get("manifest") or {}, metrics=d.get("metrics"), created_at=d.get("createdAt"), raw=d,
        )


@dataclass
class Dataset:
    """A frozen, versioned selection of candidates; ``exports`` maps a format to its download URL."""

    id: str
    name: str
    version: int
    item_count: int
    content_hash: Optional[str]
    counts_by_modality: Dict[str, int]
    rule: Dict[str, Any]
    exports: Dict[str, str]
    description: Optional[str] = None
    selector_model: Optional[Dict[str, Any]] = None
    created_at: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, d: Dict[str, Any]) -> "Dataset":
        return cls(
            id=d["id"], name=d["name"], version=d["version"], item_count=d["itemCount"], content_hash=d.get("contentHash"),
            counts_by_modality=d.get("countsByModality") or {}, rule=d.get("rule") or {},
            exports={e["format"]: e["url"] for e in d.get("exports") or []}, description=d.get("description"),
            selector_model=d.get("selectorModel"), created_at=d.get("createdAt"), raw=d,
        )


@dataclass
class ImportSummary:
    """What ``import_records`` wrote."""

    images_created: int
    images_updated: int
    images_with_bytes: int
    demonstrations_created: int
    unmatched_files: List[str]

    @classmethod
    def from_api(cls, d: Dict[str, Any]) -> "ImportSummary":
        return cls(
            images_created=d["imagesCreated"], images_updated=d["imagesUpdated"], images_with_bytes=d["imagesWithBytes"],
            demonstrations_created=d["demonstrationsCreated"], unmatched_files=list(d.get("unmatchedFiles") or []),
        )
