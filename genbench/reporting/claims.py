"""The lesson's claims about the families (../shared/lesson.md, issue 33), in the project's own
words, each with the measure that tests it, and their verdicts on one data set's runs.

A claim is about one family (`family`, a model name in the records) and the lesson's family it
comes from (`lesson`: flow matching carries the diffusion claims, beside diffusion). It is one of:
- an ordering: the family's value of `measure` is `expects` ("higher" or "lower") than that of
  each model in `against` (and of each fixed `references` value), judged by verdicts.verdict;
- a property a record states (`measure` a RecordedValue, `expected` its value);
- untested: `missing` says which measurement, or which data, genbench lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genbench.reporting import measures as m
from genbench.reporting.verdicts import (
    CONTRADICTED,
    NOT_MEASURED,
    NOT_SEPARABLE,
    SUPPORTED,
    Estimate,
    verdict,
)

LESSON_FAMILIES = ("gan", "vae", "arm", "diffusion", "ebm", "flow")
# Trained by maximising a likelihood or a bound on it: a missing mode costs them likelihood.
LIKELIHOOD_TRAINED = ("arm", "vae", "flow", "diffusion", "flow_matching")
# One network pass (or one inversion) per sample.
ONE_PASS = ("gan", "vae", "flow")
# Many passes per sample: element by element, along a noise-to-data path, or a Markov chain.
ITERATIVE = ("arm", "diffusion", "flow_matching", "ebm")
EVERY_FAMILY = ("arm", "diffusion", "ebm", "flow", "flow_matching", "gan", "vae")
FID_TARGET = 200.0  # digits: every family but the EBM gets there within the scaling budgets
BPD_TARGET = 2.1  # digits: likewise for the likelihood families
SWEEP_MISSING = (
    "a sweep of each family's learning rate (1/3x, 1x and 3x its default, seeds 0-2, "
    "`make benchmark-sensitivity`, issue 33 item 2): the share of runs that diverge or end "
    "worse than the independent-pixel baseline and the spread over the grid; not run yet"
)


@dataclass(frozen=True)
class Claim:
    id: str
    lesson: str  # the lesson's family the claim comes from
    text: str  # the claim, in the project's own words
    family: str  # the model the claim is about, as the records name it
    needs: str  # the measurement that tests it
    scale: str  # how the scale of these data sets bears on the verdict, both ways
    measure: object = None  # a measures.* object; None for an untested claim
    expects: str | None = None  # "higher" / "lower": the family's value against each other's
    against: tuple[str, ...] = ()
    references: tuple[tuple[str, float], ...] = ()  # (what, value): fixed values to compare with
    expected: str | None = None  # a property's value (RecordedValue measures)
    missing: str | None = None  # untested: what genbench lacks

    @property
    def kind(self) -> str:
        if self.missing:
            return "untested"
        return "property" if isinstance(self.measure, m.RecordedValue) else "ordering"


@dataclass(frozen=True)
class Assessment:
    """A claim's verdict on one data set, with the values it was read from (the claim's family
    first) and, for an ordering, the verdict against each compared family."""

    claim: Claim
    data: str
    verdict: str
    values: dict[str, Estimate] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()  # a property's recorded values, one per run
    pairs: dict[str, str] = field(default_factory=dict)
    why: tuple[str, ...] = ()  # not measured: what is missing, each reason once


def assess(claim: Claim, evidence: m.Evidence) -> Assessment:
    if claim.kind == "untested":
        return Assessment(claim, evidence.name, NOT_MEASURED, why=(claim.missing,))
    if claim.kind == "property":
        return _assess_property(claim, evidence)
    values = {claim.family: claim.measure.estimate(evidence, claim.family)}
    values |= {other: claim.measure.estimate(evidence, other) for other in claim.against}
    values |= {what: m.reference(v, what) for what, v in claim.references}
    others = {k: v for k, v in values.items() if k != claim.family}
    found, pairs = verdict(values[claim.family], others, claim.expects)
    why = tuple(dict.fromkeys(e.basis for e in values.values() if e.value is None))
    return Assessment(claim, evidence.name, found, values, pairs=pairs, why=why)


def _assess_property(claim: Claim, evidence: m.Evidence) -> Assessment:
    """Supported when every completed run records the expected value, contradicted when none
    does, not separable when runs disagree."""
    read = claim.measure.read(evidence, claim.family)
    if isinstance(read, Estimate):
        return Assessment(claim, evidence.name, NOT_MEASURED, why=(read.basis,))
    hits = sum(v == claim.expected for v in read)
    found = SUPPORTED if hits == len(read) else CONTRADICTED if hits == 0 else NOT_SEPARABLE
    return Assessment(claim, evidence.name, found, kinds=tuple(read))


def ordering(
    id: str,
    family: str,
    text: str,
    measure,
    expects: str,
    against,
    needs: str,
    scale: str,
    lesson: str | None = None,
    references=(),
) -> Claim:
    """A claim that `family`'s value of `measure` is `expects` than each of `against`'s."""
    return Claim(
        id=id,
        lesson=lesson or family,
        text=text,
        family=family,
        needs=needs,
        scale=scale,
        measure=measure,
        expects=expects,
        against=tuple(against),
        references=tuple(references),
    )


def untested(
    id: str, family: str, text: str, missing: str, scale: str, lesson: str | None = None
) -> Claim:
    """A claim genbench cannot test yet: `missing` says what it lacks."""
    return Claim(
        id=id,
        lesson=lesson or family,
        text=text,
        family=family,
        needs=missing,
        scale=scale,
        missing=missing,
    )


def _others(family: str) -> tuple[str, ...]:
    return tuple(f for f in EVERY_FAMILY if f != family)


SCALING_NOTE = (
    "Read off fitted power laws in training FLOPs over the digits scaling runs "
    "(docs/benchmark/scaling: 3e11 to 1.2e13 FLOPs, 3 seeds each); a bootstrap over 3 seeds "
    "is narrower than it should be, and the curves say nothing beyond the largest budget."
)
SPEED_NOTE = (
    "samples/s is measured on the run's own device and batch size; the ratio between families "
    "follows from the number of network passes per sample, so it should carry over to larger "
    "images, where the iterative samplers' passes also grow in cost. One seed (MNIST) gives no "
    "interval for a timing, so there the rule cannot separate even large ratios."
)
PROTOCOL_NOTE = (
    "NFE is fixed by each family's sampler settings, not learnt: the verdict restates the "
    "protocol (the same at any scale), and the samplers' step counts are genbench's choices."
)
FIDELITY_NOTE = (
    "FID and precision are computed in a small classifier's features (not Inception's) from a "
    "few thousand samples at most; at 8x8 pixels there is little texture to get right, and the "
    "CPU MNIST runs are minutes of training, far from convergence. Which family leads can "
    "change with the budget: the digits scaling runs (docs/benchmark/scaling) show it moving."
)
LATENT_NOTE = (
    "Path lengths are in a small classifier's features (Karras et al. use VGG's), and the "
    "VAE's images are its decoder's mean while the GAN's and the flow's are their samples "
    "before rounding; the latent spaces differ in size (the flow's is the image's). A "
    "longer-trained GAN may smooth its latent space, and a path length is not comparable "
    "across data sets."
)
SPECTRUM_NOTE = (
    "The spectrum is of the samples as each family draws them: the VAE's and the ARM's "
    "decoders sample every pixel, so their samples carry pixel noise that a decoder mean would "
    "not. At 8x8 pixels (digits) the high band is rings 3 to 6 of a 64-pixel image; MNIST's "
    "28x28 is the first data set where blur has room to show."
)
MODES_NOTE = (
    "digits and MNIST have ten classes, so dropping a mode means losing a digit or a writing "
    "style; recall and coverage use k-NN balls of the test images and depend on the sample "
    "count. A larger GAN trained longer can collapse more or less than this one."
)
STABILITY_NOTE = (
    "Three seeds per family cannot pin down a spread or a divergence rate: a chi-square "
    "interval over 3 seeds spans a factor of 12 and 0 of 3 diverged runs allows up to 71%. "
    "The learning-rate sweep of issue 33 (9 runs per family) is the test that can separate them."
)
UNTESTED_NOTE = "Nothing to read at any scale until the measurement exists."


def _gan() -> list[Claim]:
    return [
        ordering(
            "gan-fidelity",
            "gan",
            "At equal training compute, the GAN's samples sit closer to the test images (in "
            "feature space) than the VAE's.",
            m.FID,
            "lower",
            ["vae"],
            needs="FID of each run's samples against the test split",
            scale=FIDELITY_NOTE,
        ),
        ordering(
            "gan-precision",
            "gan",
            "A larger share of the GAN's samples lands where real images lie than of the VAE's.",
            m.PRECISION,
            "higher",
            ["vae"],
            needs="k-NN precision of the samples against the test split",
            scale=FIDELITY_NOTE,
        ),
        ordering(
            "gan-mode-recall",
            "gan",
            "The GAN drops modes: its samples reach less of the real images' region than "
            "those of the likelihood-trained families.",
            m.RECALL,
            "lower",
            LIKELIHOOD_TRAINED,
            needs="k-NN recall of the samples against the test split",
            scale=MODES_NOTE,
        ),
        ordering(
            "gan-mode-coverage",
            "gan",
            "The GAN drops modes: fewer test images have one of its samples close by than "
            "have one of a likelihood-trained family's.",
            m.COVERAGE,
            "lower",
            LIKELIHOOD_TRAINED,
            needs="coverage (Naeem et al. 2020) of the test split by the samples",
            scale=MODES_NOTE,
        ),
        ordering(
            "gan-mode-classes",
            "gan",
            "The GAN drops modes: the mix of classes in its samples departs further from the "
            "test split's than the likelihood-trained families' mixes do.",
            m.CLASS_KL,
            "higher",
            LIKELIHOOD_TRAINED,
            needs="KL of the classifier's labels of the samples to the test split's classes",
            scale=MODES_NOTE,
        ),
        ordering(
            "gan-novel",
            "gan",
            "The GAN makes new images rather than copies: its samples are no nearer the "
            "training images than held-out images are.",
            m.CT_SCORE,
            "higher",
            [],
            references=[("held-out images (C_T = 0)", 0.0)],
            needs="C_T (Meehan et al. 2020) against the training split; held-out images score 0",
            scale="A positive C_T also comes from under-fitting: it shows the absence of "
            "copying, not inventiveness. Memorisation grows with training on a small set "
            "(1000 digits), so longer runs may differ.",
        ),
        ordering(
            "gan-training-compute",
            "gan",
            "The GAN needs more training compute than the VAE to reach a given sample "
            f"quality (FID {FID_TARGET:g}).",
            m.ComputeToReach("fid", FID_TARGET),
            "higher",
            ["vae"],
            needs="training FLOPs to reach the FID, from the compute-scaling fits",
            scale=SCALING_NOTE,
        ),
        untested(
            "gan-hyperparameters",
            "gan",
            "The GAN's results swing more with its hyper-parameters than other families' do.",
            missing=SWEEP_MISSING,
            scale=UNTESTED_NOTE,
        ),
    ]


def _vae() -> list[Claim]:
    return [
        ordering(
            "vae-stable-fid",
            "vae",
            "The VAE trains steadily: its sample quality varies less from seed to seed than "
            "the GAN's or the EBM's.",
            m.Spread(m.FID),
            "lower",
            ["gan", "ebm"],
            needs="the spread of FID over seeds at one budget",
            scale=STABILITY_NOTE,
        ),
        ordering(
            "vae-stable-likelihood",
            "vae",
            "The VAE trains steadily: its likelihood varies less from seed to seed than the EBM's.",
            m.Spread(m.BITS_PER_DIM),
            "lower",
            ["ebm"],
            needs="the spread of bits/dim over seeds at one budget",
            scale=STABILITY_NOTE + " The EBM's spread includes its AIS estimate's own noise, "
            "which is not training instability.",
        ),
        ordering(
            "vae-no-divergence",
            "vae",
            "VAE runs diverge less often than GAN or EBM runs.",
            m.DivergedShare(),
            "lower",
            ["gan", "ebm"],
            needs="the share of runs whose record says 'diverged'",
            scale=STABILITY_NOTE,
        ),
        ordering(
            "vae-blurry",
            "vae",
            "The VAE's samples are blurrier, poorer in fine detail, than the GAN's: a smaller "
            "share of their power lies at high spatial frequencies.",
            m.HF_POWER_RATIO,
            "lower",
            ["gan"],
            needs="the high-frequency share of the samples' radially averaged power spectrum "
            "over the test images' (metrics.hf_power_ratio)",
            scale=SPECTRUM_NOTE,
        ),
        ordering(
            "vae-smooth-latent",
            "vae",
            "Walking through the VAE's latent space changes its images gradually: a shorter "
            "perceptual path than the GAN's and the flow's.",
            m.LATENT_PATH_LENGTH,
            "lower",
            ["gan", "flow"],
            needs="the perceptual path length in the classifier's features along spherical "
            "latent interpolations (metrics.latent_path_length)",
            scale=LATENT_NOTE,
        ),
        ordering(
            "vae-plausible-interpolants",
            "vae",
            "Images between two of the VAE's samples still look like data: the classifier "
            "reads more of them confidently than of the GAN's and the flow's.",
            m.INTERPOLANT_CONFIDENCE,
            "higher",
            ["gan", "flow"],
            needs="the share of latent interpolants the classifier labels with probability "
            ">= 0.9 (metrics.interpolant_confidence)",
            scale=LATENT_NOTE,
        ),
    ]


def _arm() -> list[Claim]:
    likelihood_peers = ("vae", "flow", "diffusion", "flow_matching")
    return [
        ordering(
            "arm-slow-sampling",
            "arm",
            "Sampling the ARM is slower than sampling the GAN or the VAE, which emit a whole "
            "image at once.",
            m.SAMPLES_PER_S,
            "lower",
            ["gan", "vae"],
            needs="samples/s on the run's device",
            scale=SPEED_NOTE,
        ),
        ordering(
            "arm-sampling-flops",
            "arm",
            "A sample of the ARM costs more arithmetic than one of the GAN or the VAE, whatever "
            "the hardware (its cached sampler included).",
            m.SAMPLING_FLOPS,
            "higher",
            ["gan", "vae"],
            needs="FLOPs per sample (PyTorch's counter: matrix products and convolutions)",
            scale=PROTOCOL_NOTE,
        ),
        ordering(
            "arm-sequential",
            "arm",
            "The ARM evaluates its network once per generated element, many more times per "
            "sample than the GAN or the VAE.",
            m.NFE,
            "higher",
            ["gan", "vae"],
            needs="network evaluations per sample (NFE)",
            scale=PROTOCOL_NOTE + " The ARM's count grows with the number of pixels.",
        ),
        ordering(
            "arm-likelihood",
            "arm",
            "Conditioning each pixel on the ones before it, the ARM gives the test images "
            "fewer bits/dim than the other likelihood families.",
            m.BITS_PER_DIM,
            "lower",
            likelihood_peers,
            needs="test bits/dim",
            scale="The ARM's bits/dim are exact, the others' upper bounds: a bound above the "
            "ARM's value does not prove that model's true likelihood worse. The EBM's "
            "estimate is never ranked with these.",
        ),
        ordering(
            "arm-training-compute",
            "arm",
            "The ARM needs more training compute than the other likelihood families to reach "
            f"a given likelihood ({BPD_TARGET:g} bits/dim).",
            m.ComputeToReach("nll_bpd", BPD_TARGET),
            "higher",
            likelihood_peers,
            needs="training FLOPs to reach the bits/dim, from the compute-scaling fits",
            scale=SCALING_NOTE + " The ARM trains in one parallel pass (teacher forcing); "
            "the sequential cost is its sampler's.",
        ),
        untested(
            "arm-long-range",
            "arm",
            "The ARM captures dependencies between distant elements less well than between "
            "neighbours.",
            missing="bits/dim per position against how far back its informative context "
            "lies, or sequences far longer than 64 (digits) or 784 (MNIST) pixels; genbench "
            "records only the total",
            scale="Images of 64 or 784 pixels are short sequences for this question.",
        ),
    ]


def _denoiser(family: str, who: str) -> list[Claim]:
    """The lesson's diffusion claims for `family`: diffusion, and flow matching beside it (it
    samples by integrating a noise-to-data path too)."""
    return [
        ordering(
            f"{family}-fidelity",
            family,
            f"The {who}'s samples are closer to the test images than the GAN's and the VAE's.",
            m.FID,
            "lower",
            ["gan", "vae"],
            needs="FID of each run's samples against the test split",
            scale=FIDELITY_NOTE,
            lesson="diffusion",
        ),
        ordering(
            f"{family}-artefacts",
            family,
            f"Fewer of the {who}'s samples fall outside the real images' region (fewer "
            "artefacts) than the GAN's and the VAE's.",
            m.PRECISION,
            "higher",
            ["gan", "vae"],
            needs="k-NN precision of the samples against the test split",
            scale=FIDELITY_NOTE,
            lesson="diffusion",
        ),
        ordering(
            f"{family}-fine-detail",
            family,
            f"The {who}'s samples keep the data's fine detail better than the GAN's and the "
            "VAE's: their high-frequency power share is nearer the test images' (in either "
            "direction: blur lowers it, noise and artefacts raise it).",
            m.SPECTRUM_GAP,
            "lower",
            ["gan", "vae"],
            needs="|log| of the samples' high-frequency power share over the test images' "
            "(metrics.hf_power_ratio)",
            scale=SPECTRUM_NOTE,
            lesson="diffusion",
        ),
        ordering(
            f"{family}-sampling-flops",
            family,
            f"A sample of the {who} costs more arithmetic than one of the GAN, the VAE or the "
            "flow, whatever the hardware.",
            m.SAMPLING_FLOPS,
            "higher",
            ONE_PASS,
            needs="FLOPs per sample (PyTorch's counter: matrix products and convolutions)",
            scale=PROTOCOL_NOTE,
            lesson="diffusion",
        ),
        ordering(
            f"{family}-slow-sampling",
            family,
            f"Sampling the {who} is slower than sampling the GAN, the VAE or the flow.",
            m.SAMPLES_PER_S,
            "lower",
            ONE_PASS,
            needs="samples/s on the run's device",
            scale=SPEED_NOTE,
            lesson="diffusion",
        ),
        ordering(
            f"{family}-iterative",
            family,
            f"The {who} evaluates its network many times per sample, more than the GAN, the "
            "VAE or the flow.",
            m.NFE,
            "higher",
            ONE_PASS,
            needs="network evaluations per sample (NFE)",
            scale=PROTOCOL_NOTE,
            lesson="diffusion",
        ),
        ordering(
            f"{family}-training-compute",
            family,
            f"The {who} needs more training compute than the GAN and the VAE to reach a "
            f"given sample quality (FID {FID_TARGET:g}).",
            m.ComputeToReach("fid", FID_TARGET),
            "higher",
            ["gan", "vae"],
            needs="training FLOPs to reach the FID, from the compute-scaling fits",
            scale=SCALING_NOTE,
            lesson="diffusion",
        ),
    ]


def _diffusion() -> list[Claim]:
    return [
        *_denoiser("diffusion", "diffusion model"),
        *_denoiser("flow_matching", "flow-matching model"),
        untested(
            "diffusion-high-resolution",
            "diffusion",
            "Diffusion keeps its quality at high resolution.",
            missing="runs on images of 64x64 pixels and up (e.g. CelebA-HQ, LSUN, ImageNet 64) "
            "and the compute to train every family on them; the committed data are 8x8 "
            "digits and 28x28 MNIST",
            scale="Not testable on these data sets at any budget.",
        ),
    ]


def _ebm() -> list[Claim]:
    return [
        ordering(
            "ebm-slow-sampling",
            "ebm",
            "Sampling the EBM is slow: its Langevin chains give fewer samples per second than "
            "the GAN, the VAE or the flow.",
            m.SAMPLES_PER_S,
            "lower",
            ONE_PASS,
            needs="samples/s on the run's device",
            scale=SPEED_NOTE,
        ),
        ordering(
            "ebm-iterative",
            "ebm",
            "Each EBM sample costs many network evaluations (the chain's steps), more than "
            "the GAN's, the VAE's or the flow's.",
            m.NFE,
            "higher",
            ONE_PASS,
            needs="network evaluations per sample (NFE)",
            scale=PROTOCOL_NOTE,
        ),
        ordering(
            "ebm-sample-quality",
            "ebm",
            "At equal training compute the EBM's samples are further from the test images "
            "than any other family's: learning the energy and sampling it are both hard.",
            m.FID,
            "higher",
            _others("ebm"),
            needs="FID of each run's samples against the test split",
            scale=FIDELITY_NOTE + " The EBM's samples come from short chains (100 SGLD steps "
            "from its base): longer chains or another sampler may do better.",
        ),
        ordering(
            "ebm-step-cost",
            "ebm",
            "An EBM training step costs more compute than any other family's, because every "
            "step runs sampling chains.",
            m.FLOPS_PER_STEP,
            "higher",
            _others("ebm"),
            needs="training FLOPs per optimiser step (the budget's probe)",
            scale="FLOPs per step also grow with the network, and the families' networks "
            "differ in size (the EBM's is among the smallest); the chains' length is a "
            "configuration choice, the same at any scale.",
        ),
        ordering(
            "ebm-mixing",
            "ebm",
            "The EBM's sampling chains mix poorly: over the second half of a chain a sample "
            "moves less than one real image is from another.",
            m.CHAIN_DISTANCE,
            "lower",
            [],
            references=[("the distance between two test images (1)", 1.0)],
            needs="the pixel distance SGLD chains move over their second half, over the mean "
            "distance between two test images (metrics.chain_distance; beside it the energy's "
            "autocorrelation time and the share of chains that change class)",
            scale="The chains are genbench's SGLD settings (steps, step size) on a model trained "
            "for minutes; a longer or annealed sampler, or a better-trained energy, can mix "
            "differently.",
        ),
        untested(
            "ebm-tuning",
            "ebm",
            "The EBM needs careful tuning to train at all.",
            missing=SWEEP_MISSING,
            scale=UNTESTED_NOTE,
        ),
        untested(
            "ebm-flexible",
            "ebm",
            "An energy function can express a wide range of distributions and rich structure.",
            missing="tasks beyond generation (e.g. out-of-distribution detection, composing "
            "energies) that genbench does not run: the claim is about what the model class can "
            "express, not a number that one architecture per family yields",
            scale=UNTESTED_NOTE,
        ),
    ]


def _flow() -> list[Claim]:
    return [
        Claim(
            id="flow-exact-likelihood",
            lesson="flow",
            text="A flow's likelihood is computed exactly, neither bounded nor estimated.",
            family="flow",
            needs="the kind of bits/dim each record states (metrics.nll_kind)",
            scale="The change of variables gives the flow's density exactly; the probability "
            "of discrete pixels needs dequantisation, which makes it a bound at any "
            "resolution. On continuous data (genbench's 2-D points) the flow's records say "
            "'exact'.",
            measure=m.NLL_KIND,
            expected="exact",
        ),
        ordering(
            "flow-fast-sampling",
            "flow",
            "A flow samples quickly, in one inverse pass: faster than the iterative samplers "
            "(ARM, diffusion, flow matching, EBM).",
            m.SAMPLES_PER_S,
            "higher",
            ITERATIVE,
            needs="samples/s on the run's device",
            scale=SPEED_NOTE,
        ),
        ordering(
            "flow-one-pass",
            "flow",
            "A flow needs fewer network evaluations per sample than the iterative samplers.",
            m.NFE,
            "lower",
            ITERATIVE,
            needs="network evaluations per sample (NFE: each of the flow's layers counts one)",
            scale=PROTOCOL_NOTE,
        ),
        ordering(
            "flow-flexible",
            "flow",
            "A flow's invertible layers learn the dependencies between pixels: its likelihood "
            "beats a model of independent pixels.",
            m.BITS_PER_DIM,
            "lower",
            ["pixel-histogram"],
            needs="test bits/dim against the independent-pixel baseline "
            "(`genbench-eval baseline=pixels`)",
            scale="Testable only where the baseline was scored beside the runs. A flow short "
            "of convergence can sit above the baseline; longer training is the first thing to "
            "try before reading this as a limit of flows.",
        ),
    ]


CLAIMS: tuple[Claim, ...] = (*_gan(), *_vae(), *_arm(), *_diffusion(), *_ebm(), *_flow())
