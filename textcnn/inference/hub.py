"""Models on the Hugging Face Hub: download a model directory by id, upload one.

Both go through ``huggingface_hub`` (``snapshot_download``, ``create_repo``, ``upload_folder``), so its
cache (``HF_HUB_CACHE``), token (``HF_TOKEN``, ``hf auth login``) and endpoint (``HF_ENDPOINT``)
settings apply. Without a network the answer comes in seconds: the Hub is asked once, with a
timeout and no retries; ``HF_HUB_OFFLINE=1`` asks nothing. A model already in the cache loads offline.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from textcnn.errors import UserInputError

log = logging.getLogger(__name__)
MODEL_FILES = ("model.safetensors", "config.json", "tokenizer.json", "README.md")  # a model directory's files

# owner/name: what the Hub accepts as a model id (letters, digits, '-', '_', '.'; no '--' or '..')
MODEL_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
# a dataset id as a model card names it: owner/name, or a bare name for the Hub's canonical datasets (imdb)
DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
# The one policy for asking the Hub anything (a model, a dataset, an upload): one question with this
# timeout and no retries, so an offline machine is told in seconds; HF_HUB_OFFLINE asks nothing.
TIMEOUT_S = 5.0


def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` with nothing a local path would have (a leading dot, a suffix such as .ckpt)."""
    return bool(MODEL_ID.fullmatch(text)) and "--" not in text and ".." not in text and not text.endswith(
        (".ckpt", ".json", ".onnx", ".safetensors"))


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as it is now: ``huggingface_hub`` reads it once, when first imported, so a value
    set later in the environment wins over what it read."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in ("1", "ON", "YES", "TRUE")
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def reachable(timeout_s: float = TIMEOUT_S) -> bool:
    """Whether one TCP connection to the Hub's endpoint (``HF_ENDPOINT``) opens within ``timeout_s``:
    asked before a library that would retry for minutes (``datasets``) is let near the network."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def download(repo_id: str, revision: Optional[str] = None, token: Optional[str] = None) -> Path:
    """The local snapshot of a model repository: from the Hub, or from the cache when offline."""
    huggingface_hub = _hub()
    from huggingface_hub import errors

    commit = revision
    if not offline():
        try:  # one question with a timeout; snapshot_download's own has none, and its answer is reused
            commit = huggingface_hub.HfApi(token=token).model_info(repo_id, revision=revision, timeout=TIMEOUT_S).sha
        except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as error:
            raise _not_found(repo_id, revision, error) from None
        except errors.HfHubHTTPError as error:
            raise UserInputError(f"the Hub refused {repo_id} ({_first_line(error)}); check the id and your token "
                                 "(HF_TOKEN or `hf auth login`)") from None
        except Exception as error:  # the network: connection refused, DNS, timeout, proxy (httpx's own types)
            snapshot = _from_cache(repo_id, revision, f"the Hub cannot be reached ({_first_line(error)})")
            log.info("the Hub cannot be reached (%s); %s loads from the cache", _first_line(error), repo_id)
            return snapshot
    else:
        return _from_cache(repo_id, revision, "HF_HUB_OFFLINE is set")
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=commit, token=token, allow_patterns=list(MODEL_FILES),
                                                      etag_timeout=TIMEOUT_S, library_name="textcnn"))
    except errors.LocalEntryNotFoundError as error:
        raise UserInputError(f"downloading {repo_id} failed ({_first_line(error)}); try again") from None
    except (errors.HfHubHTTPError, OSError) as error:
        raise UserInputError(f"downloading {repo_id} failed ({_first_line(error)}); try again") from None


def _from_cache(repo_id: str, revision: Optional[str], why: str) -> Path:
    huggingface_hub = _hub()
    from huggingface_hub import constants, errors

    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision, local_files_only=True,
                                                      allow_patterns=list(MODEL_FILES), library_name="textcnn"))
    except errors.LocalEntryNotFoundError:
        raise UserInputError(
            f"{repo_id} is neither a local path nor in the Hugging Face cache ({constants.HF_HUB_CACHE}), and "
            f"{why}; connect to download it once, or pass the path of a model directory"
        ) from None


def upload(directory: Path, repo_id: str, token: Optional[str] = None, private: bool = False,
           commit_message: str = "Upload textcnn model") -> str:
    """Create ``repo_id`` if need be and upload the model directory's files; returns the commit's URL."""
    if not MODEL_ID.fullmatch(repo_id):
        raise UserInputError(f"{repo_id!r} is not a Hub model id; pass it as owner/name, e.g. alice/sst2-textcnn")
    if offline():
        raise UserInputError("HF_HUB_OFFLINE is set, so nothing can be pushed to the Hub; unset it and retry")
    huggingface_hub = _hub()
    from huggingface_hub import errors

    api = huggingface_hub.HfApi(token=token)
    try:  # one question with a timeout: an unreachable Hub is an answer in seconds, not a hang
        api.model_info(repo_id, timeout=TIMEOUT_S)
    except errors.RepositoryNotFoundError:
        pass  # created below (or private to someone else: create_repo says so)
    except errors.HfHubHTTPError as error:
        raise UserInputError(f"the Hub refused {repo_id} ({_first_line(error)}); check your token") from None
    except Exception as error:  # the network: connection refused, DNS, timeout, proxy (httpx's own types)
        raise UserInputError(f"cannot push to {repo_id}: the Hub cannot be reached ({_first_line(error)}); "
                             "check the connection (or HF_ENDPOINT) and retry") from None
    try:
        huggingface_hub.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
        info = huggingface_hub.upload_folder(repo_id=repo_id, folder_path=str(directory), token=token,
                                             repo_type="model", commit_message=commit_message,
                                             allow_patterns=list(MODEL_FILES))
    except errors.HfHubHTTPError as error:
        raise UserInputError(f"pushing to {repo_id} failed ({_first_line(error)}); check that your token "
                             "(HF_TOKEN or `hf auth login`) may write there") from None
    except (OSError, ValueError) as error:
        raise UserInputError(f"pushing to {repo_id} failed ({_first_line(error)})") from None
    return str(getattr(info, "commit_url", info))


def _not_found(repo_id: str, revision: Optional[str], error: Exception) -> UserInputError:
    at = f" at revision {revision}" if revision else ""
    return UserInputError(f"{repo_id} is not a local path, and the Hub has no model {repo_id}{at} that this token "
                          "may read; check the id (owner/name), or log in for a private model (HF_TOKEN)")


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise UserInputError("loading from or pushing to the Hub needs huggingface_hub; pip install huggingface_hub") \
            from None
    return huggingface_hub


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__
