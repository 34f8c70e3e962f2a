"""The paper's published numbers, one table per notebook: the one place they are written down.

``PAPER[stem][results key] = (paper value, note)``. The runner puts them beside every notebook's
``results.json`` in ``figures/RESULTS.md``.
"""

from __future__ import annotations

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
        "flow_bits_per_dim": ("1.06 (RealNVP paper)", "test bits/dim; this project's target <= 1.5"),
        "success_rate_x": ("—", "4 -> 9 at Λ = 0.99, adversarials; target >= 0.95"),
        "success_rate_z": ("—", "4 -> 9 at Λ = 0.99, counterfactuals; target >= 0.95"),
        "oracle_target_share_original": ("≈ 0 (Fig. 11)", "SVM says 9 for the original 4s"),
        "oracle_target_share_x": ("low (Fig. 11)", "SVM says 9 for adversarials"),
        "oracle_target_share_z": ("high (Fig. 11)", "SVM says 9 for counterfactuals; Z - X >= 0.30"),
        "knn_target_share_x": ("low (Fig. 13)", "share of 9s among 10 nearest training images"),
        "knn_target_share_z": ("high (Fig. 13)", "Z - X >= 0.20"),
        "im1_mean_x": ("Z < X (Table I)", "IM1, adversarials"),
        "im1_mean_z": ("Z < X (Table I)", "IM1, counterfactuals"),
        "l2_x_to_source_x": ("X < Z (Table II)", "pixel L2 to the source, adversarials"),
        "l2_x_to_source_z": ("X < Z (Table II)", "pixel L2 to the source, counterfactuals"),
        "l2_z_to_source_x": ("X > Z (Table III)", "latent L2 to the source, adversarials"),
        "l2_z_to_source_z": ("X > Z (Table III)", "latent L2 to the source, counterfactuals"),
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
