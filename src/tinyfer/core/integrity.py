"""Checksums that travel inside model files, verified at load: a damaged file is refused
instead of giving quietly wrong answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tinyfer.errors import TinyferError

#: The ONNX metadata key of a file's own checksum, and what stands in its place while the
#: checksum is computed (the same length, so the file's bytes around it do not move).
CHECKSUM_KEY = "tinyfer_sha256"
_UNSEALED = b"tinyfer-checksum-placeholder-" + b"0" * 35


def weights_digest(state_dict: dict) -> str:
    """sha256 of a state dict: every tensor's name, shape, dtype and bytes, in name order."""
    import torch  # training's extra: predicting imports this module for the ONNX checks

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}\0{tuple(t.shape)}\0{t.dtype}\0".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def seal_onnx(path: str | Path) -> str:
    """Write the file's own sha256 into its metadata (``tinyfer_sha256``); returns it."""
    import onnx  # training's extra, as torch above

    path = Path(path)
    proto = onnx.load(path)
    for i in reversed(range(len(proto.metadata_props))):
        if proto.metadata_props[i].key == CHECKSUM_KEY:
            del proto.metadata_props[i]
    entry = proto.metadata_props.add()
    entry.key, entry.value = CHECKSUM_KEY, _UNSEALED.decode()
    data = proto.SerializeToString()
    digest = hashlib.sha256(data).hexdigest()
    path.write_bytes(data.replace(_UNSEALED, digest.encode(), 1))
    return digest


def check_onnx_seal(path: str | Path, digest: str | None) -> None:
    """TinyferError if ``path``'s bytes no longer match the checksum in its metadata (files
    written before checksums, without one, pass)."""
    if not digest:
        return
    data = Path(path).read_bytes()
    if (
        data.count(digest.encode()) != 1
        or hashlib.sha256(data.replace(digest.encode(), _UNSEALED)).hexdigest() != digest
    ):
        raise TinyferError(f"{path}: the file does not match its checksum: it is damaged. "
                           "Export or download it again.")  # fmt: skip
