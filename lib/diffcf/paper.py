"""The paper's published numbers and this project's must-reach checks, one table per notebook.

This is the one place they are written down:

- :data:`PAPER` ``[stem][results key] = (paper value, note)``: what the paper reports, or ``—``.
- :data:`CHECKS` ``[stem]``: the targets a notebook's default run must reach (from the issues),
  each a sentence and a test on the notebook's ``results.json`` dictionary.

Notebooks print their results beside the paper's with :func:`compare` and their verdicts with
:func:`check`; the runner (:mod:`diffcf.reproduce`) writes both into ``figures/RESULTS.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from diffcf.utils import print_checks

Results = Mapping[str, float]

# Published numbers, per notebook stem and results key: (paper value, note).
PAPER: dict[str, dict[str, tuple[str, str]]] = {
    "01_toy_helix": {
        "successes_x": ("1000", "successful X optimisations (paper: 1000 successful ones reported)"),
        "successes_z": ("1000", "successful Z optimisations"),
        "median_distance_x": ("2.34", "median distance to the helix, X-ascent (Fig. 17)"),
        "median_distance_z": ("0.01", "median distance to the helix, Z-ascent (Fig. 17)"),
        "classifier_accuracy": ("—", "MLP 3-256-1 on fresh helix points"),
        "flow_test_nll": ("—", "nats per point; unbounded below on zero-thickness data"),
    },
    "02_metric_geometry": {
        "first_order_slope": ("1 (theory)", "slope of residual/λ vs λ, log-log"),
        "helix_eigenvalue_ratio_median": ("≫ 1 (Fig. 7 left)", "largest / second eigenvalue of γ⁻¹"),
        "helix_tangent_angle_deg_median": ("0 (Fig. 7 left)", "top eigenvector vs true tangent"),
        "helix_onmanifold_share_x": ("—", "share of ∂f/∂x along the helix (not in the paper)"),
        "helix_onmanifold_share_z": ("—", "share of γ⁻¹∂f/∂x along the helix (not in the paper)"),
        "mnist_manifold_dim_estimate": ("~30 (§III)", "eigenvalues holding 90% of the trace of γ⁻¹"),
        "mnist_onmanifold_share_x": ("—", "X-gradient share in the top eigenspace (not in the paper)"),
        "mnist_onmanifold_share_z": ("—", "Z-step share in the top eigenspace; must exceed X's"),
    },
    "03_mnist": {
        "classifier_accuracy": ("0.99", "CNN test accuracy (§IV-B)"),
        "svm_accuracy": ("0.92", "linear SVM oracle, test accuracy (§IV-C)"),
        "rbf_svm_accuracy": ("—", "RBF-kernel SVM, a second oracle (not in the paper)"),
        "flow_bits_per_dim": ("1.06 (RealNVP paper)", "test bits/dim; this project's target <= 1.20"),
        "flow_roundtrip_max_abs_error": ("0 (exact inverse)", "max |g(g⁻¹(x)) − x|, 500 test images"),
        "flow_sample_confident_share": ("—", "CNN p > 0.9 for some class, 1000 samples at T = 0.7"),
        "success_rate_x": ("—", "4 -> 9 at Λ = 0.99, adversarials; target >= 0.95"),
        "success_rate_z": ("—", "4 -> 9 at Λ = 0.99, counterfactuals; target >= 0.95"),
        "oracle_target_share_original": ("≈ 0 (Fig. 11)", "SVM says 9 for the original 4s"),
        "oracle_target_share_x": ("low (Fig. 11)", "SVM says 9 for adversarials"),
        "oracle_target_share_z": ("high (Fig. 11)", "SVM says 9 for counterfactuals; Z - X >= 0.30"),
        "oracle_margin_z": ("> 0 (Fig. 11)", "oracle share Z - X; _low, _high: 95% bootstrap interval"),
        "rbf_oracle_target_share_x": ("—", "RBF SVM says 9 for adversarials"),
        "rbf_oracle_target_share_z": ("—", "RBF SVM says 9 for counterfactuals"),
        "knn_target_share_x": ("low (Fig. 13)", "share of 9s among 10 nearest training images"),
        "knn_target_share_z": ("high (Fig. 13)", "Z - X >= 0.25"),
        "oracle_target_share_z_normalized": ("—", "linear SVM says 9, Z-ascent with normalised steps (§III)"),
        "oracle_target_share_x_normalized": ("—", "linear SVM says 9, X-ascent with normalised steps (§III)"),
        "knn_target_share_z_normalized": ("—", "10-NN share of 9s, Z with normalised steps"),
        "knn_target_share_x_normalized": ("—", "10-NN share of 9s, X with normalised steps"),
        "im1_mean_x": ("Z < X (Table I)", "IM1, adversarials"),
        "im1_mean_z": ("Z < X (Table I)", "IM1, counterfactuals"),
        "l2_x_to_source_x": ("X < Z (Table II)", "pixel L2 to the source, adversarials"),
        "l2_x_to_source_z": ("X < Z (Table II)", "pixel L2 to the source, counterfactuals"),
        "l2_z_to_source_x": ("X > Z (Table III)", "latent L2 to the source, adversarials"),
        "l2_z_to_source_z": ("X > Z (Table III)", "latent L2 to the source, counterfactuals"),
        "pair_matrix_oracle_mean_x": ("—", "90 source -> target pairs: mean linear-SVM agreement, X"),
        "pair_matrix_oracle_mean_z": ("—", "the same for counterfactuals; Z - X >= 0.25"),
    },
    "04_celeba": {
        "classifier_accuracy": ("0.94", "binary CNN, not blond vs blond (§IV-B); target >= 0.92"),
        "classifier_balanced_accuracy": ("—", "mean of the two class accuracies; target >= 0.85"),
        "flow_bits_per_dim": ("—", "test bits/dim, 5-bit faces at 32×32 (paper: not reported)"),
        "svm_accuracy": ("0.85", "linear SVM oracle on pixels, test accuracy (§IV-C)"),
        "success_rate_x": ("—", "not blond -> blond at Λ = 0.99, adversarials; target >= 0.90"),
        "success_rate_z": ("—", "counterfactuals; target >= 0.90"),
        "oracle_target_share_original": ("≈ 0 (Fig. 11)", "SVM says blond for the not-blond originals"),
        "oracle_target_share_x": ("low (Fig. 11)", "SVM says blond for adversarials"),
        "oracle_target_share_z": ("high (Fig. 11)", "SVM says blond for counterfactuals"),
        "oracle_margin_z": ("> 0 (Fig. 11)", "Z - X, target >= 0.20; _low, _high: 95% bootstrap interval"),
        "knn_target_share_x": ("low (Fig. 13)", "blond share among the 10 nearest training faces"),
        "knn_target_share_z": ("high (Fig. 13)", "counterfactuals; Z > X"),
        "region_change_share_x": ("—", "share of |δ| outside the inner face, adversarials"),
        "region_change_share_z": ("hair (§IV-B)", "the same for counterfactuals; Z > X"),
        "region_change_margin": ("—", "that share, Z - X; _low, _high: 95% bootstrap interval"),
        "im1_mean_x": ("Z < X (Table I)", "IM1, adversarials"),
        "im1_mean_z": ("Z < X (Table I)", "IM1, counterfactuals"),
        "mnac_x": ("—", "mean number of other attributes flipped, adversarials"),
        "mnac_z": ("—", "the same for counterfactuals"),
    },
    "05_chest_xray": {
        "classifier_accuracy": ("0.86 (CheXpert)", "binary CNN, none vs Cardiomegaly; target >= 0.78"),
        "classifier_balanced_accuracy": ("—", "mean of the two class accuracies"),
        "classifier_auc": ("—", "area under the ROC curve of f's Cardiomegaly probability"),
        "flow_bits_per_dim": ("—", "test bits/dim, 8-bit films at 64×64 (paper: not reported)"),
        "svm_accuracy": ("0.70", "linear SVM oracle on pixels, test accuracy (§IV-C)"),
        "success_rate_x": ("—", "healthy -> cardiomegaly at Λ = 0.99, adversarials; target >= 0.90"),
        "success_rate_z": ("—", "counterfactuals; target >= 0.90"),
        "oracle_target_share_original": ("low (Fig. 11)", "SVM says cardiomegaly for the healthy originals"),
        "oracle_target_share_x": ("low (Fig. 11)", "SVM says cardiomegaly for adversarials"),
        "oracle_target_share_z": ("high (Fig. 11)", "SVM: cardiomegaly, counterfactuals"),
        "oracle_margin_z": ("> 0 (Fig. 11)", "Z - X, target >= 0.20; _low, _high: 95% bootstrap interval"),
        "knn_target_share_x": ("low (Fig. 13)", "cardiomegaly share among the 10 nearest training films"),
        "knn_target_share_z": ("high (Fig. 13)", "counterfactuals; Z > X"),
        "region_change_share_x": ("—", "share of |δ| inside the cardiac region, adversarials"),
        "region_change_share_z": ("central region (§IV-B)", "the same for counterfactuals; Z > X"),
        "region_change_margin": ("—", "that share, Z - X; _low, _high: 95% bootstrap interval"),
        "ctr_change_x": ("—", "mean change of the cardiothoracic ratio, adversarials"),
        "ctr_change_z": ("heart enlarged (§IV-B)", "the same for counterfactuals"),
    },
    "06_mall_regression": {
        "unet_rmse": ("0.63", "test RMSE of f's count on the test crops; target <= 1.0"),
        "oracle_rmse": ("0.72", "test RMSE of the oracle U-Net's count"),
        "flow_bits_per_dim": ("—", "test bits/dim of the Glow, 5-bit crops (paper: not reported)"),
        "success_rate_max_x": ("—", "maximise f's count past 10, adversarials; target >= 0.90"),
        "success_rate_max_z": ("—", "maximise, counterfactuals; target >= 0.90"),
        "success_rate_min_x": ("—", "minimise f's count below 0.01, adversarials; target >= 0.90"),
        "success_rate_min_z": ("—", "minimise, counterfactuals; target >= 0.90"),
        "oracle_count_change_max_x": ("≈ 0 (Fig. 11)", "mean change of the oracle's count, adversarials"),
        "oracle_count_change_max_z": ("up (Fig. 11)", "counterfactuals; >= 3 × X"),
        "oracle_count_change_min_x": ("≈ 0 (Fig. 11)", "the same when minimising, adversarials"),
        "oracle_count_change_min_z": ("down (Fig. 11)", "counterfactuals; <= 3 × X"),
        "knn_count_change_max_x": ("—", "mean true count of the 3 nearest training crops, change, X"),
        "knn_count_change_max_z": ("up (Fig. 13)", "the same, Z; > X"),
        "knn_count_change_min_x": ("—", "the same when minimising, X"),
        "knn_count_change_min_z": ("down (Fig. 13)", "the same, Z; < X"),
    },
    "07_approximate": {
        "mnist_recon_mse_flow": ("0 (exact inverse)", "MSE of g(g⁻¹(x)) to x, test 4s"),
        "mnist_recon_mse_vae": ("> 0 (§II)", "information lost by the VAE's round trip"),
        "mnist_recon_mse_gan": ("> 0 (§II)", "GAN: learned encoder + refinement (stop at 1e-3)"),
        "mnist_recon_mse_gan_encoder_only": ("—", "GAN: the learned encoder's start alone"),
        "mnist_recon_ssim_vae": ("—", "SSIM of the VAE's reconstructions"),
        "mnist_recon_ssim_gan": ("—", "SSIM of the GAN's reconstructions"),
        "mnist_inversion_steps_random": ("—", "mean steps of the paper's inversion (random start)"),
        "mnist_inversion_steps_encoder_to_match": ("—", "steps from E(x) to the same error; must be fewer"),
        "mnist_success_rate_flow": ("—", "4 -> 9 at Λ = 0.99 in the flow's Z; target >= 0.90"),
        "mnist_success_rate_vae": ("—", "in the VAE's latent space; target >= 0.90"),
        "mnist_success_rate_gan": ("—", "in the GAN's latent space; target >= 0.90"),
        "mnist_success_rate_x": ("—", "in X (adversarials)"),
        "mnist_oracle_target_share_x": ("low (Fig. 11)", "linear SVM says 9, adversarials"),
        "mnist_oracle_target_share_flow": ("high (Fig. 11)", "flow counterfactuals"),
        "mnist_oracle_target_share_vae": ("high (§IV-C)", "VAE counterfactuals; VAE - X >= 0.20"),
        "mnist_oracle_target_share_gan": ("high (§IV-C)", "GAN counterfactuals; GAN - X >= 0.20"),
        "mnist_oracle_margin_flow": ("—", "oracle share flow - X; _low, _high: 95% bootstrap interval"),
        "mnist_oracle_margin_vae": ("—", "oracle share VAE - X; target >= 0.20"),
        "mnist_oracle_margin_gan": ("—", "oracle share GAN - X; target >= 0.20"),
        "mnist_own_sources_oracle_margin_vae": ("—", "the same, VAE's own 4s (exact latents)"),
        "mnist_own_sources_oracle_margin_gan": ("—", "the same from the GAN's own 4s"),
        "mnist_rbf_oracle_target_share_x": ("—", "RBF SVM says 9 (second oracle, not in the paper), X"),
        "mnist_rbf_oracle_target_share_flow": ("—", "RBF SVM says 9, flow counterfactuals"),
        "mnist_rbf_oracle_target_share_vae": ("—", "RBF SVM says 9, VAE counterfactuals"),
        "mnist_rbf_oracle_target_share_gan": ("—", "RBF SVM says 9, GAN counterfactuals"),
        "mnist_knn_target_share_x": ("low (Fig. 13)", "share of 9s among the 10 nearest training images"),
        "mnist_knn_target_share_flow": ("high (Fig. 13)", "flow counterfactuals"),
        "mnist_knn_target_share_vae": ("—", "VAE counterfactuals"),
        "mnist_knn_target_share_gan": ("—", "GAN counterfactuals"),
        "mnist_oracle_on_reconstructed_targets_original": (
            "0.92 (the oracle's accuracy)", "linear SVM says 9: real test 9s (what it can say at best)"),
        "mnist_oracle_on_reconstructed_targets_vae": ("—", "the same 9s, reconstructed by the VAE"),
        "mnist_oracle_on_reconstructed_targets_gan": ("—", "the same 9s, reconstructed by the GAN"),
        "mnist_im1_mean_x": ("—", "IM1, adversarials (lower: more like a 9)"),
        "mnist_im1_mean_flow": ("—", "IM1, flow counterfactuals"),
        "mnist_im1_mean_vae": ("—", "IM1, VAE counterfactuals"),
        "mnist_im1_mean_gan": ("—", "IM1, GAN counterfactuals"),
        "mnist_onmanifold_share_flow": ("—", "Z-step share in the top eigenspace of JJᵀ (90% of the trace)"),
        "mnist_onmanifold_share_vae": ("—", "the same for the VAE (Theorem 2)"),
        "mnist_onmanifold_share_gan": ("—", "the same for the GAN (Theorem 2)"),
        "mnist_onmanifold_share_x_flow": ("—", "X-gradient share in the flow's top eigenspace"),
        "mnist_onmanifold_share_x_vae": ("—", "X-gradient share in the VAE's top eigenspace"),
        "mnist_onmanifold_share_x_gan": ("—", "X-gradient share in the GAN's top eigenspace"),
        "celeba_recon_mse_flow": ("0 (exact inverse)", "MSE of g(g⁻¹(x)) to x, not-blond test faces"),
        "celeba_recon_mse_vae": ("> 0 (§II)", "VAE: decode(encoder mean)"),
        "celeba_recon_mse_gan": ("> 0 (§II)", "dcGAN (paper: pGAN): inversion from a random start"),
        "celeba_recon_mse_stylegan": ("> 0 (§II, Fig. 10)", "style-based GAN: E(x) + refinement in W+"),
        "celeba_recon_mse_stylegan_encoder_only": ("—", "style-based GAN: the encoder's start alone"),
        "celeba_recon_mse_stylegan_mean_w_start": ("—", "style-based GAN: inversion from the mean w"),
        "celeba_recon_ssim_vae": ("—", "SSIM of the VAE's reconstructions"),
        "celeba_recon_ssim_gan": ("—", "SSIM of the dcGAN's reconstructions"),
        "celeba_recon_ssim_stylegan": ("—", "SSIM of the style-based GAN's reconstructions"),
        "celeba_inversion_steps_mean_w": ("—", "mean steps of the inversion from the mean w"),
        "celeba_inversion_steps_encoder_to_match": ("—", "steps from E(x) to the same error; must be fewer"),
        "celeba_success_rate_flow": ("—", "not blond -> blond at Λ = 0.99 in the flow's Z; target >= 0.90"),
        "celeba_success_rate_vae": ("—", "in the VAE's latent space; target >= 0.90"),
        "celeba_success_rate_gan": ("—", "in the dcGAN's latent space; target >= 0.90"),
        "celeba_success_rate_stylegan": ("—", "in the style-based GAN's W+; target >= 0.90"),
        "celeba_success_rate_x": ("—", "in X (adversarials)"),
        "celeba_oracle_target_share_x": ("low (Fig. 11)", "linear SVM says blond, adversarials"),
        "celeba_oracle_target_share_flow": ("high (Fig. 11)", "flow counterfactuals"),
        "celeba_oracle_target_share_vae": ("—", "VAE counterfactuals"),
        "celeba_oracle_target_share_gan": ("—", "dcGAN counterfactuals"),
        "celeba_oracle_target_share_stylegan": ("—", "style-based GAN counterfactuals"),
        "celeba_knn_target_share_x": ("low (Fig. 13)", "blond share of the 10 nearest training faces"),
        "celeba_knn_target_share_flow": ("high (Fig. 13)", "flow counterfactuals"),
        "celeba_knn_target_share_vae": ("—", "VAE counterfactuals"),
        "celeba_knn_target_share_gan": ("—", "dcGAN counterfactuals"),
        "celeba_knn_target_share_stylegan": ("—", "style-based GAN counterfactuals"),
        "celeba_im1_mean_x": ("—", "IM1, adversarials (lower: more like blond)"),
        "celeba_im1_mean_flow": ("—", "IM1, flow counterfactuals"),
        "celeba_im1_mean_vae": ("—", "IM1, VAE counterfactuals"),
        "celeba_im1_mean_gan": ("—", "IM1, dcGAN counterfactuals"),
        "celeba_im1_mean_stylegan": ("—", "IM1, style-based GAN counterfactuals"),
        "celeba_onmanifold_share_flow": ("—", "Z-step share in the top eigenspace of JJᵀ (90% of the trace)"),
        "celeba_onmanifold_share_vae": ("—", "the same for the VAE (Theorem 2)"),
        "celeba_onmanifold_share_gan": ("—", "the same for the dcGAN (Theorem 2)"),
        "celeba_onmanifold_share_stylegan": ("—", "the same for the style-based GAN (Theorem 2)"),
        "celeba_onmanifold_share_x_flow": ("—", "X-gradient share in the flow's top eigenspace"),
        "celeba_onmanifold_share_x_vae": ("—", "X-gradient share in the VAE's top eigenspace"),
        "celeba_onmanifold_share_x_gan": ("—", "X-gradient share in the dcGAN's top eigenspace"),
        "celeba_onmanifold_share_x_stylegan": ("—", "X-gradient share, style-based GAN"),
    },
    "08_comparisons": {
        "n_images": ("500", "not-blond test faces, the same for every method"),
        "revise_zero_max_difference": ("0 (λ → 0 is ours)", "max pixel difference, REVISE at λ = 0 vs ours"),
        "seconds_ours": ("fastest", "wall time per face, batched run (Table IV: runtime)"),
        "seconds_revise": ("longer than ours", "REVISE (Joshi et al.)"),
        "seconds_zhao": ("median 15 min", "natural adversarial search (Zhao et al.), the paper per face"),
        "seconds_looveren": ("> 6 min", "prototypes (Van Looveren & Klaise), the paper per face"),
        "ssim_ours": ("—", "mean SSIM to the original, successful searches"),
        "ssim_revise": ("above ours", "REVISE keeps the image closer in pixels"),
        "ssim_zhao": ("below ours", "random latent steps of large radius"),
        "ssim_looveren": ("lowest", "the prototype replaces the face's content"),
        "oracle_ours": ("—", "linear SVM says blond, successful searches"),
        "oracle_revise": ("below ours", "worse generalisation to the oracle"),
        "oracle_zhao": ("—", ""),
        "oracle_looveren": ("generalises", "the oracle agrees"),
        "success_ours": ("—", "successful searches of n_images"),
        "success_revise": ("—", ""),
        "success_zhao": ("438 of 500", "not every random search flips f"),
        "success_looveren": ("—", ""),
    },
    "09_attributions": {
        "shortcut_accuracy_confounded": ("—", "§I example, qualitative; must reach >= 0.98"),
        "shortcut_accuracy_deconfounded": ("—", "sizes crossed; a size rule gives 0.5; must reach <= 0.60"),
        "cf_area_ratio_circle_to_square": ("< 1 (§I: smaller circles)", "mean CF / original area; <= 0.7"),
        "cf_area_ratio_square_to_circle": ("> 1 (§I: larger squares)", "mean CF / original area; >= 1.4"),
        "cf_shape_change_share": ("—", "share of CFs whose measured shape changed (low: size, not shape)"),
        "ig_completeness_gap": ("0 (completeness axiom)", "median relative gap, default steps; <= 0.01"),
    },
    "10_ig_baselines": {
        "topk_auc_random": ("—", "random ranking control (mean log-odds over top-k ablation)"),
        "topk_auc_ig_black": ("< random", "Distill: lower is better; every method must beat random"),
        "topk_auc_expected_gradients": ("< random", "Expected Gradients with the training data"),
        "topk_auc_meaningful_perturbation": ("< random", "Fong & Vedaldi mask"),
        "completeness_gap_black": ("0 (completeness axiom)", "median relative gap at the default steps"),
        "all_methods_below_random": ("true", "every method's top-k AUC below the random control"),
    },
}


@dataclass(frozen=True)
class Check:
    """A must-reach target: ``text`` as printed, ``test(results)`` decides it."""

    text: str
    test: Callable[[Results], bool]


def _all_below_random(prefix: str) -> Callable[[Results], bool]:
    """Every method's ablation AUC ``<prefix><method>`` below ``<prefix>random`` (lower is better)."""
    def test(r: Results) -> bool:
        aucs = {k[len(prefix):]: v for k, v in r.items()
                if k.startswith(prefix) and not k[len(prefix):].startswith("blur_")}
        return len(aucs) > 1 and all(v < aucs["random"] for k, v in aucs.items() if k != "random")
    return test


CELEBA_GENERATORS = ("flow", "vae", "gan", "stylegan")  # notebook 07's CelebA half, results key suffixes

CHECKS: dict[str, list[Check]] = {
    "01_toy_helix": [
        Check("at least 99% of the searches succeed in each space",
              lambda r: min(r["successes_x"], r["successes_z"]) >= 0.99 * r["n_starts"]),
        Check("median distance to the helix in X within [1.5, 3.5]",
              lambda r: 1.5 <= r["median_distance_x"] <= 3.5),
        Check("median distance to the helix in Z <= 0.05", lambda r: r["median_distance_z"] <= 0.05),
        Check("Z at least 50x closer to the helix than X",
              lambda r: r["median_distance_x"] >= 50 * r["median_distance_z"]),
    ],
    "02_metric_geometry": [
        Check("first-order identity: slope of residual/λ in [0.9, 1.1]",
              lambda r: 0.9 <= r["first_order_slope"] <= 1.1),
        Check("helix: median λ1/λ2 >= 100", lambda r: r["helix_eigenvalue_ratio_median"] >= 100),
        Check("helix: median angle of the top eigenvector to the tangent <= 5°",
              lambda r: r["helix_tangent_angle_deg_median"] <= 5),
        Check("helix: Z-step more along the manifold than the X-gradient",
              lambda r: r["helix_onmanifold_share_z"] > r["helix_onmanifold_share_x"]),
        Check("MNIST: Z-step more in the top eigenspace than the X-gradient",
              lambda r: r["mnist_onmanifold_share_z"] > r["mnist_onmanifold_share_x"]),
    ],
    "03_mnist": [
        Check("flow test bits/dim <= 1.20", lambda r: r["flow_bits_per_dim"] <= 1.20),
        Check("flow round trip <= 1e-4", lambda r: r["flow_roundtrip_max_abs_error"] <= 1e-4),
        Check("flow samples at T = 0.7: the CNN is confident (p > 0.9) for >= 85%",
              lambda r: r["flow_sample_confident_share"] >= 0.85),
        Check("success >= 95% in both spaces",
              lambda r: min(r["success_rate_x"], r["success_rate_z"]) >= 0.95),
        Check("oracle share Z - X >= 30 points",
              lambda r: r["oracle_margin_z"] >= 0.30),
        Check("k-NN share Z - X >= 25 points",
              lambda r: r["knn_target_share_z"] - r["knn_target_share_x"] >= 0.25),
        Check("mean IM1 Z < X", lambda r: r["im1_mean_z"] < r["im1_mean_x"]),
        Check("adversarials closer in X, CFs closer in Z",
              lambda r: r["l2_x_to_source_x"] < r["l2_x_to_source_z"]
              and r["l2_z_to_source_z"] < r["l2_z_to_source_x"]),
        Check("90 pairs: mean linear-SVM agreement Z - X >= 25 points",
              lambda r: r["pair_matrix_oracle_mean_z"] - r["pair_matrix_oracle_mean_x"] >= 0.25),
    ],
    "04_celeba": [
        Check("classifier accuracy >= 0.92 and balanced accuracy >= 0.85",
              lambda r: r["classifier_accuracy"] >= 0.92 and r["classifier_balanced_accuracy"] >= 0.85),
        Check("success >= 90% in both spaces",
              lambda r: min(r["success_rate_x"], r["success_rate_z"]) >= 0.90),
        Check("oracle share Z - X >= 20 points", lambda r: r["oracle_margin_z"] >= 0.20),
        Check("k-NN share Z > X", lambda r: r["knn_target_share_z"] > r["knn_target_share_x"]),
        Check("mean IM1 Z < X", lambda r: r["im1_mean_z"] < r["im1_mean_x"]),
        Check("more of the change outside the inner face for Z than X",
              lambda r: r["region_change_share_z"] > r["region_change_share_x"]),
    ],
    "05_chest_xray": [
        Check("classifier accuracy >= 0.78", lambda r: r["classifier_accuracy"] >= 0.78),
        Check("success >= 90% in both spaces",
              lambda r: min(r["success_rate_x"], r["success_rate_z"]) >= 0.90),
        Check("oracle share Z - X >= 20 points", lambda r: r["oracle_margin_z"] >= 0.20),
        Check("k-NN share Z > X", lambda r: r["knn_target_share_z"] > r["knn_target_share_x"]),
        Check("more of the change inside the cardiac region for Z than X",
              lambda r: r["region_change_share_z"] > r["region_change_share_x"]),
        Check("cardiothoracic-ratio change measured for both spaces",
              lambda r: all(math.isfinite(r[k]) for k in ("ctr_change_x", "ctr_change_z"))),
    ],
    "06_mall_regression": [
        Check("U-Net test RMSE <= 1.0", lambda r: r["unet_rmse"] <= 1.0),
        Check("success >= 90% in each of the four settings",
              lambda r: min(r[f"success_rate_{d}_{s}"] for d in ("max", "min") for s in ("x", "z")) >= 0.90),
        Check("maximise: the oracle's count rises for Z at least 3x as far as for X",
              lambda r: r["oracle_count_change_max_z"] > 0
              and r["oracle_count_change_max_z"] >= 3 * max(r["oracle_count_change_max_x"], 0)),
        Check("minimise: the oracle's count falls for Z at least 3x as far as for X",
              lambda r: r["oracle_count_change_min_z"] < 0
              and -r["oracle_count_change_min_z"] >= 3 * max(-r["oracle_count_change_min_x"], 0)),
        Check("the k-NN count moves further for Z, both ways",
              lambda r: r["knn_count_change_max_z"] > r["knn_count_change_max_x"]
              and r["knn_count_change_min_z"] < r["knn_count_change_min_x"]),
    ],
    "07_approximate": [
        Check("MNIST: success >= 90% in the latent space of every generator",
              lambda r: min(r[f"mnist_success_rate_{n}"] for n in ("flow", "vae", "gan")) >= 0.90),
        Check("MNIST: oracle share VAE - X >= 20 points",
              lambda r: r["mnist_oracle_margin_vae"] >= 0.20),
        Check("MNIST: oracle share GAN - X >= 20 points",
              lambda r: r["mnist_oracle_margin_gan"] >= 0.20),
        Check("MNIST: the flow reconstructs exactly (MSE <= 1e-8), the VAE and GAN errors are reported",
              lambda r: r["mnist_recon_mse_flow"] <= 1e-8
              and min(r["mnist_recon_mse_vae"], r["mnist_recon_mse_gan"]) >= 0),
        Check("MNIST: encoder + refinement reaches the random start's error in fewer steps",
              lambda r: r["mnist_inversion_steps_encoder_to_match"] < r["mnist_inversion_steps_random"]),
        Check("MNIST: Z-step more in the top eigenspace than the X-gradient, every generator",
              lambda r: all(r[f"mnist_onmanifold_share_{n}"] > r[f"mnist_onmanifold_share_x_{n}"]
                            for n in ("flow", "vae", "gan"))),
        Check("CelebA: success >= 90% in the latent space of every generator",
              lambda r: min(r[f"celeba_success_rate_{n}"] for n in CELEBA_GENERATORS) >= 0.90),
        Check("CelebA: the flow reconstructs exactly (MSE <= 1e-8), the other errors are reported",
              lambda r: r["celeba_recon_mse_flow"] <= 1e-8
              and min(r[f"celeba_recon_mse_{n}"] for n in CELEBA_GENERATORS[1:]) >= 0),
        Check("CelebA: encoder + refinement reaches the mean-w start's error in fewer steps",
              lambda r: r["celeba_inversion_steps_encoder_to_match"] < r["celeba_inversion_steps_mean_w"]),
        Check("CelebA: Z-step more in the top eigenspace than the X-gradient, every generator",
              lambda r: all(r[f"celeba_onmanifold_share_{n}"] > r[f"celeba_onmanifold_share_x_{n}"]
                            for n in CELEBA_GENERATORS)),
    ],
    "08_comparisons": [
        Check("ours at least 5 times faster per face than Zhao et al. and Van Looveren & Klaise",
              lambda r: 5 * r["seconds_ours"] <= min(r["seconds_zhao"], r["seconds_looveren"])),
        Check("REVISE: higher SSIM than ours, lower oracle share",
              lambda r: r["ssim_revise"] > r["ssim_ours"] and r["oracle_revise"] < r["oracle_ours"]),
        Check("Van Looveren & Klaise: the lowest SSIM of the four",
              lambda r: r["ssim_looveren"] < min(r["ssim_ours"], r["ssim_revise"], r["ssim_zhao"])),
        Check("Zhao et al.: fewer successful searches than ours",
              lambda r: r["success_zhao"] < r["success_ours"]),
        Check("REVISE at λ = 0 is our search exactly", lambda r: r["revise_zero_max_difference"] == 0),
    ],
    "09_attributions": [
        Check("the shortcut is learned: confounded accuracy >= 0.98",
              lambda r: r["shortcut_accuracy_confounded"] >= 0.98),
        Check("... and used: de-confounded accuracy <= 0.60",
              lambda r: r["shortcut_accuracy_deconfounded"] <= 0.60),
        Check("circle -> square counterfactuals shrink the object (area ratio <= 0.7)",
              lambda r: r["cf_area_ratio_circle_to_square"] <= 0.7),
        Check("square -> circle counterfactuals grow it (area ratio >= 1.4)",
              lambda r: r["cf_area_ratio_square_to_circle"] >= 1.4),
        Check("IG completeness gap <= 1 %", lambda r: r["ig_completeness_gap"] <= 0.01),
    ],
    "10_ig_baselines": [
        Check("every method's top-k AUC below the random control (MNIST, mean replacement)",
              _all_below_random("topk_auc_")),
        Check("every method's top-k AUC below the random control (shapes, mean replacement)",
              _all_below_random("shapes_topk_auc_")),
        Check("IG completeness gap below 1 % at the default steps from the black baseline",
              lambda r: r["completeness_gap_black"] < 0.01),
    ],
}


def evaluate(stem: str, results: Results) -> dict[str, bool]:
    """The verdict of every check of notebook ``stem`` on its results; a check whose results key is
    missing fails (and says so)."""
    verdicts = {}
    for c in CHECKS.get(stem, []):
        try:
            verdicts[c.text] = bool(c.test(results))
        except KeyError as err:
            verdicts[f"{c.text} (not measured: no {err.args[0]!r} in the results)"] = False
    return verdicts


def check(stem: str, results: Results) -> None:
    """Print ``PASS``/``FAIL`` for each check of notebook ``stem`` (an nbval-checked cell)."""
    print_checks(evaluate(stem, results))


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compare(stem: str, results: Results) -> None:
    """Print the given results of notebook ``stem`` beside the paper's numbers and notes."""
    paper = PAPER.get(stem, {})
    width = max(len(k) for k in results)
    print(f"{'metric':{width}s}  {'paper':>20s}  {'ours':>10s}  note")
    for key, value in results.items():
        ref, note = paper.get(key, ("—", ""))
        print(f"{key:{width}s}  {ref:>20s}  {_fmt(value):>10s}  {note}")


# The README's table of headline results: (notebook, what, results keys shown as "a / b").
HEADLINE: list[tuple[str, str, tuple[str, ...]]] = [
    ("01_toy_helix", "median distance to the helix, X / Z", ("median_distance_x", "median_distance_z")),
    ("01_toy_helix", "successful optimisations X / Z", ("successes_x", "successes_z")),
    ("02_metric_geometry", "slope of residual/λ (first-order identity)", ("first_order_slope",)),
    ("02_metric_geometry", "median λ₁/λ₂ of γ⁻¹ on the helix", ("helix_eigenvalue_ratio_median",)),
    ("02_metric_geometry", "MNIST manifold dimension (90% of the trace)", ("mnist_manifold_dim_estimate",)),
    ("02_metric_geometry", "MNIST: step share in the top eigenspace, X / Z",
     ("mnist_onmanifold_share_x", "mnist_onmanifold_share_z")),
    ("03_mnist", "CNN / linear SVM oracle test accuracy", ("classifier_accuracy", "svm_accuracy")),
    ("03_mnist", "flow test bits/dim", ("flow_bits_per_dim",)),
    ("03_mnist", "flow samples the CNN is confident about (T = 0.7)", ("flow_sample_confident_share",)),
    ("03_mnist", "success 4 → 9, X / Z", ("success_rate_x", "success_rate_z")),
    ("03_mnist", "linear SVM says 9: original / X / Z",
     ("oracle_target_share_original", "oracle_target_share_x", "oracle_target_share_z")),
    ("03_mnist", "linear SVM margin Z − X: margin / 95% interval (low / high)",
     ("oracle_margin_z", "oracle_margin_z_low", "oracle_margin_z_high")),
    ("03_mnist", "RBF SVM says 9: X / Z (not in the paper)",
     ("rbf_oracle_target_share_x", "rbf_oracle_target_share_z")),
    ("03_mnist", "10-NN share of 9s, X / Z", ("knn_target_share_x", "knn_target_share_z")),
    ("03_mnist", "mean IM1, X / Z", ("im1_mean_x", "im1_mean_z")),
    ("03_mnist", "L2 to own source in X, X / Z", ("l2_x_to_source_x", "l2_x_to_source_z")),
    ("03_mnist", "L2 to own source in Z, X / Z", ("l2_z_to_source_x", "l2_z_to_source_z")),
    ("04_celeba", "CNN accuracy / balanced accuracy",
     ("classifier_accuracy", "classifier_balanced_accuracy")),
    ("04_celeba", "success not blond → blond, X / Z", ("success_rate_x", "success_rate_z")),
    ("04_celeba", "linear SVM says blond: original / X / Z",
     ("oracle_target_share_original", "oracle_target_share_x", "oracle_target_share_z")),
    ("04_celeba", "linear SVM margin Z − X: margin / 95% interval (low / high)",
     ("oracle_margin_z", "oracle_margin_z_low", "oracle_margin_z_high")),
    ("04_celeba", "10-NN share of blond faces, X / Z", ("knn_target_share_x", "knn_target_share_z")),
    ("04_celeba", "change outside the inner face, X / Z", ("region_change_share_x", "region_change_share_z")),
    ("04_celeba", "change outside the inner face, Z − X: margin / 95% interval (low / high)",
     ("region_change_margin", "region_change_margin_low", "region_change_margin_high")),
    ("04_celeba", "MNAC (other attributes flipped), X / Z", ("mnac_x", "mnac_z")),
    ("05_chest_xray", "CNN accuracy / balanced accuracy / AUC",
     ("classifier_accuracy", "classifier_balanced_accuracy", "classifier_auc")),
    ("05_chest_xray", "success healthy → cardiomegaly, X / Z", ("success_rate_x", "success_rate_z")),
    ("05_chest_xray", "linear SVM says cardiomegaly: original / X / Z",
     ("oracle_target_share_original", "oracle_target_share_x", "oracle_target_share_z")),
    ("05_chest_xray", "linear SVM margin Z − X: margin / 95% interval (low / high)",
     ("oracle_margin_z", "oracle_margin_z_low", "oracle_margin_z_high")),
    ("05_chest_xray", "10-NN share of cardiomegaly films, X / Z",
     ("knn_target_share_x", "knn_target_share_z")),
    ("05_chest_xray", "change inside the cardiac region, X / Z",
     ("region_change_share_x", "region_change_share_z")),
    ("05_chest_xray", "change inside the cardiac region, Z − X: margin / 95% interval (low / high)",
     ("region_change_margin", "region_change_margin_low", "region_change_margin_high")),
    ("05_chest_xray", "mean change of the cardiothoracic ratio, X / Z", ("ctr_change_x", "ctr_change_z")),
    ("06_mall_regression", "count RMSE, U-Net / oracle", ("unet_rmse", "oracle_rmse")),
    ("06_mall_regression", "oracle count change when maximising, X / Z",
     ("oracle_count_change_max_x", "oracle_count_change_max_z")),
    ("06_mall_regression", "oracle count change when minimising, X / Z",
     ("oracle_count_change_min_x", "oracle_count_change_min_z")),
    ("06_mall_regression", "3-NN count change, maximise X / Z, minimise X / Z",
     ("knn_count_change_max_x", "knn_count_change_max_z",
      "knn_count_change_min_x", "knn_count_change_min_z")),
    ("07_approximate", "MNIST reconstruction MSE g(g⁻¹(x)): flow / VAE / GAN",
     ("mnist_recon_mse_flow", "mnist_recon_mse_vae", "mnist_recon_mse_gan")),
    ("07_approximate", "MNIST success 4 → 9: flow / VAE / GAN / X",
     ("mnist_success_rate_flow", "mnist_success_rate_vae", "mnist_success_rate_gan", "mnist_success_rate_x")),
    ("07_approximate", "MNIST linear SVM says 9: X / flow / VAE / GAN",
     ("mnist_oracle_target_share_x", "mnist_oracle_target_share_flow", "mnist_oracle_target_share_vae",
      "mnist_oracle_target_share_gan")),
    *(("07_approximate", f"MNIST linear SVM margin over X, {name}: margin / 95% interval (low / high)",
       tuple(f"mnist_oracle_margin_{name.lower()}{end}" for end in ("", "_low", "_high")))
      for name in ("VAE", "GAN")),
    ("07_approximate", "MNIST RBF SVM says 9 (not in the paper): X / flow / VAE / GAN",
     ("mnist_rbf_oracle_target_share_x", "mnist_rbf_oracle_target_share_flow",
      "mnist_rbf_oracle_target_share_vae", "mnist_rbf_oracle_target_share_gan")),
    ("07_approximate", "MNIST 10-NN share of 9s: X / flow / VAE / GAN",
     ("mnist_knn_target_share_x", "mnist_knn_target_share_flow", "mnist_knn_target_share_vae",
      "mnist_knn_target_share_gan")),
    ("07_approximate", "CelebA reconstruction MSE: flow / VAE / dcGAN / StyleGAN (E + refine)",
     ("celeba_recon_mse_flow", "celeba_recon_mse_vae", "celeba_recon_mse_gan", "celeba_recon_mse_stylegan")),
    ("07_approximate", "CelebA success → blond: flow / VAE / dcGAN / StyleGAN / X",
     ("celeba_success_rate_flow", "celeba_success_rate_vae", "celeba_success_rate_gan",
      "celeba_success_rate_stylegan", "celeba_success_rate_x")),
    ("07_approximate", "CelebA linear SVM says blond: X / flow / VAE / dcGAN / StyleGAN",
     ("celeba_oracle_target_share_x", "celeba_oracle_target_share_flow", "celeba_oracle_target_share_vae",
      "celeba_oracle_target_share_gan", "celeba_oracle_target_share_stylegan")),
    ("07_approximate", "CelebA 10-NN share of blond: X / flow / VAE / dcGAN / StyleGAN",
     ("celeba_knn_target_share_x", "celeba_knn_target_share_flow", "celeba_knn_target_share_vae",
      "celeba_knn_target_share_gan", "celeba_knn_target_share_stylegan")),
    ("08_comparisons", "seconds per face: ours / REVISE / Zhao / Van Looveren",
     ("seconds_ours", "seconds_revise", "seconds_zhao", "seconds_looveren")),
    ("08_comparisons", "SSIM to the original: ours / REVISE / Zhao / Van Looveren",
     ("ssim_ours", "ssim_revise", "ssim_zhao", "ssim_looveren")),
    ("08_comparisons", "linear SVM says blond: ours / REVISE / Zhao / Van Looveren",
     ("oracle_ours", "oracle_revise", "oracle_zhao", "oracle_looveren")),
    ("08_comparisons", "successful searches: ours / REVISE / Zhao / Van Looveren (of n_images)",
     ("success_ours", "success_revise", "success_zhao", "success_looveren")),
    ("09_attributions", "shortcut accuracy, confounded / sizes crossed",
     ("shortcut_accuracy_confounded", "shortcut_accuracy_deconfounded")),
    ("09_attributions", "CF area / original: circle → square, square → circle",
     ("cf_area_ratio_circle_to_square", "cf_area_ratio_square_to_circle")),
    ("09_attributions", "IG completeness gap (median, relative)", ("ig_completeness_gap",)),
    ("10_ig_baselines", "top-k ablation AUC: IG (black) / Expected Gradients / random",
     ("topk_auc_ig_black", "topk_auc_expected_gradients", "topk_auc_random")),
]


def headline_markdown(results: Mapping[str, Results]) -> str:
    """The README's results table from every notebook's results (``results[stem][key]``) and
    :data:`PAPER` (a paper value per key, or one when they are all the same); values of notebooks
    not run read ``not run``."""
    lines = ["| notebook | metric | paper | ours |", "|---|---|---|---|"]
    for stem, label, keys in HEADLINE:
        ours = results.get(stem, {})
        refs = [PAPER.get(stem, {}).get(k, ("—", ""))[0] for k in keys]
        paper = refs[0] if len(set(refs)) == 1 else " / ".join(refs)  # one value per key, or one for all
        value = " / ".join(_fmt(ours[k]) if k in ours else "not run" for k in keys)
        lines.append(f"| {stem} | {label} | {paper} | {value} |")
    return "\n".join(lines) + "\n"


README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")


def readme_with_results(readme: str, results: Mapping[str, Results]) -> str:
    """``readme`` with the block between :data:`README_MARKERS` replaced by the headline table."""
    start, end = README_MARKERS
    if readme.count(start) != 1 or readme.count(end) != 1:
        raise ValueError(f"README.md must hold the markers {start} and {end} once each")
    head, rest = readme.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{headline_markdown(results)}{end}{tail}"
