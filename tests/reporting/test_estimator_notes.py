"""The table footer's lines about selection and estimates, from hand-made records."""

from genbench.reporting.estimator_notes import estimate_note, selection_note


def record(model, selection=None, test=None, best_val=None, **metrics):
    return {
        "model": model,
        "best_val": best_val,
        "metrics": {"selection": selection, "nll_estimator": test, **metrics},
    }


def test_selection_by_the_test_estimator_names_the_validation_size():
    est = {"name": "Diffusion.nll", "proposal": "importance", "t_samples": 16}
    runs = [
        record(
            "diffusion",
            {"metric": "val/nll_bpd", "estimator": est, "examples": 128},
            {"estimator": est, "examples": 447},
        )
    ]
    note = selection_note(runs)
    assert "own test estimator, on 128 validation images)" in note
    assert "not the test's" not in note


def test_a_run_selected_by_another_estimator_is_named():
    runs = [
        record(
            "flow_matching",
            {"metric": "val/nll_bpd", "estimator": {"steps": 2}, "examples": 128},
            {"estimator": {"steps": 8}, "examples": 447},
        )
    ]
    assert "not the test's estimator for: flow_matching" in selection_note(runs)


def test_records_before_the_selection_record_name_their_monitor_not_the_last_checkpoint():
    runs = [record("arm", best_val={"monitor": "val/nll_bpd", "value": 1.9})]
    note = selection_note(runs)
    assert "best on the validation split by val/nll_bpd (its estimator not recorded)" in note
    assert selection_note([record("gan")]).startswith("the evaluated checkpoint: the last")


def test_estimate_note_gives_the_range_of_both_measured_moves():
    runs = [
        record(
            "ebm",
            nll_kind="estimate",
            log_z_last_move_bpd=-0.01,
            dequantisation_last_move_bpd=0.002,
        ),
        record(
            "ebm",
            nll_kind="estimate",
            log_z_last_move_bpd=0.003,
            dequantisation_last_move_bpd=0.002,
        ),
    ]
    note = estimate_note(runs)
    assert "-0.0100 to +0.0030 bits/dim" in note and "draws by +0.0020" in note
    assert estimate_note([record("arm", nll_kind="exact")]) is None
