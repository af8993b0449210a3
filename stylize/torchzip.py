"""Read the tensors of a TorchScript archive without torch and without running its code.

A TorchScript ``.pt`` file is a zip: ``<root>/data.pkl`` is a pickle of the module tree
whose tensors are *persistent references* to raw little-endian storages stored as
``<root>/data/<key>``, rebuilt by ``torch._utils._rebuild_tensor_v2``. A plain
``pickle.load`` would import and call whatever the pickle names, so this module uses an
:class:`RestrictedUnpickler` with a short allow-list: ``collections.OrderedDict``, the
float storage type, the tensor rebuild and int-list functions (re-implemented here), and
inert stand-ins for TorchScript's own ``__torch__.*`` module classes. Anything else is
refused with :class:`pickle.UnpicklingError`.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# Storage types we accept, with the numpy dtype of their bytes (little-endian).
_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}


class TorchModuleStub:
    """An inert stand-in for a TorchScript module object: only holds its attributes."""

    torch_type = "?"

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def children(self) -> Iterator[tuple[str, TorchModuleStub]]:
        """Sub-modules in the order the archive stores them."""
        for name, value in self.__dict__.items():
            if isinstance(value, TorchModuleStub):
                yield name, value


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor_v2(
    storage: np.ndarray,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> np.ndarray:
    """numpy version of ``torch._utils._rebuild_tensor_v2``: a strided view, copied."""
    count = 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True) if n > 0)
    if any(n == 0 for n in size):
        return np.zeros(size, dtype=storage.dtype)
    if storage_offset < 0 or storage_offset + count > storage.size:
        raise pickle.UnpicklingError("tensor reaches outside its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:],
        shape=tuple(size),
        strides=tuple(s * item for s in stride),
        writeable=False,
    )
    return np.array(view, copy=True)


def _build_intlist(values: list[Any]) -> list[int]:
    """``torch.jit._pickle.build_intlist``: TorchScript's int-list attributes (paddings)."""
    return [int(v) for v in values]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only builds module stubs, ordered dicts and numpy tensors."""

    def __init__(self, file: io.BufferedIOBase, load_storage: Callable[[str, np.dtype, int], Any]):
        super().__init__(file)
        self._load_storage = load_storage
        self._stub_types: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return _build_intlist
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module.startswith("__torch__.") and name.isidentifier():
            key = f"{module}.{name}"
            if key not in self._stub_types:
                self._stub_types[key] = type(name, (TorchModuleStub,), {"torch_type": key})
            return self._stub_types[key]
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent reference {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not str(key).isdigit():
            raise pickle.UnpicklingError("unsupported storage reference")
        return self._load_storage(str(key), storage_type.dtype, int(numel))


def load_torchscript_tree(path: Path) -> TorchModuleStub:
    """The module tree of a TorchScript archive, tensors as float32 numpy arrays."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path} is not a TorchScript archive (no single data.pkl)")
        root = pickles[0][: -len("data.pkl")]

        def load_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
            raw = archive.read(f"{root}data/{key}")
            if len(raw) != numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key}: size does not match its header")
            return np.frombuffer(raw, dtype=dtype)

        with archive.open(pickles[0]) as handle:
            tree = RestrictedUnpickler(io.BufferedReader(handle), load_storage).load()
    if not isinstance(tree, TorchModuleStub):
        raise pickle.UnpicklingError("archive root is not a module")
    return tree


def iter_modules(tree: TorchModuleStub, prefix: str = "") -> Iterator[tuple[str, TorchModuleStub]]:
    """Depth-first walk of the module tree, in the archive's attribute order."""
    yield prefix, tree
    for name, child in tree.children():
        yield from iter_modules(child, f"{prefix}.{name}" if prefix else name)
