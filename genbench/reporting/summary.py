"""One line that says how a run came out: what a console shows at the end of a run."""

from __future__ import annotations

from pathlib import Path


def summary_line(record: dict, path: str | Path) -> str:
    """e.g. "completed: vae on digits, seed 0: 1.876 ± 0.006 bits/dim (bound), FID 161.3
    [150.1, 172.5], 2.3e+05 samples/s -> outputs/.../results.json"; the full metrics stay in
    the file."""
    m = record.get("metrics") or {}
    parts = []
    if isinstance(m.get("nll_bpd"), (int, float)):
        err = m.get("nll_bpd_stderr")
        err_text = f" ± {err:.3f}" if isinstance(err, (int, float)) else ""
        kind = m.get("nll_kind")
        if m.get("log_z_converged") is False:
            kind = f"{kind}; its AIS ladder reached the cap unconverged"
        parts.append(f"{m['nll_bpd']:.3f}{err_text} bits/dim ({kind})")
    if isinstance(m.get("fid"), (int, float)):
        ci = m.get("fid_ci")
        ci_text = f" [{ci[0]:.1f}, {ci[1]:.1f}]" if isinstance(ci, list) and len(ci) == 2 else ""
        parts.append(f"FID {m['fid']:.1f}{ci_text}")
    if isinstance(m.get("samples_per_s"), (int, float)):
        parts.append(f"{m['samples_per_s']:.3g} samples/s")
    what = f"{record.get('model')} on {record.get('dataset')}, seed {record.get('seed')}"
    status = record.get("status", "?")
    if status != "completed" and record.get("error"):
        parts.append(str(record["error"]))
    return f"{status}: {what}: {', '.join(parts) or 'no metrics'} -> {path}"
