"""DPM-Solver++(2M) (Lu et al., 2022): the multistep second-order solver of the diffusion ODE
in data (x0) prediction, diffusers' DPMSolverMultistepScheduler.

One network call per step (nfe = steps); the last step is first order (diffusers'
lower_order_final), which keeps few-step sampling stable.
"""

from __future__ import annotations

from diffusers import DPMSolverMultistepScheduler

from genbench.samplers.diffusers_scheduler import DiffusersScheduler


class DPMSolverPP(DiffusersScheduler):
    name = "DPM-Solver++(2M)"
    scheduler_class = DPMSolverMultistepScheduler
    scheduler_options = {"algorithm_type": "dpmsolver++", "solver_order": 2}
