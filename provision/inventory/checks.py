"""Checks beyond the schema that need other parts of aihost (model fit, exposure)."""

from __future__ import annotations

from provision.errors import AihostError, InputError
from provision.inventory.model import Inventory


def check_inventory(inv: Inventory, *, allow_cpu_offload: bool = False) -> list[str]:
    """Return warnings; raise an AihostError (exit 2) for what cannot work."""
    warnings: list[str] = []
    for name, vm in inv.vms.items():
        if vm.runtime != "none" and vm.listen not in ("127.0.0.1", "::1"):
            warnings.append(
                f"vms.{name}: the {vm.runtime} API listens on {vm.listen} without "
                "authentication; anyone on that network can use it"
            )
        if vm.runtime == "vllm" and not vm.gpu_names:
            raise InputError(
                f"{inv.source}: vms.{name}: runtime vllm needs a GPU and this VM has none",
                hint="add gpu: NAME, or use runtime: ollama or llamacpp (they also run on the CPU)",
            )
        if vm.runtime == "none" and vm.models:
            warnings.append(f"vms.{name}: models are listed but runtime is none")
    warnings.extend(_check_model_fit(inv, allow_cpu_offload))
    return warnings


def _check_model_fit(inv: Inventory, allow_cpu_offload: bool) -> list[str]:
    try:
        from provision.models import check_vm_models
    except ImportError:  # the catalog ships with the models package; absent means no check
        return []
    warnings: list[str] = []
    for name, vm in inv.vms.items():
        if not vm.models or not vm.gpu_names or vm.runtime == "none":
            continue
        vram = [inv.gpus[g].vram_gb for g in vm.gpu_names]
        settings = vm.settings  # what the runtime is started with
        try:
            results = check_vm_models(
                vm.models,
                vram,
                runtime=vm.runtime,
                context=settings["context"],
                parallel=settings["parallel"] or 1,
                allow_cpu_offload=allow_cpu_offload,
                gpu_memory_utilization=vm.vllm.gpu_memory_utilization,
                gpu_names=tuple(vm.gpu_names),
            )
        except AihostError as exc:
            exc.message = f"{inv.source}: vms.{name}.models: {exc.message}"
            raise
        warnings.extend(r.warning for r in results if r.warning)
    return warnings
