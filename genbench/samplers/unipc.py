"""UniPC (Zhao et al., 2023): a multistep predictor-corrector solver of the diffusion ODE in data
(x0) prediction (UniP-2 with the UniC corrector, B(h) = bh2), diffusers' UniPCMultistepScheduler.

The corrector reuses the network's output at the next step, so nfe = steps.
"""

from __future__ import annotations

from diffusers import UniPCMultistepScheduler

from genbench.samplers.diffusers_scheduler import DiffusersScheduler


class UniPC(DiffusersScheduler):
    name = "UniPC"
    scheduler_class = UniPCMultistepScheduler
    scheduler_options = {"predict_x0": True, "solver_type": "bh2", "solver_order": 2}
