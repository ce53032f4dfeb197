"""GraphQL multipart requests (github.com/jaydenseric/graphql-multipart-request-spec), built with
the standard library so that notebooks need nothing installed."""
from __future__ import annotations

import json
import mimetypes
import os
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, Mapping, Tuple, Union

#: A file to upload: a path, raw bytes (named ``upload.bin``), an open binary file, or ``(name, bytes)``.
FileLike = Union[str, "os.PathLike[str]", bytes, BinaryIO, Tuple[str, bytes]]


@dataclass(frozen=True)
class UploadFile:
    """One file part: its name as the server sees it, its bytes and content type."""

    name: str
    content: bytes
    content_type: str

    @classmethod
    def of(cls, file: FileLike) -> "UploadFile":
        if isinstance(file, UploadFile):
            return file
        if isinstance(file, tuple):
            name, content = file
        elif isinstance(file, (bytes, bytearray)):
            name, content = "upload.bin", bytes(file)
        elif isinstance(file, (str, os.PathLike)):
            name = os.path.basename(os.fspath(file))
            with open(file, "rb") as handle:
                content = handle.read()
        else:
            name = os.path.basename(getattr(file, "name", "upload.bin"))
            content = file.read()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return cls(name, content, content_type)


def set_path(variables: Dict[str, Any], dotted: str, value: Any) -> None:
    """Sets ``input.images.0`` in nested variables (lists grow as needed)."""
    parts = dotted.split(".")
    target: Any = variables
    for here, ahead in zip(parts, parts[1:]):
        key: Any = int(here) if isinstance(target, list) else here
        if isinstance(target, list):
            while len(target) <= key:
                target.append(None)
            if target[key] is None:
                target[key] = [] if ahead.isdigit() else {}
        elif target.get(key) is None:
            target[key] = [] if ahead.isdigit() else {}
        target = target[key]
    last = parts[-1]
    if isinstance(target, list):
        index = int(last)
        while len(target) <= index:
            target.append(None)
        target[index] = value
    else:
        target[last] = value


def encode(query: str, variables: Mapping[str, Any], files: Mapping[str, FileLike]) -> Tuple[bytes, str]:
    """The body and content type of a multipart request. ``files`` maps a variables path
    (``input.file``, ``input.images.0``) to a file; each such path is sent as null in the operations,
    as the spec asks."""
    operations_variables: Dict[str, Any] = json.loads(json.dumps(dict(variables)))
    uploads: List[Tuple[str, UploadFile]] = []
    for path, file in files.items():
        set_path(operations_variables, path, None)
        uploads.append((path, UploadFile.of(file)))
    operations = json.dumps({"query": query, "variables": operations_variables})
    file_map = json.dumps({str(i): [f"variables.{path}"] for i, (path, _) in enumerate(uploads)})

    boundary = f"----bmv-{uuid.uuid4().hex}"
    chunks: List[bytes] = []

    def part(headers: str, content: bytes) -> None:
        chunks.append(f"--{boundary}\r\n{headers}\r\n\r\n".encode("utf-8"))
        chunks.append(content)
        chunks.append(b"\r\n")

    part('Content-Disposition: form-data; name="operations"\r\nContent-Type: application/json', operations.encode("utf-8"))
    part('Content-Disposition: form-data; name="map"\r\nContent-Type: application/json', file_map.encode("utf-8"))
    for i, (_, upload) in enumerate(uploads):
        safe_name = upload.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        part(f'Content-Disposition: form-data; name="{i}"; filename="{safe_name}"\r\nContent-Type: {upload.content_type}', upload.content)
    chunks.append(f"--{boundary}--\r\n".encode("utf-8"))
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
