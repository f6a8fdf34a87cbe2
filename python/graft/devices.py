"""Devices, memory descriptions and shared allocators with onnxruntime's names: OrtDevice,
OrtMemoryInfo, OrtArenaCfg and create_and_register_allocator.

graft allocates host memory from one process-wide allocator (exec/allocator.h) and device memory
from one per device; these objects describe that memory the way onnxruntime's API does, so code
written for onnxruntime can ask and configure in its own terms."""

from __future__ import annotations

import enum
from typing import Any

from . import _C


class OrtDeviceVendorId(enum.IntEnum):
    NONE = 0
    AMD = 0x1002
    NVIDIA = 0x10DE
    ARM = 0x13B5
    MICROSOFT = 0x1414
    HUAWEI = 0x19E5
    QUALCOMM = 0x5143
    INTEL = 0x8086


class OrtMemoryInfoDeviceType(enum.IntEnum):
    CPU = 0
    GPU = 1
    FPGA = 2
    NPU = 3


class OrtDeviceMemoryType(enum.IntEnum):
    DEFAULT = 0
    HOST_ACCESSIBLE = 5


class OrtAllocatorType(enum.IntEnum):
    INVALID = -1
    ORT_DEVICE_ALLOCATOR = 0
    ORT_ARENA_ALLOCATOR = 1


class OrtMemType(enum.IntEnum):
    CPU_INPUT = -2
    CPU_OUTPUT = -1
    CPU = -1
    DEFAULT = 0


# Device type names as OrtValue.device_name() and OrtDevice.make() spell them, with their
# OrtDevice type code and vendor.
_DEVICE_TYPES = {
    "cpu": (OrtMemoryInfoDeviceType.CPU, OrtDeviceVendorId.NONE),
    "cuda": (OrtMemoryInfoDeviceType.GPU, OrtDeviceVendorId.NVIDIA),
    "gpu": (OrtMemoryInfoDeviceType.GPU, OrtDeviceVendorId.NONE),
    "npu": (OrtMemoryInfoDeviceType.NPU, OrtDeviceVendorId.NONE),
}


class OrtDevice:
    """Where memory is: a device type, vendor, memory type and index."""

    def __init__(self, device_type: int, mem_type: int, device_id: int, vendor_id: int = OrtDeviceVendorId.NONE,
                 name: str = "") -> None:
        self._type = int(device_type)
        self._mem_type = int(mem_type)
        self._id = int(device_id)
        self._vendor = int(vendor_id)
        self._name = name or next((n for n, (t, _) in _DEVICE_TYPES.items() if t == self._type), "cpu")

    @staticmethod
    def make(device_type: str, device_id: int = 0) -> "OrtDevice":
        """OrtDevice.make("cpu", 0) or ("cuda", n); raises ValueError for another name."""
        name = str(device_type).lower()
        if name not in _DEVICE_TYPES:
            raise ValueError(f"unknown device type '{device_type}' (expected one of {', '.join(_DEVICE_TYPES)})")
        kind, vendor = _DEVICE_TYPES[name]
        return OrtDevice(kind, OrtDeviceMemoryType.DEFAULT, device_id, vendor, name)

    @staticmethod
    def cpu() -> int:
        return int(OrtMemoryInfoDeviceType.CPU)

    @staticmethod
    def cuda() -> int:
        return int(OrtMemoryInfoDeviceType.GPU)

    @staticmethod
    def dml() -> int:
        return int(OrtMemoryInfoDeviceType.GPU)

    @staticmethod
    def fpga() -> int:
        return int(OrtMemoryInfoDeviceType.FPGA)

    @staticmethod
    def npu() -> int:
        return int(OrtMemoryInfoDeviceType.NPU)

    @staticmethod
    def default_memory() -> int:
        return int(OrtDeviceMemoryType.DEFAULT)

    def device_id(self) -> int:
        return self._id

    def device_type(self) -> int:
        return self._type

    def device_vendor_id(self) -> int:
        return self._vendor

    def device_mem_type(self) -> int:
        return self._mem_type

    def name(self) -> str:
        """The device type as graft names it ("cpu", "cuda")."""
        return self._name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OrtDevice) and (self._type, self._mem_type, self._id, self._vendor) == (
            other._type, other._mem_type, other._id, other._vendor)

    def __hash__(self) -> int:
        return hash((self._type, self._mem_type, self._id, self._vendor))

    def __repr__(self) -> str:
        return f"OrtDevice({self._name}:{self._id})"


class OrtMemoryInfo:
    """A named memory: the allocator's name ("Cpu", "Cuda"), its kind, device and memory type."""

    def __init__(self, name: str, allocator_type: int, device_id: int, mem_type: int) -> None:
        self.name = str(name)
        self.allocator_type = OrtAllocatorType(int(allocator_type))
        self.device_id = int(device_id)
        self.mem_type = OrtMemType(int(mem_type))
        cuda = self.name.lower().startswith("cuda") and self.mem_type == OrtMemType.DEFAULT
        self.device_type = OrtMemoryInfoDeviceType.GPU if cuda else OrtMemoryInfoDeviceType.CPU
        self.device_vendor_id = int(OrtDeviceVendorId.NVIDIA if cuda else OrtDeviceVendorId.NONE)
        self.device_mem_type = OrtDeviceMemoryType.DEFAULT
        self.alignment = 0

    @staticmethod
    def create_v2(name: str, device_type: int, vendor_id: int, device_id: int, device_mem_type: int, alignment: int,
                  allocator_type: int) -> "OrtMemoryInfo":
        info = OrtMemoryInfo(name, allocator_type, device_id, OrtMemType.DEFAULT)
        info.device_type = OrtMemoryInfoDeviceType(int(device_type))
        info.device_vendor_id = int(vendor_id)
        info.device_mem_type = OrtDeviceMemoryType(int(device_mem_type))
        info.alignment = int(alignment)
        return info

    def _key(self) -> tuple:
        return (self.name, int(self.device_type), self.device_id, int(self.mem_type))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OrtMemoryInfo) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"OrtMemoryInfo(name='{self.name}', allocator_type={self.allocator_type.name}, "
                f"device_id={self.device_id}, mem_type={self.mem_type.name})")


def memory_info_of(device_name: str, device_id: int) -> OrtMemoryInfo:
    """The memory a tensor on `device_name` ("cpu", "cuda") lives in."""
    if device_name == "cuda":
        return OrtMemoryInfo("Cuda", OrtAllocatorType.ORT_ARENA_ALLOCATOR, device_id, OrtMemType.DEFAULT)
    return OrtMemoryInfo("Cpu", OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, OrtMemType.DEFAULT)


_ARENA_KEYS = ("max_mem", "arena_extend_strategy", "initial_chunk_size_bytes", "max_dead_bytes_per_chunk",
               "initial_growth_chunk_size_bytes", "max_power_of_two_extend_bytes")


class OrtArenaCfg:
    """How an arena allocator grows: OrtArenaCfg(max_mem, arena_extend_strategy,
    initial_chunk_size_bytes, max_dead_bytes_per_chunk) or OrtArenaCfg({key: value}); -1 (or an
    absent key) leaves the default."""

    def __init__(self, *args: Any) -> None:
        for key in _ARENA_KEYS:
            setattr(self, key, -1)
        if len(args) == 1 and isinstance(args[0], dict):
            for key, value in args[0].items():
                if key not in _ARENA_KEYS:
                    raise ValueError(f"Invalid OrtArenaCfg option: {key} (known: {', '.join(_ARENA_KEYS)})")
                setattr(self, key, int(value))
        elif len(args) == 4:
            for key, value in zip(_ARENA_KEYS, args):
                setattr(self, key, int(value))
        elif args:
            raise TypeError("OrtArenaCfg takes (max_mem, arena_extend_strategy, initial_chunk_size_bytes, "
                            "max_dead_bytes_per_chunk) or one dict")


# Allocators registered for sharing between sessions (session.use_env_allocators), by memory.
_SHARED_ALLOCATORS: dict[tuple, tuple[OrtMemoryInfo, OrtArenaCfg | None, dict]] = {}


def create_and_register_allocator(mem_info: OrtMemoryInfo, arena_cfg: OrtArenaCfg | None = None) -> None:
    """Registers a host allocator for sessions whose options set session.use_env_allocators to
    "1". graft's sessions share the process's host allocator already; this records the
    configuration and refuses a second registration for the same memory, as onnxruntime does."""
    create_and_register_allocator_v2("CPUExecutionProvider", mem_info, {}, arena_cfg)


def create_and_register_allocator_v2(provider_type: str, mem_info: OrtMemoryInfo, provider_options: dict,
                                     arena_cfg: OrtArenaCfg | None = None) -> None:
    if not isinstance(mem_info, OrtMemoryInfo):
        raise TypeError("create_and_register_allocator expects an OrtMemoryInfo")
    if provider_type not in _C.available_providers():
        raise RuntimeError(f"create_and_register_allocator_v2: provider '{provider_type}' is not available")
    if mem_info._key() in _SHARED_ALLOCATORS:
        raise RuntimeError("An allocator for this device has already been registered for sharing.")
    _SHARED_ALLOCATORS[mem_info._key()] = (mem_info, arena_cfg, dict(provider_options or {}))
