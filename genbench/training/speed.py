"""The hardware group's speed switches (conf/hardware/*.yaml): ways to run the same training
faster that change neither what a step computes nor what the benchmark reports.

- `fused_optimizer`: every optimiser a family builds (`GenerativeModule.make_optimizer`) takes
  `fused=True`: one kernel updates every parameter, instead of a few per parameter tensor, the
  launches that dominate a small model's optimiser step.
- `channels_last`: the module's 4-D weights and the image batches in torch.channels_last, the
  layout oneDNN's and cuDNN's fastest convolutions take (no effect on points' 2-D tensors).
- `compile`: torch.compile of the family's networks (the module's children with parameters),
  in place (`nn.Module.compile`), so state_dict keys, and so checkpoints, are the same as an
  uncompiled module's.
- `matmul_precision`: torch.set_float32_matmul_precision for the training batches only ("high"
  lets an Ampere or later GPU use TF32 for float32 products); validation, the test NLL and the
  sample metrics run at the precision the process had (torch's default: "highest", float32).

The FLOP budget's probe (training/budget.py) runs before the fit, on a copy of the module this
callback never touches: it counts the plain module, and tests/training/test_speed_switches.py
checks that the switched training does the same FLOPs and the same losses within a stated
tolerance.
"""

from __future__ import annotations

import lightning as L
import torch

from genbench.core.matmul import check_matmul_precision


def networks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The module's children that hold parameters: the networks doing a family's work (the
    VAE's encoder and decoder, the GAN's two players, the U-Net), not its parameter-free parts
    (a diffusion process's buffers)."""
    return [c for c in module.children() if any(True for _ in c.parameters())]


def check_compile_works() -> None:
    """Compile and run a one-line function, so a machine where torch.compile cannot work (no
    C++ compiler for inductor on a CPU, no Triton on a GPU) fails before training starts, in
    one line, rather than at the first training step in a page of traceback."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(2))
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise RuntimeError(
            f"hardware.compile=true: torch.compile fails on this machine ({type(e).__name__}: "
            f"{first}); valid: hardware.compile=false, or a machine with a C++ compiler "
            "(CPU) or Triton (GPU)"
        ) from e


class SpeedSwitches(L.Callback):
    """Applies the hardware group's switches to the fitted module when the fit sets up: before
    the optimisers are built, so `fused_optimizer` reaches them; channels_last before, and
    compile after, the callbacks that copy the module (EMA's average: the run puts this
    callback first), so the average has the live module's layout and no compiled code bound to
    the live module's weights."""

    def __init__(
        self,
        fused_optimizer: bool,
        channels_last: bool,
        compile: bool,
        matmul_precision: str,
    ):
        check_matmul_precision(matmul_precision)
        self.fused_optimizer = fused_optimizer
        self.channels_last = channels_last
        self.compile = compile
        self.matmul_precision = matmul_precision
        self.measuring_precision = torch.get_float32_matmul_precision()

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.measuring_precision = torch.get_float32_matmul_precision()  # evaluation's
        pl_module.fused_optimizer = self.fused_optimizer
        pl_module.channels_last = self.channels_last
        if self.channels_last:
            pl_module.to(memory_format=torch.channels_last)  # 4-D tensors only
        if self.compile:
            check_compile_works()

    def on_fit_start(self, trainer, pl_module) -> None:
        if self.compile:
            for net in networks(pl_module):
                net.compile()

    # Training batches at `matmul_precision`; every validation, and whatever follows the fit,
    # at the precision the process had when the fit set up.
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        torch.set_float32_matmul_precision(self.matmul_precision)

    def on_validation_start(self, trainer, pl_module) -> None:
        torch.set_float32_matmul_precision(self.measuring_precision)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        torch.set_float32_matmul_precision(self.measuring_precision)

    def on_fit_end(self, trainer, pl_module) -> None:
        """Evaluation after the fit runs at the precision of validation, and the networks
        eagerly, as without the switches: its batch sizes and loops would each compile anew,
        and its numbers stay those of today's code. (nn.Module.compile keeps the compiled call
        in this attribute; None is eager again.)"""
        torch.set_float32_matmul_precision(self.measuring_precision)
        if self.compile:
            for net in networks(pl_module):
                net._compiled_call_impl = None
