# To paste into lib/diffcf/paper.py when notebook 04 lands (PAPER, CHECKS, HEADLINE).
PAPER_04 = {
    "04_celeba": {
        "classifier_accuracy": ("0.94", "binary CNN, not blond vs blond (§IV-B); target >= 0.92"),
        "classifier_balanced_accuracy": ("—", "mean of the two class accuracies; target >= 0.85"),
        "flow_bits_per_dim": ("—", "test bits/dim, 5-bit faces at 32×32 (paper: not reported)"),
        "svm_accuracy": ("0.85", "linear SVM oracle on pixels, test accuracy (§IV-C)"),
        "success_rate_x": ("—", "not blond -> blond at Λ = 0.99, adversarials; target >= 0.90"),
        "success_rate_z": ("—", "counterfactuals; target >= 0.90"),
        "oracle_target_share_original": ("≈ 0 (Fig. 11)", "SVM says blond for the not-blond originals"),
        "oracle_target_share_x": ("low (Fig. 11)", "SVM says blond for adversarials"),
        "oracle_target_share_z": ("high (Fig. 11)", "SVM says blond for counterfactuals; Z - X >= 0.20"),
        "knn_target_share_x": ("low (Fig. 13)", "blond share among the 10 nearest training faces"),
        "knn_target_share_z": ("high (Fig. 13)", "counterfactuals; Z > X"),
        "region_change_share_x": ("—", "share of |δ| outside the inner face, adversarials"),
        "region_change_share_z": ("hair (§IV-B)", "the same for counterfactuals; Z > X"),
        "im1_mean_x": ("Z < X (Table I)", "IM1, adversarials"),
        "im1_mean_z": ("Z < X (Table I)", "IM1, counterfactuals"),
        "mnac_x": ("—", "mean number of other attributes flipped, adversarials"),
        "mnac_z": ("—", "the same for counterfactuals"),
    },
}
CHECKS_04 = '''
    "04_celeba": [
        Check("classifier accuracy >= 0.92 and balanced accuracy >= 0.85",
              lambda r: r["classifier_accuracy"] >= 0.92 and r["classifier_balanced_accuracy"] >= 0.85),
        Check("success >= 90% in both spaces", lambda r: min(r["success_rate_x"], r["success_rate_z"]) >= 0.90),
        Check("oracle share Z - X >= 20 points",
              lambda r: r["oracle_target_share_z"] - r["oracle_target_share_x"] >= 0.20),
        Check("k-NN share Z > X", lambda r: r["knn_target_share_z"] > r["knn_target_share_x"]),
        Check("mean IM1 Z < X", lambda r: r["im1_mean_z"] < r["im1_mean_x"]),
        Check("more of the change outside the inner face for Z than X",
              lambda r: r["region_change_share_z"] > r["region_change_share_x"]),
    ],
'''
HEADLINE_04 = '''
    ("04_celeba", "CNN accuracy / balanced accuracy", ("classifier_accuracy", "classifier_balanced_accuracy")),
    ("04_celeba", "success not blond → blond, X / Z", ("success_rate_x", "success_rate_z")),
    ("04_celeba", "linear SVM says blond: original / X / Z",
     ("oracle_target_share_original", "oracle_target_share_x", "oracle_target_share_z")),
    ("04_celeba", "10-NN share of blond faces, X / Z", ("knn_target_share_x", "knn_target_share_z")),
    ("04_celeba", "change outside the inner face, X / Z", ("region_change_share_x", "region_change_share_z")),
    ("04_celeba", "MNAC (other attributes flipped), X / Z", ("mnac_x", "mnac_z")),
'''
