"""Which models fit which GPU: the catalog, quantizations, and the VRAM estimator.

estimate("llama3.1:70b", context=8192).gib()   # weights / kv_cache / overhead / total
fit_model("qwen2.5:32b", [24]).verdict          # "fits", "tight", "does-not-fit", ...
check_vm_models(["llama3.1:70b"], [24, 24], runtime="ollama", context=8192,
                allow_cpu_offload=False)        # raises ModelFitError when it cannot work
"""

from provision.models.capacity import Capacity, make_capacity, runtime_context
from provision.models.catalog import Catalog, ModelEntry, load_catalog
from provision.models.fit import FitResult, check_vm_models, fit_model, largest_context
from provision.models.quant import QUANTS, Quant, get_quant
from provision.models.resolve import ResolvedModel, parse_params, resolve_model
from provision.models.vram import GB, GIB, Estimate, estimate, kv_cache_bytes, weights_bytes

__all__ = [
    "GB",
    "GIB",
    "QUANTS",
    "Capacity",
    "Catalog",
    "Estimate",
    "FitResult",
    "ModelEntry",
    "Quant",
    "ResolvedModel",
    "check_vm_models",
    "estimate",
    "fit_model",
    "get_quant",
    "kv_cache_bytes",
    "largest_context",
    "load_catalog",
    "make_capacity",
    "parse_params",
    "resolve_model",
    "runtime_context",
    "weights_bytes",
]
