"""BioMed-VITAL API client: standard library only, Python 3.9+.

    from biomed_vital import Client
    client = Client("http://127.0.0.1:4000/graphql", key)
    for image in client.images({"modalities": ["CT"]}):
        ...
"""
from .client import EXPORT_FORMATS, Client
from .errors import ApiError, RunFailedError
from .models import Candidate, Dataset, Image, ImportSummary, Run, RunFailure, SelectorModel
from .progress import PlainProgress, Progress, TqdmProgress, make_progress

__all__ = [
    "ApiError", "Candidate", "Client", "Dataset", "EXPORT_FORMATS", "Image", "ImportSummary", "PlainProgress",
    "Progress", "Run", "RunFailedError", "RunFailure", "SelectorModel", "TqdmProgress", "make_progress",
]
__version__ = "0.1.0"
