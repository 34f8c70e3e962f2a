# to merge into lib/diffcf/paper.py once notebook 06 has run
from diffcf.paper import Check
PAPER_06 = {
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
}
CHECKS_06 = [
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
]
HEADLINE_06 = [
    ("06_mall_regression", "count RMSE, U-Net / oracle", ("unet_rmse", "oracle_rmse")),
    ("06_mall_regression", "oracle count change when maximising, X / Z",
     ("oracle_count_change_max_x", "oracle_count_change_max_z")),
    ("06_mall_regression", "oracle count change when minimising, X / Z",
     ("oracle_count_change_min_x", "oracle_count_change_min_z")),
    ("06_mall_regression", "3-NN count change, maximise X / Z, minimise X / Z",
     ("knn_count_change_max_x", "knn_count_change_max_z", "knn_count_change_min_x", "knn_count_change_min_z")),
]
