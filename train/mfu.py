"""Model FLOPs utilization: the share of the accelerator's peak that the model's own arithmetic uses.

FLOPs per token come from the model (`GPT.flops_per_token`: 6N plus attention, as in PaLM's appendix B);
the peak from the table below, by device name. Recomputation, padding and other work the model does not
strictly need count for nothing, so MFU compares fairly across implementations.
"""
from __future__ import annotations

import torch

# Dense (not sparse) bf16 tensor-core peak in TFLOP/s by device-name fragment, most specific first (H100 SXM
# names say "HBM3", PCIe ones "PCIe"). Anything not listed has no known peak: give `peak_tflops` instead.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.5), ("H200", 989.5),
                    ("H800", 989.5), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0))


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak the device name implies, or None for a device the table does not know."""
    return next((peak for fragment, peak in PEAK_BF16_TFLOPS if fragment in device_name), None)


def device_peak_tflops(device: torch.device, dtype: torch.dtype) -> tuple[float | None, str]:
    """(peak TFLOP/s of one device for this run, where it comes from); the peak is None where unknown: on
    CPUs, on GPUs the table lacks, and for float32 (the table holds bf16 tensor-core peaks only)."""
    if device.type != "cuda":
        return None, f"no known peak for device {device.type}"
    name = torch.cuda.get_device_name(device)
    if dtype != torch.bfloat16:
        return None, f"the peak of {name} is known for bfloat16 only, this run computes in {dtype}"
    peak = peak_bf16_tflops(name)
    return peak, f"{name}, dense bf16" if peak else f"no known peak for {name}"


def mfu(tokens_per_s: float, flops_per_token: int, peak_tflops: float, devices: int = 1) -> float:
    """The fraction of `devices` accelerators' combined peak that `tokens_per_s` (over all of them) uses."""
    return tokens_per_s * flops_per_token / (peak_tflops * 1e12 * devices)
