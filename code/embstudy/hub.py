"""Hub checkpoints for the paper profile: the local Hugging Face cache first, a clear error offline.

:func:`resolve` turns a hub id (``camembert-base``) into a local snapshot folder:
from the cache without touching the network when it is there, else downloaded
(weights and tokenizer files only). When neither works it raises
:class:`HubUnreachable` with one line that says what to do, within the hub
client's timeouts (10 s by default, ``HF_HUB_ETAG_TIMEOUT``).
"""
from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

# Weights (safetensors or the older .bin), config and both tokenizer formats; skips TF/Flax/ONNX copies.
FILES = ["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"]


class HubUnreachable(SystemExit):
    """The checkpoint is neither cached nor downloadable; exits non-zero with its one-line advice."""


def advice(source: str, why: str) -> str:
    return (f"{source}: {why}. Download it where the hub is reachable (`hf download {source}`) into "
            f"HF_HOME ({constants.HF_HOME}) and set HF_HUB_OFFLINE=1, or run the demo profile "
            "(`git checkout params.yaml && make report`).")


def resolve(source: str) -> str:
    """A local folder for ``source``: itself if it is a folder, else its cached or downloaded snapshot."""
    if Path(source).is_dir():
        return source
    try:
        return snapshot_download(source, allow_patterns=FILES, local_files_only=True)
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") == "1":
            raise HubUnreachable(advice(source, "not in the local Hugging Face cache and HF_HUB_OFFLINE=1")) from None
    try:
        return snapshot_download(source, allow_patterns=FILES)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HubUnreachable(advice(source, f"not in the local cache and the hub cannot be reached ({reason})")) from None
